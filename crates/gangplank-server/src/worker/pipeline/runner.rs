//! The pipeline runner: claims runs from the work queue, asks `schedule::next` what each does
//! next, records the moves, and runs steps through their executors. A claim is renewed while
//! the run is driven and fences every write (a lapsed claim's worker stops); a run waiting on
//! people or on a deployment parks its queue row until its next recheck, and an approval
//! response or a cancel wakes it. The inputs are frozen and the image digest pinned at start.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gangplank_core::pipeline::definition::{self, Definition, JobDef};
use gangplank_core::pipeline::expr::{self, Context, StepFacts};
use gangplank_core::pipeline::lifecycle::{JobEvent, RunEvent, StepEvent};
use gangplank_core::pipeline::schedule::{self, Conditions, Move, Snapshot, job_deadline};
use gangplank_core::pipeline::status::{JobStatus, RunStatus, StepStatus};
use gangplank_store::{ClaimedRun, NewJob, NewLogLine, NewStep, RunRow, RunSnapshot, RunWrite};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::actions;
use super::step::{StepCtx, StepOutcome, StepResult};
use crate::state::AppState;

/// Runs driven at once by this process.
const CONCURRENCY: usize = 32;
/// How long a claim lasts without renewal (renewed every third of it).
pub const LEASE_MS: i64 = 30_000;
/// The most scheduler rounds one claim drives before it yields the run back to the queue
/// (a safety net against a definition that never settles; each round makes progress).
const MAX_ROUNDS: usize = 1_000;
/// How often a driven run's cancel request is looked for (its running step is stopped).
const CANCEL_POLL_MS: i64 = 1_000;
/// How many times in a row driving a run may fail (a store error, an illegal transition)
/// before the run fails as errored rather than being re-claimed forever.
const MAX_DRIVE_ERRORS: u32 = 5;
/// How often a step that errored (worth retrying: an unreachable registry or agent) is run
/// again within one claim, backing off from `ERRORED_BACKOFF_MS`, before it fails.
const ERRORED_RETRIES: u32 = 3;
const ERRORED_BACKOFF_MS: i64 = 1_000;

pub async fn run(state: AppState) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    // Run id → how many drives in a row failed (this process's count: enough to stop a run
    // that fails the same way every time).
    let errors: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let now = gangplank_store::now_millis();
        let next = state.store.next_run_due().await.ok().flatten();
        if next.is_none_or(|at| at > now) {
            drop(permit);
            super::super::idle(&state.wake.pipeline, next).await;
            continue;
        }
        match state.store.claim_run(now, LEASE_MS).await {
            Ok(Some(claim)) => {
                let state = state.clone();
                let errors = errors.clone();
                tokio::spawn(async move {
                    let id = claim.run.id.clone();
                    let before = errors
                        .lock()
                        .map_or(0, |e| e.get(&id).copied().unwrap_or(0));
                    let errored = drive(&state, claim, 0, before).await;
                    if let Ok(mut e) = errors.lock() {
                        if errored {
                            e.insert(id, before + 1);
                        } else {
                            e.remove(&id);
                        }
                    }
                    state.wake.delivery.notify_one();
                    // A finished run may let the next run of its concurrency group go.
                    state.wake.pipeline.notify_one();
                    drop(permit);
                    // A run that parked (an approval's expiry, a lock's recheck) is due at a
                    // time the idle loop did not know when it went to sleep: look again.
                    state.wake.pipeline.notify_one();
                });
            }
            Ok(None) => {
                drop(permit);
                super::super::idle(&state.wake.pipeline, None).await;
            }
            Err(error) => {
                drop(permit);
                tracing::error!(%error, "claiming a pipeline run failed");
                super::super::idle(&state.wake.pipeline, None).await;
            }
        }
    }
}

/// Claims and drives every run due at `now`, one after the other, as if the clock read `now`:
/// what `run` does, for tests that step the runner themselves (expiry, timeouts). Returns how
/// many runs it drove.
#[cfg(test)]
pub async fn tick(state: &AppState, now: i64) -> usize {
    let skew = now - gangplank_store::now_millis();
    let mut driven = 0;
    let mut errors: HashMap<String, u32> = HashMap::new();
    while let Ok(Some(claim)) = state.store.claim_run(now, LEASE_MS).await {
        let id = claim.run.id.clone();
        let before = errors.get(&id).copied().unwrap_or(0);
        if drive(state, claim, skew, before).await {
            errors.insert(id, before + 1);
        }
        driven += 1;
    }
    driven
}

