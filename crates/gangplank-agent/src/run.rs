//! One-off containers (`POST /runs`): a pipeline's `run` step on this host. Each run pulls its
//! image (logging in again once if refused, as an apply does), then `docker run --rm` with the
//! given argv and environment, keeping the tail of its output and its exit code. A repeated id
//! answers the run it started; a cancel or the timeout kills the container by its name.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::deploy::lock;
use gangplank_api::agent::{AgentRun, AgentRunRequest, AgentRunStatus};
use gangplank_core::agent::{
    DEFAULT_RUN_TIMEOUT_SECONDS, MAX_RUN_OUTPUT, RunRequestError, Tail, check_run_request,
    container_name,
};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, watch};

use crate::deploy::{Deployer, now_text};

/// Finished runs kept for `GET /runs/{id}`.
const KEEP_RUNS: usize = 1000;
/// Containers running at once; later runs wait (`pending`).
const SLOTS: usize = 8;
/// How long killing a container may keep being retried (it may not have been created yet when
/// the kill is first sent).
const KILL_FOR: Duration = Duration::from_secs(30);

/// Why a run request is not taken.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Invalid(#[from] RunRequestError),
    #[error("run {0} exists with another image, command, env or timeout")]
    Conflict(String),
}

struct Entry {
    run: AgentRun,
    /// What the request asked, so a repeat with other contents is refused, not taken as the
    /// same run.
    request: AgentRunRequest,
    cancel: watch::Sender<bool>,
}

#[derive(Default)]
struct Records {
    by_id: HashMap<String, Entry>,
    order: VecDeque<String>,
}

pub struct Runner {
    deployer: Arc<Deployer>,
    slots: Arc<Semaphore>,
    records: Mutex<Records>,
    /// Bumped whenever a run changes: long polls wait on it.
    changed: watch::Sender<u64>,
}

impl Runner {
    pub fn new(deployer: Arc<Deployer>) -> Arc<Runner> {
        Arc::new(Runner {
            deployer,
            slots: Arc::new(Semaphore::new(SLOTS)),
            records: Mutex::new(Records::default()),
            changed: watch::Sender::new(0),
        })
    }

    /// Takes a run, or answers the one with its id. `true` when it was started now.
    pub fn start(
        self: &Arc<Self>,
        request: AgentRunRequest,
    ) -> Result<(AgentRun, bool), StartError> {
        check_run_request(
            &request.id,
            &request.image,
            &request.command,
            &request.env,
            request.timeout_seconds,
        )?;
        let mut records = lock(&self.records);
        if let Some(known) = records.by_id.get(&request.id) {
            if known.request != request {
                return Err(StartError::Conflict(request.id));
            }
            return Ok((known.run.clone(), false));
        }
        let run = AgentRun {
            id: request.id.clone(),
            image: request.image.clone(),
            status: AgentRunStatus::Pending,
            exit_code: None,
            message: String::new(),
            output: String::new(),
            output_dropped: 0,
            created_at: now_text(),
            finished_at: None,
        };
        let (cancel, cancelled) = watch::channel(false);
        records.order.push_back(request.id.clone());
        records.by_id.insert(
            request.id.clone(),
            Entry {
                run: run.clone(),
                request: request.clone(),
                cancel,
            },
        );
        prune(&mut records);
        drop(records);
        tracing::info!(run = %request.id, image = %request.image, args = request.command.len(), env = request.env.len(), "run accepted");
        tokio::spawn(execute(self.clone(), request, cancelled));
        self.bump();
        Ok((run, true))
    }

    pub fn get(&self, id: &str) -> Option<AgentRun> {
        lock(&self.records).by_id.get(id).map(|e| e.run.clone())
    }

    /// The run once final, or as it is when `wait` has passed.
    pub async fn wait(&self, id: &str, wait: Duration) -> Option<AgentRun> {
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribed before reading, so no change between the read and the wait is missed.
        let mut changes = self.changed.subscribe();
        loop {
            let now = self.get(id)?;
            if now.status.is_final() {
                return Some(now);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.get(id),
            }
        }
    }

