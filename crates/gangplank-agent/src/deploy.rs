//! The deployment queue and what one deployment does. Each project has one worker, so compose
//! never runs twice at once on a project; requests for the same service and image that wait in
//! the queue together are served by one run. A repeated deployment id is answered from the
//! record, not run again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gangplank_api::agent::{AgentDeploy, AgentDeployStatus, AgentState, ProjectState};
use gangplank_core::agent::{
    ContainerState, DeployBody, HealthVerdict, judge_health, override_image, with_image,
};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use crate::credentials::Credentials;
use crate::docker::{Docker, Ran};
use crate::project::Project;

/// Finished records kept for `GET /deploys/{id}`.
const KEEP_RECORDS: usize = 1000;
/// The most compose output kept per deployment.
const OUTPUT_TAIL: usize = 8 * 1024;
const HEALTH_POLL: Duration = Duration::from_millis(500);

/// Why a request cannot be queued (400s).
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("service {0:?} may not be deployed by this agent")]
    NotAllowed(String),
    #[error("service {0:?} is in several projects: name the project")]
    Ambiguous(String),
}

struct Job {
    ids: Vec<String>,
    service: String,
    image: Option<String>,
    waiters: Vec<oneshot::Sender<AgentDeploy>>,
}

struct Queue {
    project: Project,
    jobs: Mutex<VecDeque<Job>>,
    wake: Notify,
}

#[derive(Default)]
struct Records {
    by_id: HashMap<String, AgentDeploy>,
    order: VecDeque<String>,
}

pub struct Deployer {
    queues: Vec<Arc<Queue>>,
    docker: Docker,
    credentials: Credentials,
    records: Mutex<Records>,
}

/// What `submit` did.
pub enum Submitted {
    /// The id was seen before: its record.
    Known(AgentDeploy),
    /// Queued; the receiver answers when it finishes (for the seed's synchronous requests).
    Queued(AgentDeploy, oneshot::Receiver<AgentDeploy>),
}

