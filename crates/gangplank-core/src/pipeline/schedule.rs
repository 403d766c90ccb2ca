//! The scheduler: from a run's persisted state, what happens next. `next` is pure and
//! level-triggered: the runner applies the moves, reads the state again, and asks again, so a
//! worker that died between two moves resumes from whatever was written.

use std::collections::BTreeMap;

use super::definition::{Definition, JobDef};
use super::lifecycle::{JobEvent, RunEvent};
use super::status::{JobStatus, RunStatus, StepStatus};

/// A run's state as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub status: RunStatus,
    /// Unix ms when it started executing (0: not yet).
    pub executing_at: i64,
    /// The run's timeout (`timeout-minutes`).
    pub timeout_ms: i64,
    pub cancel_requested: bool,
    /// Job id → status (jobs exist from the run's start).
    pub jobs: BTreeMap<String, JobStatus>,
    /// (job id, step index) → status (a step has a row once started or skipped).
    pub steps: BTreeMap<(String, usize), StepStatus>,
    /// Job id → Unix ms its first step row was written (a job's clock for its
    /// `timeout-minutes`; absent while it has no step yet).
    pub job_started_at: BTreeMap<String, i64>,
}

/// When an executing job times out (Unix ms), if it has a `timeout-minutes` and has started.
pub fn job_deadline(job: &JobDef, snapshot: &Snapshot) -> Option<i64> {
    let minutes = job.timeout_minutes?;
    let started = snapshot.job_started_at.get(&job.id)?;
    Some(started.saturating_add(i64::from(minutes) * 60_000))
}

/// What the runner does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// queued → executing: freeze inputs, pin the digest, create the jobs.
    StartRun,
    StartJob {
        job: String,
    },
    SkipJob {
        job: String,
        reason: String,
    },
    /// Run step `index` of `job` (again, if its row is `executing`: a resumed or waiting step).
    RunStep {
        job: String,
        index: usize,
    },
    /// Record step `index` as skipped (its `if` is false).
    SkipStep {
        job: String,
        index: usize,
        reason: String,
    },
    FinishJob {
        job: String,
        event: JobEvent,
        message: String,
    },
    FinishRun {
        event: RunEvent,
        message: String,
    },
}

/// Evaluates an `if` for a job (`step` `None`) or one of its steps against the run's state.
/// An error fails the job with its message.
pub trait Conditions {
    fn evaluate(&mut self, job: &str, step: Option<usize>, condition: &str)
    -> Result<bool, String>;
}

/// The moves that follow from `snapshot` at `now`. Empty for a finished run.
pub fn next(
    def: &Definition,
    snapshot: &Snapshot,
    now: i64,
    conditions: &mut dyn Conditions,
) -> Vec<Move> {
    match snapshot.status {
        RunStatus::Queued => return vec![Move::StartRun],
        RunStatus::Executing => {}
        _ => return Vec::new(),
    }
    if snapshot.executing_at > 0 && now >= snapshot.executing_at + snapshot.timeout_ms {
        return vec![Move::FinishRun {
            event: RunEvent::TimeOut,
            message: format!("timed out after {} minutes", snapshot.timeout_ms / 60_000),
        }];
    }
    if snapshot.cancel_requested {
        return vec![Move::FinishRun {
            event: RunEvent::Cancel,
            message: "cancelled on request".to_owned(),
        }];
    }
    let status_of = |job: &str| snapshot.jobs.get(job).copied().unwrap_or(JobStatus::Queued);
    let mut moves = Vec::new();
    for job in &def.jobs {
        match status_of(&job.id) {
            JobStatus::Queued => {
                if let Some(failed) = job
                    .needs
                    .iter()
                    .find(|n| status_of(n).is_terminal() && status_of(n) != JobStatus::Succeeded)
                {
                    moves.push(Move::SkipJob {
                        job: job.id.clone(),
                        reason: format!("needed job {failed} is {}", status_of(failed)),
                    });
                } else if job
                    .needs
                    .iter()
                    .all(|n| status_of(n) == JobStatus::Succeeded)
                {
                    match &job.condition {
                        None => moves.push(Move::StartJob {
                            job: job.id.clone(),
                        }),
                        Some(c) => match conditions.evaluate(&job.id, None, c) {
                            Ok(true) => moves.push(Move::StartJob {
                                job: job.id.clone(),
                            }),
                            Ok(false) => moves.push(Move::SkipJob {
                                job: job.id.clone(),
                                reason: "its if condition is false".to_owned(),
                            }),
                            // A job that never started ends as skipped with the reason: the
                            // transitions allow a queued job no failure.
                            Err(e) => moves.push(Move::SkipJob {
                                job: job.id.clone(),
                                reason: format!("its if condition failed: {e}"),
                            }),
                        },
                    }
                }
            }
            JobStatus::Executing => match job_deadline(job, snapshot) {
                Some(deadline) if now >= deadline => moves.push(Move::FinishJob {
                    job: job.id.clone(),
                    event: JobEvent::Fail,
                    message: format!(
                        "timed out after {} minutes",
                        job.timeout_minutes.unwrap_or(0)
                    ),
                }),
                _ => moves.push(job_move(job, snapshot, conditions)),
            },
            _ => {}
        }
    }
    if moves.is_empty() && def.jobs.iter().all(|j| status_of(&j.id).is_terminal()) {
        moves.push(finish_run(def, snapshot));
    }
    moves
}

