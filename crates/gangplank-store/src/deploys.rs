//! Sets, deltas, deployments and the durable deployment queue.
//!
//! A deployment is created `pending` together with its queue row, in one transaction that also
//! moves the environment's `from_deploy`/`last_deploy` and its image index. A worker claims the
//! row with a lease, marks the deployment `in progress`, and finishes it; a lapsed lease (a
//! crash) lets the next claim resume it, and too many lapses fail it with a reason. Every
//! status change is decided by `gangplank_core::deploy` (the claim policy, the transitions,
//! one active deployment per environment, rollback detection); this module persists it, and
//! changes a status only from the one it read, so a late finish cannot overwrite a cancel.

use gangplank_core::deploy::{
    ClaimDecision, ClaimFacts, ClaimStanding, DeployEvent, DeployStatus, Finish, admit_deploy,
    claim_standing, decide_claim, is_rollback,
};
use gangplank_core::page::{Page, PageRequest};
use gangplank_core::target::TargetConfig;

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, after_descending, into_page};
use crate::sql::{query, row_struct};
use crate::webhooks::{Event, enqueue_event};
use crate::work_queue::{self, Claim, Kind};
use crate::{Store, StoreError};

/// A deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRow {
    pub id: String,
    pub env_id: String,
    pub from_id: String,
    pub delta_id: String,
    pub set_id: String,
    pub comment: String,
    pub status: String,
    pub status_changed_at: i64,
    pub created_at: i64,
    pub created_by: String,
    pub triggered_by: String,
    /// For a failed deployment: `failed` (the target said no) or `errored` (no answer in
    /// time); empty otherwise.
    pub failure: String,
}
row_struct!(DeployRow {
    id,
    env_id,
    from_id,
    delta_id,
    set_id,
    comment,
    status,
    status_changed_at,
    created_at,
    created_by,
    triggered_by,
    failure
});

/// One error a deployment reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployErrorRow {
    pub scope: String,
    pub object_id: String,
    pub code: String,
    pub summary: String,
    pub message: String,
}
row_struct!(DeployErrorRow {
    scope,
    object_id,
    code,
    summary,
    message
});

/// A delta with its metadata; `content` is its JSON (`modules`, `shared`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaRow {
    pub id: String,
    pub env_id: String,
    pub name: String,
    pub archived: bool,
    pub content: String,
    /// JSON array of user IDs.
    pub contributers: String,
    pub created_at: i64,
    pub created_by: String,
    pub last_modified_at: i64,
}
row_struct!(DeltaRow {
    id,
    env_id,
    name,
    archived,
    content,
    contributers,
    created_at,
    created_by,
    last_modified_at
});

/// A deployment to create. The server computed `set_content` from the set of
/// `expected_from_id` (the environment's `from_deploy`, empty before the first deployment);
/// if that changed meanwhile, creation fails with a conflict and the caller recomputes.
#[derive(Debug, Clone)]
pub struct NewDeploy {
    pub org_id: String,
    pub app_id: String,
    pub env_id: String,
    pub id: String,
    pub expected_from_id: String,
    pub delta_id: String,
    pub set_id: String,
    pub set_content: String,
    /// The normalised image repositories of the new set, or `None` when they are those of
    /// the base set (the index `env_images` then stays as it is).
    pub repositories: Option<Vec<String>>,
    pub comment: String,
    pub created_by: String,
    pub triggered_by: String,
    /// A delta to store in the same transaction (automation's generated ones).
    pub new_delta: Option<DeltaRow>,
}

/// A deployment claimed from the queue.
#[derive(Debug, Clone)]
pub struct ClaimedDeploy {
    pub org_id: String,
    pub app_id: String,
    pub deploy: DeployRow,
    /// The target the deployment was created with (for deployments older than captured
    /// targets, the environment's current one), or why it cannot be read.
    pub target: Result<TargetConfig, String>,
    /// When the deployment must have finished (Unix ms), set on its first claim.
    pub deadline_at: i64,
    pub set_content: String,
    /// 1 on the first claim; more after a crash interrupted earlier attempts.
    pub attempt: i64,
}