    /// Asks the run to stop: a pending one ends at once, a running container is killed. The
    /// answer is the run as it is; it turns `cancelled` when the container is gone.
    pub fn cancel(&self, id: &str) -> Option<AgentRun> {
        let records = lock(&self.records);
        let entry = records.by_id.get(id)?;
        entry.cancel.send_replace(true);
        Some(entry.run.clone())
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut AgentRun)) {
        if let Some(entry) = lock(&self.records).by_id.get_mut(id) {
            change(&mut entry.run);
        }
        self.bump();
    }

    fn finish(
        &self,
        id: &str,
        status: AgentRunStatus,
        exit_code: Option<i32>,
        message: String,
        tail: &Tail,
    ) {
        let finished = now_text();
        self.update(id, |run| {
            run.status = status;
            run.exit_code = exit_code;
            run.message = message;
            run.output = tail.text().to_owned();
            run.output_dropped = tail.dropped();
            run.finished_at = Some(finished);
        });
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    // A closed channel (the record was pruned) is no cancel: wait forever then.
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Pull, run, record. Every end is recorded, so no run stays `running` on a live agent.
async fn execute(runner: Arc<Runner>, request: AgentRunRequest, mut cancel: watch::Receiver<bool>) {
    let id = request.id.as_str();
    let mut tail = Tail::new(MAX_RUN_OUTPUT);
    let started = Instant::now();
    let permit = tokio::select! {
        permit = runner.slots.clone().acquire_owned() => permit,
        () = cancelled(&mut cancel) => {
            runner.finish(id, AgentRunStatus::Cancelled, None, "cancelled before it started".to_owned(), &tail);
            return;
        }
    };
    let Ok(_permit) = permit else {
        runner.finish(
            id,
            AgentRunStatus::Failed,
            None,
            "the agent is shutting down".to_owned(),
            &tail,
        );
        return;
    };
    let pulled = tokio::select! {
        pulled = pull(&runner.deployer, &request.image, &mut tail) => pulled,
        () = cancelled(&mut cancel) => {
            runner.finish(id, AgentRunStatus::Cancelled, None, "cancelled while pulling the image".to_owned(), &tail);
            return;
        }
    };
    if let Err(message) = pulled {
        tracing::warn!(run = %id, image = %request.image, reason = %message, "run failed: the image was not pulled");
        runner.finish(id, AgentRunStatus::Failed, None, message, &tail);
        return;
    }
    runner.update(id, |run| run.status = AgentRunStatus::Running);
    let (status, exit_code, message) =
        run_container(&runner.deployer, &request, &mut tail, &mut cancel).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        run = %id, image = %request.image, status = ?status, exit_code = exit_code.unwrap_or(-1),
        duration_ms, "run finished"
    );
    runner.finish(id, status, exit_code, message, &tail);
}

/// `docker pull`, logging in again once when refused (as an apply's pull does).
async fn pull(deployer: &Deployer, image: &str, tail: &mut Tail) -> Result<(), String> {
    let docker = deployer.docker();
    let mut ran = docker.docker(&["pull", "--quiet", image], None).await;
    tail.push(&format!("$ docker pull {image}\n{}", ran.output));
    if !ran.ok && deployer.credentials().configured() {
        tracing::warn!(%image, "pull refused: logging in to the registry again");
        deployer
            .credentials()
            .login(docker)
            .await
            .map_err(|e| format!("the pull was refused and logging in again failed: {e}"))?;
        ran = docker.docker(&["pull", "--quiet", image], None).await;
        tail.push(&format!(
            "$ docker pull {image} (after logging in again)\n{}",
            ran.output
        ));
    }
    if ran.ok {
        Ok(())
    } else {
        Err(format!("pulling {image} failed"))
    }
}