/// The next move inside an executing job: its first step not yet done, or its end.
fn job_move(job: &JobDef, snapshot: &Snapshot, conditions: &mut dyn Conditions) -> Move {
    for (index, step) in job.steps.iter().enumerate() {
        match snapshot.steps.get(&(job.id.clone(), index)) {
            None => {
                return match &step.condition {
                    None => Move::RunStep {
                        job: job.id.clone(),
                        index,
                    },
                    Some(c) => match conditions.evaluate(&job.id, Some(index), c) {
                        Ok(true) => Move::RunStep {
                            job: job.id.clone(),
                            index,
                        },
                        Ok(false) => Move::SkipStep {
                            job: job.id.clone(),
                            index,
                            reason: "its if condition is false".to_owned(),
                        },
                        Err(e) => Move::FinishJob {
                            job: job.id.clone(),
                            event: JobEvent::Fail,
                            message: format!("step {index}: its if condition failed: {e}"),
                        },
                    },
                };
            }
            Some(StepStatus::Executing) => {
                return Move::RunStep {
                    job: job.id.clone(),
                    index,
                };
            }
            Some(StepStatus::Failed | StepStatus::Cancelled) if !step.continue_on_error => {
                return Move::FinishJob {
                    job: job.id.clone(),
                    event: JobEvent::Fail,
                    message: format!("step {index} ({}) did not succeed", step.name),
                };
            }
            Some(_) => {}
        }
    }
    Move::FinishJob {
        job: job.id.clone(),
        event: JobEvent::Succeed,
        message: String::new(),
    }
}

