//! Approval requests (Humanitec's `PipelineApprovals`): list, get, approve and deny. Who may
//! answer is `gangplank_core::pipeline::approval` (Humanitec's rule, that the caller may deploy
//! to the request's environment, plus the step's policy); the store records the response and,
//! when it settles the request, wakes the run, in one transaction.

use axum::Json;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::header;
use gangplank_api::pipeline_runs::{ApprovalResponseBody, PipelineApprovalRequest};
use gangplank_core::access::{Action, is_allowed};
use gangplank_core::pipeline::approval::{RespondError, Vote};
use gangplank_core::pipeline::status::ApprovalStatus;
use gangplank_store::{ApprovalFilter, NewResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::run_views::{approval_view, repeated, single};
use crate::auth::Caller;
use crate::bounds::Bounded;
use crate::error::ApiError;
use crate::extract::{body_bytes, is_json, parse_json};
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(approve))
        .routes(routes!(deny))
}

/// The optional body of approve and deny: none at all (Humanitec's form), or JSON
/// `{"comment": …}`.
pub struct OptionalComment(pub String);

impl FromRequest<AppState> for OptionalComment {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let json = is_json(request.headers().get(header::CONTENT_TYPE));
        let has_type = request.headers().contains_key(header::CONTENT_TYPE);
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalComment(String::new()));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType(if has_type {
                "expected no body, or Content-Type: application/json".to_owned()
            } else {
                "a body needs Content-Type: application/json".to_owned()
            }));
        }
        // `null` is the optional body's "nothing" as JSON spells it.
        let Some(body) = parse_json::<Option<ApprovalResponseBody>>(&bytes)? else {
            return Ok(OptionalComment(String::new()));
        };
        body.check_bounds()?;
        Ok(OptionalComment(body.comment.unwrap_or_default()))
    }
}

/// The app's approval requests, newest first; `pipeline` and `run` (repeat) and `status`
/// (`waiting`, `approved`, `denied`, `cancelled`) narrow them.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/approvals", tag = "pipeline-approvals", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = Option<Vec<String>>, Query, explode = true), ("run" = Option<Vec<String>>, Query, explode = true), ("status" = Option<String>, Query), PageParams), responses((status = 200, body = Vec<PipelineApprovalRequest>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    paging: Paging,
) -> Result<Paged<PipelineApprovalRequest>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let status = single(query.as_deref(), "status")?;
    if let Some(bad) = status
        .as_deref()
        .filter(|s| ApprovalStatus::parse(s).is_none())
    {
        return Err(ApiError::invalid(
            "status",
            format!("{bad:?} is not one of waiting, approved, denied, cancelled"),
        ));
    }
    let filter = ApprovalFilter {
        pipeline_ids: repeated(query.as_deref(), "pipeline")?,
        run_ids: repeated(query.as_deref(), "run")?,
        status,
    };
    let page = state
        .store
        .list_approvals(&org, &app, filter, paging.request())
        .await?;
    Ok(paging.reply(page.map(approval_view)))
}

type ApprovalPath = (String, String, String, String, String, String);

/// The request at this path (404 when any part does not match).
async fn find(
    state: &AppState,
    (org, app, pipeline, run, job, approval): &ApprovalPath,
) -> Result<PipelineApprovalRequest, ApiError> {
    state
        .store
        .get_approval(org, app, approval)
        .await?
        .filter(|v| {
            v.approval.pipeline_id == *pipeline
                && v.approval.run_id == *run
                && v.approval.job_id == *job
        })
        .map(approval_view)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no approval request {approval} in job {job} of run {run}"
            ))
        })
}

/// One approval request.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}/approvals/{approval}", tag = "pipeline-approvals", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("job" = String, Path), ("approval" = String, Path)), responses((status = 200, body = PipelineApprovalRequest)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ApprovalPath>,
) -> Result<Json<PipelineApprovalRequest>, ApiError> {
    caller
        .in_org(&state, &path.0)
        .await?
        .app(&state, &path.1)
        .await?
        .require(Action::ReadApp)?;
    Ok(Json(find(&state, &path).await?))
}

/// Approves: recorded; with enough distinct approvals the request is `approved` and the run
/// goes on. 403 for a caller who may not deploy to the request's environment, is not among
/// its approvers, or (unless the step allows it) started the run or registered its version;
/// 400 when the request is not waiting (approved, denied, cancelled, expired) or the caller
/// already answered it.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}/approvals/{approval}/approve", tag = "pipeline-approvals", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("job" = String, Path), ("approval" = String, Path)), request_body(content = Option<ApprovalResponseBody>, description = "optional: a comment recorded with the response"), responses((status = 200, body = PipelineApprovalRequest)))]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ApprovalPath>,
    body: OptionalComment,
) -> Result<Json<PipelineApprovalRequest>, ApiError> {
    respond(&state, &caller, &path, Vote::Approve, body.0).await
}

/// Denies: one eligible deny settles the request as `denied`, and its run fails. Refusals as
/// for approve (self-denial is allowed).
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}/approvals/{approval}/deny", tag = "pipeline-approvals", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("job" = String, Path), ("approval" = String, Path)), request_body(content = Option<ApprovalResponseBody>, description = "optional: a comment recorded with the response"), responses((status = 200, body = PipelineApprovalRequest)))]
async fn deny(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ApprovalPath>,
    body: OptionalComment,
) -> Result<Json<PipelineApprovalRequest>, ApiError> {
    respond(&state, &caller, &path, Vote::Deny, body.0).await
}

async fn respond(
    state: &AppState,
    caller: &Caller,
    path: &ApprovalPath,
    vote: Vote,
    comment: String,
) -> Result<Json<PipelineApprovalRequest>, ApiError> {
    let (org, app, _, _, _, approval) = path;
    let access = caller.in_org(state, org).await?.app(state, app).await?;
    // Existence first, so a stranger to the request gets 404 rather than a policy answer.
    find(state, path).await?;
    let response = NewResponse {
        user_id: access.org.user_id.clone(),
        // Gangplank has no environment-type roles yet: deploying to any environment of the
        // app is the app's deploy right.
        may_deploy: is_allowed(access.org.role, access.role, Action::Deploy),
        app_role: access.role.map(|r| r.as_str().to_owned()),
        vote,
        comment,
    };
    let now = gangplank_store::now_millis();
    let view = match state
        .store
        .respond_approval(org, app, approval, response, now)
        .await?
    {
        Ok(view) => view,
        Err(RespondError::NotEligible(message)) => return Err(ApiError::Forbidden(message)),
        Err(refused) => return Err(ApiError::Invalid(refused.to_string())),
    };
    tracing::info!(approval = %approval, user = %access.org.user_id, vote = vote.as_str(), status = %view.approval.status, "approval response");
    if view.approval.status != ApprovalStatus::Waiting.as_str() {
        state.wake.pipeline.notify_one();
        state.wake.delivery.notify_one();
    }
    Ok(Json(approval_view(view)))
}
