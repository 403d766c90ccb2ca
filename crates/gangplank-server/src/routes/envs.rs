//! Environments of an application.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::apps::{CreateEnv, Env, Rename};
use gangplank_core::access::Action;
use gangplank_core::id::ResourceId;
use gangplank_store::{EnvRow, NewEnv};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::time_format::format_millis;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, rename, remove))
}

fn env_response(row: EnvRow) -> Env {
    let created_at = format_millis(row.created_at);
    Env {
        id: row.id,
        name: row.name,
        kind: row.env_type,
        status_changed_at: created_at.clone(),
        created_at,
        created_by: row.created_by,
        status: "active".to_owned(),
    }
}

/// The app's environments.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs", tag = "envs", params(("org" = String, Path), ("app" = String, Path)), responses((status = 200, body = Vec<Env>)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
) -> Result<Json<Vec<Env>>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let envs = state.store.list_envs(&org, Some(&app)).await?;
    Ok(Json(envs.into_iter().map(env_response).collect()))
}

/// Creates an environment (type `development` unless given).
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/envs", tag = "envs", params(("org" = String, Path), ("app" = String, Path)), request_body = CreateEnv, responses((status = 201, body = Env)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<CreateEnv>,
) -> Result<(StatusCode, Json<Env>), ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::ManageEnvs)?;
    let id = ResourceId::parse("id", &body.id)?;
    let env_type = ResourceId::parse("type", body.kind.as_deref().unwrap_or("development"))?;
    if let Some(deploy) = body.from_deploy_id {
        // Deployments arrive with the automated-deployments work; until then none can exist.
        return Err(ApiError::invalid(
            "from_deploy_id",
            format!("no deployment {deploy} in app {app}"),
        ));
    }
    let env = NewEnv {
        name: body.name.unwrap_or_else(|| id.to_string()),
        id: id.to_string(),
        env_type: env_type.to_string(),
    };
    let row = state
        .store
        .create_env(&org, &app, env, &access.org.user_id)
        .await?;
    Ok((StatusCode::CREATED, Json(env_response(row))))
}

/// One environment.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}", tag = "envs", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), responses((status = 200, body = Env)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
) -> Result<Json<Env>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let row = state.store.get_env(&org, &app, &env).await?;
    row.map(|r| Json(env_response(r)))
        .ok_or_else(|| ApiError::NotFound(format!("no environment {env} in app {app}")))
}

/// Renames an environment.
#[utoipa::path(patch, path = "/orgs/{org}/apps/{app}/envs/{env}", tag = "envs", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = Rename, responses((status = 200, body = Env)))]
async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Rename>,
) -> Result<Json<Env>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ManageEnvs)?;
    Ok(Json(env_response(
        state.store.rename_env(&org, &app, &env, &body.name).await?,
    )))
}

/// Deletes an environment; 400 for the app's last one.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/envs/{env}", tag = "envs", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ManageEnvs)?;
    state.store.delete_env(&org, &app, &env).await?;
    Ok(StatusCode::NO_CONTENT)
}
