//! What the pipeline runner writes while a run executes: claims and leases on the work queue,
//! the run's snapshot, and its progress (start, jobs, steps, logs, finish) as one fenced
//! transaction per batch, each status change asked of `gangplank_core::pipeline::lifecycle`.

use std::collections::BTreeMap;

use gangplank_core::pipeline::lifecycle::{JobEvent, RunEvent, StepEvent};
use gangplank_core::pipeline::status::{JobStatus, StepStatus};
use serde_json::{Map, Value};

use crate::conn::Conn;
use crate::pipeline_runs::{
    JOB_COLUMNS, JobRow, RunRow, STEP_COLUMNS, StepRow, new_etag, run_by_id,
};
use crate::sql::query;
use crate::webhooks::{Event, enqueue_event};
use crate::work_queue::{self, Claim, Kind};
use crate::{Store, StoreError};

/// A run claimed by a worker: act on it only while `attempt` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    pub run: RunRow,
    pub attempt: i64,
}

/// Everything the scheduler needs to decide a run's next moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSnapshot {
    pub run: RunRow,
    /// In definition order.
    pub jobs: Vec<JobRow>,
    /// Every step row of every job, by job then index.
    pub steps: Vec<StepRow>,
}

/// A job to create when its run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub id: String,
    pub name: String,
    pub timeout_seconds: i64,
}

/// A line for a step's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    pub at: i64,
    pub level: String,
    pub message: String,
}

/// A step row to create (started, or skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    pub job_id: String,
    pub index: i64,
    pub step_id: String,
    pub name: String,
    pub uses: String,
    pub timeout_seconds: i64,
}

/// One change the runner records.
#[derive(Debug, Clone, PartialEq)]
pub enum RunWrite {
    /// queued → executing: the frozen inputs (digest pinned) and every job, queued.
    Start { inputs: Value, jobs: Vec<NewJob> },
    /// A job's transition, with its status message.
    Job {
        job_id: String,
        event: JobEvent,
        message: String,
    },
    /// A step starts (no-op when its row exists: a resumed step).
    StartStep(NewStep),
    /// A step is skipped (its `if` was false).
    SkipStep { step: NewStep, message: String },
    /// A step ends.
    FinishStep {
        job_id: String,
        index: i64,
        event: StepEvent,
        message: String,
        outputs: Map<String, Value>,
        related: BTreeMap<String, String>,
    },
    /// A step waits: the job's and run's `waiting_for`, and the step's related entities.
    StepWaiting {
        job_id: String,
        index: i64,
        waiting_for: String,
        related: BTreeMap<String, String>,
    },
    /// Lines appended to a step's log.
    Log {
        job_id: String,
        index: i64,
        lines: Vec<NewLogLine>,
    },
    /// The run ends; it leaves the queue, open approvals are cancelled, unfinished jobs and
    /// steps are cancelled, and `pipeline.run.finished` is queued.
    Finish { event: RunEvent, message: String },
}

