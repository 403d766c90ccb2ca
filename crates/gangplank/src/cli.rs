//! The command line, as clap types.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::UsageError;

/// Gangplank: a self-hosted delivery orchestrator for container images.
#[derive(Debug, Parser)]
#[command(name = "gangplank", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every client verb takes: flags win over environment variables, which win over the
/// config file (`gangplank config`).
#[derive(Debug, Args)]
pub struct Global {
    /// Server URL.
    #[arg(long, env = "GANGPLANK_URL", global = true)]
    pub url: Option<String>,
    /// API token.
    #[arg(long, env = "GANGPLANK_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Organization.
    #[arg(long, env = "GANGPLANK_ORG", global = true)]
    pub org: Option<String>,
    /// Application.
    #[arg(long, env = "GANGPLANK_APP", global = true)]
    pub app: Option<String>,
    /// Environment.
    #[arg(long, env = "GANGPLANK_ENV", global = true)]
    pub env: Option<String>,
    /// Output format; a table on a terminal, JSON otherwise.
    #[arg(short = 'o', long, global = true)]
    pub output: Option<OutputFormat>,
}

/// [`Global`]'s flags (id, long, short): they configure the client, so the verbs that are not
/// clients (`serve`, `agent`, `admin`) neither show nor take them.
const CLIENT_FLAGS: [(&str, &str, Option<char>); 6] = [
    ("url", "url", None),
    ("token", "token", None),
    ("org", "org", None),
    ("app", "app", None),
    ("env", "env", None),
    ("output", "output", Some('o')),
];

/// The verbs that run a server or work on its data rather than call its API.
const SERVER_VERBS: [&str; 3] = ["serve", "agent", "admin"];

/// The command line: [`Cli`], with the client flags kept out of the server verbs' help.
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    for verb in SERVER_VERBS {
        if command.find_subcommand(verb).is_some() {
            command = command.mut_subcommand(verb, shadow_client_flags);
        }
    }
    command
}

/// Gives a server verb hidden flags with the client flags' ids. clap copies a global flag into a
/// subcommand only when the subcommand has no flag of that id (and has no per-subcommand
/// opt-out), so these keep the global ones out of the verb's help; `refuse_client_flags` then
/// rejects them when used.
fn shadow_client_flags(mut command: clap::Command) -> clap::Command {
    for (id, long, short) in CLIENT_FLAGS {
        let mut arg = clap::Arg::new(id)
            .long(long)
            .hide(true)
            .action(clap::ArgAction::Set);
        if let Some(short) = short {
            arg = arg.short(short);
        }
        command = command.arg(arg);
    }
    command
}

