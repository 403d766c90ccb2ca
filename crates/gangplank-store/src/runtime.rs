//! Observed state of compose environments: per workload what its agent reported, replaced
//! whole per observation, and the environment's drift state. A drift transition is written with
//! its webhook event in one transaction, as a compare-and-set on the previous state, so of two
//! replicas observing the same change only one announces it.

use gangplank_core::runtime::{DriftEvent, DriftState, WorkloadRuntime};

use crate::conn::Conn;
use crate::sql::{query, row_struct};
use crate::webhooks::{Event, enqueue_event};
use crate::{Store, StoreError};

/// One workload as last observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedWorkload {
    pub runtime: WorkloadRuntime,
    /// When its agent last answered (Unix ms; 0: never).
    pub last_seen_at: i64,
    /// Why the agent did not answer, when it did not.
    pub error: String,
}

/// What the store knows of an environment's runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRuntime {
    pub drift: DriftState,
    /// When it was last observed (Unix ms; 0: never).
    pub checked_at: i64,
    pub workloads: Vec<ObservedWorkload>,
}

/// An environment with a compose target, and what the observer needs of it.
#[derive(Debug, Clone)]
pub struct ComposeEnv {
    pub org_id: String,
    pub app_id: String,
    pub env_id: String,
    pub target_kind: String,
    pub target_config: String,
    /// The set of its newest deployment, `last_deploy` (empty before the first deployment):
    /// what it was last asked to run, whatever a rebase since prepares for the next one.
    pub set_content: String,
    /// A deployment is pending or in progress in it.
    pub deploying: bool,
    /// Its newest deployment's id (empty before the first): an observation records a drift
    /// transition only if it still is the newest when the observation is written.
    pub last_deploy_id: String,
}
row_struct!(ComposeEnv {
    org_id,
    app_id,
    env_id,
    target_kind,
    target_config,
    set_content,
    deploying,
    last_deploy_id
});

/// One observation to record.
#[derive(Debug, Clone)]
pub struct Observation {
    pub workloads: Vec<ObservedWorkload>,
    pub checked_at: i64,
    /// The state the transition was computed from (the compare-and-set's expectation).
    pub previous: DriftState,
    pub next: DriftState,
    pub event: Option<DriftEvent>,
    /// The environment's newest deployment when it was read (`ComposeEnv::last_deploy_id`):
    /// the set the workloads were judged against.
    pub last_deploy_id: String,
}

#[derive(Debug, Clone)]
struct RuntimeRow {
    workload: String,
    agent_url: String,
    project: String,
    service: String,
    desired_image: String,
    running_image: String,
    running_digests: String,
    state: String,
    health: String,
    in_sync: Option<i64>,
    reason: String,
    last_seen_at: i64,
    reachable: bool,
    error: String,
}
row_struct!(RuntimeRow {
    workload,
    agent_url,
    project,
    service,
    desired_image,
    running_image,
    running_digests,
    state,
    health,
    in_sync,
    reason,
    last_seen_at,
    reachable,
    error
});

impl From<RuntimeRow> for ObservedWorkload {
    fn from(row: RuntimeRow) -> ObservedWorkload {
        let some = |text: String| (!text.is_empty()).then_some(text);
        ObservedWorkload {
            runtime: WorkloadRuntime {
                workload: row.workload,
                agent: row.agent_url,
                project: row.project,
                service: row.service,
                desired_image: some(row.desired_image),
                running_image: some(row.running_image),
                running_digests: serde_json::from_str(&row.running_digests).unwrap_or_default(),
                state: row.state,
                health: row.health,
                in_sync: row.in_sync.map(|v| v != 0),
                reason: row.reason,
                reachable: row.reachable,
            },
            last_seen_at: row.last_seen_at,
            error: row.error,
        }
    }
}