impl Store {
    /// Claims the oldest due run whose concurrency group is free (`None`: nothing to do).
    /// A run no longer queued or executing (cancelled while queued meanwhile) leaves the queue.
    pub async fn claim_run(
        &self,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<ClaimedRun>, StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                loop {
                    let Some(Claim {
                        org_id,
                        app_id,
                        subject_id,
                        attempt,
                    }) = work_queue::claim(conn, Kind::PipelineRun, now, lease_ms).await?
                    else {
                        return Ok(None);
                    };
                    match run_by_id(conn, &org_id, &app_id, &subject_id).await? {
                        Some(run) if !run.run_status()?.is_terminal() => {
                            return Ok(Some(ClaimedRun { run, attempt }));
                        }
                        _ => {
                            work_queue::remove(
                                conn,
                                Kind::PipelineRun,
                                &org_id,
                                &app_id,
                                &subject_id,
                                None,
                            )
                            .await?;
                        }
                    }
                }
            })
        }))
        .await
    }

    /// Extends claim `attempt` on a run to `until`; `false` when it no longer holds it.
    pub async fn renew_run_lease(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        attempt: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                work_queue::renew(
                    conn,
                    Kind::PipelineRun,
                    org_id,
                    app_id,
                    run_id,
                    attempt,
                    until,
                )
                .await
            })
        }))
        .await
    }

    /// Releases claim `attempt` on a run waiting on people or on something slow, until
    /// `until` (its next recheck); a response, a cancel or another wake-up makes it due at
    /// once. `false` when the claim was no longer held.
    pub async fn park_run(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        attempt: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                work_queue::park(
                    conn,
                    Kind::PipelineRun,
                    org_id,
                    app_id,
                    run_id,
                    attempt,
                    until,
                )
                .await
            })
        }))
        .await
    }

    /// When the next claimable run is due, if any.
    pub async fn next_run_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move { work_queue::next_due(conn, Kind::PipelineRun).await })
        }))
        .await
    }

    /// Whether claim `attempt` still holds the run (a runner checks before a slow step).
    pub async fn holds_run(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        attempt: i64,
    ) -> Result<bool, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                work_queue::holds(conn, Kind::PipelineRun, org_id, app_id, run_id, attempt).await
            })
        }))
        .await
    }

    /// A run with its jobs and steps.
    pub async fn run_snapshot(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
    ) -> Result<Option<RunSnapshot>, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                let Some(run) = run_by_id(conn, org_id, app_id, run_id).await? else {
                    return Ok(None);
                };
                let jobs = query(format!(
                    "{JOB_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND run_id = $3 ORDER BY n"
                ))
                .bind(org_id)
                .bind(app_id)
                .bind(run_id)
                .fetch_all::<JobRow>(conn)
                .await?;
                let steps = query(format!(
                    "{STEP_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND run_id = $3 \
                     ORDER BY job_id, idx"
                ))
                .bind(org_id)
                .bind(app_id)
                .bind(run_id)
                .fetch_all::<StepRow>(conn)
                .await?;
                Ok(Some(RunSnapshot { run, jobs, steps }))
            })
        }))
        .await
    }

    /// Records a batch of progress in one transaction, only while claim `attempt` holds the
    /// run: `false` (nothing written) when it no longer does. An illegal transition is a
    /// `Conflict` and rolls the batch back.
    pub async fn record_run(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        attempt: i64,
        writes: Vec<RunWrite>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                if !work_queue::lock_held(conn, Kind::PipelineRun, org_id, app_id, run_id, attempt)
                    .await?
                {
                    return Ok(false);
                }
                for write in writes {
                    apply(conn, org_id, app_id, run_id, write, now).await?;
                }
                Ok(true)
            })
        }))
        .await
    }
}

