//! Image builds (`POST /builds`, with `[builder]`): the server's build of one commit on this
//! host. Each build waits for one of the builder's slots (`pending`), then in a fresh
//! directory under the work dir clones exactly its commit (`git`), builds and pushes the image
//! (`engine`), logging every command's output line by line (`log`, with secrets redacted) and
//! stopping every command's process group on cancel or timeout (`step`). A repeated id answers
//! the build it started; the last [`KEEP_BUILDS`] finished builds are kept for `GET`, and a
//! restart forgets them (the server then knows the build was lost).

mod engine;
mod git;
mod log;
mod step;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::deploy::lock;
use gangplank_api::builds::{AgentBuild, AgentBuildRequest, AgentBuildStatus};
use gangplank_core::ValidationError;
use gangplank_core::build::{AgentBuildInput, check_agent_build};
use tokio::sync::{Semaphore, watch};

use crate::config::{BuildEngine, BuilderConfig, CredentialsConfig};
use crate::credentials::Credentials;
use engine::{Engine, Workspace};
use log::BuildLog;
use step::{Stop, Stopped};

/// Finished builds kept for `GET /builds/{id}`.
const KEEP_BUILDS: usize = 100;
/// Most log lines one answer carries; `next` says where to go on.
const MAX_LINES_PER_ANSWER: usize = 1000;

/// Why a build request is not taken.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("build {0} exists with another request")]
    Conflict(String),
}

/// How a build ended early.
#[derive(Debug)]
pub enum End {
    Failed(String),
    Stopped(Stopped),
}

impl From<Stopped> for End {
    fn from(stopped: Stopped) -> Self {
        End::Stopped(stopped)
    }
}

struct Entry {
    /// Status, commit, tags, digest and message (the lines live in `log`).
    build: AgentBuild,
    /// What the request asked, so a repeat with other contents is refused.
    request: AgentBuildRequest,
    cancel: watch::Sender<bool>,
    log: Arc<Mutex<BuildLog>>,
}

#[derive(Default)]
struct Records {
    by_id: HashMap<String, Entry>,
    order: VecDeque<String>,
}

pub struct Builder {
    engine: Engine,
    work_dir: PathBuf,
    credentials: Credentials,
    slots: Arc<Semaphore>,
    /// Held while a build applies, pushes and removes its registry tags.
    push_lock: tokio::sync::Mutex<()>,
    records: Mutex<Records>,
    /// Bumped whenever a build changes or logs: long polls wait on it.
    changed: watch::Sender<u64>,
}

/// Writes a build's log lines and wakes its readers.
pub struct Logger {
    builder: Arc<Builder>,
    log: Arc<Mutex<BuildLog>>,
}

impl Logger {
    /// Logs a line; the answer is the line as kept (redacted).
    pub fn line(&self, text: &str) -> String {
        let kept = lock(&self.log).push(text);
        self.builder.bump();
        kept
    }

    pub fn add_secret(&self, secret: &str) {
        lock(&self.log).add_secret(secret);
    }

    fn redact(&self, text: &str) -> String {
        lock(&self.log).redact(text)
    }
}

