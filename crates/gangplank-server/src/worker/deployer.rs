//! The deployment runner: claims queued deployments, applies them through the target each
//! captured when it was created, until its persisted deadline, and records the outcome
//! (which queues `deployment.finished`). A deployment is never left `in progress`: its target
//! answers, its deadline fails it (errored), or a cancel ends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gangplank_core::deploy::{ClaimStanding, DEADLINE_CODE, FailureKind, Finish, deadline_reason};
use gangplank_core::set::Set;
use gangplank_store::{ClaimedDeploy, DeployErrorRow};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::target::{DeployOutcome, DeployRequest, DeployTarget, TargetError};
use crate::state::AppState;

/// Claims that may lapse (crashes mid-deployment) before the deployment is failed.
const MAX_ATTEMPTS: i64 = 3;
/// How long a cancelled deployment's target gets to tell its agents and return before the
/// runner stops waiting for it.
const CANCEL_GRACE: Duration = Duration::from_secs(10);
/// How long after the deadline a target that watches it too (as `compose` does) may still
/// report, with its per-workload errors, before the runner fails the deployment itself.
const DEADLINE_SLACK: Duration = Duration::from_secs(5);
/// How long a target still running past deadline + slack gets, once cancelled, to tell its
/// agents to stop (as `compose` does) before the runner stops waiting for it.
const DEADLINE_GRACE: Duration = Duration::from_secs(5);
/// How often a runner reads whether its deployment still runs under its claim: another
/// replica's cancel (or a newer claim) reaches it within this, well before a lease renewal.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Deployments running at once (each in its own environment: the store allows one active
/// deployment per environment).
const CONCURRENCY: usize = 64;

/// The deployments this process runs, each with the token that cancels it: the cancel
/// endpoint uses it for a deployment running here; other replicas learn of a cancel when
/// their status check (every [`CHECK_EVERY`]) or lease renewal finds the deployment no
/// longer running under their claim.
#[derive(Default)]
pub struct Running(Mutex<HashMap<String, CancellationToken>>);

impl Running {
    fn key(org_id: &str, app_id: &str, deploy_id: &str) -> String {
        format!("{org_id}/{app_id}/{deploy_id}")
    }

    /// Cancels the deployment if this process runs it; `true` when it did.
    pub fn cancel(&self, org_id: &str, app_id: &str, deploy_id: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&Running::key(org_id, app_id, deploy_id)) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    fn register(self: &Arc<Self>, org_id: &str, app_id: &str, deploy_id: &str) -> Registered {
        let key = Running::key(org_id, app_id, deploy_id);
        let token = CancellationToken::new();
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), token.clone());
        Registered {
            running: self.clone(),
            key,
            token,
        }
    }
}

/// A deployment's entry in [`Running`], removed when its run ends however it ends.
struct Registered {
    running: Arc<Running>,
    key: String,
    token: CancellationToken,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.running
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

pub async fn run(state: AppState) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let free = permits.available_permits();
        if free == 0 {
            drop(permits.clone().acquire_owned().await);
            continue;
        }
        let now = gangplank_store::now_millis();
        // A read first: claiming is a write, too dear to spend on finding nothing.
        let next = state.store.next_deploy_due().await.ok().flatten();
        if next.is_none_or(|at| at > now) {
            super::idle(&state.wake.deploy, next).await;
            continue;
        }
        match state
            .store
            .claim_deploys(now, state.deploy_lease_ms, MAX_ATTEMPTS, free)
            .await
        {
            Ok(claims) if !claims.is_empty() => {
                tracing::debug!(claimed = claims.len(), "deployments claimed");
                // Claiming may have started deployments: their `started` deliveries wait.
                state.wake.delivery.notify_one();
                for claim in claims {
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        return;
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        execute(&state, claim).await;
                        state.wake.delivery.notify_one();
                        state.wake.automation.notify_one();
                        state.wake.observe.notify_one();
                        drop(permit);
                    });
                }
            }
            // Only deployments that were failed for lapsing too often or for their deadline:
            // their deliveries wait.
            Ok(_) => {
                state.wake.delivery.notify_one();
                state.wake.automation.notify_one();
            }
            Err(error) => {
                tracing::error!(%error, "claiming a deployment failed");
                super::idle(&state.wake.deploy, None).await;
            }
        }
    }
}