impl Store {
    /// Every environment whose target is `compose`, with its current set.
    pub async fn compose_envs(&self) -> Result<Vec<ComposeEnv>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                query(
                    "SELECT e.org_id, e.app_id, e.id AS env_id, e.deploy_target AS target_kind, \
                     e.target_config, COALESCE(s.content, '') AS set_content, \
                     EXISTS (SELECT 1 FROM deploys x WHERE x.org_id = e.org_id \
                       AND x.app_id = e.app_id AND x.env_id = e.id \
                       AND x.status IN ('pending', 'in progress')) AS deploying, \
                     COALESCE(e.last_deploy_id, '') AS last_deploy_id \
                     FROM envs e \
                     LEFT JOIN deploys d ON d.org_id = e.org_id AND d.app_id = e.app_id \
                       AND d.id = e.last_deploy_id \
                     LEFT JOIN sets s ON s.org_id = d.org_id AND s.app_id = d.app_id \
                       AND s.id = d.set_id \
                     WHERE e.deploy_target = 'compose' ORDER BY e.org_id, e.app_id, e.id",
                )
                .fetch_all::<ComposeEnv>(conn)
                .await
            })
        }))
        .await
    }

    /// What was last observed of an environment (its drift `Unknown` and no workloads before
    /// the first observation).
    pub async fn env_runtime(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
    ) -> Result<EnvRuntime, StoreError> {
        let args = [org_id, app_id, env_id].map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, env_id] = &args;
                read_runtime(conn, org_id, app_id, env_id).await
            })
        }))
        .await
    }

    /// Records an observation: replaces the environment's workloads, and moves its drift state
    /// from `previous` to `next` with `event` only if the stored state still is `previous`.
    /// Returns whether the transition (and its event) was written; `false` means another
    /// replica moved the state first, or the observation is stale: the agents were asked while
    /// the environment was read, up to a timeout before this write.
    ///
    /// Stale is checked here, in the write's transaction: if a deployment is active now, the
    /// workloads are written (they are what runs) but the drift state is left alone and no
    /// event is sent, since a deployment changes containers on purpose; if the environment's
    /// newest deployment is no longer `observation.last_deploy_id`, nothing is written at all,
    /// since the workloads were judged against a set that is no longer current.
    pub async fn record_observation(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        observation: Observation,
    ) -> Result<bool, StoreError> {
        let args = [org_id, app_id, env_id].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, env_id] = &args;
                record(conn, org_id, app_id, env_id, &observation).await
            })
        }))
        .await
    }

    /// Takes the right to auto-heal the drift episode that began at `since`: true once per
    /// episode, whichever replica asks first.
    pub async fn claim_heal(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        since: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let args = [org_id, app_id, env_id].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, env_id] = &args;
                let changed = query(
                    "UPDATE env_drift SET last_heal_at = $5 WHERE org_id = $1 AND app_id = $2 \
                     AND env_id = $3 AND state = 'drifted' AND since = $4 AND last_heal_at < since",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(env_id)
                .bind(since)
                .bind(now)
                .execute(conn)
                .await?;
                Ok(changed == 1)
            })
        }))
        .await
    }

    /// Gives back a heal claimed at `claimed_at` that could not start (a deployment became
    /// active first), so a later observation may try again.
    pub async fn release_heal(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        claimed_at: i64,
    ) -> Result<(), StoreError> {
        let args = [org_id, app_id, env_id].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, env_id] = &args;
                query(
                    "UPDATE env_drift SET last_heal_at = 0 WHERE org_id = $1 AND app_id = $2 \
                     AND env_id = $3 AND last_heal_at = $4",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(env_id)
                .bind(claimed_at)
                .execute(conn)
                .await?;
                Ok(())
            })
        }))
        .await
    }

    /// Environments drifted now, and workloads judged out of sync, for the metrics (only of
    /// environments whose target still is `compose`: others are no longer observed).
    pub async fn drift_counts(&self) -> Result<(i64, i64), StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                query(
                    "SELECT (SELECT COUNT(*) FROM env_drift d JOIN envs e ON e.org_id = d.org_id \
                       AND e.app_id = d.app_id AND e.id = d.env_id \
                       WHERE d.state = 'drifted' AND e.deploy_target = 'compose'), \
                     (SELECT COUNT(*) FROM env_runtime r JOIN envs e ON e.org_id = r.org_id \
                       AND e.app_id = r.app_id AND e.id = r.env_id \
                       WHERE r.in_sync = 0 AND e.deploy_target = 'compose')",
                )
                .fetch_one::<(i64, i64)>(conn)
                .await
            })
        }))
        .await
    }
}

