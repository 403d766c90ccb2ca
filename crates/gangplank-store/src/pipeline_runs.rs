//! Pipeline runs as the API sees them: creating a run (idempotent per pipeline by key, queued
//! in the work queue), reading and listing runs, jobs, steps and step logs, cancelling and
//! deleting. What the runner writes while a run executes is in `run_progress`.

use std::sync::atomic::{AtomicU64, Ordering};

use gangplank_core::page::{Page, PageRequest};
use gangplank_core::pipeline::lifecycle::RunEvent;
use gangplank_core::pipeline::status::RunStatus;
use serde_json::Value;

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, after_descending, into_page};
use crate::sql::{Bind, query, row_struct};
use crate::work_queue::{self, Kind};
use crate::{Store, StoreError};

/// A run to create. `inputs` are frozen as given; the runner pins the image digest into them
/// when the run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub org_id: String,
    pub app_id: String,
    /// The run's id (a UUID the caller chose).
    pub id: String,
    pub pipeline_id: String,
    pub pipeline_version: String,
    /// The pipeline version's YAML, frozen with the run: later versions do not change it.
    pub definition: String,
    pub created_by: String,
    /// The user the run acts as.
    pub run_as: String,
    /// Who registered the artefact version that triggered it (empty otherwise): with
    /// `created_by`, who may not approve its requests by default.
    pub registrant: String,
    /// `pipeline_call`, `deployment_request` or `artefact`.
    pub trigger: String,
    pub inputs: Value,
    pub timeout_seconds: i64,
    /// The expanded `concurrency.group` (empty: none): one run of a group executes at a time.
    pub concurrency_group: String,
    /// The `Idempotency-Key` (empty: none): unique per pipeline.
    pub idempotency_key: String,
    /// Environments the run concerns (from its inputs), for `env_ids` and the `env` filter.
    pub env_ids: Vec<String>,
}

/// A stored run. JSON columns are text: `inputs` (object), `env_ids` (array of strings),
/// `waiting_for` (object of job id → event). Timestamps are Unix ms, 0 = not yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub org_id: String,
    pub app_id: String,
    pub id: String,
    pub pipeline_id: String,
    pub pipeline_version: String,
    pub definition: String,
    pub etag: String,
    pub status: String,
    pub status_message: String,
    pub created_at: i64,
    pub created_by: String,
    pub executing_at: i64,
    pub cancellation_requested_at: i64,
    pub completed_at: i64,
    pub timeout_seconds: i64,
    pub trigger_type: String,
    pub inputs: String,
    pub run_as: String,
    pub registrant: String,
    pub concurrency_group: String,
    pub idempotency_key: String,
    pub env_ids: String,
    pub waiting_for: String,
}
row_struct!(RunRow {
    org_id,
    app_id,
    id,
    pipeline_id,
    pipeline_version,
    definition,
    etag,
    status,
    status_message,
    created_at,
    created_by,
    executing_at,
    cancellation_requested_at,
    completed_at,
    timeout_seconds,
    trigger_type,
    inputs,
    run_as,
    registrant,
    concurrency_group,
    idempotency_key,
    env_ids,
    waiting_for,
});

impl RunRow {
    /// The run's status as the state machine's.
    pub fn run_status(&self) -> Result<RunStatus, StoreError> {
        RunStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Database(format!(
                "run {} has an unknown status {:?}",
                self.id, self.status
            ))
        })
    }

    /// `inputs` as JSON (an empty object if unreadable, which the store never writes).
    pub fn inputs_json(&self) -> Value {
        serde_json::from_str(&self.inputs).unwrap_or_else(|_| Value::Object(Default::default()))
    }

    /// `env_ids` as a list.
    pub fn env_id_list(&self) -> Vec<String> {
        serde_json::from_str(&self.env_ids).unwrap_or_default()
    }

    /// `waiting_for` as a map.
    pub fn waiting_for_map(&self) -> std::collections::BTreeMap<String, String> {
        serde_json::from_str(&self.waiting_for).unwrap_or_default()
    }
}

pub(crate) const RUN_COLUMNS: &str = "SELECT org_id, app_id, id, pipeline_id, pipeline_version, \
     definition, etag, status, status_message, created_at, created_by, executing_at, \
     cancellation_requested_at, completed_at, timeout_seconds, trigger_type, inputs, run_as, \
     registrant, concurrency_group, idempotency_key, env_ids, waiting_for, \
     seq AS page_n, '' AS page_s FROM pipeline_runs";