/// Drives one claimed run until it finishes, parks, or loses its claim; `skew` (ms) is added
/// to the clock (0 but in tests). `errors_before`: how many drives of it failed in a row.
/// Returns whether this drive failed too (the run failed as errored on the last allowed one).
async fn drive(state: &AppState, claim: ClaimedRun, skew: i64, errors_before: u32) -> bool {
    let ClaimedRun { run, attempt } = claim;
    let lost = CancellationToken::new();
    let stop = lost.child_token();
    let renewer = tokio::spawn(renew(
        state.clone(),
        run.clone(),
        attempt,
        lost.clone(),
        stop.clone(),
    ));
    let driver = Driver {
        state,
        run: &run,
        attempt,
        lost: lost.clone(),
        stop,
        skew,
    };
    let errored = match driver.drive().await {
        Ok(()) => false,
        Err(error) if errors_before + 1 >= MAX_DRIVE_ERRORS => {
            tracing::error!(run = %run.id, %error, "driving a pipeline run failed again; it fails");
            let message = format!("errored: {error}");
            if let Err(error) = driver.fail_now(&message).await {
                tracing::error!(run = %run.id, %error, "failing an errored pipeline run failed");
            }
            true
        }
        Err(error) => {
            tracing::error!(run = %run.id, %error, "driving a pipeline run failed; its lease lapses and it resumes");
            true
        }
    };
    renewer.abort();
    errored
}

/// Renews the claim every third of the lease (`lost` when that fails), and stops the
/// running step (`stop`) as soon as a cancel is requested: an http retry loop or an agent's
/// container must not keep going until the next step boundary.
async fn renew(
    state: AppState,
    run: RunRow,
    attempt: i64,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let mut renewed = gangplank_store::now_millis();
    loop {
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(CANCEL_POLL_MS).unwrap_or(1_000),
        ))
        .await;
        if !stop.is_cancelled() {
            match state.store.get_run(&run.org_id, &run.app_id, &run.id).await {
                Ok(Some(now)) if now.cancellation_requested_at == 0 => {}
                Ok(_) => stop.cancel(),
                Err(error) => tracing::warn!(%error, run = %run.id, "reading a run failed"),
            }
        }
        if gangplank_store::now_millis() - renewed < LEASE_MS / 3 {
            continue;
        }
        let until = gangplank_store::now_millis() + LEASE_MS;
        match state
            .store
            .renew_run_lease(&run.org_id, &run.app_id, &run.id, attempt, until)
            .await
        {
            Ok(true) => renewed = gangplank_store::now_millis(),
            Ok(false) => {
                lost.cancel();
                return;
            }
            Err(error) => tracing::warn!(%error, run = %run.id, "renewing a run's lease failed"),
        }
    }
}

struct Driver<'a> {
    state: &'a AppState,
    run: &'a RunRow,
    attempt: i64,
    /// Cancelled when the claim is lost: stop, write nothing more.
    lost: CancellationToken,
    /// Cancelled when the claim is lost or a cancel is requested: the running step stops.
    stop: CancellationToken,
    skew: i64,
}

/// What one round ended with.
enum Round {
    /// Progress was written: ask the scheduler again.
    Again,
    /// Every step waits: park until this time (Unix ms).
    Park(i64),
    /// The run finished or the claim was lost.
    Stop,
}

