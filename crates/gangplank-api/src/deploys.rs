//! Deltas, sets and deployments (reference §5.4 to §5.7), and Gangplank's automation log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST …/envs/{env}/deploys`. No field is required: with neither `delta_id` nor `set_id`
/// the environment's `from_deploy` set is deployed again (a redeploy, or a rollback after a
/// rebase).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Accepted for compatibility; values are not versioned by Gangplank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_set_version_id: Option<String>,
    /// `full` (the default) or `incremental`; both deploy the whole set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// A deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    pub id: String,
    pub env_id: String,
    /// The deployment this one was based on; empty for an environment's first.
    pub from_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub delta_id: String,
    /// The set the environment has after this deployment.
    pub set_id: String,
    pub comment: String,
    /// `pending`, `in progress`, `succeeded` or `failed`.
    #[schema(value_type = crate::vocabulary::DeploymentStatus)]
    pub status: String,
    pub status_changed_at: String,
    pub created_at: String,
    pub created_by: String,
    /// Who or what started it: a user ID, or `rule/<id>` for automation.
    pub triggered_by: String,
    pub export_status: String,
    pub export_file: String,
}

/// One error of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentError {
    pub scope: String,
    pub object_id: String,
    pub code: String,
    pub summary: String,
    pub message: String,
    pub error_type: String,
}

/// A delta's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeltaMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub last_modified_at: String,
    pub archived: bool,
    /// Humanitec's spelling.
    pub contributers: Vec<String>,
}

/// `DeltaRequest`: `modules` (`add`, `remove`, `update`) and `shared`; `metadata.env_id` and
/// `metadata.name` are used on create. Other fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeltaRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `env_id` and `name` are read; other keys are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ModuleDeltas>)]
    pub modules: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<UpdateAction>>)]
    pub shared: Option<Value>,
}

/// `modules` of a delta: whole modules to add, module ids to remove, update actions per
/// module. (The server reads it into `gangplank_core::delta::ModuleDeltas`.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModuleDeltas {
    /// Module id → the module; in a PATCH, `null` takes the id out of `remove`.
    #[serde(default)]
    pub add: BTreeMap<String, Value>,
    /// Module ids to remove.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Module id → update actions (`updates` is accepted too).
    #[serde(default)]
    pub update: BTreeMap<String, Vec<UpdateAction>>,
}

/// A JSON-Patch-like update action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdateAction {
    #[schema(value_type = crate::vocabulary::PatchOp)]
    pub op: String,
    /// A JSON pointer into the module (or the shared list).
    #[schema(pattern = "^/")]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A stored delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delta {
    pub id: String,
    pub metadata: DeltaMetadata,
    /// `{add, remove, update}`.
    #[schema(value_type = ModuleDeltas)]
    pub modules: Value,
    #[schema(value_type = Vec<UpdateAction>)]
    pub shared: Value,
}

/// A set: the content-addressed state of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SetResponse {
    pub id: String,
    #[schema(value_type = Object)]
    pub modules: Value,
    #[schema(value_type = Object)]
    pub shared: Value,
    pub version: u32,
}

/// `GET …/sets/{id}?diff=` and `…/sets/{id}/diff/{source}`: the delta from source to set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlainDelta {
    #[schema(value_type = Object)]
    pub modules: Value,
    #[schema(value_type = Vec<Object>)]
    pub shared: Value,
}

/// One decision of automation about one artefact version in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AutomationLogEntry {
    pub artefact_version_id: String,
    pub name: String,
    pub version: String,
    /// The rule that fired, or whose reason is given; empty when the environment had none.
    pub rule_id: String,
    /// `queued`, `deployed` or `skipped`.
    #[schema(value_type = crate::vocabulary::AutomationOutcome)]
    pub outcome: String,
    /// `queued`, `resumed` (queued by the re-evaluation after `resume`), `deployed`, `filter`,
    /// `ref`, `policy`, `downgrade`, `no_workload`, `held`, `inactive`, `no_rule`, `superseded`.
    pub code: String,
    /// Why; for a version that went into a deployment, also how that deployment ended:
    /// `deployed in deployment X (failed: GP-AGENT-TIMEOUT …)`.
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deploy_id: String,
    /// The status of deployment `deploy_id` now (`pending`, `in progress`, `succeeded`,
    /// `failed`, …); absent without one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deploy_status: String,
    /// When that deployment failed, its first error: code and summary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deploy_error: String,
    pub created_at: String,
}

/// Whether automation is held in an environment (Gangplank's addition to the environment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AutomationState {
    pub held: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub held_by: String,
}
