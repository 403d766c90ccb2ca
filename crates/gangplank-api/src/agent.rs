//! The host agent's contract: what the server (or CI) sends to `POST /deploy`, what
//! `GET /deploys/{id}` answers, the one-off containers of `POST /runs`, and how an environment
//! names its agents (its deploy target).

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
    /// The service already ran the image, running and not unhealthy: nothing was run.
    Unchanged,
    /// The server stopped waiting before the run began: nothing was run.
    Cancelled,
}

impl AgentDeployStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, AgentDeployStatus::Queued | AgentDeployStatus::Running)
    }

    /// The service runs what was asked (after a run, or because it already did).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            AgentDeployStatus::Succeeded | AgentDeployStatus::Unchanged
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

/// The whole desired state of one compose project for one deployment, sent by the server to
/// `POST /apply`. Level-triggered: every mapped service is named each time; the agent runs
/// only those whose project does not already run the image. Repeating a request (same `id`)
/// answers the records it made, so a retry or a second server replica never runs twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentApplyRequest {
    /// The server's deployment id; each service's record is `<id>-<service>`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Compose service → image (digest-pinned when Gangplank knows the digest).
    pub services: BTreeMap<String, String>,
}

/// What `POST /apply` and `GET /applies/{id}` answer: one record per service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentApply {
    pub id: String,
    pub project: String,
    pub services: Vec<AgentDeploy>,
}

impl AgentApply {
    /// Every service's record is final: the apply is over (`POST /apply` then answers 200).
    pub fn is_final(&self) -> bool {
        self.services.iter().all(|r| r.status.is_final())
    }

    /// The services of `sent` this answer has no record of. `is_final` holds vacuously for
    /// them, so an answer is complete only when this is empty too: an agent that pruned or
    /// lost some records must be sent the apply again, not taken as done.
    pub fn missing<'a>(&self, sent: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        sent.into_iter()
            .filter(|service| !self.services.iter().any(|r| r.service == *service))
            .collect()
    }
}

/// A one-off container, sent by the server (a pipeline's `run` step) to `POST /runs`. A
/// repeated `id` answers the run it started; the same id with another image or command is
/// refused (409). The env's values are never echoed back, nor shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRunRequest {
    pub id: String,
    /// Pulled with the agent's registry credentials, as an apply's images are.
    pub image: String,
    /// The container's argv after the image's entrypoint (empty: the image's own command).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Default 600, at most 86400; the container is killed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

impl std::fmt::Debug for AgentRunRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The env's values may be secrets: only its names are shown.
        f.debug_struct("AgentRunRequest")
            .field("id", &self.id)
            .field("image", &self.image)
            .field("command", &self.command)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

/// Where a one-off container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentRunStatus {
    /// Accepted; waiting for a free slot or pulling the image.
    Pending,
    Running,
    /// Exit code 0.
    Succeeded,
    /// Exit code not 0, or the image could not be pulled or started.
    Failed,
    /// Stopped by `POST /runs/{id}/cancel`.
    Cancelled,
    /// Killed after its `timeout_seconds`.
    TimedOut,
}

impl AgentRunStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, AgentRunStatus::Pending | AgentRunStatus::Running)
    }
}

/// What `POST /runs`, `GET /runs/{id}` and its cancel answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRun {
    pub id: String,
    pub image: String,
    pub status: AgentRunStatus,
    /// The container's exit code, once it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it failed, was cancelled or timed out; empty otherwise.
    #[serde(default)]
    pub message: String,
    /// The tail of what the container (and the pull before it) printed, stdout and stderr
    /// interleaved, at most 64 KiB.
    #[serde(default)]
    pub output: String,
    /// Bytes of output dropped before the tail.
    #[serde(default)]
    pub output_dropped: u64,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

/// What an agent observes its projects running, as `GET /state` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub projects: Vec<ProjectState>,
    /// When the agent looked (RFC 3339).
    pub observed_at: String,
}

/// One compose project's services.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectState {
    pub name: String,
    pub services: Vec<ServiceState>,
}

/// One service: what the agent pinned, and what its container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    pub service: String,
    /// The image the agent's override file pins; absent: the compose file's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_image: Option<String>,
    /// The image reference the running container was created from (`Config.Image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_image: Option<String>,
    /// The repository digests of the container's image (`repo@sha256:…`), from the engine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running_digests: Vec<String>,
    /// `running`, `exited`, `restarting`, …; `missing` when no container exists.
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, or `none` without a healthcheck.
    pub health: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// The last agent deployment of the service, and how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deploy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<AgentDeployStatus>,
}

impl ServiceState {
    /// The view the in-sync rule (`gangplank_core::agent::check_runs`) judges.
    pub fn observed(&self) -> gangplank_core::agent::ObservedService<'_> {
        gangplank_core::agent::ObservedService {
            pinned: self.pinned_image.as_deref(),
            running_image: self.running_image.as_deref(),
            running_digests: &self.running_digests,
            state: &self.state,
            health: &self.health,
        }
    }
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
    /// How long a deployment may take, agents' retries included (default 600, at most 86400).
    /// A deployment past it fails with `GP-DEADLINE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Redeploy the current set by itself when the hosts drift from it for longer than
    /// `auto_heal_after_seconds` (default 60). Off by default: drift is reported, not undone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_heal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_heal_after_seconds: Option<u64>,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{AgentApply, AgentDeploy, AgentDeployStatus, AgentRunRequest};

    #[test]
    fn a_run_request_shows_env_names_not_values() {
        let request = AgentRunRequest {
            id: "r1".into(),
            image: "busybox".into(),
            command: vec!["true".into()],
            env: BTreeMap::from([("TOKEN".to_owned(), "s3cret-value-Q9".to_owned())]),
            timeout_seconds: None,
        };
        let shown = format!("{request:?}");
        assert!(shown.contains("TOKEN"), "{shown}");
        assert!(!shown.contains("s3cret-value-Q9"), "{shown}");
    }

    fn record(service: &str, status: AgentDeployStatus) -> AgentDeploy {
        AgentDeploy {
            id: format!("d1-{service}"),
            project: "p".into(),
            service: service.into(),
            image: None,
            status,
            message: String::new(),
            output: String::new(),
            health_log: String::new(),
            created_at: String::new(),
            finished_at: None,
        }
    }

    #[test]
    fn an_answer_is_complete_only_with_a_record_per_service_sent() {
        use AgentDeployStatus::*;
        type Records<'a> = &'a [(&'a str, AgentDeployStatus)];
        // Records answered, services sent, is_final, missing.
        let cases: &[(Records, &[&str], bool, &[&str])] = &[
            (
                &[("web", Succeeded), ("db", Unchanged)],
                &["db", "web"],
                true,
                &[],
            ),
            (&[("web", Succeeded)], &["db", "web"], true, &["db"]),
            (&[], &["web"], true, &["web"]),
            (&[("web", Running)], &["web"], false, &[]),
            (
                &[("web", Failed), ("db", Queued)],
                &["db", "web"],
                false,
                &[],
            ),
        ];
        for (records, sent, is_final, missing) in cases {
            let apply = AgentApply {
                id: "d1".into(),
                project: "p".into(),
                services: records.iter().map(|(s, st)| record(s, *st)).collect(),
            };
            assert_eq!(apply.is_final(), *is_final, "{records:?}");
            assert_eq!(apply.missing(sent.iter().copied()), *missing, "{records:?}");
        }
    }
}