impl Builder {
    /// The builder for `[builder]`; `auto` runs `docker info` once to choose the engine.
    pub async fn new(
        config: &BuilderConfig,
        state_dir: &std::path::Path,
        docker_cli: &str,
        credentials: CredentialsConfig,
    ) -> anyhow::Result<Arc<Builder>> {
        let engine = match config.engine {
            BuildEngine::Docker => Engine::Docker(docker_cli.to_owned()),
            BuildEngine::Buildah => Engine::Buildah,
            BuildEngine::Auto => engine::detect(docker_cli).await,
        };
        let work_dir = config
            .work_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("builds"));
        std::fs::create_dir_all(&work_dir)
            .map_err(|e| anyhow::anyhow!("creating the build dir {}: {e}", work_dir.display()))?;
        // What is left there is from builds an earlier run of the agent forgot (it stopped
        // mid-build): checkouts and registry logins nobody will clean up otherwise.
        for leftover in std::fs::read_dir(&work_dir)
            .map_err(|e| anyhow::anyhow!("reading the build dir {}: {e}", work_dir.display()))?
            .flatten()
        {
            let path = leftover.path();
            if let Err(error) = std::fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), %error, "a leftover build directory was not removed");
            }
        }
        tracing::info!(engine = engine.name(), work_dir = %work_dir.display(), concurrency = config.concurrency, "builder ready");
        Ok(Arc::new(Builder {
            engine,
            work_dir,
            credentials: Credentials::new(credentials),
            slots: Arc::new(Semaphore::new(config.concurrency)),
            push_lock: tokio::sync::Mutex::new(()),
            records: Mutex::new(Records::default()),
            changed: watch::Sender::new(0),
        }))
    }

    /// Takes a build, or answers the one with its id. `true` when it was started now.
    pub fn start(
        self: &Arc<Self>,
        request: AgentBuildRequest,
    ) -> Result<(AgentBuild, bool), StartError> {
        check_agent_build(&AgentBuildInput {
            id: &request.id,
            clone_url: &request.clone_url,
            git_ref: &request.git_ref,
            commit: request.commit.as_deref(),
            dockerfile: &request.dockerfile,
            context: &request.context,
            build_args: &request.build_args,
            image: &request.image,
            tags: &request.tags,
            registry_id: request.registry_id.as_deref(),
            timeout_seconds: request.timeout_seconds,
        })?;
        let mut records = lock(&self.records);
        if let Some(known) = records.by_id.get(&request.id) {
            if known.request != request {
                return Err(StartError::Conflict(request.id));
            }
            return Ok((view(known, 0), false));
        }
        let secrets = match request.clone_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => vec![token.to_owned(), git::basic_auth(token)],
            None => Vec::new(),
        };
        let (cancel, cancelled) = watch::channel(false);
        let entry = Entry {
            build: AgentBuild {
                id: request.id.clone(),
                status: AgentBuildStatus::Pending,
                commit: String::new(),
                tags: Vec::new(),
                digest: String::new(),
                message: String::new(),
                lines: Vec::new(),
                first_line: 0,
                next: 0,
            },
            request: request.clone(),
            cancel,
            log: Arc::new(Mutex::new(BuildLog::new(secrets))),
        };
        let build = view(&entry, 0);
        let log = entry.log.clone();
        records.order.push_back(request.id.clone());
        records.by_id.insert(request.id.clone(), entry);
        prune(&mut records);
        drop(records);
        tracing::info!(build = %request.id, image = %request.image, git_ref = %request.git_ref, commit = request.commit.as_deref().unwrap_or("-"), "build accepted");
        let logger = Logger {
            builder: self.clone(),
            log,
        };
        tokio::spawn(execute(self.clone(), request, cancelled, logger));
        self.bump();
        Ok((build, true))
    }

    /// The build with its lines from `from` on.
    /// `docker` or `buildah`, as configured or detected.
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    pub fn get(&self, id: &str, from: u64) -> Option<AgentBuild> {
        lock(&self.records).by_id.get(id).map(|e| view(e, from))
    }

    /// The build once it has lines after `from` or is final, or as it is when `wait` passed.
    pub async fn wait(&self, id: &str, from: u64, wait: Duration) -> Option<AgentBuild> {
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribed before reading, so no change between the read and the wait is missed.
        let mut changes = self.changed.subscribe();
        loop {
            let now = self.get(id, from)?;
            if now.status.is_final() || now.next > from {
                return Some(now);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.get(id, from),
            }
        }
    }

    /// Asks the build to stop: a pending one ends at once, a running one's command is killed.
    /// The answer is the build as it is; it turns `cancelled` once its command is gone.
    pub fn cancel(&self, id: &str) -> Option<AgentBuild> {
        let records = lock(&self.records);
        let entry = records.by_id.get(id)?;
        entry.cancel.send_replace(true);
        // No lines: the caller polls the log with its own `from`.
        Some(view(entry, u64::MAX))
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut AgentBuild)) {
        if let Some(entry) = lock(&self.records).by_id.get_mut(id) {
            change(&mut entry.build);
        }
        self.bump();
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The entry as answered: its lines from `from` (at most [`MAX_LINES_PER_ANSWER`]).
fn view(entry: &Entry, from: u64) -> AgentBuild {
    let log = lock(&entry.log);
    let (first_line, lines) = log.read(from, MAX_LINES_PER_ANSWER);
    AgentBuild {
        next: first_line + lines.len() as u64,
        first_line,
        lines,
        ..entry.build.clone()
    }
}

/// Waits for a slot, then clone → build → push; every end is recorded and the build's
/// directory removed, so no build stays `running` on a live agent.
async fn execute(
    builder: Arc<Builder>,
    request: AgentBuildRequest,
    cancel: watch::Receiver<bool>,
    logger: Logger,
) {
    let id = request.id.clone();
    let started = Instant::now();
    let mut waiting = cancel.clone();
    let permit = tokio::select! {
        permit = builder.slots.clone().acquire_owned() => permit,
        _ = waiting.wait_for(|c| *c) => {
            finish(&builder, &id, Err(End::Stopped(Stopped::Cancelled)), &logger, request.timeout_seconds);
            return;
        }
    };
    let Ok(_permit) = permit else {
        finish(
            &builder,
            &id,
            Err(End::Failed("the agent is shutting down".to_owned())),
            &logger,
            request.timeout_seconds,
        );
        return;
    };
    builder.update(&id, |b| b.status = AgentBuildStatus::Running);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(request.timeout_seconds);
    let mut stop = Stop::new(cancel, deadline);
    let dir = builder
        .work_dir
        .join(uuid::Uuid::new_v4().simple().to_string());
    let workspace = Workspace {
        checkout: dir.join("src"),
        config: dir.join("registry"),
        local_tag: format!("gangplank-build:{}", uuid::Uuid::new_v4().simple()),
    };
    let outcome = run_build(&builder, &request, &workspace, &dir, &logger, &mut stop).await;
    engine::remove_image(&builder.engine, &workspace).await;
    if let Err(error) = tokio::fs::remove_dir_all(&dir).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(build = %id, dir = %dir.display(), %error, "the build's directory was not removed");
    }
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(build = %id, ok = outcome.is_ok(), duration_ms, "build finished");
    finish(&builder, &id, outcome, &logger, request.timeout_seconds);
}

