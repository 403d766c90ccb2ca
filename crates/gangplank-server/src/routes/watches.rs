//! Registry watches of an organization: a repository whose tags are listed on an interval,
//! where the registry cannot send an event. The watcher worker (`worker::watcher`) polls them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::watches::{Watch, WatchRequest};
use gangplank_core::access::Action;
use gangplank_core::timestamp::format_millis;
use gangplank_core::watch::{DEFAULT_INTERVAL_SECONDS, TagFilter, check_interval, parse_image};
use gangplank_store::WatchRow;
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
        .routes(routes!(get_one, remove))
}

fn view(row: WatchRow) -> Watch {
    Watch {
        id: row.id,
        image: row.image,
        filter: row.filter_kind,
        pattern: row.filter_pattern,
        interval_seconds: row.interval_seconds,
        next_poll_at: format_millis(row.next_poll_at),
        last_polled_at: (row.last_polled_at > 0).then(|| format_millis(row.last_polled_at)),
        last_error: row.last_error,
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
    }
}

/// The organization's watches by id, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/watches", tag = "watches", params(("org" = String, Path), PageParams), responses((status = 200, body = Vec<Watch>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    paging: Paging,
) -> Result<Paged<Watch>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    let page = state.store.list_watches(&org, paging.request()).await?;
    Ok(paging.reply(page.map(view)))
}

/// Creates a watch; its first poll is due at once and registers nothing (it records the tags
/// it finds), later polls register each new matching tag, verified through the registry.
#[utoipa::path(post, path = "/orgs/{org}/watches", tag = "watches", params(("org" = String, Path)), request_body = WatchRequest, responses((status = 201, body = Watch), (status = 400, description = "`image` must be `host/path`; at most one of `semver` and `regex`, each valid; `interval_seconds` within the server's minimum and a day")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<WatchRequest>,
) -> Result<(StatusCode, Json<Watch>), ApiError> {
    let access = caller.in_org(&state, &org).await?;
    // A watch makes Gangplank call a registry with the org's stored credentials, on a
    // schedule: registry configuration, so the registries' role.
    access.require(Action::ManageRegistries)?;
    let image = parse_image(&body.image)?;
    let (kind, pattern) = match (body.semver, body.regex) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "regex",
                "give at most one of semver and regex",
            ));
        }
        (Some(range), None) => ("semver", range),
        (None, Some(re)) => ("regex", re),
        (None, None) => ("all", String::new()),
    };
    TagFilter::parse(kind, &pattern)?;
    let interval = check_interval(
        body.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS),
        state.watch_min_interval_seconds,
    )?;
    let now = gangplank_store::now_millis();
    let row = WatchRow {
        org_id: org.clone(),
        id: format!("watch-{}", uuid::Uuid::now_v7().simple()),
        image: image.to_string(),
        filter_kind: kind.to_owned(),
        filter_pattern: pattern,
        interval_seconds: interval,
        next_poll_at: now,
        last_polled_at: 0,
        last_error: String::new(),
        created_at: now,
        created_by: access.user_id.clone(),
    };
    let row = state.store.create_watch(row).await?;
    state.wake.watcher.notify_one();
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// One watch, with how its polling goes.
#[utoipa::path(get, path = "/orgs/{org}/watches/{id}", tag = "watches", params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Watch)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Watch>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    Ok(Json(view(state.store.get_watch(&org, &id).await?)))
}

/// Deletes a watch and the tags it has seen; versions it registered stay.
#[utoipa::path(delete, path = "/orgs/{org}/watches/{id}", tag = "watches", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ManageRegistries)?;
    state.store.delete_watch(&org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
