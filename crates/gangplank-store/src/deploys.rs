//! Sets, deltas, deployments and the durable deployment queue.
//!
//! A deployment is created `pending` together with its queue row, in one transaction that also
//! moves the environment's `from_deploy`/`last_deploy` and its image index. A worker claims the
//! row with a lease, marks the deployment `in progress`, and finishes it; a lapsed lease (a
//! crash) lets the next claim resume it, and too many lapses fail it with a reason.

use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, after_descending, into_page};
use crate::sql::{query, row_struct};
use crate::webhooks::{Event, enqueue_event};
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
    triggered_by
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
    pub target: String,
    /// The target's configuration (JSON), e.g. a compose environment's agents.
    pub target_config: String,
    pub set_content: String,
    /// 1 on the first claim; more after a crash interrupted earlier attempts.
    pub attempt: i64,
}

const DEPLOY_COLUMNS: &str = "SELECT seq AS page_n, '' AS page_s, id, env_id, from_id, delta_id, set_id, comment, status, \
     status_changed_at, created_at, created_by, triggered_by FROM deploys";
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
                let rollback = target.env_id == env_id && target.id != last;
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
    /// `in progress` (queuing `deployment.started` deliveries) on its first claim. A deployment
    /// whose claims lapsed `max_attempts` times is failed with a reason instead.
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
    /// `deployment.finished` deliveries, in one transaction.
    pub async fn finish_deploy(
        &self,
        org_id: &str,
        app_id: &str,
        deploy_id: &str,
        succeeded: bool,
        errors: Vec<DeployErrorRow>,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, deploy_id) =
            (org_id.to_owned(), app_id.to_owned(), deploy_id.to_owned());
        let now = crate::now_millis();
        let status = if succeeded { "succeeded" } else { "failed" };
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                finish(conn, &org_id, &app_id, &deploy_id, status, &errors, now).await
            })
        }))
        .await
    }

    /// Extends the claim on a running deployment to `until`.
    pub async fn renew_deploy_lease(
        &self,
        org_id: &str,
        app_id: &str,
        deploy_id: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, deploy_id) =
            (org_id.to_owned(), app_id.to_owned(), deploy_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "UPDATE deploy_jobs SET lease_until = $4 WHERE org_id = $1 AND app_id = $2 AND deploy_id = $3"
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&deploy_id)
                .bind(until)
                .execute(conn)
                .await?;
                Ok(())
            })
        }))
        .await
    }

    /// When the next queued deployment's lease lapses, if any is queued.
    pub async fn next_deploy_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                query("SELECT MIN(lease_until) FROM deploy_jobs")
                    .fetch_one::<Option<i64>>(conn)
                    .await
            })
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
    let (from, active) = query(
        "SELECT e.from_deploy_id, (SELECT d.id FROM deploys d WHERE d.org_id = e.org_id \
           AND d.app_id = e.app_id AND d.env_id = e.id AND d.status IN ('pending', 'in progress') LIMIT 1) \
         FROM envs e WHERE e.org_id = $1 AND e.app_id = $2 AND e.id = $3"
    )
    .bind(&new.org_id)
    .bind(&new.app_id)
    .bind(&new.env_id)
    .fetch_optional::<(String, Option<String>)>(conn)
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no environment {} in app {}",
            new.env_id, new.app_id
        ))
    })?;
    if from != new.expected_from_id {
        return Err(StoreError::Conflict(format!(
            "environment {} changed while the deployment was prepared; try again",
            new.env_id
        )));
    }
    if let Some(active) = active {
        return Err(StoreError::Conflict(format!(
            "deployment {active} is already active in environment {}",
            new.env_id
        )));
    }
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
         status, status_changed_at, created_at, created_by, triggered_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9, $10, $11)",
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
    .execute(conn)
    .await?;
    query(
        "INSERT INTO deploy_jobs (org_id, app_id, deploy_id, attempts, lease_until) VALUES ($1, $2, $3, 0, 0)"
    )
    .bind(&new.org_id)
    .bind(&new.app_id)
    .bind(&new.id)
    .execute(conn)
    .await?;
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
        status: "pending".to_owned(),
        status_changed_at: now,
        created_at: now,
        created_by: new.created_by.clone(),
        triggered_by: new.triggered_by.clone(),
    })
}

