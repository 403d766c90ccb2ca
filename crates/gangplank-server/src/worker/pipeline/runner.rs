//! The pipeline runner: claims runs from the work queue, asks `schedule::next` what each does
//! next, records the moves, and runs steps through their executors. A claim is renewed while
//! the run is driven and fences every write (a lapsed claim's worker stops); a run waiting on
//! people or on a deployment parks its queue row until its next recheck, and an approval
//! response or a cancel wakes it. The inputs are frozen and the image digest pinned at start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gangplank_core::pipeline::definition::{self, Definition};
use gangplank_core::pipeline::expr::{self, Context, StepFacts};
use gangplank_core::pipeline::lifecycle::{JobEvent, RunEvent, StepEvent};
use gangplank_core::pipeline::schedule::{self, Conditions, Move, Snapshot};
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

pub async fn run(state: AppState) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
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
                tokio::spawn(async move {
                    drive(&state, claim, 0).await;
                    state.wake.delivery.notify_one();
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
    while let Ok(Some(claim)) = state.store.claim_run(now, LEASE_MS).await {
        drive(state, claim, skew).await;
        driven += 1;
    }
    driven
}

/// Drives one claimed run until it finishes, parks, or loses its claim; `skew` (ms) is added
/// to the clock (0 but in tests).
async fn drive(state: &AppState, claim: ClaimedRun, skew: i64) {
    let ClaimedRun { run, attempt } = claim;
    let lost = CancellationToken::new();
    let renewer = tokio::spawn(renew(state.clone(), run.clone(), attempt, lost.clone()));
    let driver = Driver {
        state,
        run: &run,
        attempt,
        lost: lost.clone(),
        skew,
    };
    if let Err(error) = driver.drive().await {
        tracing::error!(run = %run.id, %error, "driving a pipeline run failed; its lease lapses and it resumes");
    }
    renewer.abort();
}

/// How often a running step's driver looks whether its run was asked to cancel.
const CANCEL_POLL: Duration = Duration::from_secs(1);

/// Cancels `cancel` once the run `[org, app, run]` has a cancellation requested (by any
/// replica: the store is the one place that knows).
async fn watch_cancel(state: AppState, [org, app, run]: [String; 3], cancel: CancellationToken) {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        match state.store.get_run(&org, &app, &run).await {
            Ok(Some(row)) if row.cancellation_requested_at == 0 => {}
            Ok(_) => {
                cancel.cancel();
                return;
            }
            Err(error) => tracing::warn!(%error, %run, "checking a run for a cancel failed"),
        }
    }
}

async fn renew(state: AppState, run: RunRow, attempt: i64, lost: CancellationToken) {
    loop {
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(LEASE_MS / 3).unwrap_or(10_000),
        ))
        .await;
        let until = gangplank_store::now_millis() + LEASE_MS;
        match state
            .store
            .renew_run_lease(&run.org_id, &run.app_id, &run.id, attempt, until)
            .await
        {
            Ok(true) => {}
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
                self.fail_unreadable(&format!("the run's definition is invalid: {error}"))
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

    /// A run whose definition cannot be read fails (started first, when still queued).
    async fn fail_unreadable(&self, message: &str) -> Result<(), String> {
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
            match self.step(def, &snap, &job, index).await? {
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
        // Never past the run's timeout: the timeout itself is a recheck.
        let deadline = run_deadline(&snap.run);
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
        job: &str,
        index: usize,
    ) -> Result<Option<i64>, String> {
        let step = &def
            .jobs
            .iter()
            .find(|j| j.id == job)
            .ok_or_else(|| format!("job {job} is not in the definition"))?
            .steps[index];
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
        let deadline = run_deadline(&snap.run).min(step_deadline);
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
                    // the agent to kill its container); losing the claim does too.
                    let cancel = self.lost.child_token();
                    let watcher = tokio::spawn(watch_cancel(
                        self.state.clone(),
                        [&snap.run.org_id, &snap.run.app_id, &snap.run.id].map(|s| s.to_owned()),
                        cancel.clone(),
                    ));
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
                        cancel,
                        deadline,
                        now,
                        automatic: snap.run.trigger_type != "pipeline_call",
                    };
                    let result = actions::execute(step.uses, &ctx, &with).await;
                    watcher.abort();
                    result
                }
            }
        };
        if self.lost.is_cancelled() {
            return Ok(None);
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
    Ok(Snapshot {
        status,
        executing_at: run.executing_at,
        timeout_ms: run.timeout_seconds.saturating_mul(1_000),
        cancel_requested: run.cancellation_requested_at > 0,
        jobs,
        steps,
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