const DEPLOY_COLUMNS: &str = "SELECT seq AS page_n, '' AS page_s, id, env_id, from_id, delta_id, set_id, comment, status, \
     status_changed_at, created_at, created_by, triggered_by, failure FROM deploys";
const DELTA_COLUMNS: &str = "SELECT seq AS page_n, '' AS page_s, id, env_id, name, archived, content, contributers, created_at, \
     created_by, last_modified_at FROM deltas";

/// The payload variables of a deployment event.
pub(crate) fn deploy_event(
    org_id: &str,
    app_id: &str,
    deploy: &DeployRow,
    kind: &'static str,
    now: i64,
) -> Event {
    Event::new(
        org_id,
        Some(app_id),
        ("deployment", kind),
        &deploy.triggered_by,
        now,
        &[
            ("env_id", deploy.env_id.as_str()),
            ("deploy_id", deploy.id.as_str()),
            ("delta_id", deploy.delta_id.as_str()),
            ("set_id", deploy.set_id.as_str()),
            ("comment", deploy.comment.as_str()),
            ("status", deploy.status.as_str()),
        ],
    )
}

impl Store {
    /// A set's content (JSON), if the app has it.
    pub async fn get_set(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let (org_id, app_id, id) = (org_id.to_owned(), app_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { set_by_id(conn, &org_id, &app_id, &id).await })
        }))
        .await
    }

    /// A page of the sets of an app, as (id, content), oldest first.
    pub async fn list_sets(
        &self,
        org_id: &str,
        app_id: &str,
        page: &PageRequest,
    ) -> Result<Page<(String, String)>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                let rows = query(
                    "SELECT id, content, created_at AS page_n, id AS page_s FROM sets \
                     WHERE org_id = $1 AND app_id = $2 AND (created_at, id) > ($3, $4) \
                     ORDER BY created_at, id LIMIT $5",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(after_n)
                .bind(after_s)
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<(String, String)>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Stores a set (idempotent: sets are content-addressed).
    pub async fn put_set(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
        content: &str,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, id, content) = (
            org_id.to_owned(),
            app_id.to_owned(),
            id.to_owned(),
            content.to_owned(),
        );
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move { insert_set(conn, &org_id, &app_id, &id, &content, now).await })
        }))
        .await
    }

    /// Creates a delta.
    pub async fn create_delta(
        &self,
        org_id: &str,
        app_id: &str,
        row: DeltaRow,
    ) -> Result<DeltaRow, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                insert_delta(conn, &org_id, &app_id, &row).await?;
                Ok(row)
            })
        }))
        .await
    }

    /// One delta.
    pub async fn get_delta(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
    ) -> Result<Option<DeltaRow>, StoreError> {
        let (org_id, app_id, id) = (org_id.to_owned(), app_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { delta_by_id(conn, &org_id, &app_id, &id).await })
        }))
        .await
    }

    /// A page of an app's deltas, newest first: archived ones only if `archived`, and for one
    /// env if given.
    pub async fn list_deltas(
        &self,
        org_id: &str,
        app_id: &str,
        archived: bool,
        env_id: Option<String>,
        page: &PageRequest,
    ) -> Result<Page<DeltaRow>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "{DELTA_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND archived = $3 \
                     AND ($4 IS NULL OR env_id = $4) AND seq < $5 ORDER BY seq DESC LIMIT $6"
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(archived)
                    .bind(&env_id)
                    .bind(after_descending(&page))
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<DeltaRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Changes a delta atomically: `change` gets the stored row and returns the new one.
    pub async fn update_delta(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
        change: Box<dyn FnOnce(DeltaRow) -> Result<DeltaRow, StoreError> + Send>,
    ) -> Result<DeltaRow, StoreError> {
        let (org_id, app_id, id) = (org_id.to_owned(), app_id.to_owned(), id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let row = delta_by_id(conn, &org_id, &app_id, &id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no delta {id}")))?;
                let row = change(row)?;
                query(
                    "UPDATE deltas SET env_id = $4, name = $5, archived = $6, content = $7, \
                     contributers = $8, last_modified_at = $9 \
                     WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&id)
                .bind(&row.env_id)
                .bind(&row.name)
                .bind(row.archived)
                .bind(&row.content)
                .bind(&row.contributers)
                .bind(row.last_modified_at)
                .execute(conn)
                .await?;
                Ok(row)
            })
        }))
        .await
    }

    /// Creates a deployment and queues it; see [`NewDeploy`]. 409 while another deployment
    /// of the environment is pending or in progress.
    pub async fn create_deploy(&self, new: NewDeploy) -> Result<DeployRow, StoreError> {
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move { insert_deploy(conn, &new, now).await })
        }))
        .await
    }

    /// A page of the deployments of an environment, newest first.
    pub async fn list_deploys(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        page: &PageRequest,
    ) -> Result<Page<DeployRow>, StoreError> {
        let (org_id, app_id, env_id) = (org_id.to_owned(), app_id.to_owned(), env_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "{DEPLOY_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND env_id = $3 \
                     AND seq < $4 ORDER BY seq DESC LIMIT $5"
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(&env_id)
                    .bind(after_descending(&page))
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<DeployRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One deployment of an app (any environment).
    pub async fn get_deploy(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
    ) -> Result<Option<DeployRow>, StoreError> {
        let (org_id, app_id, id) = (org_id.to_owned(), app_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { deploy_by_id(conn, &org_id, &app_id, &id).await })
        }))
        .await
    }

    /// A page of the errors a deployment reported, in the order reported.
    pub async fn deploy_errors(
        &self,
        org_id: &str,
        app_id: &str,
        id: &str,
        page: &PageRequest,
    ) -> Result<Page<DeployErrorRow>, StoreError> {
        let (org_id, app_id, id) = (org_id.to_owned(), app_id.to_owned(), id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after, _) = after_ascending(&page);
                let rows = query(
                    "SELECT n AS page_n, '' AS page_s, scope, object_id, code, summary, message \
                     FROM deploy_errors WHERE org_id = $1 AND app_id = $2 AND deploy_id = $3 \
                     AND n > $4 ORDER BY n LIMIT $5",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&id)
                .bind(after)
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<DeployErrorRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Rebases an environment on a deployment of the same app: the next deployment starts
    /// from its set. Rebasing to an earlier deployment of the environment itself (a rollback)
    /// holds automation, so it cannot undo the rollback; `held_by` names who did it.
    pub async fn rebase_env(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        deploy_id: &str,
        held_by: &str,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, env_id, deploy_id, held_by) = (
            org_id.to_owned(),
            app_id.to_owned(),
            env_id.to_owned(),
            deploy_id.to_owned(),
            held_by.to_owned(),
        );
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let target = deploy_by_id(conn, &org_id, &app_id, &deploy_id)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Refused(format!("no deployment {deploy_id} in app {app_id}"))
                    })?;
                let last = query(
                    "SELECT last_deploy_id FROM envs WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&env_id)
                .fetch_optional::<String>(conn)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("no environment {env_id} in app {app_id}"))
                })?;
                let rollback = is_rollback(&env_id, &target.env_id, &target.id, &last);
                // Keep `env_images` equal to the repositories of the new base set.
                let content = set_by_id(conn, &org_id, &app_id, &target.set_id).await?;
                let set: gangplank_core::set::Set = content
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or_default();
                set_env_images(conn, &org_id, &app_id, &env_id, &set.repositories()).await?;
                query(
                    "UPDATE envs SET from_deploy_id = $4, \
                     automation_held_at = CASE WHEN $5 THEN $6 ELSE automation_held_at END, \
                     automation_held_by = CASE WHEN $5 THEN $7 ELSE automation_held_by END \
                     WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&env_id)
                .bind(&deploy_id)
                .bind(rollback)
                .bind(now)
                .bind(&held_by)
                .execute(conn)
                .await?;
                Ok(())
            })
        }))
        .await
    }

    /// Lets automation deploy in an environment again after a hold, and, in the same
    /// transaction, queues the re-evaluation of the versions skipped as held since the last
    /// resume (an inbox row naming the environment), so a crash right after loses nothing.
    /// `true` when there is something to re-evaluate.
    pub async fn resume_automation(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
    ) -> Result<bool, StoreError> {
        let (org_id, app_id, env_id) = (org_id.to_owned(), app_id.to_owned(), env_id.to_owned());
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let after = query(
                    "SELECT automation_reevaluated_seq FROM envs \
                     WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&env_id)
                .fetch_optional::<i64>(conn)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("no environment {env_id} in app {app_id}"))
                })?;
                let until = query(
                    "SELECT MAX(seq) FROM automation_log WHERE org_id = $1 AND app_id = $2 \
                     AND env_id = $3 AND code = 'held'",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&env_id)
                .fetch_one::<Option<i64>>(conn)
                .await?
                .unwrap_or(0);
                let reevaluate = until > after;
                if reevaluate {
                    query(
                        "INSERT INTO automation_inbox (org_id, version_id, created_at, app_id, env_id, \
                         log_after, log_until) VALUES ($1, '', $2, $3, $4, $5, $6)",
                    )
                    .bind(&org_id)
                    .bind(now)
                    .bind(&app_id)
                    .bind(&env_id)
                    .bind(after)
                    .bind(until)
                    .execute(conn)
                    .await?;
                }
                query(
                    "UPDATE envs SET automation_held_at = 0, automation_held_by = '', \
                     automation_reevaluated_seq = $4 WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&env_id)
                .bind(until.max(after))
                .execute(conn)
                .await?;
                Ok(reevaluate)
            })
        }))
        .await
    }

    /// Claims the oldest runnable deployment: queued, or whose earlier claim lapsed. Marks it
    /// `in progress` (queuing `deployment.started` deliveries) and sets its deadline on its
    /// first claim. A deployment whose claims lapsed `max_attempts` times, or whose deadline
    /// passed, is failed (errored) with a reason instead.
    pub async fn claim_deploys(
        &self,
        now: i64,
        lease_ms: i64,
        max_attempts: i64,
        limit: usize,
    ) -> Result<Vec<ClaimedDeploy>, StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let mut claimed = Vec::new();
                while claimed.len() < limit {
                    match claim_one(conn, now, lease_ms, max_attempts).await? {
                        Some(claim) => claimed.push(claim),
                        None => break,
                    }
                }
                Ok(claimed)
            })
        }))
        .await
    }

    /// Finishes a claimed deployment: its status, its errors, the queue row, and the
    /// `deployment.finished` deliveries, in one transaction. Only an `in progress` deployment
    /// still held by claim `attempt` changes: `false` when it had ended meanwhile (cancelled)
    /// or was claimed again (its lease lapsed; a newer attempt owns it), and then nothing is
    /// recorded.
    pub async fn finish_deploy(
        &self,
        org_id: &str,
        app_id: &str,
        deploy_id: &str,
        attempt: i64,
        finish: Finish,
        errors: Vec<DeployErrorRow>,
    ) -> Result<bool, StoreError> {
        let (org_id, app_id, deploy_id) =
            (org_id.to_owned(), app_id.to_owned(), deploy_id.to_owned());
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                // The fence: only the current claim may end the deployment. Deleting the queue
                // row first also locks it (PostgreSQL) against a concurrent claim.
                let held = work_queue::remove(
                    conn,
                    Kind::Deploy,
                    &org_id,
                    &app_id,
                    &deploy_id,
                    Some(attempt),
                )
                .await?;
                if !held {
                    return Ok(false);
                }
                let ended = end(
                    conn,
                    &org_id,
                    &app_id,
                    &deploy_id,
                    DeployStatus::InProgress,
                    DeployEvent::Finished(finish),
                    &errors,
                    now,
                )
                .await?;
                Ok(ended.is_some())
            })
        }))
        .await
    }

    /// Cancels a pending or in-progress deployment of environment `env_id` at once: status
    /// `cancelled`, queue row removed, `deployment.finished` queued, in one transaction.
    /// Returns the deployment and the status it had. `NotFound` for an unknown deployment,
    /// `Conflict` for one that already ended.
    pub async fn cancel_deploy(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        deploy_id: &str,
    ) -> Result<(DeployRow, DeployStatus), StoreError> {
        let args = [org_id, app_id, env_id, deploy_id].map(str::to_owned);
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, env_id, deploy_id] = &args;
                // A worker may claim it between the read and the update (PostgreSQL, another
                // replica): read again. Statuses only move forward, so this ends quickly.
                for _ in 0..4 {
                    let deploy = deploy_by_id(conn, org_id, app_id, deploy_id)
                        .await?
                        .filter(|d| &d.env_id == env_id)
                        .ok_or_else(|| {
                            StoreError::NotFound(format!(
                                "no deployment {deploy_id} in environment {env_id}"
                            ))
                        })?;
                    let from = stored_status(&deploy)?;
                    from.next(DeployEvent::Cancel).map_err(|e| {
                        StoreError::Conflict(format!("deployment {deploy_id}: {e}"))
                    })?;
                    let ended = end(
                        conn,
                        org_id,
                        app_id,
                        deploy_id,
                        from,
                        DeployEvent::Cancel,
                        &[],
                        now,
                    )
                    .await?;
                    if let Some(ended) = ended {
                        return Ok((ended, from));
                    }
                }
                Err(StoreError::Conflict(format!(
                    "deployment {deploy_id} kept changing; try again"
                )))
            })
        }))
        .await
    }

    /// Extends claim `attempt` on a running deployment to `until`. `false` when the deployment
    /// no longer runs (cancelled, or ended elsewhere) or a newer claim holds it (this one's
    /// lease lapsed): its worker should stop.
    pub async fn renew_deploy_lease(
        &self,
        org_id: &str,
        app_id: &str,
        deploy_id: &str,
        attempt: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let (org_id, app_id, deploy_id) =
            (org_id.to_owned(), app_id.to_owned(), deploy_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let running = deploy_by_id(conn, &org_id, &app_id, &deploy_id)
                    .await?
                    .is_some_and(|d| d.status == DeployStatus::InProgress.as_str());
                if !running {
                    return Ok(false);
                }
                work_queue::renew(
                    conn,
                    Kind::Deploy,
                    &org_id,
                    &app_id,
                    &deploy_id,
                    attempt,
                    until,
                )
                .await
            })
        }))
        .await
    }

    /// Where claim `attempt` on a deployment stands (`gangplank_core::deploy::claim_standing`):
    /// a read, cheap enough for a runner to poll every few seconds and so learn of a cancel
    /// made by another replica (or of a newer claim) well before its next lease renewal.
    pub async fn deploy_claim_standing(
        &self,
        org_id: &str,
        app_id: &str,
        deploy_id: &str,
        attempt: i64,
    ) -> Result<ClaimStanding, StoreError> {
        let (org_id, app_id, deploy_id) =
            (org_id.to_owned(), app_id.to_owned(), deploy_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let Some(deploy) = deploy_by_id(conn, &org_id, &app_id, &deploy_id).await? else {
                    return Ok(ClaimStanding::Ended);
                };
                let status = stored_status(&deploy)?;
                let held =
                    work_queue::attempts(conn, Kind::Deploy, &org_id, &app_id, &deploy_id).await?;
                Ok(claim_standing(status, held, attempt))
            })
        }))
        .await
    }

    /// When the next queued deployment's lease lapses, if any is queued.
    pub async fn next_deploy_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move { work_queue::next_due(conn, Kind::Deploy).await })
        }))
        .await
    }
}

