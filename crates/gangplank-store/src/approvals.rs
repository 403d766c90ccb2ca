//! Approval requests of pipeline runs and every response to them: opened by an approve step
//! (once per step), decided by `gangplank_core::pipeline::approval::respond`, expired or
//! cancelled with their run. Each change queues its webhook event in the same transaction, and
//! a decision wakes the waiting run.

use gangplank_core::page::{Page, PageRequest};
use gangplank_core::pipeline::approval::{
    Policy, RequestFacts, RespondError, Responder, Response, Vote, respond,
};
use gangplank_core::pipeline::lifecycle::ApprovalEvent;
use gangplank_core::pipeline::status::ApprovalStatus;

use crate::conn::Conn;
use crate::page::{Keyed, after_descending, into_page};
use crate::pipeline_runs::run_by_id;
use crate::sql::{Bind, query, row_struct};
use crate::webhooks::{Event, enqueue_event};
use crate::work_queue::{self, Kind};
use crate::{Store, StoreError};

/// An approval request. `policy` is `approval::Policy` as JSON; `expires_at` 0 = never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    pub org_id: String,
    pub app_id: String,
    pub id: String,
    pub pipeline_id: String,
    pub run_id: String,
    pub job_id: String,
    pub step_index: i64,
    pub env_id: String,
    pub message: String,
    pub status: String,
    /// Why it was cancelled (`approval expired`, the run's cancel message); empty otherwise.
    pub status_message: String,
    pub created_at: i64,
    /// The deciding response's user and time (the last approval, or the deny).
    pub approved_by: String,
    pub approved_at: i64,
    pub policy: String,
    pub expires_at: i64,
}
row_struct!(ApprovalRow {
    org_id,
    app_id,
    id,
    pipeline_id,
    run_id,
    job_id,
    step_index,
    env_id,
    message,
    status,
    status_message,
    created_at,
    approved_by,
    approved_at,
    policy,
    expires_at,
});

impl ApprovalRow {
    pub fn approval_status(&self) -> Result<ApprovalStatus, StoreError> {
        ApprovalStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Database(format!("approval {} has status {:?}", self.id, self.status))
        })
    }

    pub fn policy(&self) -> Policy {
        serde_json::from_str(&self.policy).unwrap_or_default()
    }

    /// The API path that approves it (`…/deny` denies).
    pub fn approve_path(&self) -> String {
        format!(
            "/orgs/{}/apps/{}/pipelines/{}/runs/{}/jobs/{}/approvals/{}/approve",
            self.org_id, self.app_id, self.pipeline_id, self.run_id, self.job_id, self.id
        )
    }

    pub fn deny_path(&self) -> String {
        let approve = self.approve_path();
        format!("{}/deny", approve.trim_end_matches("/approve"))
    }
}

const APPROVAL_COLUMNS: &str = "SELECT org_id, app_id, id, pipeline_id, run_id, job_id, \
     step_index, env_id, message, status, status_message, created_at, approved_by, approved_at, \
     policy, expires_at, seq AS page_n, '' AS page_s FROM pipeline_approvals";

/// A recorded response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRow {
    pub user_id: String,
    /// `approve` or `deny`.
    pub action: String,
    pub comment: String,
    pub at: i64,
}
row_struct!(ResponseRow {
    user_id,
    action,
    comment,
    at
});

/// A request with its responses, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalView {
    pub approval: ApprovalRow,
    pub responses: Vec<ResponseRow>,
}

/// A request an approve step opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    pub id: String,
    pub job_id: String,
    pub step_index: i64,
    pub env_id: String,
    pub message: String,
    pub policy: Policy,
    /// Unix ms, 0 = never.
    pub expires_at: i64,
}

/// Which requests a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalFilter {
    pub pipeline_ids: Vec<String>,
    pub run_ids: Vec<String>,
    pub status: Option<String>,
}

/// Who responds, as the server's access check found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResponse {
    pub user_id: String,
    /// May the user deploy to the request's environment (Humanitec's rule)?
    pub may_deploy: bool,
    /// The user's role on the app (`viewer`, `developer`, `owner`), if any.
    pub app_role: Option<String>,
    pub vote: Vote,
    pub comment: String,
}