/// Runs the container to its end, its timeout or a cancel; its output goes into `tail`.
async fn run_container(
    deployer: &Deployer,
    request: &AgentRunRequest,
    tail: &mut Tail,
    cancel: &mut watch::Receiver<bool>,
) -> (AgentRunStatus, Option<i32>, String) {
    let name = container_name(&request.id);
    let label = format!("dev.gangplank.run={}", request.id);
    let mut args: Vec<&str> = vec![
        "run", "--rm", "--pull", "never", "--name", &name, "--label", &label,
    ];
    // The values go through a private file, never argv (`ps` shows it) nor the CLI's own
    // environment (where LD_PRELOAD, SSL_CERT_FILE, HTTPS_PROXY… would steer the CLI).
    let env_file = match EnvFile::write(&request.env) {
        Ok(file) => file,
        Err(error) => {
            return (
                AgentRunStatus::Failed,
                None,
                format!("cannot write the run's env file: {error}"),
            );
        }
    };
    let env_path = env_file.path.display().to_string();
    if !request.env.is_empty() {
        args.extend(["--env-file", env_path.as_str()]);
    }
    args.push(&request.image);
    args.extend(request.command.iter().map(String::as_str));
    tail.push(&format!(
        "$ docker run {} {}\n",
        request.image,
        request.command.join(" ")
    ));
    let mut child = match deployer.docker().docker_command(&args).spawn() {
        Ok(child) => child,
        Err(error) => {
            return (
                AgentRunStatus::Failed,
                None,
                format!("cannot run docker: {error}"),
            );
        }
    };
    let shared = Arc::new(Mutex::new(std::mem::take(tail)));
    let readers = [
        child
            .stdout
            .take()
            .map(|s| tokio::spawn(read_into(s, shared.clone()))),
        child
            .stderr
            .take()
            .map(|s| tokio::spawn(read_into(s, shared.clone()))),
    ];
    let timeout = Duration::from_secs(
        request
            .timeout_seconds
            .unwrap_or(DEFAULT_RUN_TIMEOUT_SECONDS),
    );
    let ended = tokio::select! {
        status = child.wait() => Ok(status),
        () = tokio::time::sleep(timeout) => Err((AgentRunStatus::TimedOut, format!("killed after its timeout of {} s", timeout.as_secs()))),
        () = cancelled(cancel) => Err((AgentRunStatus::Cancelled, "cancelled: the container was killed".to_owned())),
    };
    let outcome = match ended {
        Ok(Ok(status)) => match status.code() {
            Some(0) => (AgentRunStatus::Succeeded, Some(0), String::new()),
            Some(125) => (
                AgentRunStatus::Failed,
                Some(125),
                "docker could not start the container (exit code 125)".to_owned(),
            ),
            Some(code) => (
                AgentRunStatus::Failed,
                Some(code),
                format!("exited with code {code}"),
            ),
            None => (
                AgentRunStatus::Failed,
                None,
                "the docker CLI was killed".to_owned(),
            ),
        },
        Ok(Err(error)) => (
            AgentRunStatus::Failed,
            None,
            format!("waiting for docker failed: {error}"),
        ),
        Err((status, message)) => {
            kill(deployer, &name, &mut child).await;
            (status, None, message)
        }
    };
    for reader in readers.into_iter().flatten() {
        let _ = reader.await;
    }
    *tail = std::mem::take(&mut *lock(&shared));
    outcome
}

/// Kills the container by name until the CLI that runs it exits: the first kill may come
/// before the engine created it. The CLI itself goes last.
async fn kill(deployer: &Deployer, name: &str, child: &mut tokio::process::Child) {
    let until = Instant::now() + KILL_FOR;
    while Instant::now() < until {
        let ran = deployer.docker().docker(&["kill", name], None).await;
        if !ran.ok {
            tracing::debug!(container = %name, output = %ran.output.trim(), "kill did not take yet");
        }
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
            return;
        }
    }
    tracing::warn!(container = %name, "the container did not stop; killing the docker CLI");
    let _ = child.kill().await;
}

async fn read_into(mut stream: impl tokio::io::AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buffer = vec![0u8; 8192];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        lock(&tail).push(&String::from_utf8_lossy(&buffer[..n]));
    }
}

/// Drops the oldest finished runs beyond [`KEEP_RUNS`]; unfinished ones stay.
fn prune(records: &mut Records) {
    let excess = records.order.len().saturating_sub(KEEP_RUNS);
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
                .is_none_or(|e| e.run.status.is_final())
        })
        .take(excess)
        .cloned()
        .collect();
    for id in &drop {
        records.by_id.remove(id);
    }
    records.order.retain(|id| !drop.contains(id));
}

/// A run's env as a `docker run --env-file` (one `NAME=value` a line, values checked free of
/// line breaks), readable by the agent's user only, removed when dropped.
struct EnvFile {
    path: std::path::PathBuf,
}

impl EnvFile {
    fn write(env: &std::collections::BTreeMap<String, String>) -> std::io::Result<EnvFile> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = std::env::temp_dir().join(format!("gangplank-run-{}.env", uuid::Uuid::new_v4()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let this = EnvFile { path };
        for (name, value) in env {
            writeln!(file, "{name}={value}")?;
        }
        file.sync_all()?;
        Ok(this)
    }
}

impl Drop for EnvFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