/// A job of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub run_id: String,
    pub id: String,
    /// Its position in the definition.
    pub n: i64,
    pub name: String,
    pub etag: String,
    pub status: String,
    pub status_message: String,
    pub waiting_for: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub completed_at: i64,
    pub timeout_seconds: i64,
}
row_struct!(JobRow {
    run_id,
    id,
    n,
    name,
    etag,
    status,
    status_message,
    waiting_for,
    created_at,
    updated_at,
    completed_at,
    timeout_seconds,
});

pub(crate) const JOB_COLUMNS: &str = "SELECT run_id, id, n, name, etag, status, status_message, \
     waiting_for, created_at, updated_at, completed_at, timeout_seconds, n AS page_n, \
     id AS page_s FROM pipeline_jobs";

/// A step of a job. `outputs` and `related_entities` are JSON objects (text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub job_id: String,
    /// The step's index within its job (`stepIndex`).
    pub idx: i64,
    /// The YAML `id` (empty when none).
    pub step_id: String,
    pub name: String,
    pub uses: String,
    pub status: String,
    pub status_message: String,
    pub created_at: i64,
    pub completed_at: i64,
    pub timeout_seconds: i64,
    pub outputs: String,
    pub related_entities: String,
}
row_struct!(StepRow {
    job_id,
    idx,
    step_id,
    name,
    uses,
    status,
    status_message,
    created_at,
    completed_at,
    timeout_seconds,
    outputs,
    related_entities,
});

impl StepRow {
    pub fn outputs_json(&self) -> serde_json::Map<String, Value> {
        serde_json::from_str(&self.outputs).unwrap_or_default()
    }

    pub fn related_map(&self) -> std::collections::BTreeMap<String, String> {
        serde_json::from_str(&self.related_entities).unwrap_or_default()
    }
}

pub(crate) const STEP_COLUMNS: &str = "SELECT job_id, idx, step_id, name, uses, status, \
     status_message, created_at, completed_at, timeout_seconds, outputs, related_entities \
     FROM pipeline_steps";

/// A line of a step's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLogRow {
    pub at: i64,
    pub level: String,
    pub message: String,
}
row_struct!(StepLogRow { at, level, message });

/// Which runs a list returns (every field narrows; empty lists and `None` do not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Org-wide lists only: these apps.
    pub app_ids: Vec<String>,
    pub pipeline_ids: Vec<String>,
    pub statuses: Vec<String>,
    /// Only completed (`true`) or only unfinished (`false`) runs.
    pub completed: Option<bool>,
    /// Unix ms bounds on `created_at` (exclusive).
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// Runs whose `env_ids` name this environment.
    pub env_id: Option<String>,
}

/// What a cancel request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was queued: cancelled at once.
    Cancelled(RunRow),
    /// The run executes: the cancel is recorded and honoured at the next step boundary.
    Requested(RunRow),
    /// It was cancelled already (Humanitec answers 204 again).
    AlreadyCancelled(RunRow),
    /// `If-Match` named another etag (a 412); nothing changed.
    EtagMismatch(RunRow),
}

/// What a delete request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// `If-Match` named another etag (a 412): the run's current one.
    EtagMismatch {
        etag: String,
    },
}

/// A fresh entity tag: unique per process and millisecond, never reused for another state.
pub(crate) fn new_etag(now: i64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{now:x}{n:x}{:08x}", std::process::id())
}

/// The run a pipeline created for an idempotency key, if any.
async fn run_by_key(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    pipeline_id: &str,
    key: &str,
) -> Result<Option<RunRow>, StoreError> {
    let sql = format!(
        "{RUN_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND pipeline_id = $3 \
         AND idempotency_key = $4"
    );
    query(sql)
        .bind(org_id)
        .bind(app_id)
        .bind(pipeline_id)
        .bind(key)
        .fetch_optional::<RunRow>(conn)
        .await
}

pub(crate) async fn run_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    run_id: &str,
) -> Result<Option<RunRow>, StoreError> {
    let sql = format!("{RUN_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND id = $3");
    query(sql)
        .bind(org_id)
        .bind(app_id)
        .bind(run_id)
        .fetch_optional::<RunRow>(conn)
        .await
}

