//! Registries of an organization (reference §4): CRUD with write-only credentials sealed at
//! rest, and the credentials endpoint for CI, audited on every fetch.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::registries::{CredsFetch, Registry, RegistryCreds, RegistryRequest};
use gangplank_core::access::Action;
use gangplank_core::registry::{RegistryType, check_id, normalise_prefix};
use gangplank_core::timestamp::format_millis;
use gangplank_store::RegistryRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::ecr::EcrError;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::page::{PageParams, Paged, Paging};
use crate::registry_login::{self, LoginError};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, patch, remove))
        .routes(routes!(creds))
        .routes(routes!(audit))
}

fn context(org: &str, id: &str) -> String {
    crate::secrets::context("registry", org, id)
}

fn view(row: RegistryRow) -> Registry {
    Registry {
        has_creds: !row.creds_sealed.is_empty(),
        secrets: serde_json::from_str(&row.secrets).unwrap_or_default(),
        id: row.id,
        registry: row.registry,
        kind: row.kind,
        enable_ci: row.enable_ci,
        insecure: row.insecure,
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
    }
}

/// Validates and applies the request's fields to `row`, sealing any credentials.
fn apply(
    state: &AppState,
    org: &str,
    row: &mut RegistryRow,
    body: RegistryRequest,
) -> Result<(), ApiError> {
    if let Some(registry) = body.registry {
        row.registry = normalise_prefix(&registry)?;
    }
    if let Some(kind) = body.kind {
        row.kind = RegistryType::parse(&kind)?.as_str().to_owned();
    }
    if let Some(enable_ci) = body.enable_ci {
        row.enable_ci = enable_ci;
    }
    if let Some(insecure) = body.insecure {
        row.insecure = insecure;
    }
    if let Some(secrets) = body.secrets {
        row.secrets = serde_json::to_string(&secrets).unwrap_or_else(|_| "{}".to_owned());
    }
    if let Some(creds) = body.creds {
        if creds.username.is_empty() && RegistryType::parse(&row.kind)?.fixed_username().is_none() {
            return Err(ApiError::invalid("creds.username", "must not be empty"));
        }
        if creds.password.is_empty() {
            return Err(ApiError::invalid("creds.password", "must not be empty"));
        }
        let plain = serde_json::to_vec(&creds).unwrap_or_default();
        row.creds_sealed = state.secrets.seal(&context(org, &row.id), &plain);
    }
    Ok(())
}

/// The organization's registries by id, a page at a time; credentials are never included.
#[utoipa::path(get, path = "/orgs/{org}/registries", tag = "registries", params(("org" = String, Path), PageParams), responses((status = 200, body = Vec<Registry>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    paging: Paging,
) -> Result<Paged<Registry>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    let page = state
        .store
        .list_registries_page(&org, paging.request())
        .await?;
    Ok(paging.reply(page.map(view)))
}

/// Creates a registry; 409 on the same id or the same (normalised) prefix.
#[utoipa::path(post, path = "/orgs/{org}/registries", tag = "registries", params(("org" = String, Path)), request_body = RegistryRequest, responses((status = 201, body = Registry), (status = 400, description = "`id`, `registry` and `type` are required; `registry` must be a host with an optional path; credentials must not be empty")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<RegistryRequest>,
) -> Result<(StatusCode, Json<Registry>), ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::ManageRegistries)?;
    let id = body.id.clone().unwrap_or_default();
    check_id(&id)?;
    if body.registry.is_none() {
        return Err(ApiError::invalid("registry", "is required"));
    }
    if body.kind.is_none() {
        return Err(ApiError::invalid("type", "is required"));
    }
    let mut row = RegistryRow {
        id,
        registry: String::new(),
        kind: String::new(),
        enable_ci: false,
        insecure: false,
        creds_sealed: String::new(),
        secrets: "{}".to_owned(),
        created_at: gangplank_store::now_millis(),
        created_by: access.user_id.clone(),
    };
    apply(&state, &org, &mut row, body)?;
    let row = state.store.create_registry(&org, row).await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// One registry.