async fn execute(state: &AppState, claim: ClaimedDeploy) {
    let _running = crate::metrics::DeploymentRunning::start();
    let deploy_id = claim.deploy.id.clone();
    tracing::info!(
        deploy = %deploy_id,
        env = %claim.deploy.env_id,
        attempt = claim.attempt,
        "deployment claimed"
    );
    let registered = state
        .running
        .register(&claim.org_id, &claim.app_id, &deploy_id);
    // A cancel between the claim's commit and the registration above found no token here:
    // renew once now, which also fails for a cancelled deployment (or a newer claim), before
    // anything is applied.
    let until = gangplank_store::now_millis() + state.deploy_lease_ms;
    match state
        .store
        .renew_deploy_lease(
            &claim.org_id,
            &claim.app_id,
            &deploy_id,
            claim.attempt,
            until,
        )
        .await
    {
        Ok(true) => state.events.deploy_status(&claim, "in progress"),
        // Nothing was sent yet: no target to tell either way.
        Ok(false) => {
            tracing::info!(deploy = %deploy_id, attempt = claim.attempt, "deployment no longer runs under this claim (cancelled, or claimed again); not applied");
            return;
        }
        // The claim's own lease still holds; the periodic renewal tries again.
        Err(error) => {
            tracing::warn!(%error, deploy = %deploy_id, "renewing a deployment's lease failed");
        }
    }
    let outcome = match prepare(state, &claim, registered.token.clone()) {
        Err(outcome) => outcome,
        Ok((target, request)) => match run_target(state, &claim, target.as_ref(), &request).await {
            Some(outcome) => outcome,
            None => {
                tracing::warn!(deploy = %deploy_id, attempt = claim.attempt, "a newer claim runs the deployment (this one's lease lapsed); stopped without recording anything");
                return;
            }
        },
    };
    drop(registered);
    let (finish, errors) = match outcome {
        DeployOutcome::Succeeded => (Finish::Succeeded, Vec::new()),
        DeployOutcome::Failed(errors) => (Finish::Failed(FailureKind::Failed), errors),
        DeployOutcome::Errored(errors) => (Finish::Failed(FailureKind::Errored), errors),
        // The store recorded the cancel already; nothing the target did counts.
        DeployOutcome::Cancelled => {
            tracing::info!(deploy = %deploy_id, "deployment cancelled");
            return;
        }
    };
    let errors = errors
        .into_iter()
        .map(|e| DeployErrorRow {
            scope: e.scope,
            object_id: e.object_id,
            code: e.code,
            summary: e.summary,
            message: e.message,
        })
        .collect();
    let succeeded = finish == Finish::Succeeded;
    tracing::info!(deploy = %deploy_id, succeeded, "deployment applied");
    match state
        .store
        .finish_deploy(
            &claim.org_id,
            &claim.app_id,
            &deploy_id,
            claim.attempt,
            finish,
            errors,
        )
        .await
    {
        Ok(true) => {
            crate::metrics::deployment_finished(succeeded, claim.deploy.created_at);
            let status = if succeeded { "succeeded" } else { "failed" };
            state.events.deploy_status(&claim, status);
        }
        Ok(false) => {
            tracing::info!(deploy = %deploy_id, attempt = claim.attempt, "deployment had ended meanwhile (cancelled) or was claimed again; its outcome is not recorded");
        }
        // The lease lapses and the deployment is resumed: targets are idempotent.
        Err(error) => {
            tracing::error!(%error, deploy = %deploy_id, "recording a deployment's outcome failed");
        }
    }
}

/// The request for the claimed deployment, from what the claim captured (its set and target,
/// each read once here), or the outcome when they cannot be read.
#[allow(clippy::result_large_err)]
fn prepare(
    state: &AppState,
    claim: &ClaimedDeploy,
    cancel: CancellationToken,
) -> Result<(Arc<dyn DeployTarget>, DeployRequest), DeployOutcome> {
    let set = serde_json::from_str::<Set>(&claim.set_content).map_err(|error| {
        failed(
            "GP-SET",
            format!("the deployment's set could not be read: {error}"),
        )
    })?;
    let config = claim
        .target
        .clone()
        .map_err(|error| failed("GP-TARGET", format!("the deployment's target: {error}")))?;
    let target = state.targets.get(&config).ok_or_else(|| {
        failed(
            "GP-TARGET",
            format!(
                "the deployment's target {:?} is not available on this server",
                config.kind()
            ),
        )
    })?;
    Ok((
        target,
        DeployRequest {
            org_id: claim.org_id.clone(),
            app_id: claim.app_id.clone(),
            env_id: claim.deploy.env_id.clone(),
            deploy_id: claim.deploy.id.clone(),
            set_id: claim.deploy.set_id.clone(),
            set,
            target: config,
            attempt: claim.attempt,
            deadline_ms: claim.deadline_at,
            cancel,
        },
    ))
}

