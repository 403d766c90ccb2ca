//! The deployment queue and what one deployment does. Each project has one worker, so compose
//! never runs twice at once on a project; requests for the same service and image that wait in
//! the queue together are served by one run. A repeated deployment id is answered from the
//! record, not run again. An apply (`POST /apply`) names a project's whole desired state: the
//! project is observed once, services already running their image are recorded `unchanged`
//! at once, and the others are queued on the same worker.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gangplank_api::agent::{
    AgentApply, AgentApplyRequest, AgentDeploy, AgentDeployStatus, AgentState, ProjectState,
};
use gangplank_core::agent::{
    ApplyRequestError, ContainerState, DeployBody, HealthVerdict, ServiceAction, apply_record_id,
    check_apply_request, decide_service, judge_health, override_image, with_image,
};
use serde_json::Value;
use tokio::sync::{Notify, oneshot, watch};

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

/// Why an apply was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Invalid(#[from] ApplyRequestError),
    #[error("{0}")]
    Project(String),
    #[error("the engine did not answer: {0}")]
    Engine(#[from] crate::observe::ObserveError),
}

struct Queue {
    project: Project,
    /// Lock order: `Deployer::records`, then `jobs`, then `running`.
    jobs: Mutex<VecDeque<Job>>,
    /// The service of the job being run, and how many jobs have finished: an observation
    /// taken while either changed may be stale.
    running: Mutex<(Option<String>, u64)>,
    wake: Notify,
}

#[derive(Default)]
struct Records {
    by_id: HashMap<String, AgentDeploy>,
    order: VecDeque<String>,
    /// Apply id → its project and service record ids.
    applies: HashMap<String, (String, Vec<String>)>,
    apply_order: VecDeque<String>,
}

