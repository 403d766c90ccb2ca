//! `actions/humanitec/deploy`: deploys a set (`set_id`) or the run's pinned image (the
//! `image` and `digest` inputs; every container running that repository moves to it) into
//! `env_id` through the environment's deploy target, and waits for the outcome. The
//! deployment's id is derived from the step, so a resumed step finds the deployment it
//! created instead of creating another.

use std::collections::BTreeMap;

use gangplank_core::automation::{PendingVersion, image_update_delta};
use gangplank_core::image::ImageReference;
use gangplank_store::{DeployRow, StoreError};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::super::step::{LogLevel, StepCtx, StepOutcome, StepResult};
use crate::deploying::{DeployPlan, parse_set};

/// How often a running deployment is looked at again.
const POLL_MS: i64 = 1_000;

/// The deployment id of a step: 16 hex characters, like every deployment id.
pub fn deploy_id_of(step_key: &str) -> String {
    hex::encode(&Sha256::digest(step_key.as_bytes())[..8])
}

pub async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    let env_id = match super::text(with, "env_id") {
        Ok(Some(env_id)) => env_id.to_owned(),
        Ok(None) => return super::bad_input("input env_id is required"),
        Err(e) => return super::bad_input(e),
    };
    let deploy_id = deploy_id_of(&ctx.step_key());
    let store = &ctx.state.store;
    let existing = match store.get_deploy(ctx.org_id, ctx.app_id, &deploy_id).await {
        Ok(existing) => existing,
        Err(e) => return errored(e),
    };
    let deploy = match existing {
        Some(deploy) => deploy,
        None => match create(ctx, with, &env_id, &deploy_id).await {
            Ok(Created::Deploy(deploy)) => deploy,
            Ok(Created::Done(result)) => return result,
            Err(result) => return result,
        },
    };
    outcome(ctx, &deploy)
}

enum Created {
    Deploy(DeployRow),
    /// Nothing to deploy (the environment runs the image already), or another deployment is
    /// active there: the step's result.
    Done(StepResult),
}

async fn create(
    ctx: &StepCtx<'_>,
    with: &Map<String, Value>,
    env_id: &str,
    deploy_id: &str,
) -> Result<Created, StepResult> {
    let store = &ctx.state.store;
    let env = store
        .get_env(ctx.org_id, ctx.app_id, env_id)
        .await
        .map_err(errored)?
        .ok_or_else(|| {
            super::bad_input(format!("no environment {env_id} in app {}", ctx.app_id))
        })?;
    let base = if env.last_deploy_id.is_empty() {
        String::new()
    } else {
        let last = store
            .get_deploy(ctx.org_id, ctx.app_id, &env.last_deploy_id)
            .await
            .map_err(errored)?;
        match last {
            Some(last) => store
                .get_set(ctx.org_id, ctx.app_id, &last.set_id)
                .await
                .map_err(errored)?
                .unwrap_or_default(),
            None => String::new(),
        }
    };
    let base = parse_set(&base).map_err(|e| errored(format!("{e:?}")))?;
    let comment = super::text(with, "message")
        .map_err(super::bad_input)?
        .unwrap_or("Deployed by a pipeline run")
        .to_owned();
    let (set, delta_id) = match super::text(with, "set_id").map_err(super::bad_input)? {
        Some(set_id) => {
            let content = store
                .get_set(ctx.org_id, ctx.app_id, set_id)
                .await
                .map_err(errored)?
                .ok_or_else(|| {
                    super::bad_input(format!("no set {set_id} in app {}", ctx.app_id))
                })?;
            (
                parse_set(&content).map_err(|e| errored(format!("{e:?}")))?,
                String::new(),
            )
        }
        None => {
            // The step's own input, else the run's (its pinned image).
            let field = |k: &str| -> Result<String, StepResult> {
                Ok(super::text(with, k)
                    .map_err(super::bad_input)?
                    .or_else(|| ctx.inputs.get(k).and_then(Value::as_str))
                    .unwrap_or("")
                    .to_owned())
            };
            let (image, version, digest) = (field("image")?, field("version")?, field("digest")?);
            if image.is_empty() {
                return Err(super::bad_input(
                    "input set_id is required when the run has no image input",
                ));
            }
            let version = PendingVersion {
                name: image.clone(),
                version,
                digest,
            };
            let delta = image_update_delta(&base, std::slice::from_ref(&version));
            if delta.modules.update.is_empty() {
                let runs_it = ImageReference::parse(&image).is_ok_and(|wanted| {
                    base.container_images().iter().any(|c| {
                        ImageReference::parse(&c.image)
                            .is_ok_and(|r| r.repository == wanted.repository)
                    })
                });
                return Ok(Created::Done(if runs_it {
                    StepResult::new(StepOutcome::Succeeded {
                        outputs: Map::new(),
                        related: [("env_id".to_owned(), env_id.to_owned())].into(),
                        message: format!("environment {env_id} runs the image already"),
                    })
                } else {
                    super::bad_input(format!("no workload of environment {env_id} runs {image}"))
                }));
            }
            let set = delta.apply_to(&base).map_err(|e| errored(e.to_string()))?;
            (set, String::new())
        }
    };
    let plan = DeployPlan {
        org_id: ctx.org_id,
        app_id: ctx.app_id,
        env_id,
        from_deploy_id: env.from_deploy_id.clone(),
        base_repositories: base.repositories(),
        delta_id,
        set,
        comment,
        created_by: ctx.run_as.to_owned(),
        triggered_by: ctx.run_as.to_owned(),
        new_delta: None,
    };
    let mut new = plan.into_new_deploy();
    new.id = deploy_id.to_owned();
    match store.create_deploy(new).await {
        Ok(deploy) => {
            ctx.state.wake.deploy.notify_one();
            ctx.state.wake.delivery.notify_one();
            Ok(Created::Deploy(deploy))
        }
        // Another deployment is active in the environment: wait for it to end.
        Err(StoreError::Conflict(message)) => Ok(Created::Done(
            StepResult::new(StepOutcome::Waiting {
                recheck_at: ctx.now + POLL_MS,
                waiting_for: format!("environment({env_id})"),
                related: [("env_id".to_owned(), env_id.to_owned())].into(),
            })
            .log(ctx.now, LogLevel::Info, message),
        )),
        Err(e) => Err(errored(e)),
    }
}

fn outcome(ctx: &StepCtx<'_>, deploy: &DeployRow) -> StepResult {
    let related: BTreeMap<String, String> = [
        ("env_id".to_owned(), deploy.env_id.clone()),
        ("deployment_id".to_owned(), deploy.id.clone()),
    ]
    .into();
    match deploy.status.as_str() {
        "succeeded" => {
            let mut outputs = Map::new();
            outputs.insert("deployment_id".into(), Value::String(deploy.id.clone()));
            outputs.insert("set_id".into(), Value::String(deploy.set_id.clone()));
            StepResult::new(StepOutcome::Succeeded {
                outputs,
                related,
                message: format!("deployment {} succeeded", deploy.id),
            })
            .log(
                ctx.now,
                LogLevel::Info,
                format!("deployment {} succeeded", deploy.id),
            )
        }
        "failed" | "cancelled" => StepResult::new(StepOutcome::Failed {
            message: format!("deployment {} {}", deploy.id, deploy.status),
        }),
        _ => StepResult::new(StepOutcome::Waiting {
            recheck_at: ctx.now + POLL_MS,
            waiting_for: format!("deployment({})", deploy.id),
            related,
        }),
    }
}

fn errored(e: impl ToString) -> StepResult {
    StepResult::new(StepOutcome::Errored {
        message: e.to_string(),
    })
}
