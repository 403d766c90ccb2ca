//! The pure transitions of runs, jobs, steps and approval requests (docs/pipelines.md, "Status
//! strings"): every status change the store writes is asked of these first, so an illegal one
//! (approving a cancelled request, finishing a finished run) is refused in one place.

use thiserror::Error;

use super::status::{ApprovalStatus, JobStatus, RunStatus, StepStatus};

/// What happens to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunEvent {
    /// A worker claimed it (again, after a lapsed lease: a resume).
    Start,
    /// Every job succeeded or was skipped.
    Succeed,
    /// A job failed (a denied or expired approval included).
    Fail,
    /// Cancelled: at once while queued, at a step boundary while executing.
    Cancel,
    /// `timeout-minutes` passed: Humanitec cancels a run that ran too long.
    TimeOut,
}

/// What happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobEvent {
    Start,
    Succeed,
    Fail,
    Cancel,
    /// A needed job did not succeed, or its `if` is false.
    Skip,
}

/// What happens to a step (a step row is born `executing`, or `skipped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepEvent {
    Succeed,
    Fail,
    Cancel,
}

/// What happens to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalEvent {
    /// Enough distinct eligible users approved.
    Approve,
    /// One eligible user denied.
    Deny,
    /// The run was cancelled or timed out, or the request expired.
    Cancel,
}

/// An event that cannot happen in the current status, e.g. approving a cancelled request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{subject} that is {from} cannot be {verb}")]
pub struct IllegalTransition {
    pub subject: &'static str,
    pub from: &'static str,
    pub verb: &'static str,
}

impl RunStatus {
    /// The status after `event`, or why it cannot happen.
    pub fn next(self, event: RunEvent) -> Result<RunStatus, IllegalTransition> {
        use RunStatus::*;
        let next = match (self, event) {
            (Queued | Executing, RunEvent::Start) => Some(Executing),
            (Executing, RunEvent::Succeed) => Some(Succeeded),
            (Executing, RunEvent::Fail) => Some(Failed),
            (Queued | Executing, RunEvent::Cancel) => Some(Cancelled),
            (Executing, RunEvent::TimeOut) => Some(Cancelled),
            _ => None,
        };
        next.ok_or(IllegalTransition {
            subject: "a run",
            from: self.as_str(),
            verb: match event {
                RunEvent::Start => "started",
                RunEvent::Succeed => "succeeded",
                RunEvent::Fail => "failed",
                RunEvent::Cancel => "cancelled",
                RunEvent::TimeOut => "timed out",
            },
        })
    }
}

impl JobStatus {
    /// The status after `event`, or why it cannot happen.
    pub fn next(self, event: JobEvent) -> Result<JobStatus, IllegalTransition> {
        use JobStatus::*;
        let next = match (self, event) {
            (Queued | Executing, JobEvent::Start) => Some(Executing),
            (Executing, JobEvent::Succeed) => Some(Succeeded),
            (Executing, JobEvent::Fail) => Some(Failed),
            (Queued | Executing, JobEvent::Cancel) => Some(Cancelled),
            (Queued, JobEvent::Skip) => Some(Skipped),
            _ => None,
        };
        next.ok_or(IllegalTransition {
            subject: "a job",
            from: self.as_str(),
            verb: match event {
                JobEvent::Start => "started",
                JobEvent::Succeed => "succeeded",
                JobEvent::Fail => "failed",
                JobEvent::Cancel => "cancelled",
                JobEvent::Skip => "skipped",
            },
        })
    }
}

impl StepStatus {
    /// The status after `event`, or why it cannot happen.
    pub fn next(self, event: StepEvent) -> Result<StepStatus, IllegalTransition> {
        use StepStatus::*;
        let next = match (self, event) {
            (Executing, StepEvent::Succeed) => Some(Succeeded),
            (Executing, StepEvent::Fail) => Some(Failed),
            (Executing, StepEvent::Cancel) => Some(Cancelled),
            _ => None,
        };
        next.ok_or(IllegalTransition {
            subject: "a step",
            from: self.as_str(),
            verb: match event {
                StepEvent::Succeed => "succeeded",
                StepEvent::Fail => "failed",
                StepEvent::Cancel => "cancelled",
            },
        })
    }
}