pub struct Deployer {
    queues: Vec<Arc<Queue>>,
    docker: Docker,
    credentials: Credentials,
    records: Mutex<Records>,
    /// Bumped whenever a record changes: long polls wait on it.
    changed: watch::Sender<u64>,
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
                        running: Mutex::new((None, 0)),
                        wake: Notify::new(),
                    })
                })
                .collect(),
            docker,
            credentials,
            records: Mutex::new(Records::default()),
            changed: watch::Sender::new(0),
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
        enqueue(&mut jobs, id, &body.service, body.image, Some(tx));
        drop(jobs);
        drop(records);
        queue.wake.notify_one();
        self.bump();
        Ok(Submitted::Queued(record, rx))
    }

    /// Takes an apply: records `unchanged` at once each service the project already runs as
    /// asked, queues the others. A repeated id answers its records; only services without one
    /// (the agent restarted, or the request names more) are observed and decided anew.
    pub async fn apply(&self, request: &AgentApplyRequest) -> Result<AgentApply, ApplyError> {
        check_apply_request(&request.id, &request.services)?;
        let queue = self.queue_for_apply(request)?;
        let project = queue.project.name.clone();
        let missing: Vec<&String> = {
            let records = lock(&self.records);
            request
                .services
                .keys()
                .filter(|s| !records.by_id.contains_key(&apply_record_id(&request.id, s)))
                .collect()
        };
        if !missing.is_empty() {
            let epoch = lock(&queue.running).1;
            let observed = crate::observe::observe(&self.docker, &queue.project).await?;
            let mut records = lock(&self.records);
            let mut jobs = lock(&queue.jobs);
            let (running, finished) = lock(&queue.running).clone();
            let mut queued = 0;
            for service in missing {
                let id = apply_record_id(&request.id, service);
                if records.by_id.contains_key(&id) {
                    // A concurrent repeat of this apply decided it meanwhile.
                    continue;
                }
                let image = &request.services[service];
                // A job that ran or runs since the observation began may have changed it.
                let busy = finished != epoch
                    || running.as_deref() == Some(service.as_str())
                    || jobs.iter().any(|j| j.service == *service);
                let seen = observed.iter().find(|o| o.service == *service);
                let action = decide_service(image, seen.map(|o| o.observed()).as_ref(), busy);
                let mut record = AgentDeploy {
                    id: id.clone(),
                    project: project.clone(),
                    service: service.clone(),
                    image: Some(image.clone()),
                    status: AgentDeployStatus::Queued,
                    message: String::new(),
                    output: String::new(),
                    health_log: String::new(),
                    created_at: now_text(),
                    finished_at: None,
                };
                match action {
                    ServiceAction::Unchanged => {
                        record.status = AgentDeployStatus::Unchanged;
                        record.message = "the service already runs the image".to_owned();
                        record.finished_at = Some(record.created_at.clone());
                        tracing::info!(
                            %project, %service, %image, digest = digest_of(image),
                            result = "unchanged", duration_ms = 0, deploy = %id,
                            "deployment unchanged: the service already runs the image, nothing run"
                        );
                    }
                    ServiceAction::Run(reason) => {
                        tracing::info!(%project, %service, %image, deploy = %id, %reason, "deployment queued");
                        enqueue(&mut jobs, id.clone(), service, Some(image.clone()), None);
                        queued += 1;
                    }
                }
                records.order.push_back(id.clone());
                records.by_id.insert(id, record);
            }
            drop(jobs);
            let ids: Vec<String> = request
                .services
                .keys()
                .map(|s| apply_record_id(&request.id, s))
                .collect();
            match records.applies.get_mut(&request.id) {
                Some((_, known)) => {
                    for id in ids {
                        if !known.contains(&id) {
                            known.push(id);
                        }
                    }
                }
                None => {
                    records
                        .applies
                        .insert(request.id.clone(), (project.clone(), ids));
                    records.apply_order.push_back(request.id.clone());
                }
            }
            prune(&mut records);
            drop(records);
            if queued > 0 {
                queue.wake.notify_one();
            }
            self.bump();
        } else {
            // Every record exists but the apply's entry may have been pruned (older agents
            // pruned entries apart from records): give it back rather than refuse the repeat.
            let mut records = lock(&self.records);
            if !records.applies.contains_key(&request.id) {
                let ids = request
                    .services
                    .keys()
                    .map(|s| apply_record_id(&request.id, s))
                    .collect();
                records
                    .applies
                    .insert(request.id.clone(), (project.clone(), ids));
                records.apply_order.push_back(request.id.clone());
            }
        }
        self.applied(&request.id)
            .ok_or_else(|| ApplyError::Project(format!("apply {} was forgotten", request.id)))
    }

    /// An apply's records as they are now.
    pub fn applied(&self, id: &str) -> Option<AgentApply> {
        let records = lock(&self.records);
        let (project, ids) = records.applies.get(id)?;
        Some(AgentApply {
            id: id.to_owned(),
            project: project.clone(),
            services: ids
                .iter()
                .filter_map(|i| records.by_id.get(i).cloned())
                .collect(),
        })
    }

    /// An apply's records once all are final, or as they are when `wait` has passed.
    pub async fn wait_applied(&self, id: &str, wait: Duration) -> Option<AgentApply> {
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribed before reading, so no change between the read and the wait is missed.
        let mut changes = self.changed.subscribe();
        loop {
            let now = self.applied(id)?;
            if now.is_final() {
                return Some(now);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.applied(id),
            }
        }
    }

    /// Drops the apply's jobs that have not begun, recording them `cancelled`; a running one
    /// finishes and is recorded as it ends.
    pub fn cancel_apply(&self, id: &str) -> Option<AgentApply> {
        let mut records = lock(&self.records);
        let (project, ids) = records.applies.get(id)?.clone();
        let mut dropped = Vec::new();
        if let Some(queue) = self.queues.iter().find(|q| q.project.name == project) {
            let mut jobs = lock(&queue.jobs);
            for job in jobs.iter_mut() {
                let mut i = 0;
                while i < job.ids.len() {
                    if ids.contains(&job.ids[i]) {
                        dropped.push((job.ids.remove(i), job.service.clone(), job.image.clone()));
                        // Its waiter is dropped with it: nobody waits on an apply's job.
                        job.waiters.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            jobs.retain(|j| !j.ids.is_empty());
        }
        let finished = now_text();
        for (record_id, service, image) in &dropped {
            if let Some(record) = records.by_id.get_mut(record_id) {
                record.status = AgentDeployStatus::Cancelled;
                record.message = "cancelled before it ran".to_owned();
                record.finished_at = Some(finished.clone());
            }
            let image = image.as_deref().unwrap_or("-");
            tracing::info!(
                %project, %service, %image, digest = digest_of(image), result = "cancelled",
                duration_ms = 0, deploy = %record_id, "deployment cancelled before it ran"
            );
        }
        drop(records);
        self.bump();
        self.applied(id)
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn queue_for_apply(&self, request: &AgentApplyRequest) -> Result<&Arc<Queue>, ApplyError> {
        let holds_all = |q: &&Arc<Queue>| {
            request
                .services
                .keys()
                .all(|s| q.project.services.contains(s))
        };
        let queue = match &request.project {
            Some(name) => self
                .queues
                .iter()
                .find(|q| q.project.name == *name)
                .ok_or_else(|| ApplyError::Project(format!("no project {name:?} on this agent")))?,
            None => {
                let mut matching = self.queues.iter().filter(holds_all);
                let first = matching.next();
                if first.is_some() && matching.next().is_some() {
                    return Err(ApplyError::Project(
                        "several projects have these services: name the project".to_owned(),
                    ));
                }
                first
                    .or_else(|| self.queues.first())
                    .ok_or_else(|| ApplyError::Project("this agent has no projects".to_owned()))?
            }
        };
        if let Some(service) = request
            .services
            .keys()
            .find(|s| !queue.project.services.contains(*s))
        {
            return Err(ApplyError::Project(format!(
                "service {service:?} may not be deployed by this agent in project {}",
                queue.project.name
            )));
        }
        Ok(queue)
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
        drop(records);
        self.bump();
        last
    }
}

/// Queues a run of `service` at `image`, joining a queued job for the same service and image
/// (one run serves both).
fn enqueue(
    jobs: &mut VecDeque<Job>,
    id: String,
    service: &str,
    image: Option<String>,
    waiter: Option<oneshot::Sender<AgentDeploy>>,
) {
    let waiter = waiter.unwrap_or_else(|| oneshot::channel().0);
    match jobs
        .iter_mut()
        .find(|job| job.service == service && job.image == image)
    {
        Some(job) => {
            job.ids.push(id);
            job.waiters.push(waiter);
        }
        None => jobs.push_back(Job {
            ids: vec![id],
            service: service.to_owned(),
            image,
            waiters: vec![waiter],
        }),
    }
}

/// The digest an image reference pins, for the log.
fn digest_of(image: &str) -> &str {
    image.split_once('@').map_or("-", |(_, digest)| digest)
}

async fn work(deployer: Arc<Deployer>, queue: Arc<Queue>) {
    loop {
        let job = {
            let mut jobs = lock(&queue.jobs);
            let job = jobs.pop_front();
            lock(&queue.running).0 = job.as_ref().map(|j| j.service.clone());
            job
        };
        let Some(job) = job else {
            queue.wake.notified().await;
            continue;
        };
        deployer.update(&job.ids, |r| r.status = AgentDeployStatus::Running);
        let started = Instant::now();
        let result = apply(
            &deployer,
            &queue.project,
            &job.service,
            job.image.as_deref(),
        )
        .await;
        let image = job.image.as_deref().unwrap_or("-");
        let (project, service, deploy) = (&queue.project.name, &job.service, job.ids.join(","));
        let duration_ms = millis(started.elapsed());
        if result.ok {
            tracing::info!(
                %project, %service, %image, digest = digest_of(image), result = "succeeded",
                duration_ms, %deploy, "deployment succeeded"
            );
        } else {
            tracing::warn!(
                %project, %service, %image, digest = digest_of(image), result = "failed",
                duration_ms, %deploy, reason = %result.message, "deployment failed"
            );
        }
        {
            let mut running = lock(&queue.running);
            running.0 = None;
            running.1 = running.1.wrapping_add(1);
        }
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
        tracing::warn!(project = %project.name, %service, image = image.unwrap_or("-"), "pull refused: logging in to the registry again");
        if let Err(error) = deployer.credentials.login(docker).await {
            tracing::warn!(project = %project.name, %service, %error, "logging in again failed");
            restore(project, &previous);
            outcome.message = format!("the pull was refused and logging in again failed: {error}");
            return outcome;
        }
        tracing::info!(project = %project.name, %service, "logged in again: pulling again");
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
        match &verdict {
            HealthVerdict::Unhealthy(reason) => {
                tracing::warn!(project = %project.name, %service, verdict = "unhealthy", %reason, "health verdict");
            }
            _ => {
                tracing::info!(project = %project.name, %service, verdict = "healthy", "health verdict")
            }
        }
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
    if up.ok {
        tracing::warn!(project = %project.name, %service, to = %was, "rolled back");
    } else {
        tracing::error!(project = %project.name, %service, to = %was, "rolling back failed");
    }
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
    prune_to(records, KEEP_RECORDS);
}

/// Drops the oldest records and applies beyond `keep`, never an unfinished record, and an
/// apply only as a unit (its entry with all its records) once every record of it is final:
/// an apply answered with some records missing would look done to the server. Unfinished
/// records are skipped, not waited on, so one stuck job cannot keep the rest from pruning.
fn prune_to(records: &mut Records, keep: usize) {
    use std::collections::HashSet;
    if records.order.len() <= keep && records.apply_order.len() <= keep {
        return;
    }
    let is_final = |id: &String| records.by_id.get(id).is_none_or(|r| r.status.is_final());
    let apply_of: HashMap<&String, &String> = records
        .applies
        .iter()
        .flat_map(|(apply, (_, ids))| ids.iter().map(move |id| (id, apply)))
        .collect();
    let apply_final = |apply: &String| {
        records
            .applies
            .get(apply)
            .is_none_or(|(_, ids)| ids.iter().all(is_final))
    };
    let mut dropped_records: HashSet<String> = HashSet::new();
    let mut dropped_applies: HashSet<String> = HashSet::new();
    for id in &records.order {
        if records.order.len() - dropped_records.len() <= keep {
            break;
        }
        if dropped_records.contains(id) || !is_final(id) {
            continue;
        }
        match apply_of.get(id) {
            Some(apply) if apply_final(apply) => {
                dropped_applies.insert((*apply).clone());
                dropped_records.extend(records.applies[*apply].1.iter().cloned());
            }
            // A record of an apply still running: kept with its apply.
            Some(_) => {}
            None => {
                dropped_records.insert(id.clone());
            }
        }
    }
    for apply in &records.apply_order {
        if records.apply_order.len() - dropped_applies.len() <= keep {
            break;
        }
        if dropped_applies.contains(apply) || !apply_final(apply) {
            continue;
        }
        dropped_applies.insert(apply.clone());
        if let Some((_, ids)) = records.applies.get(apply) {
            dropped_records.extend(ids.iter().cloned());
        }
    }
    records.order.retain(|id| !dropped_records.contains(id));
    for id in &dropped_records {
        records.by_id.remove(id);
    }
    records.apply_order.retain(|a| !dropped_applies.contains(a));
    for apply in &dropped_applies {
        records.applies.remove(apply);
    }
}

/// Locks `mutex`, taking over a poisoned one (a panicked holder left plain data behind).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Now, as a wire timestamp (the records' `started_at`/`finished_at`).
pub(crate) fn now_text() -> String {
    gangplank_core::timestamp::format_millis(now_millis())
}

#[cfg(test)]
mod tests {
    use super::{AgentDeploy, AgentDeployStatus, Records, prune_to};

    fn add(records: &mut Records, id: &str, status: AgentDeployStatus) {
        records.order.push_back(id.to_owned());
        records.by_id.insert(
            id.to_owned(),
            AgentDeploy {
                id: id.to_owned(),
                project: "p".into(),
                service: id.to_owned(),
                image: None,
                status,
                message: String::new(),
                output: String::new(),
                health_log: String::new(),
                created_at: String::new(),
                finished_at: None,
            },
        );
    }

    fn add_apply(records: &mut Records, apply: &str, ids: &[&str]) {
        records.applies.insert(
            apply.to_owned(),
            ("p".into(), ids.iter().map(|&i| i.to_owned()).collect()),
        );
        records.apply_order.push_back(apply.to_owned());
    }

    fn kept(records: &Records) -> Vec<&str> {
        records.order.iter().map(String::as_str).collect()
    }

    #[test]
    fn prune_skips_unfinished_records_and_drops_applies_whole() {
        use AgentDeployStatus::*;
        // A stuck job first, then finished standalone records: those go, it stays.
        let mut records = Records::default();
        add(&mut records, "stuck", Running);
        for id in ["s1", "s2", "s3"] {
            add(&mut records, id, Succeeded);
        }
        prune_to(&mut records, 2);
        assert_eq!(kept(&records), ["stuck", "s3"]);
        assert_eq!(records.by_id.len(), 2);

        // An apply with one record still queued keeps all of its records; a wholly final one
        // is dropped with its entry.
        let mut records = Records::default();
        add(&mut records, "a-web", Succeeded);
        add(&mut records, "b-web", Failed);
        add(&mut records, "a-db", Queued);
        add(&mut records, "b-db", Unchanged);
        add(&mut records, "c", Succeeded);
        add_apply(&mut records, "a", &["a-web", "a-db"]);
        add_apply(&mut records, "b", &["b-web", "b-db"]);
        prune_to(&mut records, 3);
        assert_eq!(kept(&records), ["a-web", "a-db", "c"]);
        assert!(records.applies.contains_key("a"));
        assert!(!records.applies.contains_key("b"));
        assert_eq!(records.apply_order, ["a"]);

        // Too many applies: the oldest final ones go whole, unfinished ones stay.
        let mut records = Records::default();
        add(&mut records, "a-web", Running);
        add(&mut records, "b-web", Succeeded);
        add(&mut records, "c-web", Succeeded);
        add_apply(&mut records, "a", &["a-web"]);
        add_apply(&mut records, "b", &["b-web"]);
        add_apply(&mut records, "c", &["c-web"]);
        prune_to(&mut records, 2);
        assert_eq!(records.apply_order, ["a", "c"]);
        assert_eq!(kept(&records), ["a-web", "c-web"]);

        // Nothing over the limit: nothing pruned, even finished.
        let mut records = Records::default();
        add(&mut records, "x", Succeeded);
        prune_to(&mut records, 1);
        assert_eq!(kept(&records), ["x"]);
    }
}
