//! Build definitions (one per application) and builds: queued with the definition frozen into
//! them (a newer push to a branch supersedes its queued builds), claimed through the work
//! queue, their logs appended idempotently by line number, every status change asked of core's
//! lifecycle and announced as `build.started` / `build.finished` in the same transaction.

use gangplank_core::build::{BuildEvent, BuildStatus, MAX_LOG_LINES};
use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, after_descending, into_page};
use crate::sql::{query, row_struct};
use crate::webhooks::{Event, enqueue_event};
use crate::work_queue::{self, Claim, Kind};
use crate::{Store, StoreError};

/// A stored build definition. `spec` is JSON (everything but the URL and the token);
/// `clone_token_sealed` is ciphertext or empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDefinitionRow {
    pub org_id: String,
    pub app_id: String,
    pub clone_url: String,
    pub clone_token_sealed: String,
    pub spec: String,
    pub updated_at: i64,
    pub updated_by: String,
}
row_struct!(BuildDefinitionRow {
    org_id,
    app_id,
    clone_url,
    clone_token_sealed,
    spec,
    updated_at,
    updated_by
});

/// A stored build. `spec` is its definition as frozen when queued (JSON, no token); `tags`
/// the JSON list pushed; times are Unix ms (0: not yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRow {
    pub org_id: String,
    pub app_id: String,
    pub id: String,
    pub status: String,
    pub commit_sha: String,
    pub git_ref: String,
    pub trigger_type: String,
    pub delivery_id: String,
    pub clone_url: String,
    pub spec: String,
    pub tags: String,
    pub digest: String,
    pub version_id: String,
    pub message: String,
    pub log_lines: i64,
    pub cancel_requested: bool,
    pub created_by: String,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
}
row_struct!(BuildRow {
    org_id,
    app_id,
    id,
    status,
    commit_sha,
    git_ref,
    trigger_type,
    delivery_id,
    clone_url,
    spec,
    tags,
    digest,
    version_id,
    message,
    log_lines,
    cancel_requested,
    created_by,
    created_at,
    started_at,
    finished_at
});

impl BuildRow {
    /// The status, as core reads it.
    pub fn build_status(&self) -> Result<BuildStatus, StoreError> {
        self.status
            .parse()
            .map_err(|e: String| StoreError::Database(format!("build {}: {e}", self.id)))
    }
}

/// A build claimed by the build worker: act on it only while `attempt` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedBuild {
    pub build: BuildRow,
    pub attempt: i64,
}

/// How a build ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    pub event: BuildEvent,
    pub commit_sha: String,
    /// JSON list of the tags pushed.
    pub tags: String,
    pub digest: String,
    pub version_id: String,
    pub message: String,
}

/// What asking to cancel a build did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildCancel {
    /// It was queued: it is cancelled now.
    Cancelled,
    /// It runs: the worker stops it on the builder and then records it cancelled.
    Requested,
}

const DEFINITION_COLUMNS: &str = "SELECT org_id, app_id, clone_url, clone_token_sealed, spec, \
     updated_at, updated_by FROM build_definitions";
const BUILD_FIELDS: &str = "org_id, app_id, id, status, commit_sha, git_ref, trigger_type, \
     delivery_id, clone_url, spec, tags, digest, version_id, message, log_lines, \
     cancel_requested, created_by, created_at, started_at, finished_at";

async fn build_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    id: &str,
) -> Result<Option<BuildRow>, StoreError> {
    query(format!(
        "SELECT {BUILD_FIELDS} FROM builds WHERE org_id = $1 AND app_id = $2 AND id = $3"
    ))
    .bind(org_id)
    .bind(app_id)
    .bind(id)
    .fetch_optional::<BuildRow>(conn)
    .await
}