async fn apply(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    run_id: &str,
    write: RunWrite,
    now: i64,
) -> Result<(), StoreError> {
    let run = run_by_id(conn, org_id, app_id, run_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no pipeline run {run_id}")))?;
    match write {
        RunWrite::Start { inputs, jobs } => {
            let to = run
                .run_status()?
                .next(RunEvent::Start)
                .map_err(|e| StoreError::Conflict(e.to_string()))?;
            let inputs =
                serde_json::to_string(&inputs).map_err(|e| StoreError::Database(e.to_string()))?;
            query(
                "UPDATE pipeline_runs SET status = $4, inputs = $5, etag = $6, \
                 executing_at = CASE WHEN executing_at = 0 THEN $7 ELSE executing_at END \
                 WHERE org_id = $1 AND app_id = $2 AND id = $3",
            )
            .bind(org_id)
            .bind(app_id)
            .bind(run_id)
            .bind(to.as_str())
            .bind(&inputs)
            .bind(new_etag(now))
            .bind(now)
            .execute(conn)
            .await?;
            for (n, job) in jobs.iter().enumerate() {
                query(
                    "INSERT INTO pipeline_jobs (org_id, app_id, run_id, id, n, name, etag, status, \
                     status_message, waiting_for, created_at, updated_at, completed_at, \
                     timeout_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', '', '', $8, \
                     $8, 0, $9) ON CONFLICT (org_id, app_id, run_id, id) DO NOTHING",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(run_id)
                .bind(&job.id)
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .bind(&job.name)
                .bind(new_etag(now))
                .bind(now)
                .bind(job.timeout_seconds)
                .execute(conn)
                .await?;
            }
        }
        RunWrite::Job {
            job_id,
            event,
            message,
        } => {
            job_transition(conn, org_id, app_id, run_id, &job_id, event, &message, now).await?;
            if matches!(
                event,
                JobEvent::Succeed | JobEvent::Fail | JobEvent::Cancel | JobEvent::Skip
            ) {
                set_run_waiting(conn, &run, &job_id, None, now).await?;
            }
        }
        RunWrite::StartStep(step) => {
            insert_step(
                conn,
                org_id,
                app_id,
                run_id,
                &step,
                StepStatus::Executing,
                "",
                now,
            )
            .await?
        }
        RunWrite::SkipStep { step, message } => {
            insert_step(
                conn,
                org_id,
                app_id,
                run_id,
                &step,
                StepStatus::Skipped,
                &message,
                now,
            )
            .await?;
        }
        RunWrite::FinishStep {
            job_id,
            index,
            event,
            message,
            outputs,
            related,
        } => {
            let from = query(
                "SELECT status FROM pipeline_steps WHERE org_id = $1 AND app_id = $2 \
                 AND run_id = $3 AND job_id = $4 AND idx = $5",
            )
            .bind(org_id)
            .bind(app_id)
            .bind(run_id)
            .bind(&job_id)
            .bind(index)
            .fetch_one::<String>(conn)
            .await?;
            let from = StepStatus::parse(&from)
                .ok_or_else(|| StoreError::Database(format!("step status {from:?}")))?;
            let to = from
                .next(event)
                .map_err(|e| StoreError::Conflict(e.to_string()))?;
            query(
                "UPDATE pipeline_steps SET status = $6, status_message = $7, completed_at = $8, \
                 outputs = $9, related_entities = $10 WHERE org_id = $1 AND app_id = $2 \
                 AND run_id = $3 AND job_id = $4 AND idx = $5",
            )
            .bind(org_id)
            .bind(app_id)
            .bind(run_id)
            .bind(&job_id)
            .bind(index)
            .bind(to.as_str())
            .bind(&message)
            .bind(now)
            .bind(to_json(outputs)?)
            .bind(to_json(related_value(&related))?)
            .execute(conn)
            .await?;
            query(
                "UPDATE pipeline_jobs SET waiting_for = '', updated_at = $5, etag = $6 \
                 WHERE org_id = $1 AND app_id = $2 AND run_id = $3 AND id = $4",
            )
            .bind(org_id)
            .bind(app_id)
            .bind(run_id)
            .bind(&job_id)
            .bind(now)
            .bind(new_etag(now))
            .execute(conn)
            .await?;
            set_run_waiting(conn, &run, &job_id, None, now).await?;
        }
        RunWrite::StepWaiting {
            job_id,
            index,
            waiting_for,
            related,
        } => {
            query(
                "UPDATE pipeline_steps SET related_entities = $6 WHERE org_id = $1 \
                 AND app_id = $2 AND run_id = $3 AND job_id = $4 AND idx = $5",
            )
            .bind(org_id)
            .bind(app_id)
            .bind(run_id)
            .bind(&job_id)
            .bind(index)
            .bind(to_json(related_value(&related))?)
            .execute(conn)
            .await?;
            query(
                "UPDATE pipeline_jobs SET waiting_for = $5, updated_at = $6, etag = $7 \
                 WHERE org_id = $1 AND app_id = $2 AND run_id = $3 AND id = $4 \
                 AND waiting_for <> $5",
            )
            .bind(org_id)
            .bind(app_id)
            .bind(run_id)
            .bind(&job_id)
            .bind(&waiting_for)
            .bind(now)
            .bind(new_etag(now))
            .execute(conn)
            .await?;
            set_run_waiting(conn, &run, &job_id, Some(&waiting_for), now).await?;
        }
        RunWrite::Log {
            job_id,
            index,
            lines,
        } => {
            for line in lines {
                query(
                    "INSERT INTO pipeline_step_logs (org_id, app_id, run_id, job_id, idx, at, \
                     level, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(run_id)
                .bind(&job_id)
                .bind(index)
                .bind(line.at)
                .bind(&line.level)
                .bind(&line.message)
                .execute(conn)
                .await?;
            }
        }
        RunWrite::Finish { event, message } => {
            finish_run_in(conn, &run, event, &message, now).await?;
            work_queue::remove(conn, Kind::PipelineRun, org_id, app_id, run_id, None).await?;
        }
    }
    Ok(())
}

fn to_json(value: impl Into<Value>) -> Result<String, StoreError> {
    serde_json::to_string(&value.into()).map_err(|e| StoreError::Database(e.to_string()))
}

#[allow(clippy::too_many_arguments)]
async fn insert_step(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    run_id: &str,
    step: &NewStep,
    status: StepStatus,
    message: &str,
    now: i64,
) -> Result<(), StoreError> {
    let completed_at = if status.is_terminal() { now } else { 0 };
    query(
        "INSERT INTO pipeline_steps (org_id, app_id, run_id, job_id, idx, step_id, name, uses, \
         status, status_message, created_at, completed_at, timeout_seconds, outputs, \
         related_entities) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '{}', \
         '{}') ON CONFLICT (org_id, app_id, run_id, job_id, idx) DO NOTHING",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(run_id)
    .bind(&step.job_id)
    .bind(step.index)
    .bind(&step.step_id)
    .bind(&step.name)
    .bind(&step.uses)
    .bind(status.as_str())
    .bind(message)
    .bind(now)
    .bind(completed_at)
    .bind(step.timeout_seconds)
    .execute(conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn job_transition(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    run_id: &str,
    job_id: &str,
    event: JobEvent,
    message: &str,
    now: i64,
) -> Result<(), StoreError> {
    let from = query(
        "SELECT status FROM pipeline_jobs WHERE org_id = $1 AND app_id = $2 AND run_id = $3 \
         AND id = $4",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(run_id)
    .bind(job_id)
    .fetch_optional::<String>(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("no job {job_id} in run {run_id}")))?;
    let from = JobStatus::parse(&from)
        .ok_or_else(|| StoreError::Database(format!("job status {from:?}")))?;
    let to = from
        .next(event)
        .map_err(|e| StoreError::Conflict(format!("job {job_id}: {e}")))?;
    let completed_at = if to.is_terminal() { now } else { 0 };
    query(
        "UPDATE pipeline_jobs SET status = $5, status_message = $6, updated_at = $7, \
         completed_at = $8, etag = $9, waiting_for = CASE WHEN $10 THEN '' ELSE waiting_for END \
         WHERE org_id = $1 AND app_id = $2 AND run_id = $3 AND id = $4",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(run_id)
    .bind(job_id)
    .bind(to.as_str())
    .bind(message)
    .bind(now)
    .bind(completed_at)
    .bind(new_etag(now))
    .bind(to.is_terminal())
    .execute(conn)
    .await?;
    Ok(())
}

fn related_value(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Sets (or clears) one job's entry in the run's `waiting_for` map.
async fn set_run_waiting(
    conn: &mut Conn<'_>,
    run: &RunRow,
    job_id: &str,
    waiting_for: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let mut map = run.waiting_for_map();
    let changed = match waiting_for {
        Some(w) => map.insert(job_id.to_owned(), w.to_owned()).as_deref() != Some(w),
        None => map.remove(job_id).is_some(),
    };
    if changed {
        query(
            "UPDATE pipeline_runs SET waiting_for = $4, etag = $5 WHERE org_id = $1 \
             AND app_id = $2 AND id = $3",
        )
        .bind(&run.org_id)
        .bind(&run.app_id)
        .bind(&run.id)
        .bind(to_json(related_value(&map))?)
        .bind(new_etag(now))
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Ends a run by `event` in the caller's transaction: its status, message and `completed_at`;
/// unfinished jobs and steps cancelled; waiting approvals cancelled (with the run's message);
/// `pipeline.run.finished` queued. Returns the updated run.
pub(crate) async fn finish_run_in(
    conn: &mut Conn<'_>,
    run: &RunRow,
    event: RunEvent,
    message: &str,
    now: i64,
) -> Result<RunRow, StoreError> {
    let to = run
        .run_status()?
        .next(event)
        .map_err(|e| StoreError::Conflict(format!("pipeline run {}: {e}", run.id)))?;
    let (org_id, app_id, run_id) = (&run.org_id, &run.app_id, &run.id);
    query(
        "UPDATE pipeline_runs SET status = $4, status_message = $5, completed_at = $6, \
         etag = $7, waiting_for = '{}' WHERE org_id = $1 AND app_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(run_id)
    .bind(to.as_str())
    .bind(message)
    .bind(now)
    .bind(new_etag(now))
    .execute(conn)
    .await?;
    query(
        "UPDATE pipeline_steps SET status = 'cancelled', status_message = $4, completed_at = $5 \
         WHERE org_id = $1 AND app_id = $2 AND run_id = $3 AND status = 'executing'",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(run_id)
    .bind(message)
    .bind(now)
    .execute(conn)
    .await?;
    query(
        "UPDATE pipeline_jobs SET status = 'cancelled', status_message = $4, completed_at = $5, \
         updated_at = $5, waiting_for = '', etag = $6 WHERE org_id = $1 AND app_id = $2 \
         AND run_id = $3 AND status IN ('queued', 'executing')",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(run_id)
    .bind(message)
    .bind(now)
    .bind(new_etag(now))
    .execute(conn)
    .await?;
    crate::approvals::cancel_waiting_in(conn, org_id, app_id, run_id, message, now).await?;
    // A promotion the run left unfinished (it ended at a step boundary after a crash, or
    // timed out) will not be resumed: its record says so and its repository is free at once
    // rather than when the lock's lease lapses.
    query(
        "UPDATE image_promotions SET status = 'failed', status_message = $3, finished_at = $4 \
         WHERE org_id = $1 AND run_id = $2 AND status = 'planned'",
    )
    .bind(org_id)
    .bind(run_id)
    .bind(format!(
        "the run ended before the promotion finished: {message}"
    ))
    .bind(now)
    .execute(conn)
    .await?;
    query("DELETE FROM repository_locks WHERE org_id = $1 AND run_id = $2")
        .bind(org_id)
        .bind(run_id)
        .execute(conn)
        .await?;
    let ended = run_by_id(conn, org_id, app_id, run_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(run_id.clone()))?;
    enqueue_event(conn, &run_finished_event(&ended, now), now).await?;
    Ok(ended)
}

fn run_finished_event(run: &RunRow, now: i64) -> Event {
    Event::new(
        &run.org_id,
        Some(&run.app_id),
        ("pipeline.run", "finished"),
        &run.run_as,
        now,
        &[
            ("pipeline_id", run.pipeline_id.as_str()),
            ("run_id", run.id.as_str()),
            ("status", run.status.as_str()),
            ("status_message", run.status_message.as_str()),
            ("trigger", run.trigger_type.as_str()),
            ("created_by", run.created_by.as_str()),
        ],
    )
}
