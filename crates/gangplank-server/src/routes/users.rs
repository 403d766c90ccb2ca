//! Organization users: service users and their org roles; `GET /current-user`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::users::{ChangeRole, CreateServiceUser, CurrentUser, UserRole};
use gangplank_core::access::{Action, OrgRole, may_manage_user};
use gangplank_store::MemberRow;
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
        .routes(routes!(current_user))
        .routes(routes!(list, create))
        .routes(routes!(get_one, change_role, remove))
}

pub fn user_role(row: MemberRow) -> UserRole {
    UserRole {
        id: row.id,
        name: row.name,
        created_at: format_millis(row.created_at),
        kind: row.kind,
        role: row.role,
        email: Some(row.email).filter(|e| !e.is_empty()),
    }
}

fn parse_org_role(value: &str) -> Result<OrgRole, ApiError> {
    OrgRole::parse(value).ok_or_else(|| {
        ApiError::invalid(
            "role",
            "must be administrator, manager, member, artefactContributor or orgViewer",
        )
    })
}

/// The calling user and their roles.
#[utoipa::path(get, path = "/current-user", tag = "users", responses((status = 200, body = CurrentUser)))]
async fn current_user(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CurrentUser>, ApiError> {
    let user = state
        .store
        .get_user(&caller.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the token's user no longer exists".to_owned()))?;
    let roles: BTreeMap<String, String> = state
        .store
        .memberships(&caller.user_id)
        .await?
        .into_iter()
        .map(|(org, role)| (format!("/orgs/{org}"), role))
        .collect();
    Ok(Json(CurrentUser {
        id: user.id,
        name: user.name,
        email: Some(user.email).filter(|e| !e.is_empty()),
        created_at: format_millis(user.created_at),
        kind: user.kind,
        properties: BTreeMap::new(),
        roles,
    }))
}

/// Users of the organization with their roles, oldest first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/users", tag = "users", params(("org" = String, Path), PageParams), responses((status = 200, body = Vec<UserRole>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    paging: Paging,
) -> Result<Paged<UserRole>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    let page = state.store.list_members(&org, paging.request()).await?;
    Ok(paging.reply(page.map(user_role)))
}

/// Creates a service user with an organization role.
#[utoipa::path(post, path = "/orgs/{org}/users", tag = "users", params(("org" = String, Path)), request_body = CreateServiceUser, responses((status = 200, body = UserRole)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<CreateServiceUser>,
) -> Result<Json<UserRole>, ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::ManageUsers)?;
    let role = parse_org_role(&body.role)?;
    if !may_manage_user(access.role, role) {
        return Err(ApiError::Forbidden(format!(
            "a {} cannot grant the role {role}",
            access.role
        )));
    }
    // The limit is on the name as given, in characters, as the OpenAPI document states it.
    let name = body.name.trim();
    if name.is_empty() || body.name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "must be 1 to 200 characters"));
    }
    let email = body.email.unwrap_or_default();
    let user_id = uuid::Uuid::new_v4().to_string();
    let row = state
        .store
        .create_service_user(&org, &user_id, name, &email, role.as_str())
        .await?;
    Ok(Json(user_role(row)))
}

/// One user of the organization.
#[utoipa::path(get, path = "/orgs/{org}/users/{user}", tag = "users", params(("org" = String, Path), ("user" = String, Path)), responses((status = 200, body = UserRole)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<Json<UserRole>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    let member = state.store.get_member(&org, &user).await?;
    member
        .map(|m| Json(user_role(m)))
        .ok_or_else(|| ApiError::NotFound(format!("no user {user} in org {org}")))
}

/// Changes a user's organization role: the caller must be able to grant both the current
/// and the new role, and the organization keeps an administrator (400 otherwise).
#[utoipa::path(patch, path = "/orgs/{org}/users/{user}", tag = "users", params(("org" = String, Path), ("user" = String, Path)), request_body = ChangeRole, responses((status = 200, body = UserRole)))]
async fn change_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<ChangeRole>,
) -> Result<Json<UserRole>, ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::ManageUsers)?;
    let role = parse_org_role(&body.role)?;
    let target = state
        .store
        .get_member(&org, &user)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {user} in org {org}")))?;
    let current = parse_org_role(&target.role)?;
    if !may_manage_user(access.role, current) || !may_manage_user(access.role, role) {
        return Err(ApiError::Forbidden(format!(
            "a {} cannot change a {current} into a {role}",
            access.role
        )));
    }
    state.store.set_org_role(&org, &user, role.as_str()).await?;
    Ok(Json(user_role(MemberRow {
        role: role.as_str().to_owned(),
        ..target
    })))
}

/// Removes a user from the organization: only a user whose role the caller could grant, and
/// never the last administrator (400).
#[utoipa::path(delete, path = "/orgs/{org}/users/{user}", tag = "users", params(("org" = String, Path), ("user" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::ManageUsers)?;
    let target = state
        .store
        .get_member(&org, &user)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {user} in org {org}")))?;
    if !may_manage_user(access.role, parse_org_role(&target.role)?) {
        return Err(ApiError::Forbidden(format!(
            "a {} cannot remove a {}",
            access.role, target.role
        )));
    }
    state.store.remove_member(&org, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
