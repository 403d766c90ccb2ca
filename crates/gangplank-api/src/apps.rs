//! Applications, environments and environment types (Humanitec reference §5.1 to §5.3).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{id, name, type}`: an environment inside an application response or request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnvSummary {
    /// Environment id.
    #[schema(pattern = r"^[a-z0-9](?:-?[a-z0-9]+)+$", max_length = 50)]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Environment type.
    #[serde(rename = "type")]
    #[schema(pattern = r"^[a-z0-9](?:-?[a-z0-9]+)+$", max_length = 50)]
    pub kind: String,
}

/// `POST /orgs/{org}/apps`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateApp {
    /// The app id (Humanitec's ID pattern).
    #[schema(pattern = r"^[a-z0-9](?:-?[a-z0-9]+)+$", max_length = 50)]
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
    /// The first environment; `development` of type `development` when absent.
    #[serde(default)]
    pub env: Option<EnvSummary>,
    /// Create no environment at all.
    #[serde(default)]
    pub skip_environment_creation: bool,
}

/// `PATCH /orgs/{org}/apps/{app}` and `PATCH …/envs/{env}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rename {
    /// The new display name.
    pub name: String,
}

/// An application as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct App {
    /// App id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Owning organization.
    pub org_id: String,
    /// Creation time, UTC.
    pub created_at: String,
    /// Creating user's id.
    pub created_by: String,
    /// The app's environments.
    pub envs: Vec<EnvSummary>,
    /// `active`.
    pub status: String,
    /// When the status last changed.
    pub status_changed_at: String,
}

/// `POST /orgs/{org}/apps/{app}/envs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateEnv {
    /// Environment id.
    #[schema(pattern = r"^[a-z0-9](?:-?[a-z0-9]+)+$", max_length = 50)]
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Environment type; `development` when absent.
    #[serde(rename = "type", default)]
    #[schema(pattern = r"^[a-z0-9](?:-?[a-z0-9]+)+$", max_length = 50)]
    pub kind: Option<String>,
    /// The deployment the environment starts from.
    #[serde(default)]
    pub from_deploy_id: Option<String>,
}

/// An environment as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Env {
    /// Environment id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Environment type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Creation time, UTC.
    pub created_at: String,
    /// Creating user's id.
    pub created_by: String,
    /// `active`.
    pub status: String,
    /// When the status last changed.
    pub status_changed_at: String,
    /// The deployment the next one starts from; differs from `last_deploy` after a rebase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_deploy: Option<crate::deploys::Deployment>,
    /// The newest deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deploy: Option<crate::deploys::Deployment>,
    /// Gangplank: whether automation is held (after a rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation: Option<crate::deploys::AutomationState>,
}

/// An environment type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnvType {
    /// Environment type id.
    #[schema(pattern = r"^[a-z0-9](?:-?[a-z0-9]+)+$", max_length = 50)]
    pub id: String,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// `PATCH /orgs/{org}/env-types/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PatchEnvType {
    /// The new description; `null` clears it.
    #[serde(default)]
    pub description: Option<String>,
}

/// `409` of `DELETE /orgs/{org}/env-types/{id}`: an environment that still uses the type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnvTypeUse {
    /// The app of the environment.
    pub app_id: String,
    /// The environment.
    pub env_id: String,
}
