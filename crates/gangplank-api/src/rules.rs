//! Automation rules (reference §2), with Gangplank's optional version policy.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Gangplank's addition: which version strings a rule accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum VersionPolicy {
    /// A semver constraint such as `^1.2` or `>=2, <3`.
    Semver {
        constraint: String,
        #[serde(default)]
        include_prerelease: bool,
    },
    /// A regex the version must match.
    Regex { pattern: String },
}

/// `AutomationRuleRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleRequest {
    /// Must be `update`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::vocabulary::RuleType)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artefacts_filter: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_artefacts_filter: Option<bool>,
    /// Deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_filter: Option<Vec<String>>,
    /// Deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_images_filter: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_ref: Option<String>,
    /// Deprecated: a regex on the branch or tag name.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub legacy_match: Option<String>,
    /// Deprecated: `branch` or `tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::vocabulary::UpdateTo>)]
    pub update_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_policy: Option<VersionPolicy>,
}

/// `AutomationRuleResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub active: bool,
    pub artefacts_filter: Vec<String>,
    pub exclude_artefacts_filter: bool,
    pub images_filter: Vec<String>,
    pub exclude_images_filter: bool,
    pub match_ref: String,
    #[serde(rename = "match")]
    pub legacy_match: String,
    pub update_to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_policy: Option<VersionPolicy>,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
}