/// How a run whose jobs all ended ends: failed if one failed, cancelled if one was
/// cancelled, else succeeded (skipped jobs do not fail a run).
fn finish_run(def: &Definition, snapshot: &Snapshot) -> Move {
    let with = |status: JobStatus| {
        def.jobs
            .iter()
            .find(|j| snapshot.jobs.get(&j.id) == Some(&status))
            .map(|j| j.id.clone())
    };
    if let Some(job) = with(JobStatus::Failed) {
        Move::FinishRun {
            event: RunEvent::Fail,
            message: format!("job {job} failed"),
        }
    } else if let Some(job) = with(JobStatus::Cancelled) {
        Move::FinishRun {
            event: RunEvent::Cancel,
            message: format!("job {job} was cancelled"),
        }
    } else {
        Move::FinishRun {
            event: RunEvent::Succeed,
            message: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::action::Action;
    use super::super::definition::{StepDef, Triggers};
    use super::*;

    struct Fixed(BTreeMap<String, Result<bool, String>>);

    impl Conditions for Fixed {
        fn evaluate(&mut self, _: &str, _: Option<usize>, c: &str) -> Result<bool, String> {
            self.0.get(c).cloned().unwrap_or(Ok(true))
        }
    }

    fn no_conditions() -> Fixed {
        Fixed(BTreeMap::new())
    }

    fn step(name: &str) -> StepDef {
        StepDef {
            id: None,
            name: name.to_owned(),
            uses: Action::Log,
            with: Default::default(),
            condition: None,
            continue_on_error: false,
            timeout_minutes: None,
        }
    }

    fn job(id: &str, needs: &[&str], steps: usize) -> JobDef {
        JobDef {
            id: id.to_owned(),
            name: id.to_owned(),
            needs: needs.iter().map(|n| (*n).to_owned()).collect(),
            timeout_minutes: None,
            condition: None,
            steps: (0..steps).map(|i| step(&format!("s{i}"))).collect(),
        }
    }

    fn def(jobs: Vec<JobDef>) -> Definition {
        Definition {
            id: None,
            name: "p".to_owned(),
            metadata: BTreeMap::new(),
            on: Triggers::default(),
            timeout_minutes: 60,
            concurrency_group: None,
            jobs,
        }
    }

    fn executing(jobs: &[(&str, JobStatus)], steps: &[(&str, usize, StepStatus)]) -> Snapshot {
        Snapshot {
            status: RunStatus::Executing,
            executing_at: 1_000,
            timeout_ms: 60 * 60_000,
            cancel_requested: false,
            jobs: jobs.iter().map(|(j, s)| ((*j).to_owned(), *s)).collect(),
            steps: steps
                .iter()
                .map(|(j, i, s)| (((*j).to_owned(), *i), *s))
                .collect(),
            job_started_at: BTreeMap::new(),
        }
    }

    #[test]
    fn a_queued_run_starts_and_a_finished_one_does_nothing() {
        let d = def(vec![job("a", &[], 1)]);
        let mut snap = executing(&[], &[]);
        snap.status = RunStatus::Queued;
        assert_eq!(next(&d, &snap, 0, &mut no_conditions()), [Move::StartRun]);
        for status in [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ] {
            snap.status = status;
            assert!(next(&d, &snap, 0, &mut no_conditions()).is_empty());
        }
    }

    #[test]
    fn jobs_start_by_needs_and_steps_run_in_order() {
        let d = def(vec![
            job("to-test", &[], 2),
            job("to-prod", &["to-test"], 1),
        ]);
        let snap = executing(
            &[
                ("to-test", JobStatus::Queued),
                ("to-prod", JobStatus::Queued),
            ],
            &[],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::StartJob {
                job: "to-test".into()
            }]
        );
        let snap = executing(
            &[
                ("to-test", JobStatus::Executing),
                ("to-prod", JobStatus::Queued),
            ],
            &[("to-test", 0, StepStatus::Succeeded)],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::RunStep {
                job: "to-test".into(),
                index: 1
            }]
        );
        let snap = executing(
            &[
                ("to-test", JobStatus::Executing),
                ("to-prod", JobStatus::Queued),
            ],
            &[
                ("to-test", 0, StepStatus::Succeeded),
                ("to-test", 1, StepStatus::Executing),
            ],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::RunStep {
                job: "to-test".into(),
                index: 1
            }],
            "an executing step is resumed"
        );
        let snap = executing(
            &[
                ("to-test", JobStatus::Executing),
                ("to-prod", JobStatus::Queued),
            ],
            &[
                ("to-test", 0, StepStatus::Succeeded),
                ("to-test", 1, StepStatus::Skipped),
            ],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::FinishJob {
                job: "to-test".into(),
                event: JobEvent::Succeed,
                message: String::new()
            }]
        );
        let snap = executing(
            &[
                ("to-test", JobStatus::Succeeded),
                ("to-prod", JobStatus::Queued),
            ],
            &[],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::StartJob {
                job: "to-prod".into()
            }]
        );
        let snap = executing(
            &[
                ("to-test", JobStatus::Succeeded),
                ("to-prod", JobStatus::Succeeded),
            ],
            &[],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::FinishRun {
                event: RunEvent::Succeed,
                message: String::new()
            }]
        );
    }

    #[test]
    fn a_failed_step_fails_its_job_and_skips_the_jobs_that_need_it() {
        let d = def(vec![
            job("to-test", &[], 2),
            job("to-prod", &["to-test"], 1),
        ]);
        let snap = executing(
            &[
                ("to-test", JobStatus::Executing),
                ("to-prod", JobStatus::Queued),
            ],
            &[("to-test", 0, StepStatus::Failed)],
        );
        assert!(matches!(
            &next(&d, &snap, 2_000, &mut no_conditions())[..],
            [Move::FinishJob {
                event: JobEvent::Fail,
                ..
            }]
        ));
        let snap = executing(
            &[
                ("to-test", JobStatus::Failed),
                ("to-prod", JobStatus::Queued),
            ],
            &[],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::SkipJob {
                job: "to-prod".into(),
                reason: "needed job to-test is failed".into()
            }]
        );
        let snap = executing(
            &[
                ("to-test", JobStatus::Failed),
                ("to-prod", JobStatus::Skipped),
            ],
            &[],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::FinishRun {
                event: RunEvent::Fail,
                message: "job to-test failed".into()
            }]
        );
    }

    #[test]
    fn continue_on_error_keeps_the_job_going() {
        let mut j = job("a", &[], 2);
        j.steps[0].continue_on_error = true;
        let d = def(vec![j]);
        let snap = executing(
            &[("a", JobStatus::Executing)],
            &[("a", 0, StepStatus::Failed)],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::RunStep {
                job: "a".into(),
                index: 1
            }]
        );
    }

    #[test]
    fn conditions_skip_jobs_and_steps() {
        let mut a = job("a", &[], 2);
        a.steps[0].condition = Some("no".into());
        a.steps[1].condition = Some("broken".into());
        let mut b = job("b", &[], 1);
        b.condition = Some("no".into());
        let d = def(vec![a, b]);
        let mut conds = Fixed(
            [
                ("no".to_owned(), Ok(false)),
                ("broken".to_owned(), Err("steps.x is unknown".to_owned())),
            ]
            .into(),
        );
        let snap = executing(
            &[("a", JobStatus::Executing), ("b", JobStatus::Queued)],
            &[],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut conds),
            [
                Move::SkipStep {
                    job: "a".into(),
                    index: 0,
                    reason: "its if condition is false".into()
                },
                Move::SkipJob {
                    job: "b".into(),
                    reason: "its if condition is false".into()
                }
            ]
        );
        let snap = executing(
            &[("a", JobStatus::Executing), ("b", JobStatus::Skipped)],
            &[("a", 0, StepStatus::Skipped)],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut conds),
            [Move::FinishJob {
                job: "a".into(),
                event: JobEvent::Fail,
                message: "step 1: its if condition failed: steps.x is unknown".into()
            }]
        );
    }

    #[test]
    fn timeout_and_cancel_end_the_run() {
        let d = def(vec![job("a", &[], 1)]);
        let mut snap = executing(
            &[("a", JobStatus::Executing)],
            &[("a", 0, StepStatus::Executing)],
        );
        snap.timeout_ms = 10 * 60_000;
        assert_eq!(
            next(&d, &snap, 1_000 + 10 * 60_000, &mut no_conditions()),
            [Move::FinishRun {
                event: RunEvent::TimeOut,
                message: "timed out after 10 minutes".into()
            }]
        );
        assert!(matches!(
            &next(&d, &snap, 1_000 + 10 * 60_000 - 1, &mut no_conditions())[..],
            [Move::RunStep { .. }]
        ));
        snap.cancel_requested = true;
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [Move::FinishRun {
                event: RunEvent::Cancel,
                message: "cancelled on request".into()
            }]
        );
    }

    #[test]
    fn independent_jobs_run_side_by_side() {
        let d = def(vec![
            job("a", &[], 1),
            job("b", &[], 1),
            job("c", &["a", "b"], 1),
        ]);
        let snap = executing(
            &[
                ("a", JobStatus::Executing),
                ("b", JobStatus::Queued),
                ("c", JobStatus::Queued),
            ],
            &[("a", 0, StepStatus::Executing)],
        );
        assert_eq!(
            next(&d, &snap, 2_000, &mut no_conditions()),
            [
                Move::RunStep {
                    job: "a".into(),
                    index: 0
                },
                Move::StartJob { job: "b".into() }
            ]
        );
    }

    #[test]
    fn a_job_times_out_after_its_timeout_minutes() {
        let mut slow = job("a", &[], 2);
        slow.timeout_minutes = Some(5);
        let d = def(vec![slow, job("b", &[], 1)]);
        let mut snap = executing(
            &[("a", JobStatus::Executing), ("b", JobStatus::Executing)],
            &[
                ("a", 0, StepStatus::Executing),
                ("b", 0, StepStatus::Executing),
            ],
        );
        snap.job_started_at.insert("a".into(), 2_000);
        snap.job_started_at.insert("b".into(), 2_000);
        let due = 2_000 + 5 * 60_000;
        assert_eq!(job_deadline(&d.jobs[0], &snap), Some(due));
        assert_eq!(job_deadline(&d.jobs[1], &snap), None, "no timeout-minutes");
        assert_eq!(
            next(&d, &snap, due - 1, &mut no_conditions())[0],
            Move::RunStep {
                job: "a".into(),
                index: 0
            }
        );
        assert_eq!(
            next(&d, &snap, due, &mut no_conditions()),
            [
                Move::FinishJob {
                    job: "a".into(),
                    event: JobEvent::Fail,
                    message: "timed out after 5 minutes".into()
                },
                Move::RunStep {
                    job: "b".into(),
                    index: 0
                }
            ]
        );
        snap.job_started_at.clear();
        assert!(
            matches!(
                &next(&d, &snap, due, &mut no_conditions())[0],
                Move::RunStep { .. }
            ),
            "a job without a step yet has not started its clock"
        );
    }
}
