//! What logs in to a registry: its stored credentials opened, with Google's fixed username,
//! or for ECR the stored AWS key exchanged for a registry token. One place for the CI
//! credentials endpoint, the digest resolver and image promotion; `client_for` opens an OCI
//! client for an image name through the org's registry records.

use std::sync::Arc;

use gangplank_api::registries::AccountCreds;
use gangplank_core::image::{DOCKER_HUB, RepositoryName};
use gangplank_core::registry::{RegistryType, longest_prefix_match};
use gangplank_oci::{Client, Credentials};
use gangplank_store::{RegistryRow, StoreError};

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

/// An OCI client for one repository, and the registry record it went through.
pub struct RegistryClient {
    pub client: Arc<Client>,
    pub registry_id: String,
}

/// Why no client could be opened.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No registry of the organization has a prefix covering the name.
    #[error("no registry of the organization matches {0}; add one with its credentials")]
    NoRegistry(String),
    #[error(transparent)]
    Login(#[from] LoginError),
}

/// A client for `name`: the org's registry whose prefix covers it (longest), logged in with
/// its stored credentials (ECR tokens included).
pub async fn client_for(
    state: &AppState,
    org_id: &str,
    name: &RepositoryName,
) -> Result<RegistryClient, ClientError> {
    let registries = state.store.list_registries(org_id).await?;
    let prefixes: Vec<String> = registries.iter().map(|r| r.registry.clone()).collect();
    let index = longest_prefix_match(&name.to_string(), &prefixes)
        .ok_or_else(|| ClientError::NoRegistry(name.to_string()))?;
    let registry = &registries[index];
    let creds = login(state, org_id, registry)
        .await?
        .map(|login| Credentials {
            username: login.username,
            password: login.password,
        });
    // Docker Hub's API lives on registry-1.docker.io.
    let host = match name.domain() {
        DOCKER_HUB => "registry-1.docker.io",
        other => other,
    };
    Ok(RegistryClient {
        client: state
            .registry_clients
            .get(state.outbound(), host, creds, registry.insecure),
        registry_id: registry.id.clone(),
    })
}
