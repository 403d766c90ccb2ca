//! A registry client for an image name: the org's registry whose prefix matches it (longest
//! prefix), logged in with its stored credentials (ECR tokens included), and the repository
//! path within that registry.

use gangplank_core::image::{DOCKER_HUB, RepositoryName};
use gangplank_core::registry::longest_prefix_match;
use gangplank_oci::{Client, Credentials};

use super::PromotionError;
use crate::state::AppState;

/// A repository and the client that reaches it.
pub struct Repo {
    pub client: Client,
    /// The normalised image name (`host/path`).
    pub image: String,
    /// The path within the registry.
    pub path: String,
}

/// The repository `image` (`host/path`, no tag) names, through the org's registry records.
pub async fn open(state: &AppState, org_id: &str, image: &str) -> Result<Repo, PromotionError> {
    let name = RepositoryName::parse(image)
        .map_err(|e| PromotionError::Refused(format!("image {image}: {e}")))?;
    let registries = state.store.list_registries(org_id).await?;
    let prefixes: Vec<String> = registries.iter().map(|r| r.registry.clone()).collect();
    let index = longest_prefix_match(&name.to_string(), &prefixes).ok_or_else(|| {
        PromotionError::Refused(format!(
            "no registry of the organization matches {name}; add one with its credentials"
        ))
    })?;
    let registry = &registries[index];
    let creds = crate::registry_login::login(state, org_id, registry)
        .await
        .map_err(|e| PromotionError::Unavailable(e.to_string()))?
        .map(|login| Credentials {
            username: login.username,
            password: login.password,
        });
    // Docker Hub's API lives on registry-1.docker.io.
    let host = match name.domain() {
        DOCKER_HUB => "registry-1.docker.io",
        other => other,
    };
    Ok(Repo {
        client: Client::new(state.outbound().clone(), host, creds, registry.insecure),
        image: name.to_string(),
        path: name.path().to_owned(),
    })
}
