//! One executor per action (`gangplank_core::pipeline::action::Action`), each
//! `async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult`.

pub mod approve;
pub mod deploy;
pub mod fail;
pub mod http;
pub mod log;
pub mod promote_image;
pub mod rollback_image;
pub mod run;
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
        Action::PromoteImage => promote_image::execute(ctx, with).await,
        Action::RollbackImage => rollback_image::execute(ctx, with).await,
        Action::Http => http::execute(ctx, with).await,
        Action::Run => run::execute(ctx, with).await,
    }
}

/// A `with` input as text: `None` when absent or empty, an error naming the input when not a
/// string. Every action reads its text inputs through this one rule (the `http` and `run`
/// parsers in core too).
pub(crate) use gangplank_core::pipeline::with::text;

/// A failed outcome for a bad input.
pub(crate) fn bad_input(message: impl Into<String>) -> StepResult {
    StepResult::new(StepOutcome::Failed {
        message: message.into(),
    })
}

#[cfg(test)]
mod tests;
