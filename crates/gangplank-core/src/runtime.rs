//! What an environment's hosts run compared with what its set says they should: per workload
//! the desired and running image and whether they agree (by the one rule,
//! [`crate::agent::check_runs`]), the environment's verdict, and the drift state machine that
//! decides when `environment.drifted` / `environment.in_sync` are announced and when
//! `auto_heal` may redeploy.
//!
//! An agent that cannot be reached is *not* drift: its workloads are reported with
//! `reachable: false` and no in-sync judgement, and they never make an environment drifted
//! (nor heal it). Nothing here corrects drift: the server redeploys only when the environment
//! asked for `auto_heal`, once per drift episode, and never while a deployment is active.

use crate::agent::{ObservedService, check_runs, mapped_image};
use crate::set::Set;
use crate::target::ComposeConfig;

/// One compose project as an agent observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedProject<'a> {
    pub name: &'a str,
    /// Service name and what it runs.
    pub services: Vec<(&'a str, ObservedService<'a>)>,
}

/// What one agent of the environment answered, in the order of the target's `agents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentObservation<'a> {
    /// Its `GET /state`.
    Seen(Vec<ObservedProject<'a>>),
    /// No usable answer; `error` says why.
    Unreachable { error: &'a str },
}

/// One workload's runtime: what it should run, what it runs, and whether those agree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkloadRuntime {
    /// The mapping key: `workload` or `workload/container`.
    pub workload: String,
    pub agent: String,
    /// The compose project that runs it (empty when the agent did not say).
    pub project: String,
    pub service: String,
    /// From the environment's current set; `None` when the set does not deploy it.
    pub desired_image: Option<String>,
    pub running_image: Option<String>,
    pub running_digests: Vec<String>,
    /// `running`, `exited`, …, `missing`; `unknown` when the agent was not reached.
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, `none`; `unknown` when the agent was not reached.
    pub health: String,
    /// `None`: not judged (agent unreachable, nothing desired, or a mapping problem).
    pub in_sync: Option<bool>,
    /// Why it is not in sync (a [`crate::agent::Divergence`]), or why it was not judged.
    pub reason: String,
    pub reachable: bool,
}

/// The environment as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every judged workload runs its desired image, and every agent answered.
    InSync,
    /// At least one reachable workload does not run its desired image.
    Drifted,
    /// Nothing could be judged, or an agent was unreachable and nothing reachable drifted.
    Unknown,
}

/// Compares the environment's `set` with what its agents answered (`observations[i]` is
/// `config.agents[i]`'s; a missing entry counts as unreachable).
pub fn judge(
    set: &Set,
    config: &ComposeConfig,
    observations: &[AgentObservation<'_>],
) -> (Vec<WorkloadRuntime>, Verdict) {
    let mut rows = Vec::new();
    for (i, agent) in config.agents.iter().enumerate() {
        let observation = observations
            .get(i)
            .unwrap_or(&AgentObservation::Unreachable {
                error: "not observed",
            });
        for (workload, service) in &agent.services {
            let mut row = WorkloadRuntime {
                workload: workload.clone(),
                agent: agent.url.clone(),
                project: agent.project.clone().unwrap_or_default(),
                service: service.clone(),
                state: "unknown".to_owned(),
                health: "unknown".to_owned(),
                ..WorkloadRuntime::default()
            };
            let desired = match mapped_image(set, workload) {
                Ok(desired) => desired,
                Err(problem) => {
                    row.reason = problem;
                    None
                }
            };
            row.desired_image = desired.clone();
            let projects = match observation {
                AgentObservation::Unreachable { error } => {
                    row.reason = format!("agent unreachable: {error}");
                    rows.push(row);
                    continue;
                }
                AgentObservation::Seen(projects) => projects,
            };
            row.reachable = true;
            let found = find_service(projects, agent.project.as_deref(), service);
            let missing = ObservedService {
                pinned: None,
                running_image: None,
                running_digests: &[],
                state: "missing",
                health: "none",
            };
            let (project, observed) = found.unwrap_or(("", missing));
            if !project.is_empty() {
                project.clone_into(&mut row.project);
            }
            row.running_image = observed.running_image.map(str::to_owned);
            row.running_digests = observed.running_digests.to_vec();
            observed.state.clone_into(&mut row.state);
            observed.health.clone_into(&mut row.health);
            if let Some(desired) = desired {
                match check_runs(&desired, &observed) {
                    Ok(()) => row.in_sync = Some(true),
                    Err(divergence) => {
                        row.in_sync = Some(false);
                        row.reason = divergence.to_string();
                    }
                }
            }
            rows.push(row);
        }
    }
    let verdict = verdict_of(&rows);
    (rows, verdict)
}

/// The environment's verdict from its workloads (see [`Verdict`]).
pub fn verdict_of(rows: &[WorkloadRuntime]) -> Verdict {
    if rows.iter().any(|r| r.in_sync == Some(false)) {
        Verdict::Drifted
    } else if rows.iter().any(|r| !r.reachable) {
        Verdict::Unknown
    } else if rows.iter().any(|r| r.in_sync == Some(true)) {
        Verdict::InSync
    } else {
        Verdict::Unknown
    }
}

/// The service in the named project, or (no project named) in the agent's one project that
/// has it, as the agent itself picks the project of a request without one.
fn find_service<'a>(
    projects: &'a [ObservedProject<'a>],
    project: Option<&str>,
    service: &str,
) -> Option<(&'a str, ObservedService<'a>)> {
    projects
        .iter()
        .filter(|p| project.is_none_or(|name| p.name == name))
        .find_map(|p| {
            p.services
                .iter()
                .find(|(name, _)| *name == service)
                .map(|(_, observed)| (p.name, *observed))
        })
}

