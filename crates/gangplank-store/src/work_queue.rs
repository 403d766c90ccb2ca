//! The one durable work queue (`work_queue`) for every kind of leased work: deployments,
//! pipeline runs and builds. One set of claim, renew, park, wake and remove functions; each claim bumps
//! `attempts`, and a worker's writes are fenced by the attempt it claimed.

use crate::StoreError;
use crate::conn::Conn;
use crate::sql::query;

/// What a queue row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `subject_id` is a deployment id.
    Deploy,
    /// `subject_id` is a pipeline run id.
    PipelineRun,
    /// `subject_id` is a build id.
    Build,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::PipelineRun => "pipeline_run",
            Kind::Build => "build",
        }
    }

    /// Which due rows may be claimed: a queued run waits while an earlier run of its
    /// concurrency group is unfinished (runs queue, never drop), a build while an earlier
    /// build of its branch is. `q` is the queue row.
    fn ready(self) -> &'static str {
        match self {
            Kind::Deploy => "1 = 1",
            // Builds of one branch run one at a time, oldest first (a push supersedes the
            // queued ones, so the newest waits behind at most the one running).
            Kind::Build => {
                "NOT EXISTS (SELECT 1 FROM builds b JOIN builds e \
                 ON e.org_id = b.org_id AND e.app_id = b.app_id AND e.git_ref = b.git_ref \
                 AND e.seq < b.seq WHERE b.org_id = q.org_id AND b.app_id = q.app_id \
                 AND b.id = q.subject_id AND e.status IN ('queued', 'running'))"
            }
            Kind::PipelineRun => {
                "NOT EXISTS (SELECT 1 FROM pipeline_runs r JOIN pipeline_runs e \
                 ON e.org_id = r.org_id AND e.app_id = r.app_id \
                 AND e.concurrency_group = r.concurrency_group AND e.seq < r.seq \
                 WHERE r.org_id = q.org_id AND r.app_id = q.app_id AND r.id = q.subject_id \
                 AND r.concurrency_group <> '' AND e.status IN ('queued', 'executing'))"
            }
        }
    }
}

/// A claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    pub org_id: String,
    pub app_id: String,
    pub subject_id: String,
    pub attempt: i64,
}

/// Adds a row, due at once.
pub(crate) async fn enqueue(
    conn: &mut Conn<'_>,
    kind: Kind,
    org_id: &str,
    app_id: &str,
    subject_id: &str,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO work_queue (kind, org_id, app_id, subject_id, attempts, lease_until) \
         VALUES ($1, $2, $3, $4, 0, 0)",
    )
    .bind(kind.as_str())
    .bind(org_id)
    .bind(app_id)
    .bind(subject_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims the oldest due, ready row of `kind` until `now + lease_ms`.
pub(crate) async fn claim(
    conn: &mut Conn<'_>,
    kind: Kind,
    now: i64,
    lease_ms: i64,
) -> Result<Option<Claim>, StoreError> {
    // The outer `lease_until` check is re-evaluated on PostgreSQL when another replica claimed
    // the same row meanwhile, so only one of them gets it.
    let sql = format!(
        "UPDATE work_queue SET lease_until = $3, attempts = attempts + 1, parked = FALSE, \
         woken = FALSE WHERE seq = (SELECT q.seq FROM work_queue q WHERE q.kind = $1 \
         AND q.lease_until <= $2 AND {} ORDER BY q.seq LIMIT 1) AND lease_until <= $2 \
         RETURNING org_id, app_id, subject_id, attempts",
        kind.ready()
    );
    let row = query(sql)
        .bind(kind.as_str())
        .bind(now)
        .bind(now + lease_ms)
        .fetch_optional::<(String, String, String, i64)>(conn)
        .await?;
    Ok(row.map(|(org_id, app_id, subject_id, attempt)| Claim {
        org_id,
        app_id,
        subject_id,
        attempt,
    }))
}

/// When the next ready row of `kind` is due, if any.
pub(crate) async fn next_due(conn: &mut Conn<'_>, kind: Kind) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "SELECT MIN(q.lease_until) FROM work_queue q WHERE q.kind = $1 AND {}",
        kind.ready()
    );
    query(sql)
        .bind(kind.as_str())
        .fetch_one::<Option<i64>>(conn)
        .await
}

/// Extends claim `attempt` to `until`; `false` when another claim holds the row or it is gone.
pub(crate) async fn renew(
    conn: &mut Conn<'_>,
    kind: Kind,
    org_id: &str,
    app_id: &str,
    subject_id: &str,
    attempt: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let changed = query(
        "UPDATE work_queue SET lease_until = $5 WHERE kind = $1 AND org_id = $2 AND app_id = $3 \
         AND subject_id = $4 AND attempts = $6 AND NOT parked",
    )
    .bind(kind.as_str())
    .bind(org_id)
    .bind(app_id)
    .bind(subject_id)
    .bind(until)
    .bind(attempt)
    .execute(conn)
    .await?;
    Ok(changed > 0)
}

