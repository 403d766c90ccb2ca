//! Pipeline runs (Humanitec's `PipelineRuns`): list (org-wide and per pipeline), create by
//! `pipeline_call` or by deployment-request criteria (`Idempotency-Key`, `dry_run`), get,
//! delete, cancel and restart. Jobs and step logs are in `pipeline_jobs`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gangplank_api::pipeline_runs::{
    PipelineRun, PipelineRunCreateBody, PipelineRunCreateByTriggerCriteriaBody,
};
use gangplank_core::access::{Action, is_allowed};
use gangplank_core::pipeline::status::RunStatus;
use gangplank_core::pipeline::trigger::{self, Criteria, DeploymentRequest};
use gangplank_store::{CancelOutcome, DeleteOutcome, RunFilter, RunRow};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::run_views::{
    bool_param, etag_header, idempotency_key, if_match, repeated, run_view, single, time_param,
};
use crate::auth::{AppAccess, Caller};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::page::{PageParams, Paged, Paging};
use crate::pipeline_start::{self, Start};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_in_org))
        .routes(routes!(create_by_criteria))
        .routes(routes!(list, create))
        .routes(routes!(get_one, delete))
        .routes(routes!(cancel))
        .routes(routes!(restart))
}

/// 200 with the run and its `Etag` (201 for a created one).
fn run_response(status: StatusCode, row: RunRow) -> Response {
    let etag = etag_header(&row.etag);
    (status, [etag], Json(run_view(row))).into_response()
}

/// The filters both run lists share, from the query string.
fn filter_of(query: Option<&str>) -> Result<RunFilter, ApiError> {
    let statuses = repeated(query, "status")?;
    if let Some(bad) = statuses.iter().find(|s| RunStatus::parse(s).is_none()) {
        return Err(ApiError::invalid(
            "status",
            format!("{bad:?} is not one of queued, executing, succeeded, failed, cancelled"),
        ));
    }
    Ok(RunFilter {
        app_ids: Vec::new(),
        pipeline_ids: Vec::new(),
        statuses,
        completed: bool_param(query, "completed")?,
        created_after: time_param(query, "created_after")?,
        created_before: time_param(query, "created_before")?,
        env_id: single(query, "env")?,
    })
}

