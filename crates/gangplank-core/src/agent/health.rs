//! When a relaunched container counts as healthy: its healthcheck says so, or, without one,
//! it has kept running for the grace period.

/// What `docker inspect` says of a container, reduced to what the verdict needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// `created`, `running`, `restarting`, `exited`, `dead`…
    pub status: String,
    /// The healthcheck's status (`starting`, `healthy`, `unhealthy`), if the image has one.
    pub health: Option<String>,
    /// How long it has been running, in milliseconds.
    pub running_for_ms: i64,
    pub restart_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthVerdict {
    Healthy,
    /// Keep polling.
    Waiting,
    Unhealthy(String),
}

/// The verdict for a container relaunched `elapsed_ms` ago, `restarts_before` being its restart
/// count at launch.
pub fn judge_health(
    state: &ContainerState,
    grace_ms: i64,
    elapsed_ms: i64,
    timeout_ms: i64,
    restarts_before: i64,
) -> HealthVerdict {
    match state.status.as_str() {
        "exited" | "dead" => {
            return HealthVerdict::Unhealthy(format!("the container {}", state.status));
        }
        _ if state.restart_count > restarts_before => {
            return HealthVerdict::Unhealthy("the container restarted".to_owned());
        }
        _ => {}
    }
    let verdict = match state.health.as_deref() {
        Some("healthy") => HealthVerdict::Healthy,
        Some("unhealthy") => {
            HealthVerdict::Unhealthy("the container's healthcheck failed".to_owned())
        }
        Some(_) => HealthVerdict::Waiting,
        None if state.status == "running" && state.running_for_ms >= grace_ms => {
            HealthVerdict::Healthy
        }
        None => HealthVerdict::Waiting,
    };
    if verdict == HealthVerdict::Waiting && elapsed_ms >= timeout_ms {
        return HealthVerdict::Unhealthy(format!(
            "the container was not healthy within {} s",
            timeout_ms / 1000
        ));
    }
    verdict
}