impl Driver<'_> {
    fn now(&self) -> i64 {
        gangplank_store::now_millis() + self.skew
    }

    async fn drive(&self) -> Result<(), String> {
        let def = match definition::parse(&self.run.definition) {
            Ok(def) => Some(def),
            Err(error) => {
                self.fail_now(&format!("the run's definition is invalid: {error}"))
                    .await?;
                None
            }
        };
        let Some(def) = def else { return Ok(()) };
        for _ in 0..MAX_ROUNDS {
            if self.lost.is_cancelled() {
                return Ok(());
            }
            match self.round(&def).await? {
                Round::Again => continue,
                Round::Stop => return Ok(()),
                Round::Park(until) => {
                    let r = self.run;
                    self.state
                        .store
                        .park_run(&r.org_id, &r.app_id, &r.id, self.attempt, until)
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok(());
                }
            }
        }
        // Yield: the lease lapses soon and the run resumes where it is.
        Ok(())
    }

    async fn snapshot(&self) -> Result<Option<RunSnapshot>, String> {
        let r = self.run;
        self.state
            .store
            .run_snapshot(&r.org_id, &r.app_id, &r.id)
            .await
            .map_err(|e| e.to_string())
    }

    async fn record(&self, writes: Vec<RunWrite>) -> Result<bool, String> {
        let r = self.run;
        let now = self.now();
        let held = self
            .state
            .store
            .record_run(&r.org_id, &r.app_id, &r.id, self.attempt, writes, now)
            .await
            .map_err(|e| e.to_string())?;
        if !held {
            self.lost.cancel();
        }
        Ok(held)
    }

    /// A run that cannot go on fails (started first, when still queued): its definition
    /// cannot be read, or driving it failed again and again.
    async fn fail_now(&self, message: &str) -> Result<(), String> {
        let Some(snap) = self.snapshot().await? else {
            return Ok(());
        };
        let mut writes = Vec::new();
        if snap.run.status == RunStatus::Queued.as_str() {
            writes.push(RunWrite::Start {
                inputs: snap.run.inputs_json(),
                jobs: Vec::new(),
            });
        }
        writes.push(RunWrite::Finish {
            event: RunEvent::Fail,
            message: message.to_owned(),
        });
        self.record(writes).await.map(drop)
    }

    async fn round(&self, def: &Definition) -> Result<Round, String> {
        let Some(snap) = self.snapshot().await? else {
            return Ok(Round::Stop);
        };
        let now = self.now();
        let core = core_snapshot(&snap)?;
        let job_deadlines = || {
            def.jobs
                .iter()
                .filter(|j| core.jobs.get(&j.id) == Some(&JobStatus::Executing))
                .filter_map(|j| job_deadline_from(j, &core, now))
                .min()
                .unwrap_or(i64::MAX)
        };
        let mut conditions = SnapshotConditions { snap: &snap };
        let moves = schedule::next(def, &core, now, &mut conditions);
        if moves.is_empty() {
            return Ok(Round::Stop);
        }
        let mut writes = Vec::new();
        let mut steps = Vec::new();
        for m in moves {
            match m {
                Move::StartRun => writes.extend(self.start(def, &snap).await),
                Move::StartJob { job } => writes.push(RunWrite::Job {
                    job_id: job,
                    event: JobEvent::Start,
                    message: String::new(),
                }),
                Move::SkipJob { job, reason } => writes.push(RunWrite::Job {
                    job_id: job,
                    event: JobEvent::Skip,
                    message: reason,
                }),
                Move::SkipStep { job, index, reason } => writes.push(RunWrite::SkipStep {
                    step: new_step(def, &job, index),
                    message: reason,
                }),
                Move::FinishJob {
                    job,
                    event,
                    message,
                } => {
                    // A job ended under a running step (its timeout): that step ends with it.
                    for s in snap
                        .steps
                        .iter()
                        .filter(|s| s.job_id == job && s.status == StepStatus::Executing.as_str())
                    {
                        writes.push(finish_step(
                            &job,
                            s.idx,
                            StepEvent::Cancel,
                            message.clone(),
                            Map::new(),
                            BTreeMap::new(),
                        ));
                    }
                    let message = explain_job(&snap, &job, event, message);
                    writes.push(RunWrite::Job {
                        job_id: job,
                        event,
                        message,
                    });
                }
                Move::FinishRun { event, message } => {
                    let message = explain_run(&snap, event, message);
                    writes.push(RunWrite::Finish { event, message });
                }
                Move::RunStep { job, index } => steps.push((job, index)),
            }
        }
        if !writes.is_empty() {
            let finished = writes.iter().any(|w| matches!(w, RunWrite::Finish { .. }));
            if !self.record(writes).await? {
                return Ok(Round::Stop);
            }
            if finished {
                tracing::info!(run = %self.run.id, "pipeline run finished");
                return Ok(Round::Stop);
            }
            return Ok(Round::Again);
        }
        let mut park_until: Option<i64> = None;
        let mut progressed = false;
        for (job, index) in steps {
            match self.step(def, &snap, &core, &job, index).await? {
                None => progressed = true,
                Some(recheck) => {
                    park_until = Some(park_until.map_or(recheck, |p| p.min(recheck)));
                }
            }
            if self.lost.is_cancelled() {
                return Ok(Round::Stop);
            }
        }
        if progressed {
            return Ok(Round::Again);
        }
        // Never past the run's or a job's timeout: the timeout itself is a recheck.
        let deadline = run_deadline(&snap.run).min(job_deadlines());
        Ok(Round::Park(park_until.unwrap_or(deadline).min(deadline)))
    }

    /// queued → executing: the inputs frozen with the image pinned by digest. A run whose
    /// image cannot be pinned fails at once: nothing may run on an unpinned image.
    async fn start(&self, def: &Definition, snap: &RunSnapshot) -> Vec<RunWrite> {
        let inputs = snap.run.inputs_json();
        let jobs = def
            .jobs
            .iter()
            .map(|j| NewJob {
                id: j.id.clone(),
                name: j.name.clone(),
                timeout_seconds: j
                    .timeout_minutes
                    .map_or(snap.run.timeout_seconds, |m| i64::from(m) * 60),
            })
            .collect();
        match pin_digest(self.state, &snap.run.org_id, inputs.clone()).await {
            Ok(inputs) => vec![RunWrite::Start { inputs, jobs }],
            Err(error) => vec![
                RunWrite::Start { inputs, jobs },
                RunWrite::Finish {
                    event: RunEvent::Fail,
                    message: format!("the image's digest could not be resolved: {error}"),
                },
            ],
        }
    }

    /// Runs one step; `None` when it finished (or could not start), `Some(recheck)` while it
    /// waits.
    async fn step(
        &self,
        def: &Definition,
        snap: &RunSnapshot,
        core: &Snapshot,
        job: &str,
        index: usize,
    ) -> Result<Option<i64>, String> {
        let job_def = def
            .jobs
            .iter()
            .find(|j| j.id == job)
            .ok_or_else(|| format!("job {job} is not in the definition"))?;
        let step = &job_def.steps[index];
        let idx = i64::try_from(index).unwrap_or(i64::MAX);
        let exists = snap.steps.iter().find(|s| s.job_id == job && s.idx == idx);
        if exists.is_none()
            && !self
                .record(vec![RunWrite::StartStep(new_step(def, job, index))])
                .await?
        {
            return Ok(None);
        }
        let now = self.now();
        let started = exists.map_or(now, |s| s.created_at);
        let step_deadline = step
            .timeout_minutes
            .map_or(i64::MAX, |m| started + i64::from(m) * 60_000);
        let deadline = run_deadline(&snap.run)
            .min(step_deadline)
            .min(job_deadline_from(job_def, core, now).unwrap_or(i64::MAX));
        let inputs = snap.run.inputs_json();
        let ctx_expr = expr_context(snap, &inputs);
        let result = if now >= step_deadline {
            StepResult::new(StepOutcome::Failed {
                message: format!(
                    "timed out after {} minutes",
                    step.timeout_minutes.unwrap_or(0)
                ),
            })
        } else {
            match expr::render(&Value::Object(step.with.clone()), &ctx_expr) {
                Err(error) => StepResult::new(StepOutcome::Failed {
                    message: format!("its inputs could not be evaluated: {error}"),
                }),
                Ok(with) => {
                    let with = match with {
                        Value::Object(map) => map,
                        _ => Map::new(),
                    };
                    // A cancel requested while the step runs reaches it (a `run` step tells
                    // the agent to kill its container): the renewer watches for it.
                    let ctx = StepCtx {
                        state: self.state,
                        org_id: &snap.run.org_id,
                        app_id: &snap.run.app_id,
                        pipeline_id: &snap.run.pipeline_id,
                        run_id: &snap.run.id,
                        job_id: job,
                        step_index: u32::try_from(index).unwrap_or(u32::MAX),
                        run_as: &snap.run.run_as,
                        inputs: &inputs,
                        cancel: self.stop.child_token(),
                        deadline,
                        now,
                        automatic: snap.run.trigger_type != "pipeline_call",
                    };
                    self.execute_with_retries(step.uses, &ctx, &with).await
                }
            }
        };
        if self.lost.is_cancelled() {
            return Ok(None);
        }
        let mut result = result;
        // A step that waits as before (the same deployment, lock or environment) logs only
        // when what it waits for changes: a recheck every few seconds adds no line.
        if let StepOutcome::Waiting { waiting_for, .. } = &result.outcome {
            let unchanged = snap
                .jobs
                .iter()
                .any(|j| j.id == job && !j.waiting_for.is_empty() && j.waiting_for == *waiting_for);
            if unchanged && exists.is_some() {
                result.logs.clear();
            }
        }
        let mut writes = Vec::new();
        if !result.logs.is_empty() {
            writes.push(RunWrite::Log {
                job_id: job.to_owned(),
                index: idx,
                lines: result
                    .logs
                    .iter()
                    .map(|l| NewLogLine {
                        at: l.at,
                        level: l.level.as_str().to_owned(),
                        message: l.message.clone(),
                    })
                    .collect(),
            });
        }
        let waiting = match result.outcome {
            StepOutcome::Succeeded {
                outputs,
                related,
                message,
            } => {
                writes.push(finish_step(
                    job,
                    idx,
                    StepEvent::Succeed,
                    message,
                    outputs,
                    related,
                ));
                None
            }
            StepOutcome::Failed { message } => {
                writes.push(finish_step(
                    job,
                    idx,
                    StepEvent::Fail,
                    message,
                    Map::new(),
                    BTreeMap::new(),
                ));
                None
            }
            StepOutcome::Errored { message } => {
                writes.push(finish_step(
                    job,
                    idx,
                    StepEvent::Fail,
                    format!("errored: {message}"),
                    Map::new(),
                    BTreeMap::new(),
                ));
                None
            }
            StepOutcome::Waiting {
                recheck_at,
                waiting_for,
                related,
            } => {
                writes.push(RunWrite::StepWaiting {
                    job_id: job.to_owned(),
                    index: idx,
                    waiting_for,
                    related,
                });
                Some(recheck_at)
            }
        };
        self.record(writes).await?;
        Ok(waiting)
    }
}

