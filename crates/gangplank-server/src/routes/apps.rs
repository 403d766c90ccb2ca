//! Applications and the roles users hold on them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::apps::{App, CreateApp, EnvSummary, Rename};
use gangplank_api::users::{ChangeAppRole, GrantRole, UserRole};
use gangplank_core::access::{Action, AppRole};
use gangplank_core::id::ResourceId;
use gangplank_store::{AppRow, EnvRow, NewApp, NewEnv};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;
use gangplank_core::timestamp::format_millis;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, rename, remove))
        .routes(routes!(list_users, grant))
        .routes(routes!(change_user, revoke))
}

fn app_response(row: AppRow, envs: Vec<EnvRow>) -> App {
    let created_at = format_millis(row.created_at);
    App {
        envs: envs
            .into_iter()
            .map(|e| EnvSummary {
                id: e.id,
                name: e.name,
                kind: e.env_type,
            })
            .collect(),
        id: row.id,
        name: row.name,
        org_id: row.org_id,
        status_changed_at: created_at.clone(),
        created_at,
        created_by: row.created_by,
        status: "active".to_owned(),
    }
}

/// The apps the caller can see (all of them for administrators and org viewers), oldest
/// first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps", tag = "apps", params(("org" = String, Path), PageParams), responses((status = 200, body = Vec<App>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    paging: Paging,
) -> Result<Paged<App>, ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::ReadOrg)?;
    let visible_to = (!access.role.sees_all_apps()).then_some(access.user_id.as_str());
    let apps = state
        .store
        .list_apps(&org, visible_to, paging.request())
        .await?;
    let ids = apps.items.iter().map(|app| app.id.clone()).collect();
    let mut envs = state.store.list_envs_of_apps(&org, ids).await?;
    Ok(paging.reply(apps.map(|app| {
        let (mine, rest): (Vec<EnvRow>, Vec<EnvRow>) =
            envs.drain(..).partition(|e| e.app_id == app.id);
        envs = rest;
        app_response(app, mine)
    })))
}

/// Creates an app with a first environment (`development` unless told otherwise).
#[utoipa::path(post, path = "/orgs/{org}/apps", tag = "apps", params(("org" = String, Path)), request_body = CreateApp, responses((status = 201, body = App), (status = 400, description = "`env.type` must name an existing environment type")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<CreateApp>,
) -> Result<(StatusCode, Json<App>), ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::CreateApp)?;
    let id = ResourceId::parse("id", &body.id)?;
    let name = body.name.unwrap_or_else(|| id.to_string());
    // A given environment is checked even when none is created: a request that breaks the
    // schema is refused whatever its other fields say.
    let given = body
        .env
        .map(|env| -> Result<NewEnv, ApiError> {
            Ok(NewEnv {
                id: ResourceId::parse("env.id", &env.id)?.to_string(),
                name: env.name,
                from_deploy_id: String::new(),
                env_type: ResourceId::parse("env.type", &env.kind)?.to_string(),
            })
        })
        .transpose()?;
    let env = match (body.skip_environment_creation, given) {
        (true, _) => None,
        (false, Some(env)) => Some(env),
        (false, None) => Some(NewEnv {
            id: "development".to_owned(),
            name: "Development".to_owned(),
            from_deploy_id: String::new(),
            env_type: "development".to_owned(),
        }),
    };
    let new = NewApp {
        org_id: org,
        id: id.to_string(),
        name,
        created_by: access.user_id,
        env,
    };
    let (row, envs) = state.store.create_app(new).await?;
    Ok((StatusCode::CREATED, Json(app_response(row, envs))))
}

/// One app with its environments.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}", tag = "apps", params(("org" = String, Path), ("app" = String, Path)), responses((status = 200, body = App)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
) -> Result<Json<App>, ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::ReadApp)?;
    let envs = state.store.list_envs(&org, &app).await?;
    Ok(Json(app_response(access.app, envs)))
}

/// Renames an app.
#[utoipa::path(patch, path = "/orgs/{org}/apps/{app}", tag = "apps", params(("org" = String, Path), ("app" = String, Path)), request_body = Rename, responses((status = 200, body = App)))]
async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<Rename>,
) -> Result<Json<App>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::UpdateApp)?;
    let row = state.store.rename_app(&org, &app, &body.name).await?;
    let envs = state.store.list_envs(&org, &app).await?;
    Ok(Json(app_response(row, envs)))
}

/// Deletes an app with its environments.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}", tag = "apps", params(("org" = String, Path), ("app" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::DeleteApp)?;
    state.store.delete_app(&org, &app).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_app_role(value: &str) -> Result<AppRole, ApiError> {
    AppRole::parse(value)
        .ok_or_else(|| ApiError::invalid("role", "must be viewer, developer or owner"))
}

/// Who holds which role on the app, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/users", tag = "apps", params(("org" = String, Path), ("app" = String, Path), PageParams), responses((status = 200, body = Vec<UserRole>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    paging: Paging,
) -> Result<Paged<UserRole>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let members = state
        .store
        .list_app_members(&org, &app, paging.request())
        .await?;
    Ok(
        paging.reply(members.map(|(id, name, role, since)| UserRole {
            id,
            name,
            created_at: format_millis(since),
            kind: "service".to_owned(),
            role,
            email: None,
        })),
    )
}

/// Grants a user a role on the app.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/users", tag = "apps", params(("org" = String, Path), ("app" = String, Path)), request_body = GrantRole, responses((status = 200)))]
async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<GrantRole>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ManageAppUsers)?;
    let role = parse_app_role(&body.role)?;
    state
        .store
        .set_app_role(&org, &app, &body.id, role.as_str())
        .await?;
    Ok(StatusCode::OK)
}

/// Changes a user's role on the app.
#[utoipa::path(patch, path = "/orgs/{org}/apps/{app}/users/{user}", tag = "apps", params(("org" = String, Path), ("app" = String, Path), ("user" = String, Path)), request_body = ChangeAppRole, responses((status = 200)))]
async fn change_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, user)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<ChangeAppRole>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ManageAppUsers)?;
    let role = parse_app_role(&body.role)?;
    state
        .store
        .set_app_role(&org, &app, &user, role.as_str())
        .await?;
    Ok(StatusCode::OK)
}

/// Revokes a user's role on the app.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/users/{user}", tag = "apps", params(("org" = String, Path), ("app" = String, Path), ("user" = String, Path)), responses((status = 204)))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, user)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ManageAppUsers)?;
    state.store.remove_app_role(&org, &app, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