pub(crate) async fn insert_set(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    id: &str,
    content: &str,
    now: i64,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO sets (org_id, app_id, id, content, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (org_id, app_id, id) DO NOTHING",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(id)
    .bind(content)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_delta(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    row: &DeltaRow,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO deltas (org_id, app_id, id, env_id, name, archived, content, \
         contributers, created_at, created_by, last_modified_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(&row.id)
    .bind(&row.env_id)
    .bind(&row.name)
    .bind(row.archived)
    .bind(&row.content)
    .bind(&row.contributers)
    .bind(row.created_at)
    .bind(&row.created_by)
    .bind(row.last_modified_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn set_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    query("SELECT content FROM sets WHERE org_id = $1 AND app_id = $2 AND id = $3")
        .bind(org_id)
        .bind(app_id)
        .bind(id)
        .fetch_optional::<String>(conn)
        .await
}

async fn delta_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    id: &str,
) -> Result<Option<DeltaRow>, StoreError> {
    let sql = format!("{DELTA_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND id = $3");
    query(sql)
        .bind(org_id)
        .bind(app_id)
        .bind(id)
        .fetch_optional::<DeltaRow>(conn)
        .await
}

pub(crate) async fn deploy_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    id: &str,
) -> Result<Option<DeployRow>, StoreError> {
    let sql = format!("{DEPLOY_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND id = $3");
    query(sql)
        .bind(org_id)
        .bind(app_id)
        .bind(id)
        .fetch_optional::<DeployRow>(conn)
        .await
}

pub(crate) async fn insert_deploy(
    conn: &mut Conn<'_>,
    new: &NewDeploy,
    now: i64,
) -> Result<DeployRow, StoreError> {
    let (from, active, target_kind, target_config) = query(
        "SELECT e.from_deploy_id, (SELECT d.id FROM deploys d WHERE d.org_id = e.org_id \
           AND d.app_id = e.app_id AND d.env_id = e.id AND d.status IN ('pending', 'in progress') LIMIT 1), \
           e.deploy_target, e.target_config \
         FROM envs e WHERE e.org_id = $1 AND e.app_id = $2 AND e.id = $3"
    )
    .bind(&new.org_id)
    .bind(&new.app_id)
    .bind(&new.env_id)
    .fetch_optional::<(String, Option<String>, String, String)>(conn)
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no environment {} in app {}",
            new.env_id, new.app_id
        ))
    })?;
    admit_deploy(&new.env_id, &new.expected_from_id, &from, active.as_deref())
        .map_err(|refusal| StoreError::Conflict(refusal.to_string()))?;
    // The deployment captures its environment's target now: a restart resumes it against
    // this, never against a target changed since. An unreadable one is left empty, so the
    // claim reports why (from the environment's row).
    let target = TargetConfig::from_stored(&target_kind, &target_config)
        .map(|t| t.to_stored())
        .unwrap_or_default();
    if let Some(delta) = &new.new_delta {
        insert_delta(conn, &new.org_id, &new.app_id, delta).await?;
    }
    insert_set(
        conn,
        &new.org_id,
        &new.app_id,
        &new.set_id,
        &new.set_content,
        now,
    )
    .await?;
    query(
        "INSERT INTO deploys (org_id, app_id, env_id, id, from_id, delta_id, set_id, comment, \
         status, status_changed_at, created_at, created_by, triggered_by, target) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9, $10, $11, $12)",
    )
    .bind(&new.org_id)
    .bind(&new.app_id)
    .bind(&new.env_id)
    .bind(&new.id)
    .bind(&from)
    .bind(&new.delta_id)
    .bind(&new.set_id)
    .bind(&new.comment)
    .bind(now)
    .bind(&new.created_by)
    .bind(&new.triggered_by)
    .bind(&target)
    .execute(conn)
    .await
    .map_err(|e| {
        e.conflict_as(|| {
            format!(
                "a deployment is already active in environment {}",
                new.env_id
            )
        })
    })?;
    work_queue::enqueue(conn, Kind::Deploy, &new.org_id, &new.app_id, &new.id).await?;
    query(
        "UPDATE envs SET from_deploy_id = $4, last_deploy_id = $4 WHERE org_id = $1 AND app_id = $2 AND id = $3"
    )
    .bind(&new.org_id)
    .bind(&new.app_id)
    .bind(&new.env_id)
    .bind(&new.id)
    .execute(conn)
    .await?;
    if let Some(repositories) = &new.repositories {
        set_env_images(conn, &new.org_id, &new.app_id, &new.env_id, repositories).await?;
    }
    Ok(DeployRow {
        id: new.id.clone(),
        env_id: new.env_id.clone(),
        from_id: from,
        delta_id: new.delta_id.clone(),
        set_id: new.set_id.clone(),
        comment: new.comment.clone(),
        status: DeployStatus::Pending.as_str().to_owned(),
        status_changed_at: now,
        created_at: now,
        created_by: new.created_by.clone(),
        triggered_by: new.triggered_by.clone(),
        failure: String::new(),
    })
}

