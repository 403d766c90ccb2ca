//! A deployment's lifecycle as a typed state machine: its status, the events that move it, and
//! the decisions around it (claiming from the queue, admitting a new deployment, detecting a
//! rollback). The store persists what these functions decide; it decides nothing itself.

use std::fmt;

/// Where a deployment is. The wire strings are Humanitec's (`in progress` with a space), plus
/// Gangplank's `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeployStatus {
    Pending,
    InProgress,
    Succeeded,
    Failed,
    Cancelled,
}

/// Why a deployment failed: *failed* is the target's answer (unhealthy, refused, a mapping the
/// set cannot satisfy); *errored* is not getting one in time (unreachable, past the deadline,
/// interrupted too often). Kargo draws the same line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Failed,
    Errored,
}

/// How a target's run of a deployment ended, as far as the deployment's status cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Succeeded,
    Failed(FailureKind),
}

/// What can happen to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployEvent {
    /// A worker claimed it from the queue (first time, or resuming after a lapsed lease).
    Claimed,
    /// Its target finished.
    Finished(Finish),
    /// Someone cancelled it.
    Cancel,
    /// Its deadline passed before the target answered.
    DeadlinePassed,
    /// Its claims lapsed more often than allowed (crashes or restarts).
    InterruptedTooOften,
}

/// An event that cannot happen in a status, e.g. cancelling a deployment that succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a deployment that is {from} cannot be {}", event_verb(.event))]
pub struct IllegalTransition {
    pub from: DeployStatus,
    pub event: DeployEvent,
}

fn event_verb(event: &DeployEvent) -> &'static str {
    match event {
        DeployEvent::Claimed => "claimed",
        DeployEvent::Finished(_) => "finished",
        DeployEvent::Cancel => "cancelled",
        DeployEvent::DeadlinePassed => "failed for its deadline",
        DeployEvent::InterruptedTooOften => "failed for its interruptions",
    }
}

impl DeployStatus {
    pub const ALL: [DeployStatus; 5] = [
        DeployStatus::Pending,
        DeployStatus::InProgress,
        DeployStatus::Succeeded,
        DeployStatus::Failed,
        DeployStatus::Cancelled,
    ];

    /// The wire (and stored) string.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployStatus::Pending => "pending",
            DeployStatus::InProgress => "in progress",
            DeployStatus::Succeeded => "succeeded",
            DeployStatus::Failed => "failed",
            DeployStatus::Cancelled => "cancelled",
        }
    }

    /// Reads a wire string.
    pub fn parse(text: &str) -> Option<DeployStatus> {
        DeployStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Nothing moves it any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DeployStatus::Succeeded | DeployStatus::Failed | DeployStatus::Cancelled
        )
    }

    /// Holds its environment: no other deployment may start there meanwhile.
    pub fn is_active(self) -> bool {
        !self.is_terminal()
    }

    /// The status after `event`, or why `event` cannot happen now.
    pub fn next(self, event: DeployEvent) -> Result<DeployStatus, IllegalTransition> {
        use DeployStatus::*;
        let next = match (self, event) {
            // A second claim of a running deployment is a resume after a lapsed lease.
            (Pending | InProgress, DeployEvent::Claimed) => Some(InProgress),
            (InProgress, DeployEvent::Finished(Finish::Succeeded)) => Some(Succeeded),
            (InProgress, DeployEvent::Finished(Finish::Failed(_))) => Some(Failed),
            (Pending | InProgress, DeployEvent::Cancel) => Some(Cancelled),
            (Pending | InProgress, DeployEvent::DeadlinePassed) => Some(Failed),
            (Pending | InProgress, DeployEvent::InterruptedTooOften) => Some(Failed),
            _ => None,
        };
        next.ok_or(IllegalTransition { from: self, event })
    }
}

impl fmt::Display for DeployStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DeployEvent {
    /// The failure kind a deployment ending by this event keeps.
    pub fn failure(self) -> Option<FailureKind> {
        match self {
            DeployEvent::Finished(Finish::Failed(kind)) => Some(kind),
            DeployEvent::DeadlinePassed | DeployEvent::InterruptedTooOften => {
                Some(FailureKind::Errored)
            }
            _ => None,
        }
    }
}

impl FailureKind {
    /// The stored string (and the `failure` field of a deployment's JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Failed => "failed",
            FailureKind::Errored => "errored",
        }
    }

    pub fn parse(text: &str) -> Option<FailureKind> {
        match text {
            "failed" => Some(FailureKind::Failed),
            "errored" => Some(FailureKind::Errored),
            _ => None,
        }
    }
}

