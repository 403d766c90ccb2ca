//! Container versions Gangplank learns of from a registry (a push notification, a watch's
//! poll, a build) are never registered on the sender's word: the tag is resolved through the
//! registry with the org's stored credentials, and the version registered with the digest the
//! registry reports, so a forged event cannot inject a digest. An identical registration
//! returns the stored version (deduplicated by name, tag and digest); a new one wakes
//! automation, pipeline triggers and webhooks exactly as a CI registration does.

use gangplank_core::artefact::{ArtefactVersionFields, ArtefactVersionInput};
use gangplank_core::image::RepositoryName;
use gangplank_oci::OciError;
use gangplank_store::{ArtefactVersionRow, NewArtefactVersion, StoreError, VersionOutcome};

use crate::registry_login::{ClientError, client_for};
use crate::state::AppState;

/// A tag a registry says it stored, and what the sender adds about its source.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub image: RepositoryName,
    pub tag: String,
    /// The VCS ref, when the sender knows it (a build), else empty.
    pub git_ref: String,
    /// The commit, when the sender knows it (a build), else empty.
    pub commit: String,
}

/// What a registration did.
#[derive(Debug, Clone)]
pub enum Registered {
    /// A new version (automation and triggers were woken).
    Created(ArtefactVersionRow),
    /// The same name, tag and digest were registered before: nothing happened twice.
    Existing(ArtefactVersionRow),
}

impl Registered {
    pub fn row(&self) -> &ArtefactVersionRow {
        match self {
            Registered::Created(row) | Registered::Existing(row) => row,
        }
    }
}

/// Why nothing was registered.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No registry record of the org covers the image: it cannot be checked.
    #[error("{0}")]
    NoRegistry(String),
    /// The registry does not have the tag (a forged or stale event).
    #[error("{image}:{tag} is not in the registry")]
    NotInRegistry { image: String, tag: String },
    /// The registry could not be asked (worth retrying).
    #[error("{0}")]
    Unavailable(String),
    /// The registration does not make a valid version (a tag that is not one).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Resolves `pushed` through its registry and registers the container version, on behalf of
/// `created_by` (a hook, a watch or a build, as `kind:id`).
pub async fn register(
    state: &AppState,
    org_id: &str,
    pushed: &Pushed,
    created_by: &str,
) -> Result<Registered, VerifyError> {
    let opened = client_for(state, org_id, &pushed.image)
        .await
        .map_err(|e| match e {
            ClientError::NoRegistry(_) => VerifyError::NoRegistry(e.to_string()),
            ClientError::Store(e) => VerifyError::Store(e),
            ClientError::Login(e) => VerifyError::Unavailable(e.to_string()),
        })?;
    let digest = match opened
        .client
        .resolve_digest(pushed.image.path(), &pushed.tag)
        .await
    {
        Ok(digest) => digest,
        Err(OciError::Status { status: 404, .. }) => {
            return Err(VerifyError::NotInRegistry {
                image: pushed.image.to_string(),
                tag: pushed.tag.clone(),
            });
        }
        Err(error) => return Err(VerifyError::Unavailable(error.to_string())),
    };
    let name = pushed.image.to_string();
    let none_if_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let (git_ref, commit) = (
        none_if_empty(&pushed.git_ref),
        none_if_empty(&pushed.commit),
    );
    let fields = ArtefactVersionFields::parse(&ArtefactVersionInput {
        kind: "container",
        name: &name,
        version: Some(&pushed.tag),
        git_ref: git_ref.as_deref(),
        commit: commit.as_deref(),
        digest: Some(&digest),
        vcs: None,
        has_spec: false,
        workload_fields: Vec::new(),
    })
    .map_err(|e| VerifyError::Invalid(e.to_string()))?;
    let new = new_version(org_id, fields, (String::new(), None), created_by);
    Ok(match state.store.record_artefact_version(new).await? {
        VersionOutcome::Created(row, follow_up) => {
            recorded(state, &row, follow_up);
            Registered::Created(row)
        }
        VersionOutcome::Existing(row) => Registered::Existing(row),
    })
}

/// The version to record from checked `fields`, with its workload document's hash and text
/// (none for a container), on behalf of `created_by`.
pub fn new_version(
    org_id: &str,
    fields: ArtefactVersionFields,
    (content_hash, spec): (String, Option<String>),
    created_by: &str,
) -> NewArtefactVersion {
    NewArtefactVersion {
        org_id: org_id.to_owned(),
        id: uuid::Uuid::new_v4().to_string(),
        new_artefact_id: uuid::Uuid::new_v4().to_string(),
        name: fields.name,
        kind: fields.kind.as_str().to_owned(),
        version: fields.version,
        git_ref: fields.git_ref,
        commit_sha: fields.commit,
        digest: fields.digest,
        content_hash,
        spec,
        created_by: created_by.to_owned(),
    }
}

/// What follows a new version, however it was registered: the metric, and the workers woken.
pub fn recorded(state: &AppState, row: &ArtefactVersionRow, follow_up: gangplank_store::FollowUp) {
    crate::metrics::artefact_version_created(&row.kind);
    if follow_up.automation {
        state.wake.automation.notify_one();
    }
    if follow_up.deliveries {
        state.wake.delivery.notify_one();
    }
    if follow_up.resolve_digest {
        state.wake.resolver.notify_one();
    }
    tracing::info!(name = %row.name, version = %row.version, id = %row.id, "artefact version recorded");
}
