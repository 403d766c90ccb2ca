//! Webhooks of an app (reference §3), the event catalogue, and deliveries with redelivery.
//! Header values are sealed at rest and shown as `***` (see `webhook_headers`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::webhooks::{
    Delivery, DeliveryAttempt, EventInfo, Trigger, Webhook, WebhookRequest,
};
use gangplank_core::access::Action;
use gangplank_core::id::ResourceId;
use gangplank_core::timestamp::format_millis;
use gangplank_core::webhook::{self, EVENTS, SigningKey};
use gangplank_store::WebhookRow;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AppAccess, Caller};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;
use crate::webhook_headers;
use crate::worker::delivery::{check_url, secret_context};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, patch, remove))
        .routes(routes!(delete_all))
        .routes(routes!(events))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
}

/// Headers every delivery carries from Gangplank itself.
const RESERVED_HEADERS: [&str; 9] = [
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
    "x-gangplank-event",
    "transfer-encoding",
];

/// The API's view of a stored webhook; header values are shown redacted.
fn webhook_view(state: &AppState, org: &str, row: WebhookRow) -> Result<Webhook, ApiError> {
    let triggers: Vec<Trigger> = serde_json::from_str(&row.triggers).unwrap_or_default();
    let headers = stored_headers(state, org, &row)?;
    Ok(Webhook {
        id: row.id,
        url: row.url,
        disabled: row.disabled,
        headers: webhook_headers::redact(headers),
        payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
        triggers,
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
        secret: None,
    })
}

/// A stored webhook's header map, opened.
fn stored_headers(
    state: &AppState,
    org: &str,
    row: &WebhookRow,
) -> Result<BTreeMap<String, String>, ApiError> {
    webhook_headers::open(&state.secrets, org, &row.id, &row.headers)
        .map_err(|e| ApiError::Internal(format!("webhook {org}/{}: {e}", row.id)))
}

/// Validates the changeable fields of a webhook into `row`. Stored header values go only to
/// the URL they were given for: with a new URL, every header value must be given again.
fn apply_fields(
    state: &AppState,
    org: &str,
    row: &mut WebhookRow,
    body: WebhookRequest,
) -> Result<(), ApiError> {
    let mut stored = stored_headers(state, org, row)?;
    if let Some(url) = body.url {
        check_url(&url, state.webhook.allow_private).map_err(|e| ApiError::invalid("url", e))?;
        if url != row.url {
            if body.headers.is_none() && !stored.is_empty() {
                return Err(ApiError::invalid(
                    "headers",
                    "must be given again with their values when the url changes: stored \
                     header values are only sent to the url they were given for \
                     ({} to send none)",
                ));
            }
            // Nothing stored is kept for a new URL, so a redacted value is refused below.
            stored.clear();
        }
        row.url = url;
    }
    if let Some(disabled) = body.disabled {
        row.disabled = disabled;
    }
    let headers = match body.headers {
        Some(headers) => keep_redacted(headers, &stored)?,
        None => stored,
    };
    if let Some(payload) = body.payload {
        if !payload.is_object() {
            return Err(ApiError::invalid("payload", "must be a JSON object"));
        }
        row.payload = payload.to_string();
    }
    if let Some(triggers) = body.triggers {
        row.triggers = serde_json::to_string(&triggers).unwrap_or_else(|_| "[]".to_owned());
    }
    let triggers: Vec<Trigger> = serde_json::from_str(&row.triggers).unwrap_or_default();
    let pairs: Vec<(String, String)> = triggers.into_iter().map(|t| (t.scope, t.kind)).collect();
    for name in headers.keys() {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ApiError::invalid(
                "headers",
                format!("{name:?} is not a valid header name"),
            ));
        }
        // Gangplank sets these itself; a template must not forge or duplicate them.
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ApiError::invalid(
                "headers",
                format!("{name:?} is set by Gangplank and cannot be configured"),
            ));
        }
    }
    let payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
    webhook::validate(&pairs, &payload, &headers)?;
    row.headers = webhook_headers::seal(&state.secrets, org, &row.id, &headers);
    Ok(())
}

