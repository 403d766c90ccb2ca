//! Environment types of an organization.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::apps::{EnvType, EnvTypeUse, PatchEnvType};
use gangplank_core::access::Action;
use gangplank_core::id::ResourceId;
use gangplank_store::EnvTypeRow;
use serde_json::json;
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
        .routes(routes!(get_one, update, remove))
}

fn env_type(row: EnvTypeRow) -> EnvType {
    EnvType {
        id: row.id,
        description: row.description,
    }
}

/// The environment types, by id, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/env-types", tag = "env-types", params(("org" = String, Path), PageParams), responses((status = 200, body = Vec<EnvType>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    paging: Paging,
) -> Result<Paged<EnvType>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    let page = state.store.list_env_types(&org, paging.request()).await?;
    Ok(paging.reply(page.map(env_type)))
}

/// Creates an environment type.
#[utoipa::path(post, path = "/orgs/{org}/env-types", tag = "env-types", params(("org" = String, Path)), request_body = EnvType, responses((status = 201, body = EnvType)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<EnvType>,
) -> Result<(StatusCode, Json<EnvType>), ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ManageEnvTypes)?;
    let id = ResourceId::parse("id", &body.id)?;
    let row = state
        .store
        .create_env_type(&org, id.as_str(), &body.description)
        .await?;
    Ok((StatusCode::CREATED, Json(env_type(row))))
}

/// One environment type.
#[utoipa::path(get, path = "/orgs/{org}/env-types/{id}", tag = "env-types", params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = EnvType)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<EnvType>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    let row = state.store.get_env_type(&org, &id).await?;
    row.map(|r| Json(env_type(r)))
        .ok_or_else(|| ApiError::NotFound(format!("no environment type {id}")))
}

/// Changes an environment type's description.
#[utoipa::path(patch, path = "/orgs/{org}/env-types/{id}", tag = "env-types", params(("org" = String, Path), ("id" = String, Path)), request_body = PatchEnvType, responses((status = 200, body = EnvType)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<PatchEnvType>,
) -> Result<Json<EnvType>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ManageEnvTypes)?;
    let row = state
        .store
        .update_env_type(&org, &id, &body.description.unwrap_or_default())
        .await?;
    Ok(Json(env_type(row)))
}

/// Deletes an environment type; 409 listing the environments that still use it.
#[utoipa::path(delete, path = "/orgs/{org}/env-types/{id}", tag = "env-types", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204), (status = 409, body = Vec<EnvTypeUse>, description = "environments still use the type")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ManageEnvTypes)?;
    match state.store.delete_env_type(&org, &id).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(users) => Err(ApiError::ConflictWith(json!(
            users
                .into_iter()
                .map(|(app_id, env_id)| EnvTypeUse { app_id, env_id })
                .collect::<Vec<_>>()
        ))),
    }
}