impl Driver<'_> {
    /// Runs a step; an errored outcome (worth retrying) is retried with backoff a few times
    /// within the step's deadline, then fails the step as errored. Its logs are kept.
    async fn execute_with_retries(
        &self,
        uses: gangplank_core::pipeline::action::Action,
        ctx: &StepCtx<'_>,
        with: &Map<String, Value>,
    ) -> StepResult {
        let mut logs = Vec::new();
        let mut backoff = ERRORED_BACKOFF_MS;
        let mut attempt = 0;
        loop {
            let mut result = actions::execute(uses, ctx, with).await;
            logs.append(&mut result.logs);
            let StepOutcome::Errored { message } = &result.outcome else {
                result.logs = logs;
                return result;
            };
            attempt += 1;
            let now = self.now();
            if attempt > ERRORED_RETRIES
                || ctx.cancel.is_cancelled()
                || now + backoff >= ctx.deadline
            {
                result.logs = logs;
                return result;
            }
            logs.push(super::step::LogLine {
                at: now,
                level: super::step::LogLevel::Warn,
                message: format!("errored ({message}); trying again in {} s", backoff / 1_000),
            });
            let pause = Duration::from_millis(u64::try_from(backoff).unwrap_or(1_000));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = ctx.cancel.cancelled() => {}
            }
            backoff *= 2;
        }
    }
}