/// Whether `access` allows reading `app` (an org viewer or administrator reads every app).
async fn may_read(
    state: &AppState,
    caller: &Caller,
    org: &str,
    app: &str,
) -> Result<bool, ApiError> {
    let access = caller.in_org(state, org).await?;
    match access.app(state, app).await {
        Ok(app) => Ok(is_allowed(app.org.role, app.role, Action::ReadApp)),
        Err(ApiError::NotFound(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// The runs of the organization, newest first. Filters: `app` and `pipeline` (repeat for
/// several), `env`, `status` (repeat), `completed`, `created_after`, `created_before`. A caller
/// who may not read every app names the apps (`app=`), each of which they may read.
#[utoipa::path(get, path = "/orgs/{org}/pipeline-runs", tag = "pipeline-runs", params(("org" = String, Path), ("app" = Option<Vec<String>>, Query, explode = true, description = "only these apps"), ("pipeline" = Option<Vec<String>>, Query, explode = true, description = "only these pipelines"), ("env" = Option<String>, Query, description = "only runs linked to this environment"), ("status" = Option<Vec<String>>, Query, explode = true, description = "only these statuses"), ("completed" = Option<bool>, Query), ("created_after" = Option<String>, Query, format = DateTime), ("created_before" = Option<String>, Query, format = DateTime), PageParams), responses((status = 200, body = Vec<PipelineRun>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list_in_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
    paging: Paging,
) -> Result<Paged<PipelineRun>, ApiError> {
    let access = caller.in_org(&state, &org).await?;
    let mut filter = filter_of(query.as_deref())?;
    filter.app_ids = repeated(query.as_deref(), "app")?;
    filter.pipeline_ids = repeated(query.as_deref(), "pipeline")?;
    if !is_allowed(access.role, None, Action::ReadApp) {
        if filter.app_ids.is_empty() {
            return Err(ApiError::Forbidden(
                "your role reads only the apps you hold a role on: name them with app=".to_owned(),
            ));
        }
        for app in &filter.app_ids {
            if !may_read(&state, &caller, &org, app).await? {
                return Err(ApiError::Forbidden(format!("no access to app {app}")));
            }
        }
    }
    let page = state
        .store
        .list_runs(&org, None, filter, paging.request())
        .await?;
    Ok(paging.reply(page.map(run_view)))
}

/// Checks the pipeline exists in the app (404) and returns the caller's access.
async fn pipeline_access(
    state: &AppState,
    caller: &Caller,
    org: &str,
    app: &str,
    pipeline: &str,
    action: Action,
) -> Result<AppAccess, ApiError> {
    let access = caller.in_org(state, org).await?.app(state, app).await?;
    access.require(action)?;
    // 404 when the pipeline does not exist.
    state.store.get_pipeline(org, app, pipeline, None).await?;
    Ok(access)
}

/// A run of the pipeline (404 when missing or of another pipeline).
async fn run_of(
    state: &AppState,
    org: &str,
    app: &str,
    pipeline: &str,
    run: &str,
) -> Result<RunRow, ApiError> {
    state
        .store
        .get_run(org, app, run)
        .await?
        .filter(|r| r.pipeline_id == pipeline)
        .ok_or_else(|| ApiError::NotFound(format!("no run {run} of pipeline {pipeline}")))
}

/// The pipeline's runs, newest first; filters as the org-wide list, without `app` and
/// `pipeline`.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("env" = Option<String>, Query), ("status" = Option<Vec<String>>, Query, explode = true), ("completed" = Option<bool>, Query), ("created_after" = Option<String>, Query, format = DateTime), ("created_before" = Option<String>, Query, format = DateTime), PageParams), responses((status = 200, body = Vec<PipelineRun>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    paging: Paging,
) -> Result<Paged<PipelineRun>, ApiError> {
    pipeline_access(&state, &caller, &org, &app, &pipeline, Action::ReadApp).await?;
    let mut filter = filter_of(query.as_deref())?;
    filter.pipeline_ids = vec![pipeline];
    let page = state
        .store
        .list_runs(&org, Some(&app), filter, paging.request())
        .await?;
    Ok(paging.reply(page.map(run_view)))
}

/// `dry_run=true`: check everything, create nothing.
fn dry_run(query: Option<&str>) -> Result<bool, ApiError> {
    Ok(bool_param(query, "dry_run")?.unwrap_or(false))
}

/// Starts a run with `inputs`, checked against `on.pipeline_call.inputs` (types, required,
/// defaults) and frozen in the run. With an `Idempotency-Key` this pipeline has seen, the
/// run that key created is answered again and nothing new starts.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("dry_run" = Option<bool>, Query, description = "validate only: 204, nothing stored"), ("Idempotency-Key" = Option<String>, Header, description = "at most one run per pipeline and key")), request_body = PipelineRunCreateBody, responses((status = 201, body = PipelineRun, headers(("Etag" = String))), (status = 204, description = "valid; no run was created (dry run)"), (status = 409, description = "the pipeline's stored version no longer parses")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PipelineRunCreateBody>,
) -> Result<Response, ApiError> {
    let access = pipeline_access(&state, &caller, &org, &app, &pipeline, Action::Deploy).await?;
    let key = idempotency_key(&headers)?;
    let version = pipeline_start::version(&state, &org, &app, &pipeline, None).await?;
    let inputs = pipeline_start::call_inputs(&version, Value::Object(body.inputs))?;
    let start = Start {
        trigger: trigger::PIPELINE_CALL,
        inputs,
        created_by: access.org.user_id.clone(),
        registrant: String::new(),
        idempotency_key: key,
    };
    if dry_run(query.as_deref())? {
        pipeline_start::plan(&org, &app, &version, start)?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (run, _) = pipeline_start::start(&state, &org, &app, &version, start).await?;
    Ok(run_response(StatusCode::CREATED, run))
}

/// Starts a run of the pipeline whose criteria match a deployment request (`trigger:
/// deployment_request`): the most specific criteria of the app win (promotion.md §1.3). The
/// run's inputs are `env_id`, `comment` and whichever of `delta_id`, `deployment_id`, `set_id`,
/// `value_set_version_id` and `mode` were given.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/pipeline-runs", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("dry_run" = Option<bool>, Query, description = "validate only: 204, nothing stored"), ("Idempotency-Key" = Option<String>, Header)), request_body = PipelineRunCreateByTriggerCriteriaBody, responses((status = 201, body = PipelineRun, headers(("Etag" = String))), (status = 204, description = "matched a pipeline; no run was persisted (dry run)"), (status = 409, description = "criteria of several pipelines match equally"), (status = 422, description = "no criteria match the request")))]
async fn create_by_criteria(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PipelineRunCreateByTriggerCriteriaBody>,
) -> Result<Response, ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::Deploy)?;
    if body.trigger != trigger::DEPLOYMENT_REQUEST {
        return Err(ApiError::invalid(
            "trigger",
            "only deployment_request is supported",
        ));
    }
    let sources = [&body.delta_id, &body.deployment_id, &body.set_id];
    if sources.iter().filter(|s| s.is_some()).count() > 1 {
        return Err(ApiError::invalid(
            "delta_id",
            "give at most one of delta_id, deployment_id and set_id",
        ));
    }
    let env_id = body
        .env_id
        .clone()
        .or_else(|| body.environment.clone())
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::invalid("env_id", "is required"))?;
    let env = state
        .store
        .get_env(&org, &app, &env_id)
        .await?
        .ok_or_else(|| {
            ApiError::invalid("env_id", format!("no environment {env_id} in app {app}"))
        })?;
    let key = idempotency_key(&headers)?;
    let criteria_rows = state.store.deployment_request_criteria(&org, &app).await?;
    let criteria: Vec<Criteria<'_>> = criteria_rows
        .iter()
        .map(|c| Criteria {
            id: &c.id,
            pipeline_id: &c.pipeline_id,
            env_type: &c.env_type,
            app_id: &c.match_app_id,
            env_id: &c.env_id,
            deployment_type: &c.deployment_type,
        })
        .collect();
    let request = DeploymentRequest {
        app_id: &app,
        env_id: &env_id,
        env_type: &env.env_type,
        deployment_type: if body.deployment_id.is_some() {
            "redeploy"
        } else {
            "deploy"
        },
    };
    let pipeline_id =
        trigger::route_deployment_request(&criteria, &request).map_err(|e| match e {
            trigger::CriteriaError::NoMatch { .. } => ApiError::Unprocessable(e.to_string()),
            trigger::CriteriaError::Ambiguous { .. } => ApiError::Conflict(e.to_string()),
        })?;
    let version = pipeline_start::version(&state, &org, &app, pipeline_id, None).await?;
    if !version.definition.on.deployment_request {
        return Err(ApiError::Unprocessable(format!(
            "pipeline {pipeline_id} matches by criteria but has no deployment_request trigger"
        )));
    }
    let inputs = trigger::deployment_request_inputs(
        &env_id,
        &[
            ("comment", body.comment.as_deref()),
            ("delta_id", body.delta_id.as_deref()),
            ("deployment_id", body.deployment_id.as_deref()),
            ("set_id", body.set_id.as_deref()),
            ("value_set_version_id", body.value_set_version_id.as_deref()),
            ("mode", body.mode.as_deref()),
        ],
    );
    let start = Start {
        trigger: trigger::DEPLOYMENT_REQUEST,
        inputs,
        created_by: access.org.user_id.clone(),
        registrant: String::new(),
        idempotency_key: key,
    };
    if dry_run(query.as_deref())? {
        pipeline_start::plan(&org, &app, &version, start)?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (run, _) = pipeline_start::start(&state, &org, &app, &version, start).await?;
    Ok(run_response(StatusCode::CREATED, run))
}

