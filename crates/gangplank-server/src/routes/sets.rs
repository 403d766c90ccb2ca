//! Sets (reference §5.7): list, get (optionally as a diff), diff, and applying a delta to a
//! set to get a new one.

use axum::Json;
use axum::extract::{Path, State};
use gangplank_api::deploys::{DeltaRequest, PlainDelta, SetResponse};
use gangplank_core::access::Action;
use gangplank_core::delta::DeltaContent;
use gangplank_core::set::Set;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::deploying::parse_set;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one, apply_delta))
        .routes(routes!(diff))
}

fn set_view(id: String, set: Set) -> SetResponse {
    SetResponse {
        id,
        modules: serde_json::to_value(&set.modules).unwrap_or(Value::Null),
        shared: Value::Object(set.shared),
        version: set.version,
    }
}

fn plain_delta(delta: DeltaContent) -> PlainDelta {
    PlainDelta {
        modules: json!({"add": delta.modules.add, "remove": delta.modules.remove, "update": delta.modules.update}),
        shared: serde_json::to_value(&delta.shared).unwrap_or(Value::Array(Vec::new())),
    }
}

/// A set of the app; the empty set's ID also resolves (every environment starts from it).
async fn load(state: &AppState, org: &str, app: &str, id: &str) -> Result<Set, ApiError> {
    if id == Set::default().id() {
        return Ok(Set::default());
    }
    let content = state
        .store
        .get_set(org, app, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no set {id} in app {app}")))?;
    parse_set(&content)
}

/// The sets of the app, oldest first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/sets", tag = "sets", params(("org" = String, Path), ("app" = String, Path), PageParams), responses((status = 200, body = Vec<SetResponse>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    paging: Paging,
) -> Result<Paged<SetResponse>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let page = state.store.list_sets(&org, &app, paging.request()).await?;
    Ok(paging.reply(
        page.try_map(|(id, content)| Ok::<_, ApiError>(set_view(id, parse_set(&content)?)))?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct GetQuery {
    /// Answer with the delta from this set to the requested one instead.
    diff: Option<String>,
}

/// One set, or with `diff` the delta that turns that set into this one.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/sets/{set}", tag = "sets", params(("org" = String, Path), ("app" = String, Path), ("set" = String, Path), GetQuery), responses((status = 200, body = SetResponse)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<GetQuery>,
) -> Result<Json<Value>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let set = load(&state, &org, &app, &id).await?;
    let body = match query.diff {
        Some(source) => {
            let source = load(&state, &org, &app, &source).await?;
            serde_json::to_value(plain_delta(DeltaContent::between(&source, &set)))
        }
        None => serde_json::to_value(set_view(id, set)),
    };
    Ok(Json(body.unwrap_or(Value::Null)))
}

/// The delta that turns `source` into `set`.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/sets/{set}/diff/{source}", tag = "sets", params(("org" = String, Path), ("app" = String, Path), ("set" = String, Path), ("source" = String, Path)), responses((status = 200, body = PlainDelta)))]
async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id, source)): Path<(String, String, String, String)>,
) -> Result<Json<PlainDelta>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let set = load(&state, &org, &app, &id).await?;
    let source = load(&state, &org, &app, &source).await?;
    Ok(Json(plain_delta(DeltaContent::between(&source, &set))))
}

/// Applies a delta to a set and stores the result; answers the new set's ID (a JSON string).
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/sets/{set}", tag = "sets", params(("org" = String, Path), ("app" = String, Path), ("set" = String, Path)), request_body = DeltaRequest, responses((status = 200, body = String, content_type = "application/json", description = "the new set's id as a JSON string")))]
async fn apply_delta(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<DeltaRequest>,
) -> Result<Json<String>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::Deploy)?;
    let set = load(&state, &org, &app, &id).await?;
    let delta = super::deltas::content_of(&body)?;
    let next = delta
        .apply_to(&set)
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let next_id = next.id();
    let content = serde_json::to_string(&next).unwrap_or_default();
    state.store.put_set(&org, &app, &next_id, &content).await?;
    Ok(Json(next_id))
}