/// What the queue knows when a worker claims a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimFacts {
    pub status: DeployStatus,
    /// This claim's number: 1 the first time, more after lapsed leases.
    pub attempt: i64,
    pub max_attempts: i64,
    pub now: i64,
    /// The deployment's deadline (Unix ms), 0 before its first claim set one.
    pub deadline_at: i64,
    /// How long its captured target allows (ms).
    pub timeout_ms: i64,
}

/// What to do with a claimed deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Run it (again) until `deadline_at`; `started` is true on the first claim, which moves
    /// it `pending` → `in progress` and announces `deployment.started`.
    Run { deadline_at: i64, started: bool },
    /// End it now as failed, with this error.
    Fail {
        event: DeployEvent,
        code: &'static str,
        reason: String,
    },
    /// It already ended (e.g. cancelled while queued): drop its queue row.
    Drop,
}

/// The claim policy: resume what may still run, fail what was interrupted too often or whose
/// deadline passed, and set the deadline once, on the first claim (a resumed deployment keeps
/// it).
pub fn decide_claim(facts: ClaimFacts) -> ClaimDecision {
    if facts.status.is_terminal() {
        return ClaimDecision::Drop;
    }
    if facts.attempt > facts.max_attempts {
        return ClaimDecision::Fail {
            event: DeployEvent::InterruptedTooOften,
            code: "GP-INTERRUPTED",
            reason: format!(
                "the deployment was interrupted {} times (server restarts or crashes) and was not retried again",
                facts.attempt - 1
            ),
        };
    }
    if facts.deadline_at > 0 && facts.now >= facts.deadline_at {
        return ClaimDecision::Fail {
            event: DeployEvent::DeadlinePassed,
            code: DEADLINE_CODE,
            reason: deadline_reason(facts.timeout_ms),
        };
    }
    let deadline_at = if facts.deadline_at > 0 {
        facts.deadline_at
    } else {
        facts.now.saturating_add(facts.timeout_ms.max(0))
    };
    ClaimDecision::Run {
        deadline_at,
        started: facts.status == DeployStatus::Pending,
    }
}

/// The error code of a deployment that ran out of time.
pub const DEADLINE_CODE: &str = "GP-DEADLINE";

/// Why a deployment past its deadline failed.
pub fn deadline_reason(timeout_ms: i64) -> String {
    format!(
        "the deployment did not finish within its target's timeout ({} s) and was stopped; the target gave no answer in time",
        timeout_ms / 1000
    )
}

/// Where a runner's claim stands, as its status check or a refused lease renewal reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStanding {
    /// The deployment runs under this claim: go on.
    Held,
    /// The deployment ended (cancelled, or finished elsewhere): stop, and tell the target so
    /// it can tell its agents.
    Ended,
    /// A newer claim runs the deployment (this one's lease lapsed): stop quietly, without
    /// telling the agents anything (the apply is the newer claim's now), and record nothing.
    Superseded,
}

/// A claim (`attempt`) against the deployment's `status` and the attempt its queue row holds
/// (`None` without a row).
pub fn claim_standing(status: DeployStatus, held: Option<i64>, attempt: i64) -> ClaimStanding {
    match (status, held) {
        (DeployStatus::InProgress, Some(held)) if held == attempt => ClaimStanding::Held,
        (DeployStatus::InProgress, Some(_)) => ClaimStanding::Superseded,
        _ => ClaimStanding::Ended,
    }
}

/// Why a new deployment may not be created in an environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("environment {env_id} changed while the deployment was prepared; try again")]
    BaseChanged { env_id: String },
    #[error("deployment {active} is already active in environment {env_id}")]
    Active { env_id: String, active: String },
}

/// One active deployment per environment, and none created from a base that moved meanwhile.
/// `active` is the environment's pending or in-progress deployment, if any.
pub fn admit_deploy(
    env_id: &str,
    expected_from: &str,
    current_from: &str,
    active: Option<&str>,
) -> Result<(), Refusal> {
    if expected_from != current_from {
        return Err(Refusal::BaseChanged {
            env_id: env_id.to_owned(),
        });
    }
    if let Some(active) = active {
        return Err(Refusal::Active {
            env_id: env_id.to_owned(),
            active: active.to_owned(),
        });
    }
    Ok(())
}