/// For workloads whose agent was not reached this time, what was last seen of them (same
/// workload and agent in `previous`): the running image stays visible, marked unreachable.
pub fn keep_last_seen(rows: &mut [WorkloadRuntime], previous: &[WorkloadRuntime]) {
    for row in rows.iter_mut().filter(|r| !r.reachable) {
        if let Some(before) = previous
            .iter()
            .find(|p| p.workload == row.workload && p.agent == row.agent)
        {
            row.running_image.clone_from(&before.running_image);
            row.running_digests.clone_from(&before.running_digests);
            if before.reachable || before.state != "unknown" {
                row.state.clone_from(&before.state);
                row.health.clone_from(&before.health);
            }
            if row.project.is_empty() {
                row.project.clone_from(&before.project);
            }
        }
    }
}

/// Where an environment stands, as persisted between observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftState {
    /// Not judged yet (or only ever unknown).
    Unknown,
    InSync,
    /// Drifted since `since` (Unix ms); `healed_at` when auto-heal redeployed in this episode.
    Drifted {
        since: i64,
        healed_at: Option<i64>,
    },
}

impl DriftState {
    /// The stored name: `unknown`, `in_sync` or `drifted`.
    pub fn name(&self) -> &'static str {
        match self {
            DriftState::Unknown => "unknown",
            DriftState::InSync => "in_sync",
            DriftState::Drifted { .. } => "drifted",
        }
    }

    /// Reads a stored state; `since` and `healed_at` are Unix ms (0: none).
    pub fn from_stored(name: &str, since: i64, healed_at: i64) -> DriftState {
        match name {
            "in_sync" => DriftState::InSync,
            "drifted" => DriftState::Drifted {
                since,
                healed_at: (healed_at >= since && healed_at > 0).then_some(healed_at),
            },
            _ => DriftState::Unknown,
        }
    }

    /// `since` as stored (0 unless drifted).
    pub fn since(&self) -> i64 {
        match self {
            DriftState::Drifted { since, .. } => *since,
            _ => 0,
        }
    }
}

/// What a transition announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftEvent {
    /// `environment.drifted`.
    Drifted,
    /// `environment.in_sync`.
    InSync,
}

impl DriftEvent {
    /// The webhook event's `type` (its scope is `environment`).
    pub fn kind(&self) -> &'static str {
        match self {
            DriftEvent::Drifted => "drifted",
            DriftEvent::InSync => "in_sync",
        }
    }
}

/// The outcome of one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftStep {
    pub next: DriftState,
    pub event: Option<DriftEvent>,
    /// Auto-heal should redeploy the current set now.
    pub heal: bool,
}

