//! Registries (reference §4) and the credentials handed to CI.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Write-only credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountCreds {
    pub username: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// `RegistryRequest`. On create `id`, `registry` and `type` are required; on PATCH nothing is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegistryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^[a-z0-9][a-z0-9-]+[a-z0-9]$",
        min_length = 3,
        max_length = 63
    )]
    pub id: Option<String>,
    /// The prefix images are matched by: `domain` or `domain/path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::vocabulary::RegistryType>)]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ci: Option<bool>,
    /// Gangplank: plain HTTP or unverified TLS for this registry (local and test registries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creds: Option<AccountCreds>,
    /// Kubernetes secret references per cluster (`"*"` for any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub secrets: Option<BTreeMap<String, Value>>,
}

/// `RegistryResponse`; credentials are never returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Registry {
    pub id: String,
    pub registry: String,
    #[serde(rename = "type")]
    #[schema(value_type = crate::vocabulary::RegistryType)]
    pub kind: String,
    pub enable_ci: bool,
    pub insecure: bool,
    /// Whether credentials are stored (they are never shown).
    pub has_creds: bool,
    #[schema(value_type = Object)]
    pub secrets: BTreeMap<String, Value>,
    pub created_at: String,
    pub created_by: String,
}

/// `RegistryCredsResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegistryCreds {
    pub registry: String,
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub expires: Option<String>,
}

/// One credentials fetch, for the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CredsFetch {
    pub user_id: String,
    pub fetched_at: String,
}
