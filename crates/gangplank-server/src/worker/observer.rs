//! The observer: asks every compose environment's agents what they run (`GET /state`, signed
//! like the compose target's requests), judges each workload against the environment's current
//! set (`gangplank_core::runtime`), and records the result with any drift transition and its
//! webhook event. It runs every `observe.interval`, and right after a deployment finishes.
//!
//! An agent that does not answer is asked again with exponential backoff (capped at 5
//! minutes); meanwhile its workloads show `agent_reachable: false`, which is not drift. Nothing
//! here corrects drift unless the environment's target asks for `auto_heal`: then, once drift
//! has lasted `auto_heal_after_seconds`, the current set is redeployed once per drift episode,
//! never while a deployment is active.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use gangplank_api::agent::AgentState;
use gangplank_core::runtime::{
    AgentObservation, DriftEvent, DriftState, ObservedProject, drift_step, judge, keep_last_seen,
};
use gangplank_core::set::Set;
use gangplank_core::target::{DEFAULT_AUTO_HEAL_AFTER_SECONDS, TargetConfig};
use gangplank_store::{ComposeEnv, Observation, ObservedWorkload};

use crate::state::AppState;

/// The longest an unreachable agent waits between two asks.
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// How long one `GET /state` may take (the agent runs three docker commands per project).
const ASK_TIMEOUT: Duration = Duration::from_secs(20);

/// What the observer remembers of an agent that did not answer.
struct Failing {
    failures: u32,
    /// Unix ms before which it is not asked again.
    next_ask_at: i64,
    error: String,
}

pub async fn run(state: AppState) {
    let client = match reqwest::Client::builder().timeout(ASK_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the observer's HTTP client did not build; no observations");
            return;
        }
    };
    let mut failing: HashMap<String, Failing> = HashMap::new();
    loop {
        if let Err(error) = round(&state, &client, &mut failing).await {
            tracing::warn!(%error, "observing compose environments failed");
        }
        let _ = tokio::time::timeout(state.observe_interval, state.wake.observe.notified()).await;
    }
}

/// Observes every compose environment once.
async fn round(
    state: &AppState,
    client: &reqwest::Client,
    failing: &mut HashMap<String, Failing>,
) -> Result<(), gangplank_store::StoreError> {
    let envs = state.store.compose_envs().await?;
    if envs.is_empty() {
        return Ok(());
    }
    let now = gangplank_store::now_millis();
    let mut targets = Vec::new();
    let mut urls: Vec<String> = Vec::new();
    for env in envs {
        match TargetConfig::from_stored(&env.target_kind, &env.target_config) {
            Ok(TargetConfig::Compose(config)) => {
                for agent in &config.agents {
                    if !urls.contains(&agent.url) {
                        urls.push(agent.url.clone());
                    }
                }
                targets.push((env, config));
            }
            Ok(TargetConfig::None) => {}
            Err(error) => {
                tracing::warn!(org = %env.org_id, app = %env.app_id, env = %env.env_id, %error, "not observing an environment whose target is unreadable");
            }
        }
    }
    // Each agent is asked once per round, however many environments share it.
    let due: Vec<String> = urls
        .into_iter()
        .filter(|url| failing.get(url).is_none_or(|f| f.next_ask_at <= now))
        .collect();
    let answers = join_all(due.iter().map(|url| ask(state, client, url))).await;
    let mut states: HashMap<String, Result<AgentState, String>> = HashMap::new();
    for (url, answer) in due.into_iter().zip(answers) {
        match &answer {
            Ok(_) => {
                if failing.remove(&url).is_some() {
                    tracing::info!(agent = %url, "agent answers again");
                }
            }
            Err(error) => {
                crate::metrics::agent_observation_failed();
                let entry = failing.entry(url.clone()).or_insert(Failing {
                    failures: 0,
                    next_ask_at: 0,
                    error: String::new(),
                });
                entry.failures = entry.failures.saturating_add(1);
                let wait = backoff(state.observe_interval, entry.failures);
                entry.next_ask_at = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                entry.error.clone_from(error);
                tracing::warn!(agent = %url, %error, retry_in = ?wait, "agent did not answer GET /state");
            }
        }
        states.insert(url, answer);
    }
    for (url, failure) in failing.iter() {
        states
            .entry(url.clone())
            .or_insert_with(|| Err(failure.error.clone()));
    }
    for (env, config) in targets {
        if let Err(error) = observe_env(state, &env, &config, &states, now).await {
            tracing::warn!(org = %env.org_id, app = %env.app_id, env = %env.env_id, %error, "recording an observation failed");
        }
    }
    Ok(())
}