async fn set_status(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    id: &str,
    status: &str,
    now: i64,
) -> Result<DeployRow, StoreError> {
    let sql = "UPDATE deploys SET status = $4, status_changed_at = $5 \
               WHERE org_id = $1 AND app_id = $2 AND id = $3 \
               RETURNING id, env_id, from_id, delta_id, set_id, comment, status, \
               status_changed_at, created_at, created_by, triggered_by";
    query(sql)
        .bind(org_id)
        .bind(app_id)
        .bind(id)
        .bind(status)
        .bind(now)
        .fetch_optional::<DeployRow>(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no deployment {id}")))
}

async fn finish(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    deploy_id: &str,
    status: &str,
    errors: &[DeployErrorRow],
    now: i64,
) -> Result<(), StoreError> {
    let deploy = set_status(conn, org_id, app_id, deploy_id, status, now).await?;
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
    query("DELETE FROM deploy_jobs WHERE org_id = $1 AND app_id = $2 AND deploy_id = $3")
        .bind(org_id)
        .bind(app_id)
        .bind(deploy_id)
        .execute(conn)
        .await?;
    enqueue_event(
        conn,
        &deploy_event(org_id, app_id, &deploy, "finished", now),
        now,
    )
    .await?;
    Ok(())
}

/// Claims the oldest runnable deployment (see [`Store::claim_deploys`]).
async fn claim_one(
    conn: &mut Conn<'_>,
    now: i64,
    lease_ms: i64,
    max_attempts: i64,
) -> Result<Option<ClaimedDeploy>, StoreError> {
    loop {
        let job = query(
            "UPDATE deploy_jobs SET lease_until = $2, attempts = attempts + 1 WHERE seq = \
             (SELECT seq FROM deploy_jobs WHERE lease_until <= $1 ORDER BY seq LIMIT 1) \
             RETURNING org_id, app_id, deploy_id, attempts",
        )
        .bind(now)
        .bind(now + lease_ms)
        .fetch_optional::<(String, String, String, i64)>(conn)
        .await?;
        let Some((org_id, app_id, deploy_id, attempt)) = job else {
            return Ok(None);
        };
        let mut deploy = deploy_by_id(conn, &org_id, &app_id, &deploy_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(deploy_id.clone()))?;
        if attempt > max_attempts {
            let reason = format!(
                "the deployment was interrupted {} times (server restarts or crashes) and was not retried again",
                attempt - 1
            );
            let error = DeployErrorRow {
                scope: "deployment".to_owned(),
                object_id: deploy_id.clone(),
                code: "GP-INTERRUPTED".to_owned(),
                summary: "interrupted".to_owned(),
                message: reason,
            };
            finish(conn, &org_id, &app_id, &deploy_id, "failed", &[error], now).await?;
            continue;
        }
        if deploy.status == "pending" {
            deploy = set_status(conn, &org_id, &app_id, &deploy_id, "in progress", now).await?;
            enqueue_event(
                conn,
                &deploy_event(&org_id, &app_id, &deploy, "started", now),
                now,
            )
            .await?;
        }
        let (target, target_config, set_content) = query(
            "SELECT e.deploy_target, e.target_config, s.content FROM envs e LEFT JOIN sets s \
             ON s.org_id = e.org_id AND s.app_id = e.app_id AND s.id = $4 \
             WHERE e.org_id = $1 AND e.app_id = $2 AND e.id = $3",
        )
        .bind(&org_id)
        .bind(&app_id)
        .bind(&deploy.env_id)
        .bind(&deploy.set_id)
        .fetch_one::<(String, String, Option<String>)>(conn)
        .await?;
        let set_content = set_content.unwrap_or_default();
        return Ok(Some(ClaimedDeploy {
            org_id,
            app_id,
            deploy,
            target,
            target_config,
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
