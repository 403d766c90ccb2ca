//! `actions/humanitec/fail`: fails the step with `message`.

use serde_json::{Map, Value};

use super::super::step::{LogLevel, StepCtx, StepOutcome, StepResult};

pub async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    let message = match super::text(with, "message") {
        Ok(message) => message.unwrap_or("failed by the pipeline").to_owned(),
        Err(e) => return super::bad_input(e),
    };
    StepResult::new(StepOutcome::Failed {
        message: message.clone(),
    })
    .log(ctx.now, LogLevel::Error, message)
}
