//! `actions/humanitec/wait-for-readiness`: waits until `env_id` runs what it should: no
//! deployment active, its newest deployment succeeded, and, for an environment the observer
//! watches (a compose target), its workloads in sync. A failed newest deployment or a drift
//! fails the step; the run's (or step's) timeout bounds the wait.

use std::collections::BTreeMap;

use gangplank_core::runtime::DriftState;
use serde_json::{Map, Value};

use super::super::step::{StepCtx, StepOutcome, StepResult};

/// How often the environment is looked at again.
const POLL_MS: i64 = 2_000;

pub async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    let env_id = match super::text(with, "env_id") {
        Ok(Some(env_id)) => env_id.to_owned(),
        Ok(None) => return super::bad_input("input env_id is required"),
        Err(e) => return super::bad_input(e),
    };
    let store = &ctx.state.store;
    let related: BTreeMap<String, String> = [("env_id".to_owned(), env_id.clone())].into();
    let wait = |related: BTreeMap<String, String>| {
        StepResult::new(StepOutcome::Waiting {
            recheck_at: ctx.now + POLL_MS,
            waiting_for: format!("environment({env_id})"),
            related,
        })
    };
    let env = match store.get_env(ctx.org_id, ctx.app_id, &env_id).await {
        Ok(Some(env)) => env,
        Ok(None) => {
            return super::bad_input(format!("no environment {env_id} in app {}", ctx.app_id));
        }
        Err(e) => return errored(e),
    };
    if env.last_deploy_id.is_empty() {
        return super::bad_input(format!("environment {env_id} has no deployment"));
    }
    let last = match store
        .get_deploy(ctx.org_id, ctx.app_id, &env.last_deploy_id)
        .await
    {
        Ok(Some(last)) => last,
        Ok(None) => return errored(format!("deployment {} is missing", env.last_deploy_id)),
        Err(e) => return errored(e),
    };
    let mut related = related;
    related.insert("deployment_id".into(), last.id.clone());
    match last.status.as_str() {
        "succeeded" => {}
        "pending" | "in progress" => return wait(related),
        other => {
            return StepResult::new(StepOutcome::Failed {
                message: format!("the newest deployment of {env_id}, {}, is {other}", last.id),
            });
        }
    }
    let watched = matches!(
        store.env_target(ctx.org_id, ctx.app_id, &env_id).await,
        Ok((kind, _)) if kind == "compose"
    );
    if watched {
        let runtime = match store.env_runtime(ctx.org_id, ctx.app_id, &env_id).await {
            Ok(runtime) => runtime,
            Err(e) => return errored(e),
        };
        match runtime.drift {
            DriftState::InSync if runtime.checked_at >= last.status_changed_at => {}
            DriftState::Drifted { .. } if runtime.checked_at >= last.status_changed_at => {
                return StepResult::new(StepOutcome::Failed {
                    message: format!("environment {env_id} does not run what it should"),
                });
            }
            // Not observed since the deployment ended: look again soon.
            _ => {
                ctx.state.wake.observe.notify_one();
                return wait(related);
            }
        }
    }
    StepResult::new(StepOutcome::Succeeded {
        outputs: Map::new(),
        related,
        message: format!("environment {env_id} is ready"),
    })
}

fn errored(e: impl ToString) -> StepResult {
    StepResult::new(StepOutcome::Errored {
        message: e.to_string(),
    })
}