/// Runs the target until it answers, the deployment's deadline passes (failed, errored, with
/// `GP-DEADLINE`), or it is cancelled (here, or elsewhere as the status check or lease
/// renewal finds); renews the lease meanwhile. A failure the target reports at or after the
/// deadline is errored: it ran out of time. A target still running past deadline + slack is
/// cancelled and gets [`DEADLINE_GRACE`] to tell its agents to stop before it is dropped.
/// `None` when a newer claim took the deployment over: the target is dropped without being
/// cancelled, since telling its agents to cancel would cancel the newer claim's apply (the
/// apply id is the deployment's).
async fn run_target(
    state: &AppState,
    claim: &ClaimedDeploy,
    target: &dyn DeployTarget,
    request: &DeployRequest,
) -> Option<DeployOutcome> {
    let deploy_id = &request.deploy_id;
    let left = request.deadline_ms - gangplank_store::now_millis();
    let deadline = Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(0));
    let apply = target.apply(request);
    tokio::pin!(apply);
    let lease_ms = state.deploy_lease_ms;
    let mut renew = tokio::time::interval(Duration::from_millis(
        u64::try_from(lease_ms / 4).unwrap_or(1),
    ));
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `execute` renewed just before: the first renewal is a quarter lease away.
    renew.tick().await;
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.tick().await;
    // Set when the deployment was cancelled: the target has until then to return.
    let mut grace: Option<Instant> = None;
    let far = deadline + Duration::from_secs(365 * 24 * 3600);
    loop {
        // The deadline first: a target answering at the same instant is past it.
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(deadline + DEADLINE_SLACK), if grace.is_none() => {
                tracing::warn!(deploy = %deploy_id, "deployment past its deadline; telling its target to stop");
                request.cancel.cancel();
                // Whatever the target answers now, the deployment ran out of time.
                let _ = tokio::time::timeout(DEADLINE_GRACE, &mut apply).await;
                return Some(DeployOutcome::Errored(vec![TargetError::deployment(
                    DEADLINE_CODE,
                    deadline_reason(request.target.timeout_ms()),
                )]));
            }
            outcome = &mut apply => {
                if request.cancel.is_cancelled() {
                    return Some(DeployOutcome::Cancelled);
                }
                return Some(match outcome {
                    DeployOutcome::Failed(errors)
                        if gangplank_store::now_millis() >= request.deadline_ms =>
                    {
                        DeployOutcome::Errored(errors)
                    }
                    outcome => outcome,
                });
            }
            () = request.cancel.cancelled(), if grace.is_none() => {
                tracing::info!(deploy = %deploy_id, "deployment cancelled; waiting for its target to stop");
                grace = Some(Instant::now() + CANCEL_GRACE);
            }
            () = tokio::time::sleep_until(grace.unwrap_or(far)), if grace.is_some() => {
                return Some(DeployOutcome::Cancelled);
            }
            _ = renew.tick(), if grace.is_none() => {
                let until = gangplank_store::now_millis() + lease_ms;
                match state.store.renew_deploy_lease(&claim.org_id, &claim.app_id, deploy_id, claim.attempt, until).await {
                    Ok(true) => {}
                    // Cancelled (by another replica's API), ended elsewhere, or claimed again
                    // after this claim's lease lapsed (its finish will be refused): which?
                    Ok(false) => match state.store.deploy_claim_standing(&claim.org_id, &claim.app_id, deploy_id, claim.attempt).await {
                        Ok(ClaimStanding::Superseded) => return None,
                        Ok(_) => request.cancel.cancel(),
                        // Renewal is tried again; the lease may lapse meanwhile, then the
                        // next renewal or check reads a newer claim.
                        Err(error) => tracing::warn!(%error, deploy = %deploy_id, "reading a deployment's claim failed"),
                    },
                    Err(error) => tracing::warn!(%error, deploy = %deploy_id, "renewing a deployment's lease failed"),
                }
            }
            _ = check.tick(), if grace.is_none() => {
                match state.store.deploy_claim_standing(&claim.org_id, &claim.app_id, deploy_id, claim.attempt).await {
                    Ok(ClaimStanding::Held) => {}
                    Ok(ClaimStanding::Ended) => request.cancel.cancel(),
                    Ok(ClaimStanding::Superseded) => return None,
                    // The renewal decides; a read failing now and then changes nothing.
                    Err(error) => tracing::debug!(%error, deploy = %deploy_id, "checking a deployment's status failed"),
                }
            }
        }
    }
}

fn failed(code: &str, message: String) -> DeployOutcome {
    DeployOutcome::Failed(vec![TargetError::deployment(code, message)])
}