/// A deployment's stored status, read as the state machine's.
fn stored_status(deploy: &DeployRow) -> Result<DeployStatus, StoreError> {
    DeployStatus::parse(&deploy.status).ok_or_else(|| {
        StoreError::Database(format!(
            "deployment {} has an unknown status {:?}",
            deploy.id, deploy.status
        ))
    })
}

/// Moves a deployment from `from` to where `event` leads (as core decides), only if it is
/// still `from`; returns the changed row, or `None` when it had moved meanwhile.
async fn transition(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    id: &str,
    from: DeployStatus,
    event: DeployEvent,
    now: i64,
) -> Result<Option<DeployRow>, StoreError> {
    let to = from
        .next(event)
        .map_err(|e| StoreError::Conflict(format!("deployment {id}: {e}")))?;
    let failure = event.failure().map_or("", |f| f.as_str());
    let sql = "UPDATE deploys SET status = $5, status_changed_at = $6, failure = $7 \
               WHERE org_id = $1 AND app_id = $2 AND id = $3 AND status = $4 \
               RETURNING id, env_id, from_id, delta_id, set_id, comment, status, \
               status_changed_at, created_at, created_by, triggered_by, failure";
    query(sql)
        .bind(org_id)
        .bind(app_id)
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(now)
        .bind(failure)
        .fetch_optional::<DeployRow>(conn)
        .await
}