/// A client flag given on the command line of a server verb is refused, not silently ignored
/// (from the environment they are fine: a shell set up for the client may start a server).
pub fn refuse_client_flags(matches: &ArgMatches) -> Result<(), UsageError> {
    let Some((verb, sub)) = matches.subcommand() else {
        return Ok(());
    };
    if !SERVER_VERBS.contains(&verb) {
        return Ok(());
    }
    let mut levels = vec![matches, sub];
    while let Some((_, deeper)) = levels.last().and_then(|m| m.subcommand()) {
        levels.push(deeper);
    }
    for (id, long, short) in CLIENT_FLAGS {
        let given = levels.iter().any(|m| {
            m.ids().any(|known| known.as_str() == id)
                && m.value_source(id) == Some(ValueSource::CommandLine)
        });
        if given {
            let flag = match short {
                Some(short) => format!("-{short}/--{long}"),
                None => format!("--{long}"),
            };
            return Err(UsageError(format!(
                "{flag} is a client option; `gangplank {verb}` does not take it (see `gangplank {verb} --help`)"
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server.
    #[cfg(feature = "server")]
    Serve(ServeArgs),
    /// Run the host agent: apply deployments with docker compose on signed requests.
    #[cfg(feature = "server")]
    Agent(AgentArgs),
    /// Show or change the client configuration file.
    Config(ConfigArgs),
    /// Create an object.
    Create(CreateArgs),
    /// List objects, or show one.
    Get(GetArgs),
    /// Delete an object.
    Delete(DeleteArgs),
    /// Call any API path and print the raw JSON answer.
    Api(ApiArgs),
    /// Deploy a delta or a set to the environment given by --env (or redeploy its base).
    Deploy(DeployArgs),
    /// Roll the environment back to its previous succeeded deployment (or --to one), and hold
    /// automation there until `gangplank resume`.
    Rollback(RollbackArgs),
    /// Let automation deploy in the environment again after a rollback.
    Resume,
    /// Show what changes between two sets: `gangplank diff sets FROM TO`.
    Diff(DiffArgs),
    /// Explain, for each artefact version automation considered, what it did and why.
    Explain(ExplainArgs),
    /// Registry credentials for CI: `gangplank registry creds ID [--docker-login]`.
    Registry(RegistryArgs),
    /// Server administration on the server's own data (run where `gangplank serve` runs).
    #[cfg(feature = "server")]
    Admin(AdminArgs),
    /// What the hosts run against each environment's set: one environment (--app and --env),
    /// every environment of --app, or of every app.
    Status,
    /// Cancel a pending or in-progress deployment of the environment given by --env, a
    /// pipeline run (`cancel run RUN`) or a build (`cancel build BUILD`).
    Cancel(CancelArgs),
    /// Start a pipeline run: `run pipeline ID [--input k=v]…`.
    Run(RunArgs),
    /// Approve a waiting approval request, named by its id or its run's id.
    Approve(RespondArgs),
    /// Deny a waiting approval request (its run fails), named by its id or its run's id.
    Deny(RespondArgs),
    /// Print a pipeline run's step logs (`logs run RUN [--job J] [--step N]`) or a build's
    /// log (`logs build BUILD [-f]`).
    Logs(LogsArgs),
    /// Builds: `build run [APP] [--commit SHA] [--ref REF]` builds a commit now.
    Build(BuildArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(subcommand)]
    pub command: BuildCommand,
}

#[derive(Debug, Subcommand)]
pub enum BuildCommand {
    /// Build a commit of the application (its build definition): the given commit, or the
    /// head of --ref (default: the definition's first branch). Prints the queued build.
    Run {
        /// The application; --app when not given.
        app: Option<String>,
        /// The full commit id to build.
        #[arg(long)]
        commit: Option<String>,
        /// The branch or ref (`main`, `refs/heads/main`).
        #[arg(long = "ref")]
        git_ref: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The deployment to cancel, or `run` / `build` followed by a run's or build's id.
    pub deploy_id: String,
    /// With `run` or `build`: the pipeline run or build to cancel.
    pub run_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Only `pipeline`.
    pub kind: String,
    /// The pipeline's id (in the app given by --app).
    pub pipeline_id: String,
    /// An input, `NAME=TEXT` (a string) or `NAME:=JSON` (a number, boolean, list…); repeat.
    #[arg(long = "input", short = 'i')]
    pub inputs: Vec<String>,
    /// Sent as the `Idempotency-Key` header: a second call with the same key answers the run
    /// the first one started, and starts none (safe to retry from CI).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct RespondArgs {
    /// The approval request's id, or the id of a run with one waiting request.
    pub id: String,
    /// A comment recorded with the response.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// `run` or `build`.
    pub kind: String,
    /// The run's or build's id.
    pub run_id: String,
    /// A build's log: keep printing lines until the build ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only this job's steps.
    #[arg(long)]
    pub job: Option<String>,
    /// Only the step at this index (in every job, or in --job).
    #[arg(long)]
    pub step: Option<u32>,
}

#[cfg(feature = "server")]
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub action: AdminAction,
}

#[cfg(feature = "server")]
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Re-seal every stored secret under a new master key (stop the server first).
    RotateKey {
        /// The same settings file `gangplank serve` uses.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub action: RegistryAction,
}

#[derive(Debug, Subcommand)]
pub enum RegistryAction {
    /// Print a CI-enabled registry's credentials as JSON, or with --docker-login only the
    /// password, for `| docker login -u USER --password-stdin HOST`.
    Creds {
        id: String,
        #[arg(long)]
        docker_login: bool,
    },
    /// Move a promotion destination's live tag back to its previous version and drop that
    /// version's tag (in the application given by --app); without REPO on a terminal, pick
    /// from a numbered menu of the app's promotion destinations. Holds automatic promotion
    /// into the repository until `gangplank registry resume REPO`.
    Rollback {
        /// The repository, `host/path` (no tag).
        repository: Option<String>,
        /// The version to return to (default: the highest).
        #[arg(long)]
        to: Option<String>,
        /// The live tag.
        #[arg(long, default_value = "latest")]
        live_tag: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// The rollback's comment.
        #[arg(short = 'm', long)]
        message: Option<String>,
    },
    /// Let automatic promotion into the repository happen again after a rollback.
    Resume {
        /// The repository, `host/path` (no tag).
        repository: String,
        /// The live tag.
        #[arg(long, default_value = "latest")]
        live_tag: String,
    },
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Deploy this delta on top of the environment's current set.
    #[arg(long, conflicts_with = "set")]
    pub delta: Option<String>,
    /// Deploy exactly this set.
    #[arg(long, conflicts_with = "redeploy")]
    pub set: Option<String>,
    /// Deploy the set of the environment's current deployment again, as a new deployment
    /// (converges hosts that drifted from it).
    #[arg(long, conflicts_with = "delta")]
    pub redeploy: bool,
    /// The deployment's comment.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The deployment to return to (default: the previous succeeded one).
    #[arg(long)]
    pub to: Option<String>,
    /// The deployment's comment.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Only `sets`.
    pub kind: String,
    /// The set to start from.
    pub from: String,
    /// The set to arrive at.
    pub to: String,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// At most this many entries.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML settings file (environment variables override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the effective settings, secrets redacted, and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Log format: auto (text on a terminal, JSON otherwise), text or json.
    #[arg(long)]
    pub log_format: Option<String>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// A TOML configuration file (environment variables override it).
    #[arg(long, env = "GANGPLANK_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Set a key: url, token, org, app or env.
    Set { key: String, value: String },
    /// Print the configuration (the token redacted).
    View,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub what: CreateWhat,
}

#[derive(Debug, Subcommand)]
pub enum CreateWhat {
    /// Register an artefact version, as CI does after pushing an image.
    #[command(name = "artefact-version")]
    ArtefactVersion(ArtefactVersionArgs),
    /// Create an application (with a `development` environment).
    App {
        id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a delta in the app from a JSON DeltaRequest (`-d` or `-f FILE|-`).
    Delta {
        /// JSON body.
        #[arg(short = 'd', long = "data", conflicts_with = "file")]
        data: Option<String>,
        /// File with the JSON body; `-` reads standard input.
        #[arg(short = 'f', long = "file")]
        file: Option<String>,
    },
    /// Create an automation rule in the environment given by --env.
    Rule(RuleArgs),
    /// Create a webhook in the app; prints its generated secret once.
    Webhook(WebhookArgs),
    /// Create an inbound hook GitHub or a registry POSTs events to; prints its secret once.
    #[command(name = "inbound-hook")]
    InboundHook {
        /// The hook's id; the kind when not given.
        id: Option<String>,
        /// github, distribution, ecr, dockerhub, harbor, quay, gar or generic.
        #[arg(long)]
        kind: String,
        /// A repository name prefix the hook acts on (repeat); every repository when none.
        #[arg(long = "watch")]
        watches: Vec<String>,
        /// The registry prefix payload repositories are resolved under (Docker Hub, ECR, a
        /// registry standing in for theirs).
        #[arg(long)]
        registry: Option<String>,
        /// The GitHub secret or the token senders present; generated when absent. Read from
        /// GANGPLANK_HOOK_SECRET when not given, so it stays out of shell history.
        #[arg(long, env = "GANGPLANK_HOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// Create a registry: its prefix, type and (write-only) credentials.
    Registry {
        id: String,
        /// The prefix images are matched by: `domain` or `domain/path`.
        #[arg(long)]
        registry: String,
        /// public, basic, amazon_ecr, google_gcr, google_artifact_registry, azure_acr, secret_ref.
        #[arg(long = "type")]
        kind: String,
        #[arg(long)]
        username: Option<String>,
        /// Read from GANGPLANK_REGISTRY_PASSWORD when not given, so it stays out of shell history.
        #[arg(long, env = "GANGPLANK_REGISTRY_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Hand the credentials to CI (`gangplank registry creds`).
        #[arg(long)]
        enable_ci: bool,
        /// Plain HTTP or unverified TLS (local and test registries).
        #[arg(long)]
        insecure: bool,
    },
    /// Create or replace the application's build definition (docs/builds.md): what a push
    /// to its repository (or `gangplank build run`) clones, builds and pushes.
    #[command(name = "build-definition")]
    BuildDefinition {
        /// The git repository (http or https).
        #[arg(long)]
        clone_url: String,
        /// A token to clone with; read from GANGPLANK_CLONE_TOKEN when not given, so it stays
        /// out of shell history.
        #[arg(long, env = "GANGPLANK_CLONE_TOKEN", hide_env_values = true)]
        clone_token: Option<String>,
        /// A branch a push must be to (repeat); default main.
        #[arg(long = "branch")]
        branches: Vec<String>,
        /// The Dockerfile, relative to the repository root; default Dockerfile.
        #[arg(long)]
        dockerfile: Option<String>,
        /// The build context, relative to the repository root; default `.`.
        #[arg(long)]
        context: Option<String>,
        /// A build argument NAME=VALUE (repeat); never a secret (it stays in the image).
        #[arg(long = "build-arg")]
        build_args: Vec<String>,
        /// The repository to push to: `host/path`.
        #[arg(long)]
        image: String,
        /// A tag template (repeat): ${commit}, ${short_commit}, ${branch}, ${ref}; default
        /// ${commit} and latest.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// The builder agent's base URL (a `gangplank agent` with `[builder]`).
        #[arg(long)]
        builder: String,
        /// Stop a build after this long: seconds, or with a unit (30s, 5m, 1h); default 30m.
        #[arg(long)]
        timeout: Option<String>,
    },
    /// Create a registry watch: the image's tags are listed on an interval and new ones
    /// registered (docs/watches.md). With neither --semver nor --regex every tag matches.
    Watch {
        /// The repository with its registry host: `host/path`.
        image: String,
        /// A semver range, e.g. ">=1.2, <2".
        #[arg(long, conflicts_with = "regex")]
        semver: Option<String>,
        /// A regex tags must match, e.g. "^main-[0-9a-f]{7}$".
        #[arg(long)]
        regex: Option<String>,
        /// Between polls: seconds, or with a unit (30s, 5m, 1h); default 5m.
        #[arg(long)]
        interval: Option<String>,
    },
    /// Create a pipeline in the app from its YAML definition (`-f FILE|-`); `--dry-run`
    /// only validates it.
    Pipeline {
        /// The definition (docs/pipelines.md); `-` reads standard input.
        #[arg(short = 'f', long = "file")]
        file: String,
        /// Validate only: nothing is created.
        #[arg(long)]
        dry_run: bool,
    },
    /// Create an environment in the application given by --app.
    Env {
        id: String,
        #[arg(long = "type", default_value = "development")]
        kind: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct RuleArgs {
    /// Regex on the version's git ref, e.g. ^refs/heads/main$.
    #[arg(long)]
    pub match_ref: Option<String>,
    /// Only these artefact names (repeat), or with --exclude all but these.
    #[arg(long = "artefact")]
    pub artefacts: Vec<String>,
    /// Treat --artefact names as an exclude list.
    #[arg(long)]
    pub exclude: bool,
    /// Only versions satisfying this semver constraint, e.g. ^1.2.
    #[arg(long, conflicts_with = "version_regex")]
    pub semver: Option<String>,
    /// With --semver: pre-releases count too.
    #[arg(long)]
    pub prerelease: bool,
    /// Only versions matching this regex.
    #[arg(long)]
    pub version_regex: Option<String>,
    /// Create the rule inactive.
    #[arg(long)]
    pub inactive: bool,
}

#[derive(Debug, Args)]
pub struct WebhookArgs {
    pub id: String,
    /// Where deliveries go (https, or http with GANGPLANK_WEBHOOK_ALLOW_PRIVATE on the server).
    /// Not `--url`, which is the Gangplank API's address.
    #[arg(long)]
    pub target_url: String,
    /// An event to send, as scope.type (repeat); all when none is given.
    #[arg(long = "trigger")]
    pub triggers: Vec<String>,
    /// The payload template (JSON with ${var} placeholders).
    #[arg(long)]
    pub payload: Option<String>,
    /// A header to send, NAME=VALUE (repeat).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// The signing secret (whsec_…); generated when absent.
    #[arg(long)]
    pub secret: Option<String>,
}

#[derive(Debug, Args)]
pub struct ArtefactVersionArgs {
    /// `container` or `workload`.
    #[arg(short = 't', long = "type")]
    pub kind: String,
    /// Artefact name (image repository without tag, for containers).
    #[arg(short = 'n', long)]
    pub name: String,
    /// Version (the image tag, for containers).
    #[arg(long)]
    pub version: Option<String>,
    /// Git ref, e.g. refs/heads/main.
    #[arg(long = "ref")]
    pub git_ref: Option<String>,
    /// Git commit.
    #[arg(long)]
    pub commit: Option<String>,
    /// Image digest (sha256:…).
    #[arg(long)]
    pub digest: Option<String>,
    /// Score workload file (YAML), for workloads.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Default image for the workload's containers.
    #[arg(long)]
    pub image: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// artefacts, artefact-versions, apps, envs, deploys, sets, deltas, rules, webhooks,
    /// pipelines, runs (with an id: the run, its jobs and their steps), approvals,
    /// registries, watches, image-promotions, inbound-hooks, builds, build-definition, or
    /// deliveries (with a hook's id:
    /// the app's webhook with --app, else the inbound hook; `inbound-deliveries` is always the
    /// inbound hook's).
    pub kind: String,
    /// Show only this object.
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// app, env, artefact or watch.
    pub kind: String,
    /// The object's id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// get, post, put, patch or delete (any case).
    pub method: String,
    /// The path, e.g. /orgs/default/apps.
    pub path: String,
    /// JSON body.
    #[arg(short = 'd', long = "data", conflicts_with = "file")]
    pub data: Option<String>,
    /// File with the JSON body; `-` reads standard input.
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
}
