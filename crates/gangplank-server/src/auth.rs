//! Authentication (bearer tokens, stored as keyed hashes) and authorization (roles through
//! `gangplank_core::access`).

use aws_lc_rs::hmac;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
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

/// Prefix of a stored keyed hash; stored hashes without it are the unkeyed ones of before.
const KEYED_PREFIX: &str = "h1:";

/// The id of the server secret tokens are hashed with.
pub const TOKEN_KEY_ID: &str = "token-hmac";

/// A new random token: 256 bits of entropy.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Turns tokens into their stored form: `h1:` and hex HMAC-SHA256 under a server secret kept
/// sealed in the database. A generated token has full entropy, but an operator-chosen
/// bootstrap token may not; keyed, its hash in a copied database cannot be checked against
/// guesses without the master key. One HMAC per request, no slow KDF: authentication runs on
/// every request.
pub struct TokenHasher {
    key: hmac::Key,
    /// Whether unkeyed hashes (hex SHA-256, before migration 0006) were stored at start; only
    /// then does a miss cost a second lookup, which rewrites the row on a hit.
    legacy: bool,
}

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher([redacted])")
    }
}

impl TokenHasher {
    /// A hasher under `key`; `legacy` says whether unkeyed hashes may still be stored.
    pub fn new(key: &[u8], legacy: bool) -> Self {
        TokenHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            legacy,
        }
    }

    /// The hasher under the database's token key (created on first start), noting whether
    /// unkeyed hashes remain to be upgraded.
    pub async fn load(
        store: &gangplank_store::Store,
        secrets: &crate::secrets::SecretBox,
    ) -> anyhow::Result<Self> {
        let key = crate::secrets::server_secret(store, secrets, TOKEN_KEY_ID).await?;
        let legacy = store.legacy_token_hashes().await? > 0;
        Ok(TokenHasher::new(&key, legacy))
    }

    /// A keyed hash of `value` for purpose `label` (hex HMAC-SHA256 of `label:value`): the
    /// dashboard's stored session ids and its CSRF tokens. The label keeps each use's hashes
    /// apart from the others' and from token hashes.
    pub fn derive(&self, label: &str, value: &str) -> String {
        let tag = hmac::sign(&self.key, format!("{label}:{value}").as_bytes());
        hex::encode(tag.as_ref())
    }

    /// The stored form of `token`.
    pub fn hash(&self, token: &str) -> String {
        let tag = hmac::sign(&self.key, token.as_bytes());
        format!("{KEYED_PREFIX}{}", hex::encode(tag.as_ref()))
    }
}

/// The unkeyed stored form of before: hex SHA-256.
fn legacy_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The token of the request's one `Authorization: Bearer <token>` header. The scheme is
/// case-insensitive (RFC 9110 §11.1); two such headers are a 400 rather than first-wins, so a
/// proxy that adds its own cannot silently change who the caller is.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Bearer <token> header".to_owned())
    })?;
    if values.next().is_some() {
        return Err(ApiError::Invalid(
            "Authorization: send the header once".to_owned(),
        ));
    }
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be Bearer <token>".to_owned())
        })
}

/// The authenticated user behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        authenticate(&state.store, &state.tokens, token).await
    }
}

/// The caller a token stands for.
pub(crate) async fn authenticate(
    store: &gangplank_store::Store,
    hasher: &TokenHasher,
    token: &str,
) -> Result<Caller, ApiError> {
    let presented = hasher.hash(token);
    let mut principal = store.find_principal(&presented).await?;
    if principal.is_none() && hasher.legacy {
        let legacy = legacy_hash(token);
        principal = store.find_principal(&legacy).await?;
        if let Some(found) = &mut principal {
            store.upgrade_token_hash(&legacy, &presented).await?;
            found.token_hash.clone_from(&presented);
        }
    }
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
mod tests;