/// Ends a deployment that is `from` by `event` (finished, cancelled, deadline, interrupted):
/// its status and failure kind, its errors, the queue row, and the `deployment.finished`
/// deliveries. `None` (and nothing written but the queue row's removal) when it was no
/// longer `from`.
#[allow(clippy::too_many_arguments)]
async fn end(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    deploy_id: &str,
    from: DeployStatus,
    event: DeployEvent,
    errors: &[DeployErrorRow],
    now: i64,
) -> Result<Option<DeployRow>, StoreError> {
    let changed = transition(conn, org_id, app_id, deploy_id, from, event, now).await?;
    work_queue::remove(conn, Kind::Deploy, org_id, app_id, deploy_id, None).await?;
    let Some(deploy) = changed else {
        return Ok(None);
    };
    for (n, error) in errors.iter().enumerate() {
        query(
            "INSERT INTO deploy_errors (org_id, app_id, deploy_id, n, scope, object_id, code, summary, message) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (org_id, app_id, deploy_id, n) DO NOTHING"
        )
        .bind(org_id)
        .bind(app_id)
        .bind(deploy_id)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .bind(&error.scope)
        .bind(&error.object_id)
        .bind(&error.code)
        .bind(&error.summary)
        .bind(&error.message)
        .execute(conn)
        .await?;
    }
    enqueue_event(
        conn,
        &deploy_event(org_id, app_id, &deploy, "finished", now),
        now,
    )
    .await?;
    Ok(Some(deploy))
}

