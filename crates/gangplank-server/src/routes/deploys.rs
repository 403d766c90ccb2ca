//! Deployments of an environment: create (from a delta, a set, or the environment's base set
//! again), list newest first, one, its errors, and cancel.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::deploys::{Deployment, DeploymentError, DeploymentRequest};
use gangplank_core::access::Action;
use gangplank_core::deploy::DeployStatus;
use gangplank_core::timestamp::format_millis;
use gangplank_store::DeployRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one))
        .routes(routes!(errors))
        .routes(routes!(cancel))
}

/// The wire form of a deployment.
pub fn deploy_view(row: DeployRow) -> Deployment {
    Deployment {
        id: row.id,
        env_id: row.env_id,
        from_id: row.from_id,
        delta_id: row.delta_id,
        set_id: row.set_id,
        comment: row.comment,
        status: row.status,
        failure: (!row.failure.is_empty()).then_some(row.failure),
        status_changed_at: format_millis(row.status_changed_at),
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
        triggered_by: row.triggered_by,
        export_status: String::new(),
        export_file: String::new(),
    }
}

/// The environment's deployments, newest first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}/deploys", tag = "deployments", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path), PageParams), responses((status = 200, body = Vec<Deployment>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
    paging: Paging,
) -> Result<Paged<Deployment>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    if state.store.get_env(&org, &app, &env).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "no environment {env} in app {app}"
        )));
    }
    let page = state
        .store
        .list_deploys(&org, &app, &env, paging.request())
        .await?;
    Ok(paging.reply(page.map(deploy_view)))
}

/// Starts a deployment: the environment's base set with `delta_id` applied, or exactly
/// `set_id`, or (with neither) the base set again, which after a rebase is a rollback.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/envs/{env}/deploys", tag = "deployments", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = DeploymentRequest, responses((status = 201, body = Deployment), (status = 400, description = "the named delta or set does not exist in the app, or the delta does not apply to the environment's set"), (status = 409, description = "a deployment is active in the environment")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<DeploymentRequest>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::Deploy)?;
    let row = crate::deploying::start(
        &state,
        &access,
        &env,
        body.delta_id,
        body.set_id,
        body.comment.unwrap_or_default(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(deploy_view(row))))
}

/// One deployment.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}/deploys/{deploy}", tag = "deployments", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path), ("deploy" = String, Path)), responses((status = 200, body = Deployment)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env, deploy)): Path<(String, String, String, String)>,
) -> Result<Json<Deployment>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    state
        .store
        .get_deploy(&org, &app, &deploy)
        .await?
        .filter(|d| d.env_id == env)
        .map(|d| Json(deploy_view(d)))
        .ok_or_else(|| ApiError::NotFound(format!("no deployment {deploy} in environment {env}")))
}

/// The errors a deployment reported, in order, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}/deploys/{deploy}/errors", tag = "deployments", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path), ("deploy" = String, Path), PageParams), responses((status = 200, body = Vec<DeploymentError>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn errors(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env, deploy)): Path<(String, String, String, String)>,
    paging: Paging,
) -> Result<Paged<DeploymentError>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    if state
        .store
        .get_deploy(&org, &app, &deploy)
        .await?
        .filter(|d| d.env_id == env)
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "no deployment {deploy} in environment {env}"
        )));
    }
    let page = state
        .store
        .deploy_errors(&org, &app, &deploy, paging.request())
        .await?;
    Ok(paging.reply(page.map(|e| {
        DeploymentError {
            error_type: if e.scope == "workload" {
                "workload"
            } else {
                "deployment"
            }
            .to_owned(),
            scope: e.scope,
            object_id: e.object_id,
            code: e.code,
            summary: e.summary,
            message: e.message,
        }
    })))
}

/// Cancels a pending or in-progress deployment at once: it is `cancelled`, its queue row is
/// gone and `deployment.finished` is sent. A running one's target is told to stop waiting (a
/// compose step already running on a host finishes; its result does not count). Another
/// deployment of the environment can start right after.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/envs/{env}/deploys/{deploy}/cancel", tag = "deployments", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path), ("deploy" = String, Path)), responses((status = 200, body = Deployment), (status = 409, description = "the deployment already ended")))]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env, deploy)): Path<(String, String, String, String)>,
) -> Result<Json<Deployment>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::Deploy)?;
    let (row, was) = state.store.cancel_deploy(&org, &app, &env, &deploy).await?;
    if was == DeployStatus::InProgress {
        // Running here: its token stops it now. Running on another replica: that replica's
        // status check finds it cancelled within seconds.
        state.running.cancel(&org, &app, &deploy);
    }
    crate::metrics::deployment_cancelled(row.created_at);
    state.events.deploy_changed(&row, &org, &app);
    tracing::info!(deploy = %deploy, was = %was, "deployment cancelled");
    state.wake.delivery.notify_one();
    state.wake.automation.notify_one();
    Ok(Json(deploy_view(row)))
}
