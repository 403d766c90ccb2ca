//! The host agent's contract: what the server (or CI) sends to `POST /deploy`, what
//! `GET /deploys/{id}` answers, and how an environment names its agents (its deploy target).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A deployment request to an agent, sent as JSON by the server. Seed-style CI sends only
/// `service` (and, in old versions, `image`) as base64 text; the agent reads both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDeployRequest {
    /// Unique per deployment and service; a repeated id is answered, not run again.
    pub id: String,
    pub service: String,
    /// The image to run, pinned by digest when Gangplank knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// Where an agent deployment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentDeployStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl AgentDeployStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            AgentDeployStatus::Succeeded | AgentDeployStatus::Failed
        )
    }
}

/// An agent deployment, as `GET /deploys/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDeploy {
    pub id: String,
    pub project: String,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub status: AgentDeployStatus,
    /// Why it failed, in one sentence; empty otherwise.
    #[serde(default)]
    pub message: String,
    /// What compose printed (the tail of it).
    #[serde(default)]
    pub output: String,
    /// The container's last healthcheck results, when it had a healthcheck.
    #[serde(default)]
    pub health_log: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

/// An environment's deploy target: `none` (record only) or `compose` (host agents).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnvTarget {
    /// `none` or `compose`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::vocabulary::TargetType)]
    pub kind: String,
    /// The agents a `compose` environment deploys to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentBinding>,
    /// How long a deployment may take, agents' retries included (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// One agent of an environment, and which workloads it runs as which compose services.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentBinding {
    /// The agent's base URL, e.g. `http://10.0.0.5:8686`.
    pub url: String,
    /// The compose project, when the agent has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Workload id (or `workload/container`) → compose service name.
    pub services: BTreeMap<String, String>,
}
