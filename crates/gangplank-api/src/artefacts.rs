//! Artefacts and artefact versions (Humanitec reference §1).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /orgs/{org}/artefact-versions` as JSON. Unknown fields are ignored, as Humanitec does.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateArtefactVersion {
    /// `container` or `workload`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::vocabulary::ArtefactType)]
    pub kind: String,
    /// The artefact name; for containers the image repository without tag.
    pub name: String,
    /// For containers, the image tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The git ref the artefact was built from, e.g. `refs/heads/main`.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// The commit the artefact was built from (5 to 64 hex characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Container only: `sha256:<64 hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Workload only: the Score workload specification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
    /// Workload only: default image for containers without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Workload only: a Score overrides document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Value>,
    /// Workload only: path → value overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_overrides: Option<Value>,
    /// Workload only: resource type aliases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type_aliases: Option<Value>,
    /// Workload only: Humanitec Score extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// An artefact version as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtefactVersion {
    /// The version's UUID.
    pub id: String,
    /// The artefact's UUID.
    pub artefact_id: String,
    /// The artefact name.
    pub name: String,
    /// `container` or `workload`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::vocabulary::ArtefactType)]
    pub kind: String,
    /// Whether the version is archived.
    pub archived: bool,
    /// The version (tag), possibly empty.
    pub version: String,
    /// The git ref, possibly empty.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The commit, possibly empty.
    pub commit: String,
    /// Container only: the digest (given, or resolved from the registry), possibly empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Gangplank: resolving the tag's digest from a known registry: `pending`, `retrying` (the
    /// last attempt failed; see `digest_error`) or `resolved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::vocabulary::DigestStatus>)]
    pub digest_status: Option<String>,
    /// Gangplank: why the last resolution attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_error: Option<String>,
    /// Creation time, UTC.
    pub created_at: String,
    /// Creating user's id.
    pub created_by: String,
    /// Last change, UTC.
    pub updated_at: String,
    /// Last changing user's id.
    pub updated_by: String,
}

/// An artefact as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Artefact {
    /// The artefact's UUID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `container` or `workload`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::vocabulary::ArtefactType)]
    pub kind: String,
    /// Creation time, UTC.
    pub created_at: String,
    /// Creating user's id.
    pub created_by: String,
    /// Last change, UTC.
    pub updated_at: String,
    /// Last changing user's id.
    pub updated_by: String,
}

/// `PATCH …/artefacts/{id}/versions/{versionId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PatchArtefactVersion {
    /// Archive (`true`) or unarchive (`false`).
    pub archived: bool,
}

/// `POST /orgs/{org}/artefact-versions` as `multipart/form-data`: the fields of
/// [`CreateArtefactVersion`] as parts, the structured ones (`spec`, `overrides`, …) as YAML or
/// JSON text, usually file parts (`spec=@score.yaml`). Documentation only: the server reads
/// the parts one by one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateArtefactVersionForm {
    /// `container` or `workload`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::vocabulary::ArtefactType)]
    pub kind: String,
    /// The artefact name.
    pub name: String,
    /// For containers, the image tag.
    #[serde(default)]
    pub version: Option<String>,
    /// The git ref.
    #[serde(rename = "ref", default)]
    pub git_ref: Option<String>,
    /// The commit (5 to 64 hex characters).
    #[serde(default)]
    pub commit: Option<String>,
    /// Container only: `sha256:<64 hex>`.
    #[serde(default)]
    pub digest: Option<String>,
    /// Workload only: default image.
    #[serde(default)]
    pub image: Option<String>,
    /// Workload only: the Score workload specification, YAML or JSON.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Binary)]
    pub spec: Option<String>,
    /// Workload only: a Score overrides document, YAML or JSON.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Binary)]
    pub overrides: Option<String>,
    /// Workload only: path → value overrides, YAML or JSON.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Binary)]
    pub property_overrides: Option<String>,
    /// Workload only: resource type aliases, YAML or JSON.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Binary)]
    pub resource_type_aliases: Option<String>,
    /// Workload only: Humanitec Score extensions, YAML or JSON.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Binary)]
    pub extensions: Option<String>,
}