async fn approval_where(
    conn: &mut Conn<'_>,
    cond: &str,
    args: &[&str],
    index: Option<i64>,
) -> Result<Option<ApprovalView>, StoreError> {
    let mut q = query(format!("{APPROVAL_COLUMNS} WHERE {cond}"));
    for a in args {
        q = q.bind(*a);
    }
    if let Some(i) = index {
        q = q.bind(i);
    }
    let Some(approval) = q.fetch_optional::<ApprovalRow>(conn).await? else {
        return Ok(None);
    };
    let responses = query(
        "SELECT user_id, action, comment, at FROM pipeline_approval_responses \
         WHERE org_id = $1 AND app_id = $2 AND approval_id = $3 ORDER BY at, user_id",
    )
    .bind(&approval.org_id)
    .bind(&approval.app_id)
    .bind(&approval.id)
    .fetch_all::<ResponseRow>(conn)
    .await?;
    Ok(Some(ApprovalView {
        approval,
        responses,
    }))
}

fn approval_event(view: &ApprovalView, kind: &'static str, by: &str, now: i64) -> Event {
    let a = &view.approval;
    let (approve_path, deny_path) = (a.approve_path(), a.deny_path());
    let required = a.policy().min_approvals.to_string();
    let approvals = view
        .responses
        .iter()
        .filter(|r| r.action == Vote::Approve.as_str())
        .count()
        .to_string();
    Event::new(
        &a.org_id,
        Some(&a.app_id),
        ("pipeline.approval", kind),
        by,
        now,
        &[
            ("approval_id", a.id.as_str()),
            ("pipeline_id", a.pipeline_id.as_str()),
            ("run_id", a.run_id.as_str()),
            ("job_id", a.job_id.as_str()),
            ("env_id", a.env_id.as_str()),
            ("message", a.message.as_str()),
            ("status", a.status.as_str()),
            ("approve_path", approve_path.as_str()),
            ("deny_path", deny_path.as_str()),
            ("required_approvals", required.as_str()),
            ("approvals", approvals.as_str()),
        ],
    )
}

