//! The agent's `POST /apply`: which requests it accepts, what it does per service (nothing for
//! one that already runs the desired image, unless a run for it is still queued), how long a
//! status poll may wait, and how the server sums up its agents' answers.

use std::collections::BTreeMap;

use super::converge::{Divergence, ObservedService, check_runs};

/// The longest `GET /applies/{id}?wait_seconds=N` holds the request.
pub const MAX_WAIT_SECONDS: u64 = 30;
/// The most services one apply may name.
pub const MAX_APPLY_SERVICES: usize = 500;
const MAX_ID_LEN: usize = 128;
const MAX_IMAGE_LEN: usize = 1024;

/// The record id of one service of an apply (also its `GET /deploys/{id}`).
pub fn apply_record_id(apply_id: &str, service: &str) -> String {
    format!("{apply_id}-{service}")
}

/// Why an apply request is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyRequestError {
    #[error("id must be 1 to 128 letters, digits, '.', '_', ':' or '-'")]
    Id,
    #[error("services must name at least one service")]
    NoServices,
    #[error("services may name at most {MAX_APPLY_SERVICES} services")]
    TooMany,
    #[error("services.{0}: the image must be 1 to 1024 characters without spaces")]
    Image(String),
}

/// Checks an apply's id and images (which services the agent may deploy is its config's call).
pub fn check_apply_request(
    id: &str,
    services: &BTreeMap<String, String>,
) -> Result<(), ApplyRequestError> {
    let id_ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if !id_ok {
        return Err(ApplyRequestError::Id);
    }
    if services.is_empty() {
        return Err(ApplyRequestError::NoServices);
    }
    if services.len() > MAX_APPLY_SERVICES {
        return Err(ApplyRequestError::TooMany);
    }
    for (service, image) in services {
        let image_ok = !image.is_empty()
            && image.len() <= MAX_IMAGE_LEN
            && !image.chars().any(|c| c.is_whitespace() || c.is_control());
        if !image_ok {
            return Err(ApplyRequestError::Image(service.clone()));
        }
    }
    Ok(())
}

/// What the agent does for one service of an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAction {
    /// It already runs the image: record `unchanged`, run nothing.
    Unchanged,
    /// Queue a run (pull → up → health), for this reason.
    Run(RunReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunReason {
    /// A run of the service is queued or running: what the engine shows now is about to
    /// change, so it cannot say the service is already there.
    Busy,
    /// The project was observed and the service is not there.
    Diverged(Divergence),
    /// The project's observation has no such service.
    NotObserved,
}

impl std::fmt::Display for RunReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunReason::Busy => write!(f, "a run of the service is queued or running"),
            RunReason::Diverged(d) => d.fmt(f),
            RunReason::NotObserved => write!(f, "the service was not observed"),
        }
    }
}

/// Decides one service of an apply from what the engine showed and whether the project's
/// queue holds (or runs) a job for it.
pub fn decide_service(
    desired: &str,
    observed: Option<&ObservedService<'_>>,
    busy: bool,
) -> ServiceAction {
    if busy {
        return ServiceAction::Run(RunReason::Busy);
    }
    let Some(observed) = observed else {
        return ServiceAction::Run(RunReason::NotObserved);
    };
    match check_runs(desired, observed) {
        Ok(()) => ServiceAction::Unchanged,
        Err(divergence) => ServiceAction::Run(RunReason::Diverged(divergence)),
    }
}

/// How long a status poll waits: what was asked, at most [`MAX_WAIT_SECONDS`].
pub fn wait_seconds(asked: Option<u64>) -> u64 {
    asked.unwrap_or(0).min(MAX_WAIT_SECONDS)
}

/// How one agent's part of a deployment ended, as the server saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentResult {
    /// Every service runs its image.
    Succeeded,
    /// The agent answered no: a run failed, or it refused the request.
    Failed,
    /// No final answer before the deadline.
    TimedOut,
    /// The deployment was cancelled while waiting.
    Cancelled,
}

/// The deployment's verdict from its agents': cancelled wins (nothing counts then), then a
/// timeout (the deployment could not learn the outcome: errored), then any failure.
pub fn sum_agent_results(results: &[AgentResult], mapping_problems: bool) -> AgentResult {
    if results.contains(&AgentResult::Cancelled) {
        AgentResult::Cancelled
    } else if results.contains(&AgentResult::TimedOut) {
        AgentResult::TimedOut
    } else if mapping_problems || results.contains(&AgentResult::Failed) {
        AgentResult::Failed
    } else {
        AgentResult::Succeeded
    }
}
