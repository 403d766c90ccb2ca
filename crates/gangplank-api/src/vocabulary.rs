//! The closed sets of words the API uses in string fields, as OpenAPI enums.
//!
//! The wire fields stay `String` (their values are checked, with a 400 naming the field, by
//! `gangplank-core`); these types only give the fields' schemas their allowed values, through
//! `#[schema(value_type = …)]`, so that generated clients and fuzzers know them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kind of an artefact.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArtefactType {
    Container,
    Workload,
}

/// Whether a container version's digest has been resolved from its registry.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DigestStatus {
    Pending,
    Retrying,
    Resolved,
}

/// An organization role.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum OrgRoleName {
    Administrator,
    Manager,
    Member,
    ArtefactContributor,
    OrgViewer,
}

/// An application role.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppRoleName {
    Viewer,
    Developer,
    Owner,
}

/// The state of a deployment.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum DeploymentStatus {
    #[serde(rename = "pending")]
    Pending,
    #[serde(rename = "in progress")]
    InProgress,
    #[serde(rename = "succeeded")]
    Succeeded,
    #[serde(rename = "failed")]
    Failed,
    #[serde(rename = "cancelled")]
    Cancelled,
}

/// Why a deployment failed: the target said no, or gave no answer in time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentFailure {
    Failed,
    Errored,
}

/// How a registry is reached.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistryType {
    Public,
    Basic,
    AmazonEcr,
}

/// The state of a webhook delivery.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Succeeded,
    Failed,
}

/// What automation did with an artefact version.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutomationOutcome {
    Queued,
    Deployed,
    Skipped,
}

/// The only automation rule type.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    Update,
}

/// Deprecated rule field: what a legacy `match` is tested against.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpdateTo {
    Branch,
    Tag,
}

/// The only token type.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Static,
}

/// The operation of a delta's update action.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
}

/// Where an environment deploys: nowhere (record only) or to compose host agents.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    None,
    Compose,
}
