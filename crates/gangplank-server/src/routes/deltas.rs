//! Deltas (reference §5.6): create, list, get, PATCH (combine), PUT (replace), and the
//! metadata setters.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::deploys::{Delta, DeltaMetadata, DeltaRequest};
use gangplank_core::access::Action;
use gangplank_core::delta::DeltaContent;
use gangplank_core::limits;
use gangplank_core::timestamp::format_millis;
use gangplank_store::{DeltaRow, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::deploying::{new_delta_id, parse_delta};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Strict};
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, patch, replace))
        .routes(routes!(set_archived))
        .routes(routes!(set_env))
        .routes(routes!(set_name))
}

fn delta_view(row: DeltaRow) -> Result<Delta, ApiError> {
    let content = parse_delta(&row.content)?;
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Delta {
        id: row.id,
        metadata: DeltaMetadata {
            env_id: non_empty(row.env_id),
            name: non_empty(row.name),
            created_by: row.created_by,
            created_at: format_millis(row.created_at),
            last_modified_at: format_millis(row.last_modified_at),
            archived: row.archived,
            contributers: serde_json::from_str(&row.contributers).unwrap_or_default(),
        },
        modules: json!({
            "add": content.modules.add,
            "remove": content.modules.remove,
            "update": content.modules.update,
        }),
        shared: serde_json::to_value(&content.shared).unwrap_or(Value::Array(Vec::new())),
    })
}

/// The content of a request: `modules` and `shared`, validated by deserialising into the core
/// types (only add, remove and replace operations exist there).
pub(super) fn content_of(body: &DeltaRequest) -> Result<DeltaContent, ApiError> {
    let value = json!({
        "modules": body.modules.clone().unwrap_or_else(|| json!({})),
        "shared": body.shared.clone().unwrap_or_else(|| json!([])),
    });
    let mut content: DeltaContent = serde_path_to_error::deserialize(Strict(value))
        .map_err(|e| ApiError::Invalid(format!("{}: {}", e.path(), e.inner())))?;
    let entries =
        content.modules.add.len() + content.modules.remove.len() + content.modules.update.len();
    limits::check_count("modules", entries, limits::MAX_DELTA_ENTRIES)?;
    limits::check_count("shared", content.shared.len(), limits::MAX_DELTA_ENTRIES)?;
    // Every path is a JSON pointer into a module or the shared list (RFC 6901: `/` first).
    let paths = content
        .shared
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("shared[{i}].path"), &a.path));
    let module_paths = content.modules.update.iter().flat_map(|(module, actions)| {
        actions
            .iter()
            .enumerate()
            .map(move |(i, a)| (format!("modules.update.{module}[{i}].path"), &a.path))
    });
    if let Some((field, _)) = paths.chain(module_paths).find(|(_, p)| !p.starts_with('/')) {
        return Err(ApiError::invalid(
            &field,
            "must be a JSON pointer starting with /",
        ));
    }
    content.simplify();
    Ok(content)
}

fn metadata_text(body: &DeltaRequest, key: &str) -> String {
    body.metadata
        .as_ref()
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `true` lists archived deltas instead.
    archived: Option<bool>,
    /// Only deltas for this environment.
    env: Option<String>,
}

/// An app's deltas, newest first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/deltas", tag = "deltas", params(("org" = String, Path), ("app" = String, Path), ListQuery, PageParams), responses((status = 200, body = Vec<Delta>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ListQuery>,
    paging: Paging,
) -> Result<Paged<Delta>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let page = state
        .store
        .list_deltas(
            &org,
            &app,
            query.archived.unwrap_or(false),
            query.env,
            paging.request(),
        )
        .await?;
    Ok(paging.reply(page.try_map(delta_view)?))
}

/// Creates a delta (200, as Humanitec answers); a new ID is always generated.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/deltas", tag = "deltas", params(("org" = String, Path), ("app" = String, Path)), request_body = DeltaRequest, responses((status = 200, body = Delta)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<DeltaRequest>,
) -> Result<Json<Delta>, ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::Deploy)?;
    let content = content_of(&body)?;
    let now = gangplank_store::now_millis();
    let row = DeltaRow {
        id: new_delta_id(),
        env_id: metadata_text(&body, "env_id"),
        name: metadata_text(&body, "name"),
        archived: false,
        content: serde_json::to_string(&content).unwrap_or_default(),
        contributers: "[]".to_owned(),
        created_at: now,
        created_by: access.org.user_id.clone(),
        last_modified_at: now,
    };
    Ok(Json(delta_view(
        state.store.create_delta(&org, &app, row).await?,
    )?))
}

/// One delta.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/deltas/{delta}", tag = "deltas", params(("org" = String, Path), ("app" = String, Path), ("delta" = String, Path)), responses((status = 200, body = Delta)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, delta)): Path<(String, String, String)>,
) -> Result<Json<Delta>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let row = state
        .store
        .get_delta(&org, &app, &delta)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no delta {delta} in app {app}")))?;
    Ok(Json(delta_view(row)?))
}