/// How long to wait before asking an agent again after `failures` failed asks in a row.
fn backoff(interval: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.clamp(1, 16).saturating_sub(1);
    interval.saturating_mul(factor).min(MAX_BACKOFF)
}

/// One signed `GET /state`.
async fn ask(state: &AppState, client: &reqwest::Client, url: &str) -> Result<AgentState, String> {
    let base = url.trim_end_matches('/');
    let token = state
        .keys
        .sign(base, gangplank_store::now_millis() / 1000)
        .map_err(|e| format!("signing the request failed: {e:#}"))?;
    let response = client
        .get(format!("{base}/state"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = super::agent_body::read_capped(response).await?;
    if !status.is_success() {
        let text: String = text.chars().take(200).collect();
        return Err(format!("{status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("unreadable answer: {e}"))
}

async fn observe_env(
    state: &AppState,
    env: &ComposeEnv,
    config: &gangplank_core::target::ComposeConfig,
    states: &HashMap<String, Result<AgentState, String>>,
    now: i64,
) -> Result<(), gangplank_store::StoreError> {
    let set: Set = if env.set_content.is_empty() {
        Set::default()
    } else {
        match serde_json::from_str(&env.set_content) {
            Ok(set) => set,
            Err(error) => {
                tracing::warn!(org = %env.org_id, app = %env.app_id, env = %env.env_id, %error, "the environment's set is unreadable; not observed");
                return Ok(());
            }
        }
    };
    let missing = Err("not asked".to_owned());
    let answers: Vec<&Result<AgentState, String>> = config
        .agents
        .iter()
        .map(|agent| states.get(&agent.url).unwrap_or(&missing))
        .collect();
    let observations: Vec<AgentObservation<'_>> = answers
        .iter()
        .map(|answer| match answer {
            Ok(agent) => AgentObservation::Seen(
                agent
                    .projects
                    .iter()
                    .map(|p| ObservedProject {
                        name: &p.name,
                        services: p
                            .services
                            .iter()
                            .map(|s| (s.service.as_str(), s.observed()))
                            .collect(),
                    })
                    .collect(),
            ),
            Err(error) => AgentObservation::Unreachable { error },
        })
        .collect();
    let (mut rows, verdict) = judge(&set, config, &observations);
    for row in &mut rows {
        clip_row(row);
    }
    let before = state
        .store
        .env_runtime(&env.org_id, &env.app_id, &env.env_id)
        .await?;
    let previous_rows: Vec<_> = before.workloads.iter().map(|w| w.runtime.clone()).collect();
    keep_last_seen(&mut rows, &previous_rows);
    let after_ms = i64::try_from(
        config
            .auto_heal_after_seconds
            .unwrap_or(DEFAULT_AUTO_HEAL_AFTER_SECONDS)
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX);
    let step = drift_step(
        before.drift,
        verdict,
        env.deploying,
        now,
        config.auto_heal,
        after_ms,
    );
    let workloads: Vec<ObservedWorkload> = rows
        .into_iter()
        .map(|runtime| {
            let last_seen_at = if runtime.reachable {
                now
            } else {
                before
                    .workloads
                    .iter()
                    .find(|w| {
                        w.runtime.workload == runtime.workload && w.runtime.agent == runtime.agent
                    })
                    .map_or(0, |w| w.last_seen_at)
            };
            let error = match states.get(&runtime.agent) {
                Some(Err(error)) => {
                    super::agent_body::clip(error, super::agent_body::MAX_SUMMARY).to_owned()
                }
                _ => String::new(),
            };
            ObservedWorkload {
                runtime,
                last_seen_at,
                error,
            }
        })
        .collect();
    let out_of_sync: Vec<String> = workloads
        .iter()
        .filter(|w| w.runtime.in_sync == Some(false))
        .map(|w| format!("{} ({})", w.runtime.workload, w.runtime.reason))
        .collect();
    let applied = state
        .store
        .record_observation(
            &env.org_id,
            &env.app_id,
            &env.env_id,
            Observation {
                workloads,
                checked_at: now,
                previous: before.drift,
                next: step.next,
                event: step.event,
                last_deploy_id: env.last_deploy_id.clone(),
            },
        )
        .await?;
    if !applied {
        // Another replica moved the state first (it announced and heals this change), or a
        // deployment began or is active since the environment was read: no transition.
        return Ok(());
    }
    match step.event {
        Some(DriftEvent::Drifted) => {
            tracing::warn!(org = %env.org_id, app = %env.app_id, env = %env.env_id, workloads = %out_of_sync.join(", "), "environment drifted from its set");
            state.wake.delivery.notify_one();
        }
        Some(DriftEvent::InSync) => {
            tracing::info!(org = %env.org_id, app = %env.app_id, env = %env.env_id, "environment runs its set again");
            state.wake.delivery.notify_one();
        }
        None => {}
    }
    if step.heal
        && let DriftState::Drifted { since, .. } = step.next
    {
        heal(state, env, since).await;
    }
    Ok(())
}

/// Bounds what an agent said of a workload before it is stored: a few digests, short texts.
fn clip_row(row: &mut gangplank_core::runtime::WorkloadRuntime) {
    use super::agent_body::{MAX_DIGESTS, MAX_SUMMARY, clip};
    let short = |text: &mut String| {
        let clipped = clip(text, MAX_SUMMARY).len();
        text.truncate(clipped);
    };
    row.running_digests.truncate(MAX_DIGESTS);
    row.running_digests.iter_mut().for_each(short);
    if let Some(image) = row.running_image.as_mut() {
        short(image);
    }
    short(&mut row.state);
    short(&mut row.health);
    short(&mut row.reason);
}

/// Redeploys the current set of a drifted environment whose target asked for `auto_heal`, if
/// no replica has done so in this drift episode.
async fn heal(state: &AppState, env: &ComposeEnv, since: i64) {
    let (org, app, env_id) = (&env.org_id, &env.app_id, &env.env_id);
    let claimed_at = gangplank_store::now_millis();
    match state
        .store
        .claim_heal(org, app, env_id, since, claimed_at)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            tracing::warn!(%org, %app, env = %env_id, %error, "claiming an auto-heal failed");
            return;
        }
    }
    let comment = format!(
        "auto-heal: drifted since {}",
        gangplank_core::timestamp::format_millis(since)
    );
    match crate::deploying::redeploy_current(state, org, app, env_id, comment, AUTO_HEAL_USER).await
    {
        Ok(deploy) => {
            crate::metrics::auto_heal_started();
            tracing::warn!(%org, %app, env = %env_id, deploy = %deploy.id, drifted_since = %gangplank_core::timestamp::format_millis(since), "auto-heal: redeploying the current set");
        }
        Err(error) => {
            // A deployment became active meanwhile (409), or there is nothing to redeploy:
            // a later observation may try again.
            tracing::info!(%org, %app, env = %env_id, error = ?error, "auto-heal did not start a deployment");
            if let Err(error) = state.store.release_heal(org, app, env_id, claimed_at).await {
                tracing::warn!(%org, %app, env = %env_id, %error, "releasing an auto-heal claim failed");
            }
        }
    }
}

/// The `created_by` and `triggered_by` of auto-heal's deployments.
pub const AUTO_HEAL_USER: &str = "auto-heal";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn backoff_doubles_to_its_cap() {
        let interval = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=6)
            .map(|n| super::backoff(interval, n).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300]);
        assert_eq!(super::backoff(interval, u32::MAX).as_secs(), 300);
        assert_eq!(super::backoff(Duration::from_secs(1), 1).as_secs(), 1);
    }
}