fn finish_step(
    job: &str,
    index: i64,
    event: StepEvent,
    message: String,
    outputs: Map<String, Value>,
    related: BTreeMap<String, String>,
) -> RunWrite {
    RunWrite::FinishStep {
        job_id: job.to_owned(),
        index,
        event,
        message,
        outputs,
        related,
    }
}

fn new_step(def: &Definition, job: &str, index: usize) -> NewStep {
    let job_def = def.jobs.iter().find(|j| j.id == job);
    let step = job_def.and_then(|j| j.steps.get(index));
    NewStep {
        job_id: job.to_owned(),
        index: i64::try_from(index).unwrap_or(i64::MAX),
        step_id: step.and_then(|s| s.id.clone()).unwrap_or_default(),
        name: step.map(|s| s.name.clone()).unwrap_or_default(),
        uses: step.map(|s| s.uses.uses().to_owned()).unwrap_or_default(),
        timeout_seconds: step
            .and_then(|s| s.timeout_minutes)
            .map_or(0, |m| i64::from(m) * 60),
    }
}

/// When a job times out; a job whose first step starts now has its clock start now.
fn job_deadline_from(job: &JobDef, core: &Snapshot, now: i64) -> Option<i64> {
    job_deadline(job, core).or_else(|| {
        job.timeout_minutes
            .map(|m| now.saturating_add(i64::from(m) * 60_000))
    })
}