/// Applies an array of deltas to this one, in turn, by the reference's combination rules.
#[utoipa::path(patch, path = "/orgs/{org}/apps/{app}/deltas/{delta}", tag = "deltas", params(("org" = String, Path), ("app" = String, Path), ("delta" = String, Path)), request_body = Vec<DeltaRequest>, responses((status = 200, body = Delta)))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, delta)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Vec<DeltaRequest>>,
) -> Result<Json<Delta>, ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::Deploy)?;
    limits::check_count("deltas", body.len(), limits::MAX_DELTA_PATCHES)?;
    let patches = body.iter().map(content_of).collect::<Result<Vec<_>, _>>()?;
    let user = access.org.user_id.clone();
    let row = state
        .store
        .update_delta(
            &org,
            &app,
            &delta,
            Box::new(move |mut row| {
                let mut content: DeltaContent = serde_json::from_str(&row.content)
                    .map_err(|e| StoreError::Database(format!("a stored delta is damaged: {e}")))?;
                for patch in &patches {
                    content.combine(patch);
                }
                row.content = serde_json::to_string(&content).unwrap_or_default();
                add_contributer(&mut row, &user);
                Ok(row)
            }),
        )
        .await?;
    Ok(Json(delta_view(row)?))
}

/// Replaces a delta's content and metadata (204).
#[utoipa::path(put, path = "/orgs/{org}/apps/{app}/deltas/{delta}", tag = "deltas", params(("org" = String, Path), ("app" = String, Path), ("delta" = String, Path)), request_body = DeltaRequest, responses((status = 204)))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, delta)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<DeltaRequest>,
) -> Result<StatusCode, ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::Deploy)?;
    let content = serde_json::to_string(&content_of(&body)?).unwrap_or_default();
    let (env_id, name, user) = (
        metadata_text(&body, "env_id"),
        metadata_text(&body, "name"),
        access.org.user_id.clone(),
    );
    state
        .store
        .update_delta(
            &org,
            &app,
            &delta,
            Box::new(move |mut row| {
                row.content = content;
                row.env_id = env_id;
                row.name = name;
                add_contributer(&mut row, &user);
                Ok(row)
            }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A PATCH or PUT by someone other than the creator adds them to `contributers`.
fn add_contributer(row: &mut DeltaRow, user: &str) {
    row.last_modified_at = gangplank_store::now_millis();
    if row.created_by == user {
        return;
    }
    let mut list: Vec<String> = serde_json::from_str(&row.contributers).unwrap_or_default();
    if !list.iter().any(|u| u == user) {
        list.push(user.to_owned());
    }
    row.contributers = serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
}

async fn set_metadata(
    state: &AppState,
    caller: &Caller,
    (org, app, delta): (String, String, String),
    change: Box<dyn FnOnce(&mut DeltaRow) + Send>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(state, &org)
        .await?
        .app(state, &app)
        .await?
        .require(Action::Deploy)?;
    state
        .store
        .update_delta(
            &org,
            &app,
            &delta,
            Box::new(move |mut row| {
                change(&mut row);
                row.last_modified_at = gangplank_store::now_millis();
                Ok(row)
            }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Archives or unarchives a delta (body: a JSON boolean).
#[utoipa::path(put, path = "/orgs/{org}/apps/{app}/deltas/{delta}/metadata/archived", tag = "deltas", params(("org" = String, Path), ("app" = String, Path), ("delta" = String, Path)), request_body(content = bool, content_type = "application/json", description = "a JSON boolean"), responses((status = 204)))]
async fn set_archived(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String, String)>,
    ApiJson(archived): ApiJson<bool>,
) -> Result<StatusCode, ApiError> {
    set_metadata(
        &state,
        &caller,
        path,
        Box::new(move |row| row.archived = archived),
    )
    .await
}

/// Sets a delta's environment (body: a JSON string).
#[utoipa::path(put, path = "/orgs/{org}/apps/{app}/deltas/{delta}/metadata/env_id", tag = "deltas", params(("org" = String, Path), ("app" = String, Path), ("delta" = String, Path)), request_body(content = String, content_type = "application/json", description = "the environment id as a JSON string"), responses((status = 204)))]
async fn set_env(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String, String)>,
    ApiJson(env_id): ApiJson<String>,
) -> Result<StatusCode, ApiError> {
    set_metadata(
        &state,
        &caller,
        path,
        Box::new(move |row| row.env_id = env_id),
    )
    .await
}

/// Sets a delta's name (body: a JSON string).
#[utoipa::path(put, path = "/orgs/{org}/apps/{app}/deltas/{delta}/metadata/name", tag = "deltas", params(("org" = String, Path), ("app" = String, Path), ("delta" = String, Path)), request_body(content = String, content_type = "application/json", description = "the name as a JSON string"), responses((status = 204)))]
async fn set_name(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String, String)>,
    ApiJson(name): ApiJson<String>,
) -> Result<StatusCode, ApiError> {
    set_metadata(&state, &caller, path, Box::new(move |row| row.name = name)).await
}