/// Whether claim `attempt` still holds the row (the fence for a worker's writes).
pub(crate) async fn holds(
    conn: &mut Conn<'_>,
    kind: Kind,
    org_id: &str,
    app_id: &str,
    subject_id: &str,
    attempt: i64,
) -> Result<bool, StoreError> {
    Ok(query(
        "SELECT attempts FROM work_queue WHERE kind = $1 AND org_id = $2 AND app_id = $3 \
         AND subject_id = $4 AND NOT parked",
    )
    .bind(kind.as_str())
    .bind(org_id)
    .bind(app_id)
    .bind(subject_id)
    .fetch_optional::<i64>(conn)
    .await?
        == Some(attempt))
}

/// Whether claim `attempt` still holds the row, locking it for the rest of the transaction:
/// the fence for a worker's writes. On PostgreSQL a plain read would let another replica's
/// claim commit between the check and the writes; the row lock makes that claim wait until
/// the writes committed (and then see them).
pub(crate) async fn lock_held(
    conn: &mut Conn<'_>,
    kind: Kind,
    org_id: &str,
    app_id: &str,
    subject_id: &str,
    attempt: i64,
) -> Result<bool, StoreError> {
    let changed = query(
        "UPDATE work_queue SET attempts = attempts WHERE kind = $1 AND org_id = $2 \
         AND app_id = $3 AND subject_id = $4 AND attempts = $5 AND NOT parked",
    )
    .bind(kind.as_str())
    .bind(org_id)
    .bind(app_id)
    .bind(subject_id)
    .bind(attempt)
    .execute(conn)
    .await?;
    Ok(changed > 0)
}

/// Locks a row for the rest of the transaction, whoever holds it (a no-op when there is none
/// or on SQLite): writers that also touch the subject's own rows take this lock first, as
/// the worker does, so no two transactions wait on each other.
pub(crate) async fn lock_row(
    conn: &mut Conn<'_>,
    kind: Kind,
    org_id: &str,
    app_id: &str,
    subject_id: &str,
) -> Result<(), StoreError> {
    query(
        "UPDATE work_queue SET attempts = attempts WHERE kind = $1 AND org_id = $2 \
         AND app_id = $3 AND subject_id = $4",
    )
    .bind(kind.as_str())
    .bind(org_id)
    .bind(app_id)
    .bind(subject_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The attempts count of a row, if queued.
pub(crate) async fn attempts(
    conn: &mut Conn<'_>,
    kind: Kind,
    org_id: &str,
    app_id: &str,
    subject_id: &str,
) -> Result<Option<i64>, StoreError> {
    query(
        "SELECT attempts FROM work_queue WHERE kind = $1 AND org_id = $2 AND app_id = $3 \
         AND subject_id = $4",
    )
    .bind(kind.as_str())
    .bind(org_id)
    .bind(app_id)
    .bind(subject_id)
    .fetch_optional::<i64>(conn)
    .await
}

/// Releases claim `attempt` until `until` (parked): due again then, or at once if a wake-up
/// arrived while it was held. `false` when the claim was no longer held.
pub(crate) async fn park(
    conn: &mut Conn<'_>,
    kind: Kind,
    org_id: &str,
    app_id: &str,
    subject_id: &str,
    attempt: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let changed = query(
        "UPDATE work_queue SET parked = TRUE, woken = FALSE, \
         lease_until = CASE WHEN woken THEN 0 ELSE $5 END WHERE kind = $1 AND org_id = $2 \
         AND app_id = $3 AND subject_id = $4 AND attempts = $6 AND NOT parked",
    )
    .bind(kind.as_str())
    .bind(org_id)
    .bind(app_id)
    .bind(subject_id)
    .bind(until)
    .bind(attempt)
    .execute(conn)
    .await?;
    Ok(changed > 0)
}

/// Makes a parked row due at once; a held row's next park ends at once (no lost wake-up).
pub(crate) async fn wake(
    conn: &mut Conn<'_>,
    kind: Kind,
    org_id: &str,
    app_id: &str,
    subject_id: &str,
) -> Result<(), StoreError> {
    query(
        "UPDATE work_queue SET woken = NOT parked, \
         lease_until = CASE WHEN parked THEN 0 ELSE lease_until END, parked = FALSE \
         WHERE kind = $1 AND org_id = $2 AND app_id = $3 AND subject_id = $4",
    )
    .bind(kind.as_str())
    .bind(org_id)
    .bind(app_id)
    .bind(subject_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a row: only claim `attempt`'s when given (the fence), else whoever holds it.
/// Returns whether a row was removed.
pub(crate) async fn remove(
    conn: &mut Conn<'_>,
    kind: Kind,
    org_id: &str,
    app_id: &str,
    subject_id: &str,
    attempt: Option<i64>,
) -> Result<bool, StoreError> {
    let changed = query(
        "DELETE FROM work_queue WHERE kind = $1 AND org_id = $2 AND app_id = $3 \
         AND subject_id = $4 AND ($5 IS NULL OR attempts = $5)",
    )
    .bind(kind.as_str())
    .bind(org_id)
    .bind(app_id)
    .bind(subject_id)
    .bind(attempt)
    .execute(conn)
    .await?;
    Ok(changed > 0)
}