/// The pure drift transition. `deploying`: a deployment is active in the environment, whose
/// hosts are expected to differ until it ends, so nothing changes, nothing is announced and
/// nothing heals. An `Unknown` verdict (an agent unreachable) changes nothing either. Drift
/// is announced when it starts (also on the first judgement) and `in_sync` when it ends (not
/// on a first judgement: nothing was announced before). `heal` is true when `auto_heal` is on,
/// the drift has lasted `after_ms`, and this episode has not been healed yet.
pub fn drift_step(
    previous: DriftState,
    verdict: Verdict,
    deploying: bool,
    now: i64,
    auto_heal: bool,
    after_ms: i64,
) -> DriftStep {
    let hold = DriftStep {
        next: previous,
        event: None,
        heal: false,
    };
    if deploying {
        return hold;
    }
    match (previous, verdict) {
        (_, Verdict::Unknown) => hold,
        (DriftState::Drifted { .. }, Verdict::InSync) => DriftStep {
            next: DriftState::InSync,
            event: Some(DriftEvent::InSync),
            heal: false,
        },
        (_, Verdict::InSync) => DriftStep {
            next: DriftState::InSync,
            event: None,
            heal: false,
        },
        (DriftState::Drifted { since, healed_at }, Verdict::Drifted) => DriftStep {
            next: previous,
            event: None,
            heal: auto_heal && healed_at.is_none() && now.saturating_sub(since) >= after_ms,
        },
        (DriftState::Unknown | DriftState::InSync, Verdict::Drifted) => DriftStep {
            next: DriftState::Drifted {
                since: now,
                healed_at: None,
            },
            event: Some(DriftEvent::Drifted),
            heal: auto_heal && after_ms <= 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::target::AgentBinding;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn set_of(modules: serde_json::Value) -> Set {
        serde_json::from_value(json!({"modules": modules})).unwrap()
    }

    fn workload(image: &str) -> serde_json::Value {
        json!({"spec": {"containers": {"main": {"image": image}}}})
    }

    /// An agent of a test target: URL, project, (workload, service) pairs.
    type TestAgent<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, &'a str)]);

    fn config(agents: &[TestAgent<'_>]) -> ComposeConfig {
        ComposeConfig {
            agents: agents
                .iter()
                .map(|(url, project, services)| AgentBinding {
                    url: (*url).to_owned(),
                    project: project.map(str::to_owned),
                    services: services
                        .iter()
                        .map(|(w, s)| ((*w).to_owned(), (*s).to_owned()))
                        .collect::<BTreeMap<_, _>>(),
                })
                .collect(),
            ..ComposeConfig::default()
        }
    }

    fn running<'a>(image: &'a str, digests: &'a [String]) -> ObservedService<'a> {
        ObservedService {
            pinned: Some(image),
            running_image: Some(image),
            running_digests: digests,
            state: "running",
            health: "healthy",
        }
    }

    #[test]
    fn each_workload_is_judged_by_the_one_rule() {
        let v1 = format!("r/web:1@{D1}");
        let digests = vec![format!("r/web@{D1}")];
        let set = set_of(json!({
            "web": workload(&v1),
            "api": workload("r/api:2"),
            "db": workload("r/db:1"),
            "two": {"spec": {"containers": {"a": {"image": "x:1"}, "b": {"image": "y:1"}}}}
        }));
        let config = config(&[
            (
                "http://a:1",
                None,
                &[
                    ("web", "web"),
                    ("api", "api"),
                    ("gone", "gone"),
                    ("two", "two"),
                ],
            ),
            ("http://b:1", Some("p"), &[("db", "db")]),
        ]);
        let seen = AgentObservation::Seen(vec![ObservedProject {
            name: "shop",
            services: vec![
                ("web", running(&v1, &digests)),
                ("api", running("r/api:1", &[])),
            ],
        }]);
        let down = AgentObservation::Unreachable {
            error: "connection refused",
        };
        let (rows, verdict) = judge(&set, &config, &[seen, down]);
        let summary: Vec<(&str, Option<bool>, bool, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.workload.as_str(),
                    r.in_sync,
                    r.reachable,
                    r.project.as_str(),
                    r.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("api", Some(false), true, "shop", "the agent pins r/api:1"),
                ("gone", None, true, "", ""),
                (
                    "two",
                    None,
                    true,
                    "",
                    "workload two has 2 containers: map two/<container> to the service"
                ),
                ("web", Some(true), true, "shop", ""),
                (
                    "db",
                    None,
                    false,
                    "p",
                    "agent unreachable: connection refused"
                ),
            ]
        );
        assert_eq!(rows[0].desired_image.as_deref(), Some("r/api:2"));
        assert_eq!(rows[0].running_image.as_deref(), Some("r/api:1"));
        assert_eq!(rows[1].state, "missing");
        assert_eq!(rows[4].state, "unknown");
        assert_eq!(verdict, Verdict::Drifted);
    }

    #[test]
    fn the_named_project_is_the_one_looked_in() {
        let set = set_of(json!({"web": workload("w:1")}));
        let other = AgentObservation::Seen(vec![ObservedProject {
            name: "other",
            services: vec![("web", running("w:1", &[]))],
        }]);
        let (rows, verdict) = judge(
            &set,
            &config(&[("http://a:1", Some("shop"), &[("web", "web")])]),
            std::slice::from_ref(&other),
        );
        assert_eq!(rows[0].in_sync, Some(false));
        assert_eq!(rows[0].reason, "no container runs the service");
        assert_eq!(verdict, Verdict::Drifted);
        let (rows, verdict) = judge(
            &set,
            &config(&[("http://a:1", None, &[("web", "web")])]),
            &[other],
        );
        assert_eq!(
            (rows[0].in_sync, rows[0].project.as_str()),
            (Some(true), "other")
        );
        assert_eq!(verdict, Verdict::InSync);
    }

    #[test]
    fn verdicts() {
        let row = |in_sync: Option<bool>, reachable: bool| WorkloadRuntime {
            in_sync,
            reachable,
            ..WorkloadRuntime::default()
        };
        let table = [
            (vec![], Verdict::Unknown),
            (vec![row(Some(true), true)], Verdict::InSync),
            (
                vec![row(Some(true), true), row(None, true)],
                Verdict::InSync,
            ),
            (vec![row(None, true)], Verdict::Unknown),
            (
                vec![row(Some(true), true), row(None, false)],
                Verdict::Unknown,
            ),
            (
                vec![row(Some(false), true), row(None, false)],
                Verdict::Drifted,
            ),
            (
                vec![row(Some(true), true), row(Some(false), true)],
                Verdict::Drifted,
            ),
        ];
        for (rows, expected) in table {
            assert_eq!(verdict_of(&rows), expected, "{rows:?}");
        }
    }

    #[test]
    fn an_unreachable_agent_keeps_what_was_last_seen() {
        let before = WorkloadRuntime {
            workload: "web".into(),
            agent: "http://a:1".into(),
            project: "shop".into(),
            running_image: Some("w:1".into()),
            state: "running".into(),
            health: "healthy".into(),
            in_sync: Some(true),
            reachable: true,
            ..WorkloadRuntime::default()
        };
        let mut rows = vec![WorkloadRuntime {
            workload: "web".into(),
            agent: "http://a:1".into(),
            state: "unknown".into(),
            health: "unknown".into(),
            reason: "agent unreachable: refused".into(),
            ..WorkloadRuntime::default()
        }];
        keep_last_seen(&mut rows, std::slice::from_ref(&before));
        assert_eq!(rows[0].running_image.as_deref(), Some("w:1"));
        assert_eq!(
            (rows[0].state.as_str(), rows[0].project.as_str()),
            ("running", "shop")
        );
        assert_eq!((rows[0].in_sync, rows[0].reachable), (None, false));
    }

    #[test]
    fn drift_transitions() {
        use DriftEvent as E;
        use DriftState as S;
        use Verdict as V;
        let drifted = S::Drifted {
            since: 1000,
            healed_at: None,
        };
        let healed = S::Drifted {
            since: 1000,
            healed_at: Some(1500),
        };
        // (previous, verdict, deploying, now, auto_heal, after_ms) → (next, event, heal)
        let table = [
            (
                S::Unknown,
                V::InSync,
                false,
                2000,
                false,
                0,
                S::InSync,
                None,
                false,
            ),
            (
                S::Unknown,
                V::Unknown,
                false,
                2000,
                true,
                0,
                S::Unknown,
                None,
                false,
            ),
            (
                S::Unknown,
                V::Drifted,
                false,
                2000,
                false,
                0,
                S::Drifted {
                    since: 2000,
                    healed_at: None,
                },
                Some(E::Drifted),
                false,
            ),
            (
                S::InSync,
                V::InSync,
                false,
                2000,
                true,
                0,
                S::InSync,
                None,
                false,
            ),
            (
                S::InSync,
                V::Drifted,
                false,
                2000,
                true,
                60_000,
                S::Drifted {
                    since: 2000,
                    healed_at: None,
                },
                Some(E::Drifted),
                false,
            ),
            (
                S::InSync,
                V::Drifted,
                false,
                2000,
                true,
                0,
                S::Drifted {
                    since: 2000,
                    healed_at: None,
                },
                Some(E::Drifted),
                true,
            ),
            // An unreachable agent is not drift, and not convergence either.
            (
                S::InSync,
                V::Unknown,
                false,
                2000,
                true,
                0,
                S::InSync,
                None,
                false,
            ),
            (
                drifted,
                V::Unknown,
                false,
                90_000,
                true,
                0,
                drifted,
                None,
                false,
            ),
            // Drift persists: heal once its grace period is over, once per episode.
            (
                drifted,
                V::Drifted,
                false,
                1500,
                true,
                1000,
                drifted,
                None,
                false,
            ),
            (
                drifted,
                V::Drifted,
                false,
                2000,
                true,
                1000,
                drifted,
                None,
                true,
            ),
            (
                drifted,
                V::Drifted,
                false,
                2000,
                false,
                1000,
                drifted,
                None,
                false,
            ),
            (
                healed,
                V::Drifted,
                false,
                9000,
                true,
                1000,
                healed,
                None,
                false,
            ),
            (
                drifted,
                V::InSync,
                false,
                2000,
                true,
                1000,
                S::InSync,
                Some(E::InSync),
                false,
            ),
            (
                healed,
                V::InSync,
                false,
                2000,
                true,
                1000,
                S::InSync,
                Some(E::InSync),
                false,
            ),
            // A deployment is active: its hosts differ on purpose until it ends.
            (
                S::InSync,
                V::Drifted,
                true,
                2000,
                true,
                0,
                S::InSync,
                None,
                false,
            ),
            (
                drifted,
                V::InSync,
                true,
                2000,
                true,
                0,
                drifted,
                None,
                false,
            ),
            (
                drifted,
                V::Drifted,
                true,
                90_000,
                true,
                0,
                drifted,
                None,
                false,
            ),
        ];
        for (previous, verdict, deploying, now, auto_heal, after, next, event, heal) in table {
            assert_eq!(
                drift_step(previous, verdict, deploying, now, auto_heal, after),
                DriftStep { next, event, heal },
                "{previous:?} {verdict:?} deploying={deploying} now={now} auto_heal={auto_heal} after={after}"
            );
        }
    }

    #[test]
    fn stored_drift_states_read_back() {
        let states = [
            DriftState::Unknown,
            DriftState::InSync,
            DriftState::Drifted {
                since: 5,
                healed_at: None,
            },
            DriftState::Drifted {
                since: 5,
                healed_at: Some(9),
            },
        ];
        for state in states {
            let healed = match state {
                DriftState::Drifted { healed_at, .. } => healed_at.unwrap_or(0),
                _ => 0,
            };
            assert_eq!(
                DriftState::from_stored(state.name(), state.since(), healed),
                state
            );
        }
        // A heal from an earlier episode does not count for this one.
        assert_eq!(
            DriftState::from_stored("drifted", 10, 9),
            DriftState::Drifted {
                since: 10,
                healed_at: None
            }
        );
        assert_eq!(DriftState::from_stored("bogus", 1, 1), DriftState::Unknown);
    }
}