/// The target a deployment runs against: the one it captured, or for a deployment created
/// before targets were captured, its environment's current one.
async fn claimed_target(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    deploy_id: &str,
    env_id: &str,
) -> Result<Result<TargetConfig, String>, StoreError> {
    let captured =
        query("SELECT target FROM deploys WHERE org_id = $1 AND app_id = $2 AND id = $3")
            .bind(org_id)
            .bind(app_id)
            .bind(deploy_id)
            .fetch_one::<String>(conn)
            .await?;
    if !captured.is_empty() {
        return Ok(TargetConfig::from_stored("", &captured));
    }
    let (kind, config) = query(
        "SELECT deploy_target, target_config FROM envs WHERE org_id = $1 AND app_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(env_id)
    .fetch_one::<(String, String)>(conn)
    .await?;
    Ok(TargetConfig::from_stored(&kind, &config))
}

/// Claims the oldest runnable deployment (see [`Store::claim_deploys`]); what happens to it is
/// `gangplank_core::deploy::decide_claim`'s decision.
async fn claim_one(
    conn: &mut Conn<'_>,
    now: i64,
    lease_ms: i64,
    max_attempts: i64,
) -> Result<Option<ClaimedDeploy>, StoreError> {
    loop {
        let Some(Claim {
            org_id,
            app_id,
            subject_id: deploy_id,
            attempt,
        }) = work_queue::claim(conn, Kind::Deploy, now, lease_ms).await?
        else {
            return Ok(None);
        };
        // The queue holds no foreign key to its subject: a row whose deployment went with
        // its app is dropped here.
        let Some(mut deploy) = deploy_by_id(conn, &org_id, &app_id, &deploy_id).await? else {
            work_queue::remove(conn, Kind::Deploy, &org_id, &app_id, &deploy_id, None).await?;
            continue;
        };
        let status = stored_status(&deploy)?;
        let deadline_at =
            query("SELECT deadline_at FROM deploys WHERE org_id = $1 AND app_id = $2 AND id = $3")
                .bind(&org_id)
                .bind(&app_id)
                .bind(&deploy_id)
                .fetch_one::<i64>(conn)
                .await?;
        let target = claimed_target(conn, &org_id, &app_id, &deploy_id, &deploy.env_id).await?;
        let timeout_ms = target
            .as_ref()
            .map_or(TargetConfig::None.timeout_ms(), TargetConfig::timeout_ms);
        let facts = ClaimFacts {
            status,
            attempt,
            max_attempts,
            now,
            deadline_at,
            timeout_ms,
        };
        let (deadline_at, started) = match decide_claim(facts) {
            ClaimDecision::Drop => {
                work_queue::remove(conn, Kind::Deploy, &org_id, &app_id, &deploy_id, None).await?;
                continue;
            }
            ClaimDecision::Fail {
                event,
                code,
                reason,
            } => {
                let error = DeployErrorRow {
                    scope: "deployment".to_owned(),
                    object_id: deploy_id.clone(),
                    code: code.to_owned(),
                    summary: reason.clone(),
                    message: reason,
                };
                end(
                    conn,
                    &org_id,
                    &app_id,
                    &deploy_id,
                    status,
                    event,
                    &[error],
                    now,
                )
                .await?;
                continue;
            }
            ClaimDecision::Run {
                deadline_at,
                started,
            } => (deadline_at, started),
        };
        if started {
            let Some(moved) = transition(
                conn,
                &org_id,
                &app_id,
                &deploy_id,
                status,
                DeployEvent::Claimed,
                now,
            )
            .await?
            else {
                // Cancelled meanwhile (by another replica): nothing to run.
                continue;
            };
            deploy = moved;
            enqueue_event(
                conn,
                &deploy_event(&org_id, &app_id, &deploy, "started", now),
                now,
            )
            .await?;
        }
        // Set once, on the first claim: a resumed deployment keeps its deadline.
        query("UPDATE deploys SET deadline_at = $4 WHERE org_id = $1 AND app_id = $2 AND id = $3")
            .bind(&org_id)
            .bind(&app_id)
            .bind(&deploy_id)
            .bind(deadline_at)
            .execute(conn)
            .await?;
        let set_content = set_by_id(conn, &org_id, &app_id, &deploy.set_id)
            .await?
            .unwrap_or_default();
        return Ok(Some(ClaimedDeploy {
            org_id,
            app_id,
            deploy,
            target,
            deadline_at,
            set_content,
            attempt,
        }));
    }
}

/// Replaces an environment's entry in `env_images`: the repositories its `from_deploy` set runs.
async fn set_env_images(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    env_id: &str,
    repositories: &[String],
) -> Result<(), StoreError> {
    query("DELETE FROM env_images WHERE org_id = $1 AND app_id = $2 AND env_id = $3")
        .bind(org_id)
        .bind(app_id)
        .bind(env_id)
        .execute(conn)
        .await?;
    for repository in repositories {
        query(
            "INSERT INTO env_images (org_id, repository, app_id, env_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(org_id)
        .bind(repository)
        .bind(app_id)
        .bind(env_id)
        .execute(conn)
        .await?;
    }
    Ok(())
}