/// Whether rebasing `env_id` on deployment `target_id` (of environment `target_env`) is a
/// rollback: an earlier deployment of the environment itself, not its latest. A rollback holds
/// automation so it cannot undo it.
pub fn is_rollback(env_id: &str, target_env: &str, target_id: &str, last_deploy: &str) -> bool {
    target_env == env_id && target_id != last_deploy
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeployStatus::*;

    const FAILED: DeployEvent = DeployEvent::Finished(Finish::Failed(FailureKind::Failed));
    const ERRORED: DeployEvent = DeployEvent::Finished(Finish::Failed(FailureKind::Errored));
    const SUCCEEDED: DeployEvent = DeployEvent::Finished(Finish::Succeeded);
    const EVENTS: [DeployEvent; 7] = [
        DeployEvent::Claimed,
        SUCCEEDED,
        FAILED,
        ERRORED,
        DeployEvent::Cancel,
        DeployEvent::DeadlinePassed,
        DeployEvent::InterruptedTooOften,
    ];

    #[test]
    fn claim_standings() {
        let table = [
            (InProgress, Some(2), 2, ClaimStanding::Held),
            (InProgress, Some(3), 2, ClaimStanding::Superseded),
            (InProgress, Some(1), 2, ClaimStanding::Superseded),
            (InProgress, None, 2, ClaimStanding::Ended),
            (Cancelled, None, 2, ClaimStanding::Ended),
            (Cancelled, Some(2), 2, ClaimStanding::Ended),
            (Succeeded, None, 1, ClaimStanding::Ended),
            (Failed, Some(1), 1, ClaimStanding::Ended),
            (Pending, Some(0), 1, ClaimStanding::Ended),
        ];
        for (status, held, attempt, want) in table {
            assert_eq!(
                claim_standing(status, held, attempt),
                want,
                "{status:?} {held:?} {attempt}"
            );
        }
    }

    /// Every (status, event) pair: the legal ones and where they lead; the rest are illegal.
    #[test]
    fn every_transition() {
        let legal = [
            (Pending, DeployEvent::Claimed, InProgress),
            (InProgress, DeployEvent::Claimed, InProgress),
            (InProgress, SUCCEEDED, Succeeded),
            (InProgress, FAILED, Failed),
            (InProgress, ERRORED, Failed),
            (Pending, DeployEvent::Cancel, Cancelled),
            (InProgress, DeployEvent::Cancel, Cancelled),
            (Pending, DeployEvent::DeadlinePassed, Failed),
            (InProgress, DeployEvent::DeadlinePassed, Failed),
            (Pending, DeployEvent::InterruptedTooOften, Failed),
            (InProgress, DeployEvent::InterruptedTooOften, Failed),
        ];
        let mut checked = 0;
        for from in DeployStatus::ALL {
            for event in EVENTS {
                let expected = legal
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                match expected {
                    Some(to) => assert_eq!(from.next(event), Ok(to), "{from} {event:?}"),
                    None => assert_eq!(
                        from.next(event),
                        Err(IllegalTransition { from, event }),
                        "{from} {event:?} must be illegal"
                    ),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 35);
    }

    #[test]
    fn named_illegal_transitions() {
        for (from, event) in [
            (Succeeded, DeployEvent::Cancel),
            (Failed, DeployEvent::Cancel),
            (Cancelled, DeployEvent::Cancel),
            (Cancelled, DeployEvent::Claimed),
            (Cancelled, SUCCEEDED),
            (Pending, SUCCEEDED),
            (Succeeded, DeployEvent::Claimed),
            (Failed, DeployEvent::DeadlinePassed),
        ] {
            assert!(from.next(event).is_err(), "{from} {event:?}");
        }
        assert_eq!(
            Succeeded.next(DeployEvent::Cancel).unwrap_err().to_string(),
            "a deployment that is succeeded cannot be cancelled"
        );
    }

    #[test]
    fn wire_strings_terminality_and_failure_kinds() {
        let table = [
            (Pending, "pending", false),
            (InProgress, "in progress", false),
            (Succeeded, "succeeded", true),
            (Failed, "failed", true),
            (Cancelled, "cancelled", true),
        ];
        for (status, text, terminal) in table {
            assert_eq!(status.as_str(), text);
            assert_eq!(DeployStatus::parse(text), Some(status));
            assert_eq!(status.is_terminal(), terminal, "{status}");
            assert_eq!(status.is_active(), !terminal, "{status}");
        }
        assert_eq!(DeployStatus::parse("in_progress"), None);
        assert_eq!(FAILED.failure(), Some(FailureKind::Failed));
        assert_eq!(ERRORED.failure(), Some(FailureKind::Errored));
        assert_eq!(
            DeployEvent::DeadlinePassed.failure(),
            Some(FailureKind::Errored)
        );
        assert_eq!(
            DeployEvent::InterruptedTooOften.failure(),
            Some(FailureKind::Errored)
        );
        assert_eq!(SUCCEEDED.failure(), None);
        assert_eq!(DeployEvent::Cancel.failure(), None);
        for kind in [FailureKind::Failed, FailureKind::Errored] {
            assert_eq!(FailureKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(FailureKind::parse(""), None);
    }

    fn facts(status: DeployStatus, attempt: i64, deadline_at: i64) -> ClaimFacts {
        ClaimFacts {
            status,
            attempt,
            max_attempts: 3,
            now: 10_000,
            deadline_at,
            timeout_ms: 5_000,
        }
    }

    #[test]
    fn the_claim_policy() {
        let run = |deadline_at, started| ClaimDecision::Run {
            deadline_at,
            started,
        };
        let table = [
            // The first claim starts it and sets the deadline from the target's timeout.
            (facts(Pending, 1, 0), Some(run(15_000, true))),
            // A resumed deployment keeps its deadline.
            (facts(InProgress, 2, 12_000), Some(run(12_000, false))),
            (facts(InProgress, 3, 12_000), Some(run(12_000, false))),
            // A deployment claimed before deadlines were persisted gets one now.
            (facts(InProgress, 2, 0), Some(run(15_000, false))),
            // Ended meanwhile (cancelled while queued): only the queue row goes.
            (facts(Cancelled, 1, 0), Some(ClaimDecision::Drop)),
            (facts(Succeeded, 2, 12_000), Some(ClaimDecision::Drop)),
            (facts(Failed, 1, 0), Some(ClaimDecision::Drop)),
            // Too many interruptions, or past the deadline: failed (errored), with a reason.
            (facts(InProgress, 4, 12_000), None),
            (facts(InProgress, 2, 10_000), None),
            (facts(InProgress, 2, 9_999), None),
        ];
        for (facts, expected) in table {
            let decision = decide_claim(facts);
            match expected {
                Some(expected) => assert_eq!(decision, expected, "{facts:?}"),
                None => {
                    let ClaimDecision::Fail {
                        event,
                        code,
                        reason,
                    } = decision
                    else {
                        panic!("{facts:?} should fail: {decision:?}");
                    };
                    assert_eq!(event.failure(), Some(FailureKind::Errored));
                    if facts.attempt > facts.max_attempts {
                        assert_eq!(
                            (event, code),
                            (DeployEvent::InterruptedTooOften, "GP-INTERRUPTED")
                        );
                        assert!(reason.contains("interrupted 3 times"), "{reason}");
                    } else {
                        assert_eq!((event, code), (DeployEvent::DeadlinePassed, DEADLINE_CODE));
                        assert!(reason.contains("timeout (5 s)"), "{reason}");
                    }
                    // Whatever the claim policy decides is a legal transition.
                    assert!(facts.status.next(event).is_ok());
                }
            }
        }
    }

    #[test]
    fn one_active_deployment_per_environment() {
        assert_eq!(admit_deploy("dev", "d1", "d1", None), Ok(()));
        assert_eq!(admit_deploy("dev", "", "", None), Ok(()));
        assert_eq!(
            admit_deploy("dev", "d1", "d1", Some("d2")),
            Err(Refusal::Active {
                env_id: "dev".into(),
                active: "d2".into()
            })
        );
        assert_eq!(
            admit_deploy("dev", "d1", "d3", None),
            Err(Refusal::BaseChanged {
                env_id: "dev".into()
            })
        );
        assert_eq!(
            admit_deploy("dev", "d1", "d2", Some("d2"))
                .unwrap_err()
                .to_string(),
            "environment dev changed while the deployment was prepared; try again"
        );
    }

    #[test]
    fn rollback_detection() {
        let table = [
            // (env, target's env, target, env's last deployment, rollback?)
            ("dev", "dev", "d1", "d3", true),
            ("dev", "dev", "d3", "d3", false),
            // Another environment's deployment is a promotion, not a rollback.
            ("prod", "dev", "d1", "d3", false),
            ("dev", "dev", "d1", "", true),
        ];
        for (env, target_env, target, last, rollback) in table {
            assert_eq!(
                is_rollback(env, target_env, target, last),
                rollback,
                "{env} {target_env} {target} {last}"
            );
        }
    }
}