impl Deployer {
    /// Starts one worker per project.
    pub fn start(projects: Vec<Project>, docker: Docker, credentials: Credentials) -> Arc<Self> {
        let deployer = Arc::new(Deployer {
            queues: projects
                .into_iter()
                .map(|project| {
                    Arc::new(Queue {
                        project,
                        jobs: Mutex::new(VecDeque::new()),
                        wake: Notify::new(),
                    })
                })
                .collect(),
            docker,
            credentials,
            records: Mutex::new(Records::default()),
        });
        for queue in &deployer.queues {
            tokio::spawn(work(deployer.clone(), queue.clone()));
        }
        deployer
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn record(&self, id: &str) -> Option<AgentDeploy> {
        lock(&self.records).by_id.get(id).cloned()
    }

    pub fn submit(&self, body: DeployBody) -> Result<Submitted, SubmitError> {
        let queue = self.queue_for(&body)?;
        let mut records = lock(&self.records);
        if let Some(id) = &body.id
            && let Some(known) = records.by_id.get(id)
        {
            return Ok(Submitted::Known(known.clone()));
        }
        let id = body
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let record = AgentDeploy {
            id: id.clone(),
            project: queue.project.name.clone(),
            service: body.service.clone(),
            image: body.image.clone(),
            status: AgentDeployStatus::Queued,
            message: String::new(),
            output: String::new(),
            health_log: String::new(),
            created_at: now_text(),
            finished_at: None,
        };
        records.order.push_back(id.clone());
        records.by_id.insert(id.clone(), record.clone());
        prune(&mut records);
        let (tx, rx) = oneshot::channel();
        let mut jobs = lock(&queue.jobs);
        match jobs
            .iter_mut()
            .find(|job| job.service == body.service && job.image == body.image)
        {
            Some(job) => {
                job.ids.push(id);
                job.waiters.push(tx);
            }
            None => jobs.push_back(Job {
                ids: vec![id],
                service: body.service,
                image: body.image,
                waiters: vec![tx],
            }),
        }
        drop(jobs);
        queue.wake.notify_one();
        Ok(Submitted::Queued(record, rx))
    }

    /// What every project runs, with each service's last agent deployment.
    pub async fn observe_all(&self) -> Result<AgentState, crate::observe::ObserveError> {
        let observed_at = now_text();
        let mut projects = Vec::new();
        for queue in &self.queues {
            let mut services = crate::observe::observe(&self.docker, &queue.project).await?;
            for service in &mut services {
                if let Some((id, outcome)) = self.last_for(&queue.project.name, &service.service) {
                    service.last_deploy_id = Some(id);
                    service.last_outcome = Some(outcome);
                }
            }
            projects.push(ProjectState {
                name: queue.project.name.clone(),
                services,
            });
        }
        Ok(AgentState {
            projects,
            observed_at,
        })
    }

    /// The newest record of `service` in `project` (the records are kept in arrival order).
    pub fn last_for(&self, project: &str, service: &str) -> Option<(String, AgentDeployStatus)> {
        let records = lock(&self.records);
        records.order.iter().rev().find_map(|id| {
            records
                .by_id
                .get(id)
                .filter(|r| r.project == project && r.service == service)
                .map(|r| (r.id.clone(), r.status))
        })
    }

    fn queue_for(&self, body: &DeployBody) -> Result<&Arc<Queue>, SubmitError> {
        let mut matching = self.queues.iter().filter(|q| {
            q.project.services.contains(&body.service)
                && body.project.as_ref().is_none_or(|p| *p == q.project.name)
        });
        let first = matching
            .next()
            .ok_or_else(|| SubmitError::NotAllowed(body.service.clone()))?;
        if matching.next().is_some() {
            return Err(SubmitError::Ambiguous(body.service.clone()));
        }
        Ok(first)
    }

    fn update(&self, ids: &[String], change: impl Fn(&mut AgentDeploy)) -> Option<AgentDeploy> {
        let mut records = lock(&self.records);
        let mut last = None;
        for id in ids {
            if let Some(record) = records.by_id.get_mut(id) {
                change(record);
                last = Some(record.clone());
            }
        }
        last
    }
}

async fn work(deployer: Arc<Deployer>, queue: Arc<Queue>) {
    loop {
        let job = lock(&queue.jobs).pop_front();
        let Some(job) = job else {
            queue.wake.notified().await;
            continue;
        };
        deployer.update(&job.ids, |r| r.status = AgentDeployStatus::Running);
        let result = apply(
            &deployer,
            &queue.project,
            &job.service,
            job.image.as_deref(),
        )
        .await;
        let finished = now_text();
        for (id, waiter) in job.ids.iter().zip(job.waiters) {
            let record = deployer.update(std::slice::from_ref(id), |r| {
                r.status = if result.ok {
                    AgentDeployStatus::Succeeded
                } else {
                    AgentDeployStatus::Failed
                };
                r.message.clone_from(&result.message);
                r.output.clone_from(&result.output);
                r.health_log.clone_from(&result.health_log);
                r.finished_at = Some(finished.clone());
            });
            if let Some(record) = record {
                let _ = waiter.send(record);
            }
        }
    }
}

/// What one deployment came to.
#[derive(Default)]
struct Outcome {
    ok: bool,
    message: String,
    output: String,
    health_log: String,
}

impl Outcome {
    fn log(&mut self, step: &str, ran: &Ran) {
        self.output.push_str(&format!("$ {step}\n{}", ran.output));
        if self.output.len() > OUTPUT_TAIL {
            let cut = self.output.len() - OUTPUT_TAIL;
            let cut = (cut..self.output.len())
                .find(|i| self.output.is_char_boundary(*i))
                .unwrap_or(cut);
            self.output.drain(..cut);
        }
    }
}

/// Pins the image in the override file, pulls (logging in again once if refused), relaunches
/// the one service, and waits for it to be healthy; any failure puts the previous override
/// back (and, after a relaunch, relaunches the previous image).
async fn apply(
    deployer: &Deployer,
    project: &Project,
    service: &str,
    image: Option<&str>,
) -> Outcome {
    let docker = &deployer.docker;
    let mut outcome = Outcome::default();
    let previous = project.read_override();
    let next = with_image(&previous, project.version.as_deref(), service, image);
    if let Err(error) = project.write_override(&next) {
        outcome.message = format!("cannot write the override file: {error:#}");
        return outcome;
    }
    let compose = |args: &'static [&'static str]| async move {
        let mut full = args.to_vec();
        full.push(service);
        docker.compose(&project.name, &project.files, &full).await
    };

    let mut pull = compose(&["pull"]).await;
    outcome.log(&format!("pull {service}"), &pull);
    if !pull.ok && deployer.credentials.configured() {
        if let Err(error) = deployer.credentials.login(docker).await {
            restore(project, &previous);
            outcome.message = format!("the pull was refused and logging in again failed: {error}");
            return outcome;
        }
        pull = compose(&["pull"]).await;
        outcome.log(&format!("pull {service} (after logging in again)"), &pull);
    }
    if !pull.ok {
        restore(project, &previous);
        outcome.message = format!("pulling {service} failed");
        return outcome;
    }
    let up = compose(&["up", "-d", "--no-deps"]).await;
    outcome.log(&format!("up -d --no-deps {service}"), &up);
    if !up.ok {
        roll_back(deployer, project, service, &previous, &mut outcome).await;
        outcome.message = format!("starting {service} failed; {}", outcome.message);
        return outcome;
    }
    if !project.health_timeout.is_zero() {
        let (verdict, log) = wait_healthy(docker, project, service).await;
        outcome.health_log = log;
        if let HealthVerdict::Unhealthy(reason) = verdict {
            roll_back(deployer, project, service, &previous, &mut outcome).await;
            outcome.message = format!("{service} is not healthy: {reason}; {}", outcome.message);
            return outcome;
        }
    }
    outcome.ok = true;
    outcome
}

