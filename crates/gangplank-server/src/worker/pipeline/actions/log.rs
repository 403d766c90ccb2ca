//! `actions/humanitec/log`: writes `message` to the step's log.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::step::{LogLevel, StepCtx, StepOutcome, StepResult};

pub async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    let message = match super::text(with, "message") {
        Ok(message) => message.unwrap_or("").to_owned(),
        Err(e) => return super::bad_input(e),
    };
    StepResult::new(StepOutcome::Succeeded {
        outputs: Map::new(),
        related: BTreeMap::new(),
        message: String::new(),
    })
    .log(ctx.now, LogLevel::Info, message)
}