/// One run, with its `Etag`.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path)), responses((status = 200, body = PipelineRun, headers(("Etag" = String)))))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, run)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let row = run_of(&state, &org, &app, &pipeline, &run).await?;
    Ok(run_response(StatusCode::OK, row))
}

fn precondition_failed(etag: &str) -> ApiError {
    ApiError::PreconditionFailed(format!(
        "If-Match does not match the run's current etag {etag}"
    ))
}

/// Deletes a completed run with its jobs, steps, logs and approvals (409 while it is queued
/// or executing; 412 when `If-Match` names another etag).
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("If-Match" = Option<String>, Header)), responses((status = 204, description = "deleted"), (status = 409, description = "the run has not completed"), (status = 412, description = "If-Match does not match the run's etag")))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, run)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::Deploy)?;
    let tag = if_match(&headers)?;
    run_of(&state, &org, &app, &pipeline, &run).await?;
    match state
        .store
        .delete_run(&org, &app, &run, tag.as_deref())
        .await?
    {
        DeleteOutcome::Deleted => Ok(StatusCode::NO_CONTENT),
        DeleteOutcome::EtagMismatch { etag } => Err(precondition_failed(&etag)),
    }
}

/// Cancels a run: a queued one at once; an executing one at its next step boundary (its
/// waiting approval requests are cancelled). 204 also when it was cancelled already; 409 when
/// it succeeded or failed.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/cancel", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("If-Match" = Option<String>, Header)), responses((status = 204, description = "cancelled, cancellation requested, or already cancelled"), (status = 409, description = "the run already succeeded or failed"), (status = 412, description = "If-Match does not match the run's etag")))]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, run)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::Deploy)?;
    let tag = if_match(&headers)?;
    run_of(&state, &org, &app, &pipeline, &run).await?;
    match state
        .store
        .cancel_run(&org, &app, &run, tag.as_deref())
        .await?
    {
        CancelOutcome::Cancelled(_) | CancelOutcome::AlreadyCancelled(_) => {
            state.wake.delivery.notify_one();
        }
        CancelOutcome::Requested(_) => state.wake.pipeline.notify_one(),
        CancelOutcome::EtagMismatch(row) => return Err(precondition_failed(&row.etag)),
    }
    tracing::info!(run = %run, "pipeline run cancel");
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a new run copied from a completed one: the same pipeline version and inputs
/// (including the image digest it pinned), the caller as its creator.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/restart", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("Idempotency-Key" = Option<String>, Header)), responses((status = 201, body = PipelineRun, headers(("Etag" = String))), (status = 409, description = "the run has not completed")))]
async fn restart(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, run)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::Deploy)?;
    let key = idempotency_key(&headers)?;
    let old = run_of(&state, &org, &app, &pipeline, &run).await?;
    if !old.run_status()?.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "run {run} is {}; only a completed run can be restarted",
            old.status
        )));
    }
    let definition = gangplank_core::pipeline::definition::parse(&old.definition)
        .map_err(|e| ApiError::Conflict(format!("run {run}'s definition no longer parses: {e}")))?;
    let version = pipeline_start::PipelineVersion {
        pipeline_id: old.pipeline_id.clone(),
        version_id: old.pipeline_version.clone(),
        yaml: old.definition.clone(),
        definition,
    };
    let start = Start {
        trigger: match old.trigger_type.as_str() {
            trigger::ARTEFACT => trigger::ARTEFACT,
            trigger::DEPLOYMENT_REQUEST => trigger::DEPLOYMENT_REQUEST,
            _ => trigger::PIPELINE_CALL,
        },
        inputs: old.inputs_json(),
        created_by: access.org.user_id.clone(),
        registrant: old.registrant.clone(),
        idempotency_key: key,
    };
    let (new, _) = pipeline_start::start(&state, &org, &app, &version, start).await?;
    Ok(run_response(StatusCode::CREATED, new))
}