/// When the run times out (Unix ms); far away while it has not started.
fn run_deadline(run: &RunRow) -> i64 {
    if run.executing_at == 0 {
        return i64::MAX;
    }
    run.executing_at
        .saturating_add(run.timeout_seconds.saturating_mul(1_000))
}

/// A failed job's message names its failed step and why.
fn explain_job(snap: &RunSnapshot, job: &str, event: JobEvent, message: String) -> String {
    if event != JobEvent::Fail {
        return message;
    }
    let failed = snap
        .steps
        .iter()
        .find(|s| s.job_id == job && matches!(s.status.as_str(), "failed" | "cancelled"));
    match failed {
        Some(step) if !step.status_message.is_empty() => {
            format!("{message}: {}", step.status_message)
        }
        _ => message,
    }
}

/// A failed run's message carries its failed job's.
fn explain_run(snap: &RunSnapshot, event: RunEvent, message: String) -> String {
    if event != RunEvent::Fail {
        return message;
    }
    match snap
        .jobs
        .iter()
        .find(|j| j.status == JobStatus::Failed.as_str() && !j.status_message.is_empty())
    {
        Some(job) => format!("job {}: {}", job.id, job.status_message),
        None => message,
    }
}

fn core_snapshot(snap: &RunSnapshot) -> Result<Snapshot, String> {
    let run = &snap.run;
    let status = RunStatus::parse(&run.status).ok_or("unknown run status")?;
    let mut jobs = BTreeMap::new();
    for j in &snap.jobs {
        jobs.insert(
            j.id.clone(),
            JobStatus::parse(&j.status).ok_or("unknown job status")?,
        );
    }
    let mut steps = BTreeMap::new();
    for s in &snap.steps {
        steps.insert(
            (
                s.job_id.clone(),
                usize::try_from(s.idx).unwrap_or(usize::MAX),
            ),
            StepStatus::parse(&s.status).ok_or("unknown step status")?,
        );
    }
    let mut job_started_at = BTreeMap::new();
    for s in &snap.steps {
        job_started_at
            .entry(s.job_id.clone())
            .and_modify(|at: &mut i64| *at = (*at).min(s.created_at))
            .or_insert(s.created_at);
    }
    Ok(Snapshot {
        status,
        executing_at: run.executing_at,
        timeout_ms: run.timeout_seconds.saturating_mul(1_000),
        cancel_requested: run.cancellation_requested_at > 0,
        jobs,
        steps,
        job_started_at,
    })
}

/// What expressions see: the inputs, and every step with an `id` by that id (a later job's
/// step of the same id wins).
fn expr_context(snap: &RunSnapshot, inputs: &Value) -> Context {
    let mut steps = BTreeMap::new();
    for job in &snap.jobs {
        for s in snap
            .steps
            .iter()
            .filter(|s| s.job_id == job.id && !s.step_id.is_empty())
        {
            if let Some(status) = StepStatus::parse(&s.status) {
                steps.insert(
                    s.step_id.clone(),
                    StepFacts {
                        status,
                        outputs: s.outputs_json(),
                    },
                );
            }
        }
    }
    Context {
        inputs: inputs.clone(),
        steps,
    }
}

struct SnapshotConditions<'a> {
    snap: &'a RunSnapshot,
}

impl Conditions for SnapshotConditions<'_> {
    fn evaluate(
        &mut self,
        _job: &str,
        _step: Option<usize>,
        condition: &str,
    ) -> Result<bool, String> {
        let inputs = self.snap.run.inputs_json();
        expr::condition(condition, &expr_context(self.snap, &inputs)).map_err(|e| e.to_string())
    }
}

/// Pins the image of an artefact-triggered run: a version registered without a digest is
/// resolved through its registry now, so every later step uses the same image.
async fn pin_digest(state: &AppState, org_id: &str, mut inputs: Value) -> Result<Value, String> {
    let Some(map) = inputs.as_object_mut() else {
        return Ok(inputs);
    };
    let text = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (image, version, digest) = (text("image"), text("version"), text("digest"));
    if image.is_empty() || version.is_empty() || !digest.is_empty() {
        return Ok(inputs);
    }
    let digest = crate::worker::resolver::resolve(state, org_id, &image, &version).await?;
    map.insert("digest".to_owned(), Value::String(digest));
    Ok(inputs)
}

#[cfg(test)]
mod tests;