fn restore(project: &Project, previous: &Value) {
    if let Err(error) = project.write_override(previous) {
        tracing::error!(project = %project.name, error = %format!("{error:#}"), "restoring the override file failed");
    }
}

/// Puts the previous image back and relaunches it; says what it did in `outcome.message`.
async fn roll_back(
    deployer: &Deployer,
    project: &Project,
    service: &str,
    previous: &Value,
    outcome: &mut Outcome,
) {
    restore(project, previous);
    let was = override_image(previous, service)
        .map_or_else(|| "the compose file's image".to_owned(), str::to_owned);
    let up = deployer
        .docker
        .compose(
            &project.name,
            &project.files,
            &["up", "-d", "--no-deps", service],
        )
        .await;
    outcome.log(&format!("up -d --no-deps {service} (rollback)"), &up);
    outcome.message = if up.ok {
        format!("rolled back to {was}")
    } else {
        format!("rolling back to {was} failed too")
    };
}

/// Polls the service's container until `judge_health` decides. Returns the verdict and the
/// container's last healthcheck outputs.
async fn wait_healthy(
    docker: &Docker,
    project: &Project,
    service: &str,
) -> (HealthVerdict, String) {
    let started = Instant::now();
    let timeout_ms = millis(project.health_timeout);
    let grace_ms = millis(project.grace);
    let mut baseline_restarts = None;
    let project_label = format!("label=com.docker.compose.project={}", project.name);
    let service_label = format!("label=com.docker.compose.service={service}");
    loop {
        let elapsed = millis(started.elapsed());
        let ps = docker
            .docker(
                &[
                    "ps",
                    "-a",
                    "-q",
                    "--filter",
                    &project_label,
                    "--filter",
                    &service_label,
                ],
                None,
            )
            .await;
        let id = ps
            .output
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let inspected = if ps.ok && !id.is_empty() {
            inspect(docker, &id).await
        } else {
            None
        };
        let (verdict, log) = match inspected {
            Some((state, log)) => {
                let baseline = *baseline_restarts.get_or_insert(state.restart_count);
                (
                    judge_health(&state, grace_ms, elapsed, timeout_ms, baseline),
                    log,
                )
            }
            None if elapsed >= timeout_ms => (
                HealthVerdict::Unhealthy("no container was found for the service".to_owned()),
                String::new(),
            ),
            None => (HealthVerdict::Waiting, String::new()),
        };
        if verdict != HealthVerdict::Waiting {
            return (verdict, log);
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
}

/// A container's state and the outputs of its last healthchecks.
async fn inspect(docker: &Docker, id: &str) -> Option<(ContainerState, String)> {
    let ran = docker.docker(&["inspect", id], None).await;
    if !ran.ok {
        return None;
    }
    let all: Value = serde_json::from_str(&ran.output).ok()?;
    let container = all.get(0)?;
    let state = container.get("State")?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
    let started_at = text(state.get("StartedAt"));
    let running_for_ms = gangplank_core::timestamp::parse_rfc3339_millis(&started_at)
        .map_or(0, |at| (now_millis() - at).max(0));
    let health = state.get("Health");
    let log = health
        .and_then(|h| h.get("Log"))
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .rev()
                .take(3)
                .rev()
                .map(|e| {
                    format!(
                        "exit {}: {}",
                        e.get("ExitCode").and_then(Value::as_i64).unwrap_or(-1),
                        text(e.get("Output")).trim()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    Some((
        ContainerState {
            status: text(state.get("Status")),
            health: health.map(|h| text(h.get("Status"))),
            running_for_ms,
            restart_count: container
                .get("RestartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        },
        log,
    ))
}

fn prune(records: &mut Records) {
    while records.order.len() > KEEP_RECORDS {
        let Some(oldest) = records.order.pop_front() else {
            break;
        };
        let unfinished = records
            .by_id
            .get(&oldest)
            .is_some_and(|r| !r.status.is_final());
        if unfinished {
            // Still queued or running: keep it, and stop pruning for now.
            records.order.push_front(oldest);
            break;
        }
        records.by_id.remove(&oldest);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn now_text() -> String {
    gangplank_core::timestamp::format_millis(now_millis())
}
