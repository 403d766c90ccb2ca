//! Pipelines (promotion.md §1.3): `Pipeline`, `PipelineVersion` and `PipelineCriteria` in
//! Humanitec's shapes. A pipeline is created and updated with its YAML definition as the body
//! (`application/x-yaml`), so there is no JSON create body for it; criteria have one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `Pipeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pipeline {
    pub id: String,
    pub etag: String,
    pub org_id: String,
    pub app_id: String,
    pub name: String,
    /// Always `active`.
    pub status: String,
    /// The current version's id.
    pub version: String,
    pub created_at: String,
    /// The trigger kinds of the definition's `on`: `pipeline_call`, `deployment_request`,
    /// `artefact`.
    pub trigger_types: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `PipelineVersion`. The definition itself is `GET …/schema?version=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PipelineVersion {
    pub id: String,
    pub org_id: String,
    pub app_id: String,
    pub pipeline_id: String,
    pub created_by: String,
    pub created_at: String,
}

/// `PipelineCriteria` (trigger `deployment_request`, the only kind). Unset match attributes
/// are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PipelineCriteria {
    pub trigger: String,
    pub id: String,
    pub pipeline_id: String,
    pub pipeline_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_id: Option<String>,
    /// `deploy` or `redeploy` (`re-deploy` is accepted on input); absent matches both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_type: Option<String>,
}

/// `PipelineCriteriaCreateBody`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineCriteriaCreateBody {
    /// Only `deployment_request`.
    pub trigger: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_type: Option<String>,
}