/// New header values, where a value sent back as shown (redacted) keeps the stored one, so a
/// client can GET, change one thing, and PATCH the headers back.
fn keep_redacted(
    headers: BTreeMap<String, String>,
    stored: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ApiError> {
    headers
        .into_iter()
        .map(|(name, value)| {
            if value != webhook_headers::REDACTED {
                return Ok((name, value));
            }
            match stored.get(&name) {
                Some(kept) => Ok((name, kept.clone())),
                None => Err(ApiError::invalid(
                    "headers",
                    format!(
                        "{name:?} is {:?}, which keeps a stored value, but none is stored \
                         or the url changes (give every value again with a new url)",
                        webhook_headers::REDACTED
                    ),
                )),
            }
        })
        .collect()
}

async fn owner_access(
    state: &AppState,
    caller: &Caller,
    org: &str,
    app: &str,
    action: Action,
) -> Result<AppAccess, ApiError> {
    let access = caller.in_org(state, org).await?.app(state, app).await?;
    access.require(action)?;
    Ok(access)
}

/// The app's webhooks by id, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/webhooks", tag = "webhooks", params(("org" = String, Path), ("app" = String, Path), PageParams), responses((status = 200, body = Vec<Webhook>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    paging: Paging,
) -> Result<Paged<Webhook>, ApiError> {
    owner_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let page = state
        .store
        .list_webhooks(&org, &app, paging.request())
        .await?;
    Ok(paging.reply(page.try_map(|row| webhook_view(&state, &org, row))?))
}

/// Creates a webhook. Without `secret`, one is generated and returned once, in this response.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/webhooks", tag = "webhooks", params(("org" = String, Path), ("app" = String, Path)), request_body = WebhookRequest, responses((status = 201, body = Webhook), (status = 400, description = "`id` and `url` are required; the URL must be https:// to a public address (see GANGPLANK_WEBHOOK_ALLOW_PRIVATE); triggers must be known events; headers and payload templates must be valid")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<WebhookRequest>,
) -> Result<(StatusCode, Json<Webhook>), ApiError> {
    let access = owner_access(&state, &caller, &org, &app, Action::ManageWebhooks).await?;
    let id = ResourceId::parse("id", body.id.as_deref().unwrap_or_default())?.to_string();
    if body.url.is_none() {
        return Err(ApiError::invalid("url", "is required"));
    }
    let (key, generated) = match body.secret.take() {
        Some(secret) => (SigningKey::parse(&secret)?, false),
        None => (
            SigningKey::from_bytes(crate::secrets::random_bytes(32)),
            true,
        ),
    };
    let mut row = WebhookRow {
        id: id.clone(),
        app_id: app.clone(),
        url: String::new(),
        disabled: false,
        headers: "{}".to_owned(),
        payload: match &body.payload {
            Some(_) => Value::Null,
            None => {
                let triggers: Vec<(String, String)> = body
                    .triggers
                    .iter()
                    .flatten()
                    .map(|t| (t.scope.clone(), t.kind.clone()))
                    .collect();
                webhook::default_payload(&triggers)
            }
        }
        .to_string(),
        triggers: "[]".to_owned(),
        secret_sealed: state.secrets.seal(&secret_context(&org, &id), key.bytes()),
        created_at: gangplank_store::now_millis(),
        created_by: access.org.user_id.clone(),
    };
    apply_fields(&state, &org, &mut row, body)?;
    let row = state.store.create_webhook(&org, row).await?;
    let mut view = webhook_view(&state, &org, row)?;
    view.secret = generated.then(|| key.to_secret());
    Ok((StatusCode::CREATED, Json(view)))
}

/// One webhook.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/webhooks/{id}", tag = "webhooks", params(("org" = String, Path), ("app" = String, Path), ("id" = String, Path)), responses((status = 200, body = Webhook)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id)): Path<(String, String, String)>,
) -> Result<Json<Webhook>, ApiError> {
    owner_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let row = state.store.get_webhook(&org, &app, &id).await?;
    Ok(Json(webhook_view(&state, &org, row)?))
}

