//! `gangplank serve`: load settings, set up logging, bind, and run until SIGINT or SIGTERM.

use std::io::IsTerminal;

use anyhow::Context;
use gangplank_server::{LogFormat, Settings};

use crate::cli::{AdminAction, AdminArgs, ServeArgs};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = Settings::load(args.config.as_deref(), |name| std::env::var(name).ok())?;
    if let Some(format) = args.log_format {
        settings.log_format = match format.as_str() {
            "auto" => LogFormat::Auto,
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                return Err(crate::UsageError(format!(
                    "--log-format must be auto, text or json, not {format:?}"
                ))
                .into());
            }
        };
    }
    if args.print_config {
        print!("{}", settings.to_redacted_toml());
        return Ok(());
    }
    init_logging(settings.log_format);
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    // Scripts and tests read this line to learn the port when listening on port 0.
    println!("listening on http://{address}");
    tracing::info!(%address, data_dir = %settings.data_dir.display(), "gangplank serve starting");
    gangplank_server::run(settings, listener, shutdown_signal()).await
}

/// `gangplank admin …`.
pub async fn admin(args: AdminArgs) -> anyhow::Result<()> {
    let AdminAction::RotateKey { config } = args.action;
    let settings = Settings::load(config.as_deref(), |name| std::env::var(name).ok())?;
    let from_env = settings.master_key.is_some();
    let (key_id, shown) = gangplank_server::rotate_master_key(settings).await?;
    match shown {
        Some(key) => {
            eprintln!(
                "re-sealed every secret under master key {key_id}; set GANGPLANK_MASTER_KEY to:"
            );
            println!("{key}");
        }
        None if !from_env => eprintln!(
            "re-sealed every secret under master key {key_id}; the old key is in <data dir>/master-key.old"
        ),
        None => {}
    }
    Ok(())
}

pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
