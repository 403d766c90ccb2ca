//! The `gangplank` binary: `serve` runs the server; every other verb is a client of its API.
//!
//! This file parses arguments and dispatches, nothing more. Errors become one line on stderr:
//! exit code 2 for usage errors, 1 for everything else.

mod cli;
mod client_config;
mod commands;
mod output;

use std::process::ExitCode;

use clap::FromArgMatches;

use crate::cli::{Cli, Command};

/// An error in how the command was called (exit code 2), as opposed to one in carrying it out.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    // Before decoding: a server verb's shadow of a client flag holds text, not its type.
    if let Err(error) = cli::refuse_client_flags(&matches) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // The agent idles on small hosts beside the services it runs: one thread keeps its
    // footprint down, and its work (verifying a token, waiting on compose) needs no more.
    #[cfg(feature = "server")]
    let single_threaded = matches!(cli.command, Command::Agent(_));
    #[cfg(not(feature = "server"))]
    let single_threaded = false;
    let runtime = if single_threaded {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the outermost context first, then its causes.
            let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
            let advice = match error.downcast_ref::<gangplank_api::client::ClientError>() {
                Some(gangplank_api::client::ClientError::Unreachable { .. }) => {
                    "; is the server running there? Set its address with --url, GANGPLANK_URL or `gangplank config set url URL`"
                }
                _ => "",
            };
            eprintln!("error: {}{advice}", causes.join(": "));
            if error.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        #[cfg(feature = "server")]
        Command::Serve(args) => commands::serve::run(args).await,
        #[cfg(feature = "server")]
        Command::Agent(args) => commands::agent::run(args).await,
        Command::Config(args) => commands::config::run(args, cli.global.output),
        Command::Create(args) => commands::create::run(&cli.global, args).await,
        Command::Get(args) => commands::get::run(&cli.global, args).await,
        Command::Delete(args) => commands::delete::run(&cli.global, args).await,
        Command::Api(args) => commands::api::run(&cli.global, args).await,
        Command::Deploy(args) => commands::deploy::deploy(&cli.global, args).await,
        Command::Rollback(args) => commands::deploy::rollback(&cli.global, args).await,
        Command::Resume => commands::deploy::resume(&cli.global).await,
        Command::Diff(args) => commands::deploy::diff(&cli.global, args).await,
        Command::Explain(args) => commands::deploy::explain(&cli.global, args).await,
        Command::Registry(args) => commands::registry::run(&cli.global, args).await,
        Command::Status => commands::status::run(&cli.global).await,
        #[cfg(feature = "server")]
        Command::Admin(args) => commands::serve::admin(args).await,
        Command::Cancel(args) => match args.run_id {
            Some(run) if args.deploy_id == "run" => {
                commands::pipeline_runs::cancel(&cli.global, &run).await
            }
            Some(build) if args.deploy_id == "build" => {
                commands::builds::cancel(&cli.global, &build).await
            }
            Some(_) => Err(UsageError(
                "cancel takes a deployment id, `run RUN_ID` for a pipeline run, or `build BUILD_ID`".to_owned(),
            )
            .into()),
            None => commands::deploy::cancel(&cli.global, args).await,
        },
        Command::Run(args) => commands::pipeline_runs::run(&cli.global, args).await,
        Command::Approve(args) => commands::pipeline_runs::respond(&cli.global, args, true).await,
        Command::Deny(args) => commands::pipeline_runs::respond(&cli.global, args, false).await,
        Command::Logs(args) if args.kind == "build" => {
            commands::builds::logs(&cli.global, &args.run_id, args.follow).await
        }
        Command::Logs(args) => commands::pipeline_runs::logs(&cli.global, args).await,
        Command::Build(args) => commands::builds::run(&cli.global, args).await,
    }
}