impl Store {
    /// Creates a queued run and its queue row, `NotFound` when the pipeline is gone (also
    /// when a delete of it commits first). With an idempotency key that this pipeline already
    /// has a run for, returns that run instead and `false`.
    pub async fn create_run(&self, new: NewRun) -> Result<(RunRow, bool), StoreError> {
        let key = (
            new.org_id.clone(),
            new.app_id.clone(),
            new.pipeline_id.clone(),
            new.idempotency_key.clone(),
        );
        match self.insert_run(new).await {
            // On PostgreSQL a concurrent create with the same key can commit between the
            // check and the insert; its run is the answer, as if it had been found first.
            Err(StoreError::Conflict(message)) if !key.3.is_empty() => {
                let existing = self
                    .read(Box::new(move |conn| {
                        Box::pin(async move {
                            let (org_id, app_id, pipeline_id, key) = &key;
                            run_by_key(conn, org_id, app_id, pipeline_id, key).await
                        })
                    }))
                    .await?;
                existing
                    .map(|run| (run, false))
                    .ok_or(StoreError::Conflict(message))
            }
            other => other,
        }
    }

    async fn insert_run(&self, new: NewRun) -> Result<(RunRow, bool), StoreError> {
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                crate::pipelines::lock_pipeline(conn, &new.org_id, &new.app_id, &new.pipeline_id)
                    .await?;
                if !new.idempotency_key.is_empty() {
                    let existing = run_by_key(
                        conn,
                        &new.org_id,
                        &new.app_id,
                        &new.pipeline_id,
                        &new.idempotency_key,
                    )
                    .await?;
                    if let Some(run) = existing {
                        return Ok((run, false));
                    }
                }
                let inputs = serde_json::to_string(&new.inputs)
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                let env_ids = serde_json::to_string(&new.env_ids)
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                query(
                    "INSERT INTO pipeline_runs (org_id, app_id, id, pipeline_id, pipeline_version, \
                     definition, etag, status, status_message, created_at, created_by, \
                     executing_at, cancellation_requested_at, completed_at, timeout_seconds, \
                     trigger_type, inputs, run_as, registrant, concurrency_group, \
                     idempotency_key, env_ids, waiting_for) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                     'queued', '', $8, $9, 0, 0, 0, $10, $11, $12, $13, $14, $15, $16, $17, '{}')",
                )
                .bind(&new.org_id)
                .bind(&new.app_id)
                .bind(&new.id)
                .bind(&new.pipeline_id)
                .bind(&new.pipeline_version)
                .bind(&new.definition)
                .bind(new_etag(now))
                .bind(now)
                .bind(&new.created_by)
                .bind(new.timeout_seconds)
                .bind(&new.trigger)
                .bind(&inputs)
                .bind(&new.run_as)
                .bind(&new.registrant)
                .bind(&new.concurrency_group)
                .bind(&new.idempotency_key)
                .bind(&env_ids)
                .execute(conn)
                .await
                .map_err(|e| e.conflict_as(|| format!("run {} already exists", new.id)))?;
                work_queue::enqueue(conn, Kind::PipelineRun, &new.org_id, &new.app_id, &new.id)
                    .await?;
                let run = run_by_id(conn, &new.org_id, &new.app_id, &new.id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(new.id.clone()))?;
                Ok((run, true))
            })
        }))
        .await
    }

    /// A run of an app, if it exists.
    pub async fn get_run(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
    ) -> Result<Option<RunRow>, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                run_by_id(conn, org_id, app_id, run_id).await
            })
        }))
        .await
    }

    /// A page of runs, newest first: of one app, or (`app_id` `None`) of the whole org.
    pub async fn list_runs(
        &self,
        org_id: &str,
        app_id: Option<&str>,
        filter: RunFilter,
        page: &PageRequest,
    ) -> Result<Page<RunRow>, StoreError> {
        let org_id = org_id.to_owned();
        let app_id = app_id.map(str::to_owned);
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let mut sql = format!("{RUN_COLUMNS} WHERE org_id = $1 AND seq < $2");
                let mut args: Vec<crate::sql::Value> =
                    vec![org_id.clone().value(), after_descending(&page).value()];
                let mut push = |sql: &mut String, cond: &str, values: Vec<crate::sql::Value>| {
                    let (first, count) = (args.len(), values.len());
                    args.extend(values);
                    let mut cond = cond.to_owned();
                    // Highest first: replacing `?1` must not rewrite the start of `?10`.
                    for i in (0..count).rev() {
                        cond = cond.replace(&format!("?{i}"), &format!("${}", first + i + 1));
                    }
                    sql.push_str(" AND ");
                    sql.push_str(&cond);
                };
                if let Some(app) = &app_id {
                    push(&mut sql, "app_id = ?0", vec![app.clone().value()]);
                }
                for (column, list) in [
                    ("app_id", &filter.app_ids),
                    ("pipeline_id", &filter.pipeline_ids),
                    ("status", &filter.statuses),
                ] {
                    if list.is_empty() {
                        continue;
                    }
                    let marks: Vec<String> = (0..list.len()).map(|i| format!("?{i}")).collect();
                    push(
                        &mut sql,
                        &format!("{column} IN ({})", marks.join(", ")),
                        list.iter().map(|v| v.clone().value()).collect(),
                    );
                }
                match filter.completed {
                    Some(true) => push(&mut sql, "completed_at > 0", vec![]),
                    Some(false) => push(&mut sql, "completed_at = 0", vec![]),
                    None => {}
                }
                if let Some(after) = filter.created_after {
                    push(&mut sql, "created_at > ?0", vec![after.value()]);
                }
                if let Some(before) = filter.created_before {
                    push(&mut sql, "created_at < ?0", vec![before.value()]);
                }
                if let Some(env) = &filter.env_id {
                    // env_ids is a JSON array of ids (which never hold a quote).
                    push(
                        &mut sql,
                        "env_ids LIKE '%' || ?0 || '%'",
                        vec![format!("\"{env}\"").value()],
                    );
                }
                args.push(page.fetch_limit().value());
                sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", args.len()));
                let mut q = query(sql);
                for arg in args {
                    q = q.bind_value(arg);
                }
                let rows = q.fetch_all::<Keyed<RunRow>>(conn).await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Cancels a run: a queued one at once (it leaves the queue), an executing one at its next
    /// step boundary (recorded, and its worker woken). `If-Match` is checked in the same
    /// transaction. `NotFound` for an unknown run, `Conflict` for a finished one that was not
    /// cancelled.
    pub async fn cancel_run(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        if_match: Option<&str>,
    ) -> Result<CancelOutcome, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        let if_match = if_match.map(str::to_owned);
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                let run = run_by_id(conn, org_id, app_id, run_id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no pipeline run {run_id}")))?;
                if if_match.as_ref().is_some_and(|tag| tag != &run.etag) {
                    return Ok(CancelOutcome::EtagMismatch(run));
                }
                let status = run.run_status()?;
                match status {
                    RunStatus::Cancelled => Ok(CancelOutcome::AlreadyCancelled(run)),
                    RunStatus::Queued => {
                        // The queue row first, as the runner locks it (`lock_held`) before the
                        // run's rows: one lock order, so PostgreSQL never sees a deadlock.
                        work_queue::remove(conn, Kind::PipelineRun, org_id, app_id, run_id, None)
                            .await?;
                        let run = crate::run_progress::finish_run_in(
                            conn,
                            &run,
                            RunEvent::Cancel,
                            "cancelled while queued",
                            now,
                        )
                        .await?;
                        Ok(CancelOutcome::Cancelled(run))
                    }
                    RunStatus::Executing => {
                        // The queue row first (the runner's lock order), then the run.
                        work_queue::wake(conn, Kind::PipelineRun, org_id, app_id, run_id).await?;
                        if run.cancellation_requested_at == 0 {
                            query(
                                "UPDATE pipeline_runs SET cancellation_requested_at = $4, \
                                 etag = $5 WHERE org_id = $1 AND app_id = $2 AND id = $3",
                            )
                            .bind(org_id)
                            .bind(app_id)
                            .bind(run_id)
                            .bind(now)
                            .bind(new_etag(now))
                            .execute(conn)
                            .await?;
                        }
                        let run = run_by_id(conn, org_id, app_id, run_id)
                            .await?
                            .ok_or_else(|| StoreError::NotFound(run_id.clone()))?;
                        Ok(CancelOutcome::Requested(run))
                    }
                    RunStatus::Succeeded | RunStatus::Failed => Err(StoreError::Conflict(format!(
                        "pipeline run {run_id} is {status} and cannot be cancelled"
                    ))),
                }
            })
        }))
        .await
    }

    /// Deletes a completed run with its jobs, steps, logs and approvals. `Conflict` while it
    /// is queued or executing.
    pub async fn delete_run(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        if_match: Option<&str>,
    ) -> Result<DeleteOutcome, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        let if_match = if_match.map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                let run = run_by_id(conn, org_id, app_id, run_id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no pipeline run {run_id}")))?;
                if if_match.as_ref().is_some_and(|tag| tag != &run.etag) {
                    return Ok(DeleteOutcome::EtagMismatch { etag: run.etag });
                }
                if !run.run_status()?.is_terminal() {
                    return Err(StoreError::Conflict(format!(
                        "pipeline run {run_id} is {} and cannot be deleted until it completes",
                        run.status
                    )));
                }
                // Children first: SQLite enforces the cascade, but a database without foreign
                // keys on (or a future change) should not keep orphans.
                for table in [
                    "pipeline_approval_responses WHERE approval_id IN (SELECT id FROM \
                     pipeline_approvals WHERE org_id = $1 AND app_id = $2 AND run_id = $3) \
                     AND org_id = $1 AND app_id = $2",
                    "pipeline_approvals WHERE org_id = $1 AND app_id = $2 AND run_id = $3",
                    "pipeline_step_logs WHERE org_id = $1 AND app_id = $2 AND run_id = $3",
                    "pipeline_steps WHERE org_id = $1 AND app_id = $2 AND run_id = $3",
                    "pipeline_jobs WHERE org_id = $1 AND app_id = $2 AND run_id = $3",
                    "pipeline_runs WHERE org_id = $1 AND app_id = $2 AND id = $3",
                ] {
                    query(format!("DELETE FROM {table}"))
                        .bind(org_id)
                        .bind(app_id)
                        .bind(run_id)
                        .execute(conn)
                        .await?;
                }
                Ok(DeleteOutcome::Deleted)
            })
        }))
        .await
    }

    /// A page of a run's jobs in definition order, optionally of some statuses.
    pub async fn list_jobs(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        statuses: Vec<String>,
        page: &PageRequest,
    ) -> Result<Page<JobRow>, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                let (after_n, after_s) = after_ascending(&page);
                let marks: Vec<String> =
                    (0..statuses.len()).map(|i| format!("${}", i + 7)).collect();
                let status_cond = if statuses.is_empty() {
                    String::new()
                } else {
                    format!(" AND status IN ({})", marks.join(", "))
                };
                let sql = format!(
                    "{JOB_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND run_id = $3 \
                     AND (n > $4 OR (n = $4 AND id > $5)){status_cond} ORDER BY n, id LIMIT $6"
                );
                let mut q = query(sql)
                    .bind(org_id)
                    .bind(app_id)
                    .bind(run_id)
                    .bind(after_n)
                    .bind(after_s)
                    .bind(page.fetch_limit());
                for s in &statuses {
                    q = q.bind(s);
                }
                let rows = q.fetch_all::<Keyed<JobRow>>(conn).await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// A job of a run with its steps so far (in index order).
    pub async fn get_job(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        job_id: &str,
    ) -> Result<Option<(JobRow, Vec<StepRow>)>, StoreError> {
        let args = [org_id, app_id, run_id, job_id].map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id, job_id] = &args;
                let sql = format!(
                    "{JOB_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND run_id = $3 AND id = $4"
                );
                let Some(job) = query(sql)
                    .bind(org_id)
                    .bind(app_id)
                    .bind(run_id)
                    .bind(job_id)
                    .fetch_optional::<JobRow>(conn)
                    .await?
                else {
                    return Ok(None);
                };
                let sql = format!(
                    "{STEP_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND run_id = $3 \
                     AND job_id = $4 ORDER BY idx"
                );
                let steps = query(sql)
                    .bind(org_id)
                    .bind(app_id)
                    .bind(run_id)
                    .bind(job_id)
                    .fetch_all::<StepRow>(conn)
                    .await?;
                Ok(Some((job, steps)))
            })
        }))
        .await
    }

    /// A page of a step's log, oldest first. `NotFound` when the step has no row (it has not
    /// started).
    pub async fn list_step_logs(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        job_id: &str,
        step_index: i64,
        page: &PageRequest,
    ) -> Result<Page<StepLogRow>, StoreError> {
        let args = [org_id, app_id, run_id, job_id].map(str::to_owned);
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id, job_id] = &args;
                let exists = query(
                    "SELECT COUNT(*) FROM pipeline_steps WHERE org_id = $1 AND app_id = $2 \
                     AND run_id = $3 AND job_id = $4 AND idx = $5",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(run_id)
                .bind(job_id)
                .bind(step_index)
                .fetch_one::<i64>(conn)
                .await?;
                if exists == 0 {
                    return Err(StoreError::NotFound(format!(
                        "no step {step_index} in job {job_id} of run {run_id}"
                    )));
                }
                let (after, _) = after_ascending(&page);
                let rows = query(
                    "SELECT at, level, message, seq AS page_n, '' AS page_s \
                     FROM pipeline_step_logs WHERE org_id = $1 AND app_id = $2 AND run_id = $3 \
                     AND job_id = $4 AND idx = $5 AND seq > $6 ORDER BY seq LIMIT $7",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(run_id)
                .bind(job_id)
                .bind(step_index)
                .bind(after)
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<StepLogRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }
}
