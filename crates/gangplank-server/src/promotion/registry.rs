//! A registry client for an image name: the org's registry whose prefix matches it (longest
//! prefix), logged in with its stored credentials (ECR tokens included), and the repository
//! path within that registry.

use std::sync::Arc;

use gangplank_core::image::RepositoryName;
use gangplank_oci::Client;

use super::PromotionError;
use crate::registry_login::{ClientError, client_for};
use crate::state::AppState;

/// A repository and the client that reaches it.
pub struct Repo {
    pub client: Arc<Client>,
    /// The normalised image name (`host/path`).
    pub image: String,
    /// The path within the registry.
    pub path: String,
}

/// The repository `image` (`host/path`, no tag) names, through the org's registry records.
pub async fn open(state: &AppState, org_id: &str, image: &str) -> Result<Repo, PromotionError> {
    let name = RepositoryName::parse(image)
        .map_err(|e| PromotionError::Refused(format!("image {image}: {e}")))?;
    let opened = client_for(state, org_id, &name)
        .await
        .map_err(|e| match e {
            ClientError::NoRegistry(_) => PromotionError::Refused(e.to_string()),
            ClientError::Store(e) => e.into(),
            ClientError::Login(e) => PromotionError::Unavailable(e.to_string()),
        })?;
    Ok(Repo {
        client: opened.client,
        image: name.to_string(),
        path: name.path().to_owned(),
    })
}