fn build_event(build: &BuildRow, kind: &'static str, by: &str, now: i64) -> Event {
    Event::new(
        &build.org_id,
        Some(&build.app_id),
        ("build", kind),
        by,
        now,
        &[
            ("build_id", build.id.as_str()),
            ("status", build.status.as_str()),
            ("message", build.message.as_str()),
            ("commit", build.commit_sha.as_str()),
            ("ref", build.git_ref.as_str()),
            ("image", image_of(&build.spec).as_str()),
            ("digest", build.digest.as_str()),
            ("version_id", build.version_id.as_str()),
            ("trigger", build.trigger_type.as_str()),
        ],
    )
}

fn image_of(spec: &str) -> String {
    serde_json::from_str::<serde_json::Value>(spec)
        .ok()
        .and_then(|v| v.get("image").and_then(|i| i.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// Whether claim `attempt` still holds `build`, locking its queue row for the transaction
/// (the fence of every worker write).
async fn held(conn: &mut Conn<'_>, build: &BuildRow, attempt: i64) -> Result<bool, StoreError> {
    work_queue::lock_held(
        conn,
        Kind::Build,
        &build.org_id,
        &build.app_id,
        &build.id,
        attempt,
    )
    .await
}

/// Moves an open build to `event`'s status with `message`, stamps `finished_at` when it ends,
/// leaves the queue when it ends, and queues its event.
async fn transition(
    conn: &mut Conn<'_>,
    mut build: BuildRow,
    event: BuildEvent,
    message: &str,
    by: &str,
    now: i64,
) -> Result<BuildRow, StoreError> {
    let next = build
        .build_status()?
        .next(event)
        .map_err(|e| StoreError::Conflict(e.to_string()))?;
    if next.is_terminal() {
        // The queue row before the build's: the worker locks them in that order (`held`),
        // so PostgreSQL never sees two writers wait on each other.
        work_queue::remove(
            conn,
            Kind::Build,
            &build.org_id,
            &build.app_id,
            &build.id,
            None,
        )
        .await?;
    }
    build.status = next.as_str().to_owned();
    build.message = message.to_owned();
    if next == BuildStatus::Running {
        build.started_at = now;
    }
    if next.is_terminal() {
        build.finished_at = now;
    }
    query(
        "UPDATE builds SET status = $4, message = $5, started_at = $6, finished_at = $7, \
         commit_sha = $8, tags = $9, digest = $10, version_id = $11 \
         WHERE org_id = $1 AND app_id = $2 AND id = $3",
    )
    .bind(&build.org_id)
    .bind(&build.app_id)
    .bind(&build.id)
    .bind(&build.status)
    .bind(&build.message)
    .bind(build.started_at)
    .bind(build.finished_at)
    .bind(&build.commit_sha)
    .bind(&build.tags)
    .bind(&build.digest)
    .bind(&build.version_id)
    .execute(conn)
    .await?;
    let kind = if next == BuildStatus::Running {
        "started"
    } else {
        "finished"
    };
    if next == BuildStatus::Running || next.is_terminal() {
        enqueue_event(conn, &build_event(&build, kind, by, now), now).await?;
    }
    Ok(build)
}

impl Store {
    /// Creates or replaces an application's build definition. `None` as the sealed token keeps
    /// the stored one.
    pub async fn put_build_definition(
        &self,
        row: BuildDefinitionRow,
        keep_token: bool,
    ) -> Result<BuildDefinitionRow, StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let mut row = row;
                if keep_token {
                    row.clone_token_sealed = query(
                        "SELECT clone_token_sealed FROM build_definitions \
                         WHERE org_id = $1 AND app_id = $2",
                    )
                    .bind(&row.org_id)
                    .bind(&row.app_id)
                    .fetch_optional::<String>(conn)
                    .await?
                    .unwrap_or_default();
                }
                query("DELETE FROM build_definitions WHERE org_id = $1 AND app_id = $2")
                    .bind(&row.org_id)
                    .bind(&row.app_id)
                    .execute(conn)
                    .await?;
                query(
                    "INSERT INTO build_definitions (org_id, app_id, clone_url, \
                     clone_token_sealed, spec, updated_at, updated_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&row.org_id)
                .bind(&row.app_id)
                .bind(&row.clone_url)
                .bind(&row.clone_token_sealed)
                .bind(&row.spec)
                .bind(row.updated_at)
                .bind(&row.updated_by)
                .execute(conn)
                .await?;
                Ok(row)
            })
        }))
        .await
    }

    /// An application's build definition.
    pub async fn get_build_definition(
        &self,
        org_id: &str,
        app_id: &str,
    ) -> Result<BuildDefinitionRow, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(format!(
                    "{DEFINITION_COLUMNS} WHERE org_id = $1 AND app_id = $2"
                ))
                .bind(&org_id)
                .bind(&app_id)
                .fetch_optional::<BuildDefinitionRow>(conn)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("app {app_id} has no build definition"))
                })
            })
        }))
        .await
    }

    /// Every build definition of an organization (a push is matched against them).
    pub async fn org_build_definitions(
        &self,
        org_id: &str,
    ) -> Result<Vec<BuildDefinitionRow>, StoreError> {
        let org_id = org_id.to_owned();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(format!(
                    "{DEFINITION_COLUMNS} WHERE org_id = $1 ORDER BY app_id"
                ))
                .bind(&org_id)
                .fetch_all::<BuildDefinitionRow>(conn)
                .await
            })
        }))
        .await
    }

    /// Removes an application's build definition (its builds stay).
    pub async fn delete_build_definition(
        &self,
        org_id: &str,
        app_id: &str,
    ) -> Result<(), StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let removed =
                    query("DELETE FROM build_definitions WHERE org_id = $1 AND app_id = $2")
                        .bind(&org_id)
                        .bind(&app_id)
                        .execute(conn)
                        .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!(
                        "app {app_id} has no build definition"
                    )));
                }
                Ok(())
            })
        }))
        .await
    }

    /// Queues a build. With `supersede`, the application's queued builds of the same ref end
    /// `superseded` in the same transaction. A build with the same `delivery_id` (non-empty)
    /// already queued for the application is returned instead.
    pub async fn queue_build(
        &self,
        row: BuildRow,
        supersede: bool,
        now: i64,
    ) -> Result<BuildRow, StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                if !row.delivery_id.is_empty()
                    && let Some(existing) = query(format!(
                        "SELECT {BUILD_FIELDS} FROM builds WHERE org_id = $1 AND app_id = $2 \
                         AND delivery_id = $3"
                    ))
                    .bind(&row.org_id)
                    .bind(&row.app_id)
                    .bind(&row.delivery_id)
                    .fetch_optional::<BuildRow>(conn)
                    .await?
                {
                    return Ok(existing);
                }
                if supersede {
                    let older = query(format!(
                        "SELECT {BUILD_FIELDS} FROM builds WHERE org_id = $1 AND app_id = $2 \
                         AND git_ref = $3 AND status = 'queued' ORDER BY seq"
                    ))
                    .bind(&row.org_id)
                    .bind(&row.app_id)
                    .bind(&row.git_ref)
                    .fetch_all::<BuildRow>(conn)
                    .await?;
                    for build in older {
                        let message = format!("superseded by build {}", row.id);
                        transition(
                            conn,
                            build,
                            BuildEvent::Supersede,
                            &message,
                            &row.created_by,
                            now,
                        )
                        .await?;
                    }
                }
                query(format!(
                    "INSERT INTO builds ({BUILD_FIELDS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                     $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
                ))
                .bind(&row.org_id)
                .bind(&row.app_id)
                .bind(&row.id)
                .bind(&row.status)
                .bind(&row.commit_sha)
                .bind(&row.git_ref)
                .bind(&row.trigger_type)
                .bind(&row.delivery_id)
                .bind(&row.clone_url)
                .bind(&row.spec)
                .bind(&row.tags)
                .bind(&row.digest)
                .bind(&row.version_id)
                .bind(&row.message)
                .bind(row.log_lines)
                .bind(row.cancel_requested)
                .bind(&row.created_by)
                .bind(row.created_at)
                .bind(row.started_at)
                .bind(row.finished_at)
                .execute(conn)
                .await
                .map_err(|e| e.conflict_as(|| format!("a build {} exists", row.id)))?;
                work_queue::enqueue(conn, Kind::Build, &row.org_id, &row.app_id, &row.id).await?;
                Ok(row)
            })
        }))
        .await
    }

    /// A page of an application's builds, newest first.
    pub async fn list_builds(
        &self,
        org_id: &str,
        app_id: &str,
        page: &PageRequest,
    ) -> Result<Page<BuildRow>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let rows = query(format!(
                    "SELECT seq AS page_n, '' AS page_s, {BUILD_FIELDS} FROM builds \
                     WHERE org_id = $1 AND app_id = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4"
                ))
                .bind(&org_id)
                .bind(&app_id)
                .bind(after_descending(&page))
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<BuildRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One build.
    pub async fn get_build(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
    ) -> Result<BuildRow, StoreError> {
        let args = [org_id, app_id, id].map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, id] = &args;
                build_by_id(conn, org_id, app_id, id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no build {id}")))
            })
        }))
        .await
    }

    /// Up to `limit` log lines of a build from line `from`, with the build.
    pub async fn build_log(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
        from: i64,
        limit: i64,
    ) -> Result<(BuildRow, Vec<(i64, String)>), StoreError> {
        let args = [org_id, app_id, id].map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, id] = &args;
                let build = build_by_id(conn, org_id, app_id, id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no build {id}")))?;
                let lines = query(
                    "SELECT n, line FROM build_logs WHERE org_id = $1 AND app_id = $2 \
                     AND build_id = $3 AND n >= $4 ORDER BY n LIMIT $5",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(id)
                .bind(from)
                .bind(limit)
                .fetch_all::<(i64, String)>(conn)
                .await?;
                Ok((build, lines))
            })
        }))
        .await
    }

    /// Asks a build to stop: a queued one is cancelled at once, a running one is marked and
    /// its worker woken. A finished build is a conflict.
    pub async fn cancel_build(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
        by: &str,
        now: i64,
    ) -> Result<BuildCancel, StoreError> {
        let args = [org_id, app_id, id, by].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, id, by] = &args;
                let build = build_by_id(conn, org_id, app_id, id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no build {id}")))?;
                match build.build_status()? {
                    BuildStatus::Queued => {
                        transition(
                            conn,
                            build,
                            BuildEvent::Cancel,
                            &format!("cancelled by {by}"),
                            by,
                            now,
                        )
                        .await?;
                        Ok(BuildCancel::Cancelled)
                    }
                    BuildStatus::Running => {
                        // The queue row first (the worker's lock order), then the build.
                        work_queue::wake(conn, Kind::Build, org_id, app_id, id).await?;
                        query(
                            "UPDATE builds SET cancel_requested = TRUE, message = $4 \
                             WHERE org_id = $1 AND app_id = $2 AND id = $3",
                        )
                        .bind(org_id)
                        .bind(app_id)
                        .bind(id)
                        .bind(format!("cancelled by {by}"))
                        .execute(conn)
                        .await?;
                        Ok(BuildCancel::Requested)
                    }
                    done => Err(StoreError::Conflict(format!(
                        "build {id} is {} and cannot be cancelled",
                        done.as_str()
                    ))),
                }
            })
        }))
        .await
    }

    /// Claims the oldest due build; a build already finished leaves the queue.
    pub async fn claim_build(
        &self,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<ClaimedBuild>, StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                loop {
                    let Some(Claim {
                        org_id,
                        app_id,
                        subject_id,
                        attempt,
                    }) = work_queue::claim(conn, Kind::Build, now, lease_ms).await?
                    else {
                        return Ok(None);
                    };
                    match build_by_id(conn, &org_id, &app_id, &subject_id).await? {
                        Some(build) if !build.build_status()?.is_terminal() => {
                            return Ok(Some(ClaimedBuild { build, attempt }));
                        }
                        _ => {
                            work_queue::remove(
                                conn,
                                Kind::Build,
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

    /// When the next build is due, if any.
    pub async fn next_build_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move { work_queue::next_due(conn, Kind::Build).await })
        }))
        .await
    }

    /// Extends claim `attempt` to `until` and answers the build as stored now (so the worker
    /// sees a cancel request); `None` when the claim no longer holds.
    pub async fn renew_build(
        &self,
        claimed: &ClaimedBuild,
        until: i64,
    ) -> Result<Option<BuildRow>, StoreError> {
        let (build, attempt) = (claimed.build.clone(), claimed.attempt);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                if !work_queue::renew(
                    conn,
                    Kind::Build,
                    &build.org_id,
                    &build.app_id,
                    &build.id,
                    attempt,
                    until,
                )
                .await?
                {
                    return Ok(None);
                }
                build_by_id(conn, &build.org_id, &build.app_id, &build.id).await
            })
        }))
        .await
    }

    /// Marks a claimed queued build running (queues `build.started`); a running one (a
    /// resumed claim) is answered as it is.
    pub async fn start_build(
        &self,
        claimed: &ClaimedBuild,
        now: i64,
    ) -> Result<Option<BuildRow>, StoreError> {
        let (build, attempt) = (claimed.build.clone(), claimed.attempt);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                if !held(conn, &build, attempt).await? {
                    return Ok(None);
                }
                let Some(current) =
                    build_by_id(conn, &build.org_id, &build.app_id, &build.id).await?
                else {
                    return Ok(None);
                };
                if current.build_status()? != BuildStatus::Queued {
                    return Ok(Some(current));
                }
                let by = current.created_by.clone();
                transition(conn, current, BuildEvent::Start, "", &by, now)
                    .await
                    .map(Some)
            })
        }))
        .await
    }

    /// Stores log lines under their numbers (a line already stored is kept: a resumed claim
    /// may send it again), at most `MAX_LOG_LINES` per build, and counts `next` lines in all.
    /// `false` when the claim no longer holds.
    pub async fn append_build_log(
        &self,
        claimed: &ClaimedBuild,
        lines: Vec<(i64, String)>,
        next: i64,
    ) -> Result<bool, StoreError> {
        let (build, attempt) = (claimed.build.clone(), claimed.attempt);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                if !held(conn, &build, attempt).await? {
                    return Ok(false);
                }
                for (n, line) in lines {
                    if n >= MAX_LOG_LINES as i64 {
                        break;
                    }
                    query(
                        "INSERT INTO build_logs (org_id, app_id, build_id, n, line) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(&build.org_id)
                    .bind(&build.app_id)
                    .bind(&build.id)
                    .bind(n)
                    .bind(&line)
                    .execute(conn)
                    .await?;
                }
                query(
                    "UPDATE builds SET log_lines = CASE WHEN log_lines < $4 THEN $4 \
                     ELSE log_lines END WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(&build.org_id)
                .bind(&build.app_id)
                .bind(&build.id)
                .bind(next)
                .execute(conn)
                .await?;
                Ok(true)
            })
        }))
        .await
    }

    /// Ends a claimed build (queues `build.finished`). `None` when the claim no longer holds.
    pub async fn finish_build(
        &self,
        claimed: &ClaimedBuild,
        outcome: BuildOutcome,
        now: i64,
    ) -> Result<Option<BuildRow>, StoreError> {
        let (build, attempt) = (claimed.build.clone(), claimed.attempt);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                if !held(conn, &build, attempt).await? {
                    return Ok(None);
                }
                let Some(mut current) =
                    build_by_id(conn, &build.org_id, &build.app_id, &build.id).await?
                else {
                    return Ok(None);
                };
                current.commit_sha = outcome.commit_sha;
                current.tags = outcome.tags;
                current.digest = outcome.digest;
                current.version_id = outcome.version_id;
                let by = current.created_by.clone();
                transition(conn, current, outcome.event, &outcome.message, &by, now)
                    .await
                    .map(Some)
            })
        }))
        .await
    }
}
