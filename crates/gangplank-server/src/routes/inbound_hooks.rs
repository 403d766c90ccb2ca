//! Inbound hooks of an organization: CRUD with a secret shown once and sealed at rest, and the
//! deliveries each received. Receiving is in `inbound_receive`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::inbound_hooks::{InboundDelivery, InboundHook, InboundHookRequest};
use gangplank_core::access::Action;
use gangplank_core::id::ResourceId;
use gangplank_core::inbound::HookKind;
use gangplank_core::timestamp::format_millis;
use gangplank_store::InboundHookRow;
use serde_json::Value;
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
        .routes(routes!(get_one, patch, remove))
        .routes(routes!(deliveries))
}

/// The sealing context of a hook's secret.
pub fn secret_context(org: &str, id: &str) -> String {
    crate::secrets::context("inbound-hook", org, id)
}

fn view(org: &str, row: InboundHookRow) -> InboundHook {
    InboundHook {
        watches: serde_json::from_str(&row.watches).unwrap_or_default(),
        path: format!("/hooks/{org}/{}", row.id),
        id: row.id,
        kind: row.kind,
        registry: row.registry,
        disabled: row.disabled,
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
        secret: None,
    }
}

/// Validates and applies the changeable fields.
fn apply(row: &mut InboundHookRow, body: InboundHookRequest) -> Result<(), ApiError> {
    if let Some(watches) = body.watches {
        if watches.len() > 100 {
            return Err(ApiError::invalid("watches", "at most 100 prefixes"));
        }
        for prefix in &watches {
            if prefix.is_empty() || prefix.len() > 255 || prefix.chars().any(char::is_whitespace) {
                return Err(ApiError::invalid(
                    "watches",
                    format!("{prefix:?} is not a repository name prefix"),
                ));
            }
        }
        row.watches = serde_json::to_string(&watches).unwrap_or_else(|_| "[]".to_owned());
    }
    if let Some(registry) = body.registry {
        row.registry = if registry.trim().is_empty() {
            String::new()
        } else {
            gangplank_core::registry::normalise_prefix(&registry)?
        };
    }
    if let Some(disabled) = body.disabled {
        row.disabled = disabled;
    }
    Ok(())
}

async fn admin(state: &AppState, caller: &Caller, org: &str) -> Result<String, ApiError> {
    let access = caller.in_org(state, org).await?;
    access.require(Action::ManageInboundHooks)?;
    Ok(access.user_id.clone())
}

/// The organization's inbound hooks by id, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/inbound-hooks", tag = "inbound-hooks", params(("org" = String, Path), PageParams), responses((status = 200, body = Vec<InboundHook>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    paging: Paging,
) -> Result<Paged<InboundHook>, ApiError> {
    admin(&state, &caller, &org).await?;
    let page = state
        .store
        .list_inbound_hooks(&org, paging.request())
        .await?;
    Ok(paging.reply(page.map(|row| view(&org, row))))
}

/// Creates an inbound hook. The response carries its secret (given or generated) once.
#[utoipa::path(post, path = "/orgs/{org}/inbound-hooks", tag = "inbound-hooks", params(("org" = String, Path)), request_body = InboundHookRequest, responses((status = 201, body = InboundHook), (status = 400, description = "`id` and `kind` are required; `kind` must be known; `secret` at least 16 characters; `watches` repository prefixes; `registry` a registry prefix")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(mut body): ApiJson<InboundHookRequest>,
) -> Result<(StatusCode, Json<InboundHook>), ApiError> {
    let user = admin(&state, &caller, &org).await?;
    let id = ResourceId::parse("id", body.id.as_deref().unwrap_or_default())?.to_string();
    let kind = HookKind::parse(body.kind.as_deref().unwrap_or_default())?;
    let secret = match body.secret.take() {
        Some(secret) if secret.len() < 16 || secret.len() > 256 => {
            return Err(ApiError::invalid("secret", "must be 16 to 256 characters"));
        }
        Some(secret) => secret,
        None => format!("gph_{}", hex::encode(crate::secrets::random_bytes(24))),
    };
    let mut row = InboundHookRow {
        secret_sealed: state
            .secrets
            .seal(&secret_context(&org, &id), secret.as_bytes()),
        id,
        kind: kind.as_str().to_owned(),
        watches: "[]".to_owned(),
        registry: String::new(),
        disabled: false,
        created_at: gangplank_store::now_millis(),
        created_by: user,
    };
    apply(&mut row, body)?;
    let row = state.store.create_inbound_hook(&org, row).await?;
    let mut view = view(&org, row);
    view.secret = Some(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

/// One inbound hook (never its secret).
#[utoipa::path(get, path = "/orgs/{org}/inbound-hooks/{id}", tag = "inbound-hooks", params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = InboundHook)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<InboundHook>, ApiError> {
    admin(&state, &caller, &org).await?;
    let row = state.store.get_inbound_hook(&org, &id).await?;
    Ok(Json(view(&org, row)))
}

/// Changes a hook's `watches`, `registry` or `disabled`.
#[utoipa::path(patch, path = "/orgs/{org}/inbound-hooks/{id}", tag = "inbound-hooks", params(("org" = String, Path), ("id" = String, Path)), request_body = InboundHookRequest, responses((status = 200, body = InboundHook), (status = 400, description = "`id`, `kind` and `secret` cannot be changed (create a new hook to rotate the secret)")))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<InboundHookRequest>,
) -> Result<Json<InboundHook>, ApiError> {
    admin(&state, &caller, &org).await?;
    for (field, given) in [
        ("id", body.id.is_some()),
        ("kind", body.kind.is_some()),
        ("secret", body.secret.is_some()),
    ] {
        if given {
            return Err(ApiError::invalid(
                field,
                "cannot be changed; create a new hook instead",
            ));
        }
    }
    let mut row = state.store.get_inbound_hook(&org, &id).await?;
    apply(&mut row, body)?;
    let row = state.store.update_inbound_hook(&org, row).await?;
    Ok(Json(view(&org, row)))
}

/// Deletes a hook and its deliveries.
#[utoipa::path(delete, path = "/orgs/{org}/inbound-hooks/{id}", tag = "inbound-hooks", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    admin(&state, &caller, &org).await?;
    state.store.delete_inbound_hook(&org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A hook's deliveries, newest first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/inbound-hooks/{id}/deliveries", tag = "inbound-hooks", params(("org" = String, Path), ("id" = String, Path), PageParams), responses((status = 200, body = Vec<InboundDelivery>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    paging: Paging,
) -> Result<Paged<InboundDelivery>, ApiError> {
    admin(&state, &caller, &org).await?;
    state.store.get_inbound_hook(&org, &id).await?;
    let page = state
        .store
        .list_inbound_deliveries(&org, &id, paging.request())
        .await?;
    Ok(paging.reply(page.map(|d| InboundDelivery {
        id: d.id,
        received_at: format_millis(d.received_at),
        delivery_id: d.delivery_id,
        headers: serde_json::from_str(&d.headers).unwrap_or(Value::Null),
        body_sha256: d.body_sha256,
        verdict: d.verdict,
        message: d.message,
        caused: serde_json::from_str(&d.caused).unwrap_or(Value::Null),
    })))
}
