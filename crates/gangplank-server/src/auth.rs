//! Authentication (bearer tokens, stored as SHA-256 hashes) and authorization (roles through
//! `gangplank_core::access`).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gangplank_core::access::{Action, AppRole, OrgRole, is_allowed};
use gangplank_store::AppRow;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Prefix of every generated token, so leaked tokens are easy to recognise and scan for.
const TOKEN_PREFIX: &str = "gp_";

/// A new random token: 256 bits of entropy.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token: hex SHA-256. Tokens have full entropy, so no slow KDF is needed.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated user behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header_value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("missing Authorization: Bearer <token> header".to_owned())
        })?;
        let token = header_value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be Bearer <token>".to_owned())
            })?;
        let presented = hash_token(token);
        let principal = state.store.find_principal(&presented).await?;
        // The lookup is by hash; comparing again in constant time keeps any timing difference
        // away from the secret even if the index lookup were ever replaced by a scan.
        let principal = principal
            .filter(|p| bool::from(p.token_hash.as_bytes().ct_eq(presented.as_bytes())))
            .ok_or_else(|| ApiError::Unauthorized("invalid token".to_owned()))?;
        if principal
            .expires_at
            .is_some_and(|at| at <= gangplank_store::now_millis())
        {
            return Err(ApiError::Unauthorized("token expired".to_owned()));
        }
        Ok(Caller {
            user_id: principal.user_id,
        })
    }
}

/// A caller's standing in one organization.
#[derive(Debug, Clone)]
pub struct OrgAccess {
    pub org_id: String,
    pub user_id: String,
    pub role: OrgRole,
}

/// A caller's standing on one application.
#[derive(Debug, Clone)]
pub struct AppAccess {
    pub org: OrgAccess,
    pub app: AppRow,
    pub role: Option<AppRole>,
}

impl Caller {
    /// The caller's role in `org_id`; 403 when they hold none (whether or not it exists).
    pub async fn in_org(&self, state: &AppState, org_id: &str) -> Result<OrgAccess, ApiError> {
        let member = state.store.get_member(org_id, &self.user_id).await?;
        let role = member
            .and_then(|m| OrgRole::parse(&m.role))
            .ok_or_else(|| ApiError::Forbidden(format!("no access to organization {org_id}")))?;
        Ok(OrgAccess {
            org_id: org_id.to_owned(),
            user_id: self.user_id.clone(),
            role,
        })
    }
}

impl OrgAccess {
    /// 403 unless the org role allows `action`.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if is_allowed(self.role, None, action) {
            Ok(())
        } else {
            Err(forbidden(action))
        }
    }

    /// Looks up an app (404 if missing) and the caller's role on it.
    pub async fn app(&self, state: &AppState, app_id: &str) -> Result<AppAccess, ApiError> {
        let app = state
            .store
            .get_app(&self.org_id, app_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no app {app_id}")))?;
        let role = state
            .store
            .app_role(&self.org_id, app_id, &self.user_id)
            .await?;
        Ok(AppAccess {
            org: self.clone(),
            app,
            role: role.as_deref().and_then(AppRole::parse),
        })
    }
}

impl AppAccess {
    /// 403 unless the org role or the app role allows `action` on this app.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if is_allowed(self.org.role, self.role, action) {
            Ok(())
        } else {
            Err(forbidden(action))
        }
    }
}

fn forbidden(action: Action) -> ApiError {
    ApiError::Forbidden(format!("your role does not allow this ({action:?})"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_and_hashes_are_stable() {
        let (a, b) = (super::generate_token(), super::generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with("gp_") && a.len() == 46, "{a}");
        assert_eq!(super::hash_token("x"), super::hash_token("x"));
        assert_eq!(super::hash_token("x").len(), 64);
    }
}
