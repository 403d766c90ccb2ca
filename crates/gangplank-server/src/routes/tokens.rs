//! API tokens of a user: shown once at creation, stored only as hashes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::users::{CreateToken, NewToken, TokenInfo};
use gangplank_core::access::{Action, OrgRole, is_allowed};
use gangplank_store::TokenRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, generate_token, hash_token};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;
use gangplank_core::timestamp::{format_millis, parse_rfc3339_millis};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, remove))
}

fn token_info(row: TokenRow) -> TokenInfo {
    TokenInfo {
        id: row.id,
        kind: "static".to_owned(),
        description: row.description,
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
        expires_at: row.expires_at.map(format_millis),
    }
}

/// Callers manage their own tokens; managers and administrators manage the tokens of users in
/// their organizations. Others in a shared organization get 403; callers who share none get
/// 404, so user ids cannot be probed from outside.
async fn authorize(state: &AppState, caller: &Caller, user: &str) -> Result<(), ApiError> {
    if caller.user_id == user {
        return Ok(());
    }
    let not_found = || ApiError::NotFound(format!("no user {user}"));
    let caller_roles = state.store.memberships(&caller.user_id).await?;
    let target_orgs = state.store.memberships(user).await?;
    if target_orgs.is_empty() {
        return Err(not_found());
    }
    let shared: Vec<&str> = caller_roles
        .iter()
        .filter(|(caller_org, _)| target_orgs.iter().any(|(org, _)| org == caller_org))
        .map(|(_, role)| role.as_str())
        .collect();
    let manages = shared
        .iter()
        .any(|role| OrgRole::parse(role).is_some_and(|r| is_allowed(r, None, Action::ManageUsers)));
    match (manages, shared.is_empty()) {
        (true, _) => Ok(()),
        (false, false) => Err(ApiError::Forbidden(
            "only managers and administrators manage other users' tokens".to_owned(),
        )),
        (false, true) => Err(not_found()),
    }
}

/// The user's tokens (metadata only), oldest first, a page at a time.
#[utoipa::path(get, path = "/users/{user}/tokens", tag = "tokens", params(("user" = String, Path), PageParams), responses((status = 200, body = Vec<TokenInfo>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    paging: Paging,
) -> Result<Paged<TokenInfo>, ApiError> {
    authorize(&state, &caller, &user).await?;
    let page = state
        .store
        .list_tokens_page(&user, paging.request())
        .await?;
    Ok(paging.reply(page.map(token_info)))
}

/// Creates a token; the answer is the only time its secret is shown.
#[utoipa::path(post, path = "/users/{user}/tokens", tag = "tokens", params(("user" = String, Path)), request_body = CreateToken, responses((status = 200, body = NewToken)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<Json<NewToken>, ApiError> {
    authorize(&state, &caller, &user).await?;
    if !gangplank_core::id::is_valid_id(&body.id) {
        return Err(ApiError::invalid(
            "id",
            "must match ^[a-z0-9](?:-?[a-z0-9]+)+$ and be at most 50 characters",
        ));
    }
    if body.kind != "static" {
        return Err(ApiError::invalid("type", "must be \"static\""));
    }
    let expires_at = match body.expires_at.as_deref() {
        None => None,
        Some(text) => {
            let at = parse_rfc3339_millis(text)
                .ok_or_else(|| ApiError::invalid("expires_at", "must be an RFC 3339 timestamp"))?;
            if at <= gangplank_store::now_millis() {
                return Err(ApiError::invalid("expires_at", "must be in the future"));
            }
            Some(at)
        }
    };
    let token = generate_token();
    state
        .store
        .create_token(gangplank_store::NewToken {
            user_id: user,
            id: body.id,
            token_hash: hash_token(&token),
            description: body.description.unwrap_or_default(),
            created_by: caller.user_id,
            expires_at,
        })
        .await?;
    Ok(Json(NewToken {
        token,
        kind: "static".to_owned(),
    }))
}

/// One token's metadata.
#[utoipa::path(get, path = "/users/{user}/tokens/{token}", tag = "tokens", params(("user" = String, Path), ("token" = String, Path)), responses((status = 200, body = TokenInfo)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((user, token)): Path<(String, String)>,
) -> Result<Json<TokenInfo>, ApiError> {
    authorize(&state, &caller, &user).await?;
    let tokens = state.store.list_tokens(&user).await?;
    let found = tokens.into_iter().find(|t| t.id == token);
    found
        .map(|t| Json(token_info(t)))
        .ok_or_else(|| ApiError::NotFound(format!("no token {token}")))
}

/// Revokes a token.
#[utoipa::path(delete, path = "/users/{user}/tokens/{token}", tag = "tokens", params(("user" = String, Path), ("token" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((user, token)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &caller, &user).await?;
    state.store.delete_token(&user, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