async fn read_runtime(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    env_id: &str,
) -> Result<EnvRuntime, StoreError> {
    let drift = query(
        "SELECT state, since, checked_at, last_heal_at FROM env_drift \
         WHERE org_id = $1 AND app_id = $2 AND env_id = $3",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(env_id)
    .fetch_optional::<(String, i64, i64, i64)>(conn)
    .await?;
    let (drift, checked_at) = match drift {
        Some((state, since, checked_at, healed)) => {
            (DriftState::from_stored(&state, since, healed), checked_at)
        }
        None => (DriftState::Unknown, 0),
    };
    let workloads = query(
        "SELECT workload, agent_url, project, service, desired_image, running_image, \
         running_digests, state, health, in_sync, reason, last_seen_at, reachable, error \
         FROM env_runtime WHERE org_id = $1 AND app_id = $2 AND env_id = $3 \
         ORDER BY workload, agent_url",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(env_id)
    .fetch_all::<RuntimeRow>(conn)
    .await?
    .into_iter()
    .map(ObservedWorkload::from)
    .collect();
    Ok(EnvRuntime {
        drift,
        checked_at,
        workloads,
    })
}

async fn record(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    env_id: &str,
    observation: &Observation,
) -> Result<bool, StoreError> {
    let now = observation.checked_at;
    let current = query(
        "SELECT COALESCE(e.last_deploy_id, ''), EXISTS (SELECT 1 FROM deploys x \
           WHERE x.org_id = e.org_id AND x.app_id = e.app_id AND x.env_id = e.id \
           AND x.status IN ('pending', 'in progress')) \
         FROM envs e WHERE e.org_id = $1 AND e.app_id = $2 AND e.id = $3",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(env_id)
    .fetch_optional::<(String, bool)>(conn)
    .await?;
    let Some((last_deploy_id, deploying)) = current else {
        // The environment was deleted meanwhile.
        return Ok(false);
    };
    if last_deploy_id != observation.last_deploy_id {
        return Ok(false);
    }
    query(
        "INSERT INTO env_drift (org_id, app_id, env_id, state, since, checked_at, last_heal_at) \
         VALUES ($1, $2, $3, 'unknown', 0, $4, 0) ON CONFLICT (org_id, app_id, env_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(app_id)
    .bind(env_id)
    .bind(now)
    .execute(conn)
    .await?;
    let (previous, next) = (observation.previous, observation.next);
    let moves = previous.name() != next.name() || previous.since() != next.since();
    let applied = if deploying {
        query(
            "UPDATE env_drift SET checked_at = $4 WHERE org_id = $1 AND app_id = $2 AND env_id = $3",
        )
        .bind(org_id)
        .bind(app_id)
        .bind(env_id)
        .bind(now)
        .execute(conn)
        .await?;
        false
    } else if moves {
        let changed = query(
            "UPDATE env_drift SET state = $4, since = $5, checked_at = $6 \
             WHERE org_id = $1 AND app_id = $2 AND env_id = $3 AND state = $7 AND since = $8",
        )
        .bind(org_id)
        .bind(app_id)
        .bind(env_id)
        .bind(next.name())
        .bind(next.since())
        .bind(now)
        .bind(previous.name())
        .bind(previous.since())
        .execute(conn)
        .await?;
        changed == 1
    } else {
        query(
            "UPDATE env_drift SET checked_at = $4 WHERE org_id = $1 AND app_id = $2 AND env_id = $3",
        )
        .bind(org_id)
        .bind(app_id)
        .bind(env_id)
        .bind(now)
        .execute(conn)
        .await?;
        true
    };
    if applied && let Some(event) = observation.event {
        let out_of_sync: Vec<&WorkloadRuntime> = observation
            .workloads
            .iter()
            .map(|w| &w.runtime)
            .filter(|w| w.in_sync == Some(false))
            .collect();
        let workloads = out_of_sync
            .iter()
            .map(|w| w.workload.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let reason = out_of_sync
            .first()
            .map(|w| format!("{}: {}", w.workload, w.reason))
            .unwrap_or_default();
        // In sync again: the episode that ended is the one announced.
        let since = match (event, previous) {
            (DriftEvent::InSync, DriftState::Drifted { since, .. }) => since,
            _ => next.since(),
        };
        let since = if since > 0 {
            gangplank_core::timestamp::format_millis(since)
        } else {
            String::new()
        };
        let event = Event::new(
            org_id,
            Some(app_id),
            ("environment", event.kind()),
            "observer",
            now,
            &[
                ("env_id", env_id),
                ("drifted_since", since.as_str()),
                ("workloads", workloads.as_str()),
                ("reason", reason.as_str()),
            ],
        );
        enqueue_event(conn, &event, now).await?;
    }
    query("DELETE FROM env_runtime WHERE org_id = $1 AND app_id = $2 AND env_id = $3")
        .bind(org_id)
        .bind(app_id)
        .bind(env_id)
        .execute(conn)
        .await?;
    for workload in &observation.workloads {
        let w = &workload.runtime;
        query(
            "INSERT INTO env_runtime (org_id, app_id, env_id, workload, agent_url, project, \
             service, desired_image, running_image, running_digests, state, health, in_sync, \
             reason, last_seen_at, reachable, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (org_id, app_id, env_id, agent_url, workload) DO NOTHING",
        )
        .bind(org_id)
        .bind(app_id)
        .bind(env_id)
        .bind(&w.workload)
        .bind(&w.agent)
        .bind(&w.project)
        .bind(&w.service)
        .bind(w.desired_image.clone().unwrap_or_default())
        .bind(w.running_image.clone().unwrap_or_default())
        .bind(serde_json::to_string(&w.running_digests).unwrap_or_else(|_| "[]".to_owned()))
        .bind(&w.state)
        .bind(&w.health)
        .bind(w.in_sync.map(i64::from))
        .bind(&w.reason)
        .bind(workload.last_seen_at)
        .bind(w.reachable)
        .bind(&workload.error)
        .execute(conn)
        .await?;
    }
    Ok(applied)
}