/// Changes a webhook's URL, headers, payload, triggers or `disabled`.
#[utoipa::path(patch, path = "/orgs/{org}/apps/{app}/webhooks/{id}", tag = "webhooks", params(("org" = String, Path), ("app" = String, Path), ("id" = String, Path)), request_body = WebhookRequest, responses((status = 200, body = Webhook), (status = 400, description = "`id` and `secret` cannot be changed; the URL, triggers, headers and payload follow the rules of create")))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<WebhookRequest>,
) -> Result<Json<Webhook>, ApiError> {
    owner_access(&state, &caller, &org, &app, Action::ManageWebhooks).await?;
    if body.secret.is_some() {
        return Err(ApiError::invalid(
            "secret",
            "cannot be changed; create a new webhook to rotate it",
        ));
    }
    let mut row = state.store.get_webhook(&org, &app, &id).await?;
    apply_fields(&state, &org, &mut row, body)?;
    let mut view = webhook_view(&state, &org, state.store.update_webhook(&org, row).await?)?;
    // Humanitec's WebhookUpdateResponse carries no id or creation fields; ours keeps them.
    view.secret = None;
    Ok(Json(view))
}

/// Deletes a webhook and its deliveries.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/webhooks/{id}", tag = "webhooks", params(("org" = String, Path), ("app" = String, Path), ("id" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    owner_access(&state, &caller, &org, &app, Action::ManageWebhooks).await?;
    state.store.delete_webhooks(&org, &app, Some(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes every webhook ("job") of the app.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/jobs", tag = "webhooks", params(("org" = String, Path), ("app" = String, Path)), responses((status = 204)))]
async fn delete_all(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    owner_access(&state, &caller, &org, &app, Action::ManageWebhooks).await?;
    state.store.delete_webhooks(&org, &app, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The events webhooks can subscribe to, with the variables each payload may use. The table
/// is built into the server; it pages like every other list so clients need one code path.
#[utoipa::path(get, path = "/orgs/{org}/events", tag = "webhooks", params(("org" = String, Path), PageParams), responses((status = 200, body = Vec<EventInfo>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    paging: Paging,
) -> Result<Paged<EventInfo>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    let page = gangplank_core::page::page_of_slice(EVENTS, paging.request());
    Ok(paging.reply(page.map(|e| EventInfo {
        scope: e.scope.to_owned(),
        kind: e.kind.to_owned(),
        properties: e.properties.iter().map(|p| (*p).to_owned()).collect(),
    })))
}

/// A webhook's deliveries, newest first, a page at a time, with every attempt.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/webhooks/{id}/deliveries", tag = "webhooks", params(("org" = String, Path), ("app" = String, Path), ("id" = String, Path), PageParams), responses((status = 200, body = Vec<Delivery>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id)): Path<(String, String, String)>,
    paging: Paging,
) -> Result<Paged<Delivery>, ApiError> {
    owner_access(&state, &caller, &org, &app, Action::ManageWebhooks).await?;
    state.store.get_webhook(&org, &app, &id).await?;
    let page = state
        .store
        .list_deliveries(&org, &id, paging.request())
        .await?;
    Ok(paging.reply(page.map(|(d, attempts)| {
        Delivery {
            id: d.id,
            event: d.event,
            url: d.url,
            next_attempt_at: (d.state == "pending").then(|| format_millis(d.next_attempt_at)),
            state: d.state,
            attempts: attempts
                .into_iter()
                .map(|a| DeliveryAttempt {
                    attempt: a.n,
                    started_at: format_millis(a.started_at),
                    duration_ms: a.duration_ms,
                    status_code: a.status_code,
                    error: a.error,
                })
                .collect(),
            last_error: d.last_error,
            created_at: format_millis(d.created_at),
        }
    })))
}

/// Sends a delivery again, now, with the same `webhook-id`.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks", params(("org" = String, Path), ("app" = String, Path), ("id" = String, Path), ("delivery" = String, Path)), responses((status = 202)))]
async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id, delivery)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    owner_access(&state, &caller, &org, &app, Action::ManageWebhooks).await?;
    state.store.get_webhook(&org, &app, &id).await?;
    state.store.redeliver(&org, &id, &delivery).await?;
    state.wake.delivery.notify_one();
    Ok(StatusCode::ACCEPTED)
}
