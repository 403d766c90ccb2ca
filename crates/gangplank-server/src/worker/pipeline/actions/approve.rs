//! `actions/humanitec/approve`: opens the step's approval request (once), then waits until
//! people decide it. Approved succeeds; denied, cancelled or expired fails. Humanitec's YAML
//! passes `environment`, its API shows `env_id`: both are read.

use std::collections::BTreeMap;

use gangplank_core::pipeline::approval::{Policy, is_expired};
use gangplank_core::pipeline::status::ApprovalStatus;
use gangplank_store::{ApprovalView, NewApproval};
use serde_json::{Map, Value};

use super::super::step::{LogLevel, StepCtx, StepOutcome, StepResult};

pub async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    let env_id = match super::text(with, "env_id").and_then(|e| match e {
        Some(e) => Ok(Some(e)),
        None => super::text(with, "environment"),
    }) {
        Ok(Some(env_id)) => env_id.to_owned(),
        Ok(None) => return super::bad_input("input env_id (or environment) is required"),
        Err(e) => return super::bad_input(e),
    };
    let message = match super::text(with, "message") {
        Ok(m) => m.unwrap_or("").to_owned(),
        Err(e) => return super::bad_input(e),
    };
    let policy = match Policy::from_with(with) {
        Ok(policy) => policy,
        Err(e) => return super::bad_input(e),
    };
    let new = NewApproval {
        id: uuid::Uuid::new_v4().to_string(),
        job_id: ctx.job_id.to_owned(),
        step_index: i64::from(ctx.step_index),
        env_id,
        message,
        expires_at: policy.expires_at(ctx.now, default_expiry(ctx)),
        policy,
    };
    let store = &ctx.state.store;
    let view = match store
        .open_approval(ctx.org_id, ctx.app_id, ctx.run_id, new, ctx.now)
        .await
    {
        Ok(Some(view)) => view,
        Ok(None) => {
            return StepResult::new(StepOutcome::Errored {
                message: "the run no longer executes".to_owned(),
            });
        }
        Err(e) => {
            return StepResult::new(StepOutcome::Errored {
                message: format!("opening the approval request: {e}"),
            });
        }
    };
    ctx.state.wake.delivery.notify_one();
    let status = ApprovalStatus::parse(&view.approval.status).unwrap_or(ApprovalStatus::Cancelled);
    if is_expired(status, view.approval.expires_at, ctx.now) {
        return match store
            .expire_approval(ctx.org_id, ctx.app_id, &view.approval.id, ctx.now)
            .await
        {
            Ok(Some(_)) => {
                ctx.state.wake.delivery.notify_one();
                StepResult::new(StepOutcome::Failed {
                    message: "approval expired".to_owned(),
                })
                .log(ctx.now, LogLevel::Warn, "the approval request expired")
            }
            // Decided (or cancelled) just before it expired: that decision stands.
            Ok(None) => match store
                .get_approval(ctx.org_id, ctx.app_id, &view.approval.id)
                .await
            {
                Ok(Some(view)) => {
                    let status = ApprovalStatus::parse(&view.approval.status)
                        .unwrap_or(ApprovalStatus::Cancelled);
                    decided(ctx, &view, status)
                }
                Ok(None) => StepResult::new(StepOutcome::Errored {
                    message: "the approval request is gone".to_owned(),
                }),
                Err(e) => StepResult::new(StepOutcome::Errored {
                    message: format!("reading the approval request: {e}"),
                }),
            },
            Err(e) => StepResult::new(StepOutcome::Errored {
                message: format!("expiring the approval request: {e}"),
            }),
        };
    }
    decided(ctx, &view, status)
}

/// Without `expires_in_minutes` a request expires with the run (promotion.md §5.6): a
/// little before its deadline, so the run fails "approval expired" rather than timing out.
fn default_expiry(ctx: &StepCtx<'_>) -> i64 {
    if ctx.deadline == i64::MAX {
        return 0;
    }
    let margin = ((ctx.deadline - ctx.now) / 10).clamp(0, 60_000);
    ctx.deadline - margin
}

fn decided(ctx: &StepCtx<'_>, view: &ApprovalView, status: ApprovalStatus) -> StepResult {
    let a = &view.approval;
    let related: BTreeMap<String, String> = [
        ("approval_id".to_owned(), a.id.clone()),
        ("env_id".to_owned(), a.env_id.clone()),
    ]
    .into();
    match status {
        ApprovalStatus::Waiting => {
            // Recheck at the expiry (or the run's deadline): a response wakes the run sooner.
            let recheck_at = if a.expires_at > 0 {
                a.expires_at.min(ctx.deadline)
            } else {
                ctx.deadline
            };
            StepResult::new(StepOutcome::Waiting {
                recheck_at,
                waiting_for: format!("approval({})", a.id),
                related,
            })
        }
        ApprovalStatus::Approved => {
            let mut outputs = Map::new();
            outputs.insert("approval_id".into(), Value::String(a.id.clone()));
            outputs.insert("approved_by".into(), Value::String(a.approved_by.clone()));
            let approvers: Vec<Value> = view
                .responses
                .iter()
                .filter(|r| r.action == "approve")
                .map(|r| Value::String(r.user_id.clone()))
                .collect();
            outputs.insert("approvers".into(), Value::Array(approvers));
            StepResult::new(StepOutcome::Succeeded {
                outputs,
                related,
                message: format!("approved by {}", a.approved_by),
            })
            .log(
                ctx.now,
                LogLevel::Info,
                format!("approved by {}", a.approved_by),
            )
        }
        ApprovalStatus::Denied => StepResult::new(StepOutcome::Failed {
            message: format!("denied by {}", a.approved_by),
        })
        .log(
            ctx.now,
            LogLevel::Warn,
            format!("denied by {}", a.approved_by),
        ),
        ApprovalStatus::Cancelled => StepResult::new(StepOutcome::Failed {
            message: if a.status_message.is_empty() {
                "approval cancelled".to_owned()
            } else {
                a.status_message.clone()
            },
        }),
    }
}