/// Cancels a run's waiting requests (the run ended), in the caller's transaction.
pub(crate) async fn cancel_waiting_in(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    run_id: &str,
    message: &str,
    now: i64,
) -> Result<(), StoreError> {
    query(
        "UPDATE pipeline_approvals SET status = 'cancelled', status_message = $4, \
         approved_at = $5 WHERE org_id = $1 AND app_id = $2 AND run_id = $3 AND status = 'waiting'",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(run_id)
    .bind(message)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Opens the request of an approve step, once: a resumed step (or a worker whose claim
    /// lapsed) gets the request opened before, keyed by (run, job, step). Queues
    /// `pipeline.approval.requested` when it is new. `None` when the run no longer executes.
    pub async fn open_approval(
        &self,
        org_id: &str,
        app_id: &str,
        run_id: &str,
        new: NewApproval,
        now: i64,
    ) -> Result<Option<ApprovalView>, StoreError> {
        let args = [org_id, app_id, run_id].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, run_id] = &args;
                let cond = "org_id = $1 AND app_id = $2 AND run_id = $3 AND job_id = $4 \
                            AND step_index = $5";
                let key = [org_id.as_str(), app_id, run_id, &new.job_id];
                if let Some(view) = approval_where(conn, cond, &key, Some(new.step_index)).await? {
                    return Ok(Some(view));
                }
                let run = run_by_id(conn, org_id, app_id, run_id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(run_id.clone()))?;
                if run.status != "executing" {
                    return Ok(None);
                }
                let policy = serde_json::to_string(&new.policy)
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                query(
                    "INSERT INTO pipeline_approvals (org_id, app_id, id, pipeline_id, run_id, \
                     job_id, step_index, env_id, message, status, status_message, created_at, \
                     approved_by, approved_at, policy, expires_at) VALUES ($1, $2, $3, $4, $5, \
                     $6, $7, $8, $9, 'waiting', '', $10, '', 0, $11, $12)",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(&new.id)
                .bind(&run.pipeline_id)
                .bind(run_id)
                .bind(&new.job_id)
                .bind(new.step_index)
                .bind(&new.env_id)
                .bind(&new.message)
                .bind(now)
                .bind(&policy)
                .bind(new.expires_at)
                .execute(conn)
                .await?;
                let view = approval_where(conn, cond, &key, Some(new.step_index))
                    .await?
                    .ok_or_else(|| StoreError::NotFound(new.id.clone()))?;
                enqueue_event(
                    conn,
                    &approval_event(&view, "requested", &run.run_as, now),
                    now,
                )
                .await?;
                Ok(Some(view))
            })
        }))
        .await
    }

    /// An approval request of an app, with its responses.
    pub async fn get_approval(
        &self,
        org_id: &str,
        app_id: &str,
        approval_id: &str,
    ) -> Result<Option<ApprovalView>, StoreError> {
        let args = [org_id, app_id, approval_id].map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, id] = &args;
                approval_where(
                    conn,
                    "org_id = $1 AND app_id = $2 AND id = $3",
                    &[org_id, app_id, id],
                    None,
                )
                .await
            })
        }))
        .await
    }

    /// A page of an app's approval requests, newest first, each with its responses.
    pub async fn list_approvals(
        &self,
        org_id: &str,
        app_id: &str,
        filter: ApprovalFilter,
        page: &PageRequest,
    ) -> Result<Page<ApprovalView>, StoreError> {
        let args = [org_id, app_id].map(str::to_owned);
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id] = &args;
                let mut values = vec![
                    org_id.clone().value(),
                    app_id.clone().value(),
                    after_descending(&page).value(),
                ];
                let mut sql =
                    format!("{APPROVAL_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND seq < $3");
                for (column, list) in [
                    ("pipeline_id", &filter.pipeline_ids),
                    ("run_id", &filter.run_ids),
                ] {
                    if list.is_empty() {
                        continue;
                    }
                    let mut marks = Vec::new();
                    for v in list {
                        values.push(v.clone().value());
                        marks.push(format!("${}", values.len()));
                    }
                    sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
                }
                if let Some(status) = &filter.status {
                    values.push(status.clone().value());
                    sql.push_str(&format!(" AND status = ${}", values.len()));
                }
                values.push(page.fetch_limit().value());
                sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", values.len()));
                let mut q = query(sql);
                for v in values {
                    q = q.bind_value(v);
                }
                let rows = q.fetch_all::<Keyed<ApprovalRow>>(conn).await?;
                let page = into_page(rows, &page);
                let mut items = Vec::with_capacity(page.items.len());
                for approval in page.items {
                    let cond = "org_id = $1 AND app_id = $2 AND id = $3";
                    let key = [approval.org_id.as_str(), &approval.app_id, &approval.id];
                    if let Some(view) = approval_where(conn, cond, &key, None).await? {
                        items.push(view);
                    }
                }
                Ok(Page {
                    items,
                    next: page.next,
                })
            })
        }))
        .await
    }

    /// A user approves or denies a request. The outer error is the store's (`NotFound` for
    /// an unknown request); the inner one is the policy's refusal (not waiting, expired, not
    /// eligible, self-approval, already responded), with nothing written. A response that
    /// settles the request decides it, queues `pipeline.approval.approved|denied` and wakes
    /// the run, all in one transaction.
    pub async fn respond_approval(
        &self,
        org_id: &str,
        app_id: &str,
        approval_id: &str,
        response: NewResponse,
        now: i64,
    ) -> Result<Result<ApprovalView, RespondError>, StoreError> {
        let args = [org_id, app_id, approval_id].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, id] = &args;
                // The run's queue row first: the runner locks it before it writes approvals
                // (expiring or cancelling them), so taking the locks in that order keeps
                // PostgreSQL from ever seeing the two wait on each other.
                if let Some(run_id) = query(
                    "SELECT run_id FROM pipeline_approvals WHERE org_id = $1 AND app_id = $2 \
                     AND id = $3",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(id)
                .fetch_optional::<String>(conn)
                .await?
                {
                    work_queue::lock_row(conn, Kind::PipelineRun, org_id, app_id, &run_id).await?;
                }
                // Lock the request's row before reading its responses: on PostgreSQL two
                // concurrent responses would otherwise each count the other's as missing and
                // neither would settle a request that needs both (a no-op on SQLite, whose
                // writes are serial). A request no longer waiting needs no lock: it is refused.
                query(
                    "UPDATE pipeline_approvals SET status = status WHERE org_id = $1 \
                     AND app_id = $2 AND id = $3 AND status = 'waiting'",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(id)
                .execute(conn)
                .await?;
                let cond = "org_id = $1 AND app_id = $2 AND id = $3";
                let view = approval_where(conn, cond, &[org_id, app_id, id], None)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no approval request {id}")))?;
                let run = run_by_id(conn, org_id, app_id, &view.approval.run_id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(view.approval.run_id.clone()))?;
                let policy = view.approval.policy();
                let responses: Vec<Response> = view
                    .responses
                    .iter()
                    .filter_map(|r| {
                        Vote::parse(&r.action).map(|vote| Response {
                            user_id: r.user_id.clone(),
                            vote,
                        })
                    })
                    .collect();
                let facts = RequestFacts {
                    status: view.approval.approval_status()?,
                    policy: &policy,
                    expires_at: view.approval.expires_at,
                    creator: &run.created_by,
                    registrant: &run.registrant,
                    responses: &responses,
                };
                let responder = Responder {
                    user_id: &response.user_id,
                    may_deploy: response.may_deploy,
                    app_role: response.app_role.as_deref(),
                };
                let decision = match respond(&facts, &responder, response.vote, now) {
                    Ok(decision) => decision,
                    Err(refused) => return Ok(Err(refused)),
                };
                query(
                    "INSERT INTO pipeline_approval_responses (org_id, app_id, approval_id, \
                     user_id, action, comment, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(id)
                .bind(&response.user_id)
                .bind(response.vote.as_str())
                .bind(&response.comment)
                .bind(now)
                .execute(conn)
                .await?;
                if let Some(event) = decision {
                    let to = ApprovalStatus::Waiting
                        .next(event)
                        .map_err(|e| StoreError::Conflict(e.to_string()))?;
                    let changed = query(
                        "UPDATE pipeline_approvals SET status = $4, approved_by = $5, \
                         approved_at = $6 WHERE org_id = $1 AND app_id = $2 AND id = $3 \
                         AND status = 'waiting'",
                    )
                    .bind(org_id)
                    .bind(app_id)
                    .bind(id)
                    .bind(to.as_str())
                    .bind(&response.user_id)
                    .bind(now)
                    .execute(conn)
                    .await?;
                    if changed == 0 {
                        return Err(StoreError::Conflict(format!(
                            "approval request {id} changed meanwhile; try again"
                        )));
                    }
                }
                let view = approval_where(conn, cond, &[org_id, app_id, id], None)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?;
                if let Some(event) = decision {
                    let kind = match event {
                        ApprovalEvent::Approve => "approved",
                        _ => "denied",
                    };
                    enqueue_event(
                        conn,
                        &approval_event(&view, kind, &response.user_id, now),
                        now,
                    )
                    .await?;
                    work_queue::wake(
                        conn,
                        Kind::PipelineRun,
                        org_id,
                        app_id,
                        &view.approval.run_id,
                    )
                    .await?;
                }
                Ok(Ok(view))
            })
        }))
        .await
    }

    /// Expires a waiting request whose time has come (`cancelled`, "approval expired"),
    /// queueing `pipeline.approval.expired`. `None` when it was not waiting or not yet due.
    pub async fn expire_approval(
        &self,
        org_id: &str,
        app_id: &str,
        approval_id: &str,
        now: i64,
    ) -> Result<Option<ApprovalView>, StoreError> {
        let args = [org_id, app_id, approval_id].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, id] = &args;
                let changed = query(
                    "UPDATE pipeline_approvals SET status = 'cancelled', \
                     status_message = 'approval expired', approved_at = $4 WHERE org_id = $1 \
                     AND app_id = $2 AND id = $3 AND status = 'waiting' AND expires_at > 0 \
                     AND expires_at <= $4",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(id)
                .bind(now)
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Ok(None);
                }
                let cond = "org_id = $1 AND app_id = $2 AND id = $3";
                let view = approval_where(conn, cond, &[org_id, app_id, id], None)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?;
                enqueue_event(conn, &approval_event(&view, "expired", "", now), now).await?;
                Ok(Some(view))
            })
        }))
        .await
    }
}
