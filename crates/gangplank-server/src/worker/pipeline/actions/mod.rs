//! One executor per action (`gangplank_core::pipeline::action::Action`), each
//! `async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult`.

pub mod approve;
pub mod deploy;
pub mod fail;
pub mod log;
pub mod wait_for_readiness;

use gangplank_core::pipeline::action::Action;
use serde_json::{Map, Value};

use super::step::{StepCtx, StepOutcome, StepResult};

/// Runs `action` for one step.
pub async fn execute(action: Action, ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    match action {
        Action::Approve => approve::execute(ctx, with).await,
        Action::Log => log::execute(ctx, with).await,
        Action::Fail => fail::execute(ctx, with).await,
        Action::Deploy => deploy::execute(ctx, with).await,
        Action::WaitForReadiness => wait_for_readiness::execute(ctx, with).await,
        // Provided by the promotion and actions branches; their merge replaces this arm.
        Action::PromoteImage | Action::RollbackImage | Action::Http | Action::Run => {
            StepResult::new(StepOutcome::Failed {
                message: format!("{action} is not available on this server"),
            })
        }
    }
}

/// A `with` input as text: `None` when absent or empty, an error when not a string.
pub(crate) fn text<'a>(with: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match with.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("input {key} must be a string")),
    }
}

/// A failed outcome for a bad input.
pub(crate) fn bad_input(message: impl Into<String>) -> StepResult {
    StepResult::new(StepOutcome::Failed {
        message: message.into(),
    })
}
