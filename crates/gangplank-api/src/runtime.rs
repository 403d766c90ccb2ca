//! `GET /orgs/{org}/apps/{app}/envs/{env}/runtime`: what an environment's hosts run against its
//! current set. Humanitec serves its runtime view at this path, but its body describes
//! Kubernetes objects (pods, controllers); Gangplank's hosts are compose projects, so the shape
//! is Gangplank's own.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An environment's observed runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnvRuntime {
    pub env_id: String,
    /// `true` when every judged workload runs its desired image and every agent answered;
    /// `false` when one does not; `null` before the first judgement or while an agent is
    /// unreachable (and nothing reachable drifted).
    pub in_sync: Option<bool>,
    /// When the current drift began (RFC 3339), while drifted.
    pub drifted_since: Option<String>,
    /// When the agents were last asked (RFC 3339); `null` before the first observation.
    pub checked_at: Option<String>,
    pub workloads: Vec<WorkloadRuntime>,
}

/// One workload, as its agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkloadRuntime {
    /// The workload id (or `workload/container`) of the target's mapping.
    pub workload: String,
    /// The agent's base URL.
    pub agent: String,
    /// The compose project (empty when unknown).
    pub project: String,
    /// The compose service.
    pub service: String,
    /// The image the environment's current set gives it; `null` when the set does not deploy it.
    pub desired_image: Option<String>,
    /// The image the service's container was created from; `null` when none runs (or unknown).
    pub running_image: Option<String>,
    /// `healthy`, `unhealthy`, `starting`, `none` (no healthcheck) or `unknown`.
    pub health: String,
    /// `running`, `exited`, …, `missing` (no container) or `unknown` (agent unreachable).
    pub state: String,
    /// Whether it runs the desired image; `null` when not judged.
    pub in_sync: Option<bool>,
    /// Why it is not in sync, or why it was not judged; empty otherwise.
    pub reason: String,
    /// When its agent last answered (RFC 3339).
    pub last_seen_at: Option<String>,
    pub agent_reachable: bool,
}
