//! What logs in to a registry: its stored credentials opened, with Google's fixed username,
//! or for ECR the stored AWS key exchanged for a registry token. One place for the CI
//! credentials endpoint and the digest resolver.

use gangplank_api::registries::AccountCreds;
use gangplank_core::registry::RegistryType;
use gangplank_store::RegistryRow;

use crate::ecr::EcrError;
use crate::state::AppState;

/// A registry login.
pub struct Login {
    pub username: String,
    pub password: String,
    /// When it expires (wire timestamp), if the registry (ECR) or the stored creds say.
    pub expires: Option<String>,
}

/// Why no login could be made.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The stored credentials did not open or parse (server-side trouble).
    #[error("{0}")]
    Stored(String),
    /// ECR's exchange failed.
    #[error(transparent)]
    Ecr(#[from] EcrError),
}

/// The login for `registry`, or `None` when its type has no credentials or none are stored.
pub async fn login(
    state: &AppState,
    org_id: &str,
    registry: &RegistryRow,
) -> Result<Option<Login>, LoginError> {
    let kind =
        RegistryType::parse(&registry.kind).map_err(|e| LoginError::Stored(e.to_string()))?;
    if !kind.needs_creds() || registry.creds_sealed.is_empty() {
        return Ok(None);
    }
    let context = crate::secrets::context("registry", org_id, &registry.id);
    let plain = state
        .secrets
        .open(&context, &registry.creds_sealed)
        .map_err(|e| LoginError::Stored(e.to_string()))?;
    let stored: AccountCreds = serde_json::from_slice(&plain)
        .map_err(|e| LoginError::Stored(format!("stored credentials unreadable: {e}")))?;
    if kind == RegistryType::AmazonEcr {
        // The stored creds are an AWS access key id and secret; the login is an ECR token.
        let token = state
            .ecr_tokens
            .token(
                state.outbound(),
                (org_id.to_owned(), registry.id.clone()),
                &registry.registry,
                &stored.username,
                &stored.password,
            )
            .await?;
        return Ok(Some(Login {
            username: token.username,
            password: token.password,
            expires: Some(gangplank_core::timestamp::format_millis(
                token.expires_at.saturating_mul(1000),
            )),
        }));
    }
    Ok(Some(Login {
        username: kind.fixed_username().map_or(stored.username, str::to_owned),
        password: stored.password,
        expires: stored.expires,
    }))
}