/// What a successful build recorded.
struct Done {
    commit: String,
    tags: Vec<String>,
    digest: String,
}

async fn run_build(
    builder: &Arc<Builder>,
    request: &AgentBuildRequest,
    workspace: &Workspace,
    dir: &std::path::Path,
    logger: &Logger,
    stop: &mut Stop,
) -> Result<Done, End> {
    use std::os::unix::fs::DirBuilderExt;
    // Readable by the agent's user only: the checkout may hold the repository's secrets, the
    // registry directory the login.
    for path in [dir, &workspace.checkout, &workspace.config] {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|e| End::Failed(format!("cannot create the build directory: {e}")))?;
    }
    let commit = git::clone(request, &workspace.checkout, logger, stop).await?;
    builder.update(&request.id, |b| b.commit = commit.clone());
    let pushed = engine::build_and_push(builder, request, &commit, workspace, logger, stop).await?;
    Ok(Done {
        commit,
        tags: pushed.tags,
        digest: pushed.digest,
    })
}

fn finish(
    builder: &Builder,
    id: &str,
    outcome: Result<Done, End>,
    logger: &Logger,
    timeout_seconds: u64,
) {
    let (status, message, done) = match outcome {
        Ok(done) => (AgentBuildStatus::Succeeded, String::new(), Some(done)),
        Err(End::Failed(message)) => (AgentBuildStatus::Failed, logger.redact(&message), None),
        Err(End::Stopped(Stopped::Cancelled)) => {
            (AgentBuildStatus::Cancelled, "cancelled".to_owned(), None)
        }
        Err(End::Stopped(Stopped::TimedOut)) => (
            AgentBuildStatus::Failed,
            format!("timed out after {timeout_seconds} s"),
            None,
        ),
    };
    match &done {
        Some(done) => logger.line(&format!(
            "==> pushed {} ({})",
            done.tags.join(", "),
            done.digest
        )),
        None => logger.line(&format!("==> {message}")),
    };
    builder.update(id, |build| {
        build.status = status;
        build.message = message;
        if let Some(done) = done {
            build.commit = done.commit;
            build.tags = done.tags;
            build.digest = done.digest;
        }
    });
}

/// Drops the oldest finished builds beyond [`KEEP_BUILDS`]; unfinished ones stay.
fn prune(records: &mut Records) {
    let finished = records
        .order
        .iter()
        .filter(|id| {
            records
                .by_id
                .get(*id)
                .is_none_or(|e| e.build.status.is_final())
        })
        .count();
    let excess = finished.saturating_sub(KEEP_BUILDS);
    if excess == 0 {
        return;
    }
    let drop: Vec<String> = records
        .order
        .iter()
        .filter(|id| {
            records
                .by_id
                .get(*id)
                .is_none_or(|e| e.build.status.is_final())
        })
        .take(excess)
        .cloned()
        .collect();
    for id in &drop {
        records.by_id.remove(id);
    }
    records.order.retain(|id| !drop.contains(id));
}