#[utoipa::path(get, path = "/orgs/{org}/registries/{id}", tag = "registries", params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Registry)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Registry>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    Ok(Json(view(state.store.get_registry(&org, &id).await?)))
}

/// Changes a registry; given credentials replace the stored ones.
#[utoipa::path(patch, path = "/orgs/{org}/registries/{id}", tag = "registries", params(("org" = String, Path), ("id" = String, Path)), request_body = RegistryRequest, responses((status = 200, body = Registry), (status = 400, description = "`id` cannot be changed; the other fields follow the rules of create")))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RegistryRequest>,
) -> Result<Json<Registry>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ManageRegistries)?;
    if body.id.as_ref().is_some_and(|new| *new != id) {
        return Err(ApiError::invalid("id", "cannot be changed"));
    }
    let mut row = state.store.get_registry(&org, &id).await?;
    apply(&state, &org, &mut row, body)?;
    Ok(Json(view(state.store.update_registry(&org, row).await?)))
}

/// Deletes a registry and its stored credentials.
#[utoipa::path(delete, path = "/orgs/{org}/registries/{id}", tag = "registries", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ManageRegistries)?;
    state.store.delete_registry(&org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Credentials for CI: only for registries with `enable_ci`, only for artefact contributors,
/// managers and administrators; every fetch is audited (who, when, which registry).
#[utoipa::path(get, path = "/orgs/{org}/registries/{id}/creds", tag = "registries", params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = RegistryCreds), (status = 403), (status = 502, description = "the ECR token exchange failed")))]
async fn creds(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<RegistryCreds>, ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::FetchRegistryCreds)?;
    let row = state.store.get_registry(&org, &id).await?;
    if !row.enable_ci {
        return Err(ApiError::Forbidden(format!(
            "registry {id} does not hand credentials to CI (enable_ci is false)"
        )));
    }
    let kind = RegistryType::parse(&row.kind)?;
    if matches!(kind, RegistryType::Public | RegistryType::SecretRef) {
        return Err(ApiError::invalid(
            "type",
            format!("registry {id} is {kind}: it has no credentials to hand out"),
        ));
    }
    let login = registry_login::login(&state, &org, &row)
        .await
        .map_err(|e| match e {
            LoginError::Stored(m) => ApiError::Internal(format!("registry {id}: {m}")),
            LoginError::Ecr(EcrError::Config(m)) => {
                ApiError::invalid("registry", format!("registry {id}: {m}"))
            }
            LoginError::Ecr(upstream) => ApiError::BadGateway(format!("registry {id}: {upstream}")),
        })?
        .ok_or_else(|| {
            ApiError::invalid("creds", format!("registry {id} has no stored credentials"))
        })?;
    let answer = RegistryCreds {
        registry: row.registry.clone(),
        username: login.username,
        password: login.password,
        expires: login.expires,
    };
    state
        .store
        .audit_creds_fetch(&org, &id, &access.user_id)
        .await?;
    tracing::info!(org = %org, registry = %id, user = %access.user_id, "registry credentials fetched");
    Ok(Json(answer))
}

/// Who fetched the registry's credentials, and when (administrators), newest first, a page
/// at a time.
#[utoipa::path(get, path = "/orgs/{org}/registries/{id}/creds-audit", tag = "registries", params(("org" = String, Path), ("id" = String, Path), PageParams), responses((status = 200, body = Vec<CredsFetch>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    paging: Paging,
) -> Result<Paged<CredsFetch>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ManageRegistries)?;
    state.store.get_registry(&org, &id).await?;
    let page = state.store.creds_audit(&org, &id, paging.request()).await?;
    Ok(paging.reply(page.map(|r| CredsFetch {
        user_id: r.user_id,
        fetched_at: format_millis(r.fetched_at),
    })))
}
