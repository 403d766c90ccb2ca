//! The deployment runner: claims queued deployments, applies them through their
//! environment's target, and records the outcome (which queues `deployment.finished`).

use std::sync::Arc;

use gangplank_core::set::Set;
use gangplank_store::{ClaimedDeploy, DeployErrorRow};
use tokio::sync::Semaphore;

use super::target::{DeployOutcome, DeployRequest, TargetError};
use crate::state::AppState;

/// How long a claim lasts without renewal; a running deployment renews it every
/// `RENEW_EVERY`, so only a dead worker's claim lapses (and is resumed) after this.
const LEASE_MS: i64 = 2 * 60 * 1000;
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// Claims that may lapse (crashes mid-deployment) before the deployment is failed.
const MAX_ATTEMPTS: i64 = 3;
/// How long a target may take to apply one deployment (agents' retries included).
const DEADLINE_MS: i64 = 15 * 60 * 1000;

/// Deployments running at once (each in its own environment: the store allows one active
/// deployment per environment).
const CONCURRENCY: usize = 64;

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
            .claim_deploys(now, LEASE_MS, MAX_ATTEMPTS, free)
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
            // Only deployments that were failed for lapsing too often: their deliveries wait.
            Ok(_) => state.wake.delivery.notify_one(),
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
    let outcome = match serde_json::from_str::<Set>(&claim.set_content) {
        Err(error) => failed(
            "GP-SET",
            format!("the deployment's set could not be read: {error}"),
        ),
        Ok(set) => match gangplank_core::target::TargetConfig::from_stored(
            &claim.target,
            &claim.target_config,
        ) {
            Err(error) => failed("GP-TARGET", format!("the deployment's target: {error}")),
            Ok(config) => match state.targets.get(&config) {
                None => failed(
                    "GP-TARGET",
                    format!(
                        "the environment's deploy target {:?} is not available on this server",
                        claim.target
                    ),
                ),
                Some(target) => {
                    let request = DeployRequest {
                        org_id: claim.org_id.clone(),
                        app_id: claim.app_id.clone(),
                        env_id: claim.deploy.env_id.clone(),
                        deploy_id: deploy_id.clone(),
                        set_id: claim.deploy.set_id.clone(),
                        set,
                        target: config,
                        attempt: claim.attempt,
                        deadline_ms: gangplank_store::now_millis() + DEADLINE_MS,
                        cancel: tokio_util::sync::CancellationToken::new(),
                    };
                    let apply = target.apply(&request);
                    tokio::pin!(apply);
                    let mut renew = tokio::time::interval(RENEW_EVERY);
                    renew.tick().await;
                    loop {
                        tokio::select! {
                            outcome = &mut apply => break outcome,
                            _ = renew.tick() => {
                                let until = gangplank_store::now_millis() + LEASE_MS;
                                if let Err(error) = state.store.renew_deploy_lease(&claim.org_id, &claim.app_id, &deploy_id, until).await {
                                    tracing::warn!(%error, deploy = %deploy_id, "renewing a deployment's lease failed");
                                }
                            }
                        }
                    }
                }
            },
        },
    };
    let (succeeded, errors) = match outcome {
        DeployOutcome::Succeeded => (true, Vec::new()),
        DeployOutcome::Failed(errors) | DeployOutcome::Errored(errors) => (false, errors),
        DeployOutcome::Cancelled => (false, Vec::new()),
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
    tracing::debug!(deploy = %deploy_id, succeeded, "deployment applied");
    match state
        .store
        .finish_deploy(&claim.org_id, &claim.app_id, &deploy_id, succeeded, errors)
        .await
    {
        Ok(()) => crate::metrics::deployment_finished(succeeded, claim.deploy.created_at),
        // The lease lapses and the deployment is resumed: targets are idempotent.
        Err(error) => {
            tracing::error!(%error, deploy = %deploy_id, "recording a deployment's outcome failed");
        }
    }
}

fn failed(code: &str, message: String) -> DeployOutcome {
    DeployOutcome::Failed(vec![TargetError::deployment(code, message)])
}
