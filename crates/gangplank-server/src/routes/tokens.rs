//! API tokens of a user: shown once at creation, stored only as hashes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::users::{CreateToken, NewToken, TokenInfo};
use gangplank_core::access::{OrgRole, TargetMembership, TokenOp, TokenVerdict, token_verdict};
use gangplank_store::TokenRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, generate_token};
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

/// Gathers the facts `access::token_verdict` decides on: the target's organizations and
/// roles, the caller's role in each, and where the target holds a role on an app the caller
/// does not own.
async fn authorize(
    state: &AppState,
    caller: &Caller,
    user: &str,
    op: TokenOp,
) -> Result<(), ApiError> {
    let is_self = caller.user_id == user;
    let (caller_roles, not_owned) = if is_self {
        (Vec::new(), Vec::new())
    } else {
        (
            state.store.memberships(&caller.user_id).await?,
            state
                .store
                .orgs_with_app_roles_not_owned_by(user, &caller.user_id)
                .await?,
        )
    };
    let target_orgs = state.store.memberships(user).await?;
    let target: Vec<TargetMembership> = target_orgs
        .iter()
        .map(|(org, role)| TargetMembership {
            // A role this server does not know counts as the most powerful, never as none.
            role: OrgRole::parse(role).unwrap_or(OrgRole::Administrator),
            caller_role: caller_roles
                .iter()
                .find(|(caller_org, _)| caller_org == org)
                .and_then(|(_, role)| OrgRole::parse(role)),
            caller_owns_target_apps: !not_owned.contains(org),
        })
        .collect();
    match token_verdict(is_self, &target, op) {
        TokenVerdict::Hidden => Err(ApiError::NotFound(format!("no user {user}"))),
        TokenVerdict::Forbidden => Err(ApiError::Forbidden(
            "you may manage the tokens of users whose roles you could grant, in every \
             organization they belong to: their org role, and their app roles (an \
             administrator's, or the owner's of those apps); only an administrator manages \
             an administrator's"
                .to_owned(),
        )),
        TokenVerdict::Allowed => Ok(()),
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
    authorize(&state, &caller, &user, TokenOp::Read).await?;
    let page = state
        .store
        .list_tokens_page(&user, paging.request())
        .await?;
    Ok(paging.reply(page.map(token_info)))
}

/// Creates a token; the answer is the only time its secret is shown.
#[utoipa::path(post, path = "/users/{user}/tokens", tag = "tokens", params(("user" = String, Path)), request_body = CreateToken, responses((status = 200, body = NewToken), (status = 400, description = "`expires_at` must be in the future")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<Json<NewToken>, ApiError> {
    authorize(&state, &caller, &user, TokenOp::Create).await?;
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
            let now = gangplank_store::now_millis();
            if at <= now {
                return Err(ApiError::invalid("expires_at", "must be in the future"));
            }
            gangplank_core::limits::check_token_expiry("expires_at", at, now)?;
            Some(at)
        }
    };
    let token = generate_token();
    state
        .store
        .create_token(gangplank_store::NewToken {
            user_id: user,
            id: body.id,
            token_hash: state.tokens.hash(&token),
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
    authorize(&state, &caller, &user, TokenOp::Read).await?;
    state
        .store
        .get_token(&user, &token)
        .await?
        .map(|t| Json(token_info(t)))
        .ok_or_else(|| ApiError::NotFound(format!("no token {token}")))
}

/// Revokes a token. An organization's last administrator who can sign in cannot lose their
/// last usable token (400): they create the next one first.
#[utoipa::path(delete, path = "/users/{user}/tokens/{token}", tag = "tokens", params(("user" = String, Path), ("token" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((user, token)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &caller, &user, TokenOp::Delete).await?;
    state.store.delete_token(&user, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