impl ApprovalStatus {
    /// The status after `event`, or why it cannot happen: only a `waiting` request moves.
    pub fn next(self, event: ApprovalEvent) -> Result<ApprovalStatus, IllegalTransition> {
        use ApprovalStatus::*;
        let next = match (self, event) {
            (Waiting, ApprovalEvent::Approve) => Some(Approved),
            (Waiting, ApprovalEvent::Deny) => Some(Denied),
            (Waiting, ApprovalEvent::Cancel) => Some(Cancelled),
            _ => None,
        };
        next.ok_or(IllegalTransition {
            subject: "an approval request",
            from: self.as_str(),
            verb: match event {
                ApprovalEvent::Approve => "approved",
                ApprovalEvent::Deny => "denied",
                ApprovalEvent::Cancel => "cancelled",
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_transition() {
        use RunStatus::*;
        let events = [
            RunEvent::Start,
            RunEvent::Succeed,
            RunEvent::Fail,
            RunEvent::Cancel,
            RunEvent::TimeOut,
        ];
        let table: &[(RunStatus, [Option<RunStatus>; 5])] = &[
            (Queued, [Some(Executing), None, None, Some(Cancelled), None]),
            (
                Executing,
                [
                    Some(Executing),
                    Some(Succeeded),
                    Some(Failed),
                    Some(Cancelled),
                    Some(Cancelled),
                ],
            ),
            (Succeeded, [None; 5]),
            (Failed, [None; 5]),
            (Cancelled, [None; 5]),
        ];
        assert_eq!(table.len(), RunStatus::ALL.len());
        for (from, row) in table {
            for (event, want) in events.iter().zip(row) {
                assert_eq!(from.next(*event).ok(), *want, "{from} {event:?}");
            }
        }
    }

    #[test]
    fn every_job_transition() {
        use JobStatus::*;
        let events = [
            JobEvent::Start,
            JobEvent::Succeed,
            JobEvent::Fail,
            JobEvent::Cancel,
            JobEvent::Skip,
        ];
        let table: &[(JobStatus, [Option<JobStatus>; 5])] = &[
            (
                Queued,
                [Some(Executing), None, None, Some(Cancelled), Some(Skipped)],
            ),
            (
                Executing,
                [
                    Some(Executing),
                    Some(Succeeded),
                    Some(Failed),
                    Some(Cancelled),
                    None,
                ],
            ),
            (Succeeded, [None; 5]),
            (Failed, [None; 5]),
            (Cancelled, [None; 5]),
            (Skipped, [None; 5]),
        ];
        assert_eq!(table.len(), JobStatus::ALL.len());
        for (from, row) in table {
            for (event, want) in events.iter().zip(row) {
                assert_eq!(from.next(*event).ok(), *want, "{from} {event:?}");
            }
        }
    }

    #[test]
    fn every_step_transition() {
        use StepStatus::*;
        let events = [StepEvent::Succeed, StepEvent::Fail, StepEvent::Cancel];
        for from in StepStatus::ALL {
            for event in events {
                let want = match (from, event) {
                    (Executing, StepEvent::Succeed) => Some(Succeeded),
                    (Executing, StepEvent::Fail) => Some(Failed),
                    (Executing, StepEvent::Cancel) => Some(Cancelled),
                    _ => None,
                };
                assert_eq!(from.next(event).ok(), want, "{from} {event:?}");
            }
        }
    }

    #[test]
    fn every_approval_transition() {
        use ApprovalStatus::*;
        let events = [
            ApprovalEvent::Approve,
            ApprovalEvent::Deny,
            ApprovalEvent::Cancel,
        ];
        for from in ApprovalStatus::ALL {
            for event in events {
                let want = match (from, event) {
                    (Waiting, ApprovalEvent::Approve) => Some(Approved),
                    (Waiting, ApprovalEvent::Deny) => Some(Denied),
                    (Waiting, ApprovalEvent::Cancel) => Some(Cancelled),
                    _ => None,
                };
                assert_eq!(from.next(event).ok(), want, "{from} {event:?}");
            }
        }
    }

    #[test]
    fn the_refusal_names_what_and_why() {
        let err = ApprovalStatus::Cancelled
            .next(ApprovalEvent::Approve)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "an approval request that is cancelled cannot be approved"
        );
    }
}
