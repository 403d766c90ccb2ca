//! `actions/gangplank/rollback-image`: moves `repository`'s live tag back to its highest
//! version (or `to`) and drops that version tag (`crate::promotion::rollback`), idempotent per
//! step. A pipeline's rollback does not hold automatic promotion (a person's rollback does).
//!
//! `with`: `repository` (required; `destination` is accepted too), `live_tag` (default
//! `latest`), `to` (a version, e.g. `0.14`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::promote_image::outcome_of_error;
use crate::promotion::{registry, rollback};
use crate::worker::pipeline::step::{LogLevel, StepCtx, StepOutcome, StepResult};

pub async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    let (repository, live_tag, to) = match inputs(with) {
        Ok(inputs) => inputs,
        Err(message) => return super::bad_input(message),
    };
    let dest = match registry::open(ctx.state, ctx.org_id, repository).await {
        Ok(r) => r,
        Err(e) => return outcome_of_error(ctx, e),
    };
    let request = rollback::Request {
        promotion_id: uuid::Uuid::now_v7().to_string(),
        org_id: ctx.org_id.to_owned(),
        app_id: ctx.app_id.to_owned(),
        step_key: ctx.step_key(),
        run_id: ctx.run_id.to_owned(),
        job_id: ctx.job_id.to_owned(),
        step_index: i64::from(ctx.step_index),
        live_tag: live_tag.unwrap_or("latest").to_owned(),
        to: to.map(str::to_owned),
        comment: String::new(),
        created_by: ctx.run_as.to_owned(),
        hold: false,
    };
    match rollback::rollback(&ctx.state.store, &dest, request).await {
        Ok(row) => {
            let message = format!(
                "Rollback from v{} to v{}",
                row.version_before, row.version_after
            );
            let mut outputs = Map::new();
            outputs.insert("promotion_id".into(), json!(row.id));
            outputs.insert("digest".into(), json!(row.new_live_digest));
            outputs.insert("version_before".into(), json!(row.version_before));
            outputs.insert("version_after".into(), json!(row.version_after));
            StepResult::new(StepOutcome::Succeeded {
                outputs,
                related: BTreeMap::from([("promotion_id".to_owned(), row.id.clone())]),
                message: message.clone(),
            })
            .log(ctx.now, LogLevel::Info, message)
        }
        Err(e) => outcome_of_error(ctx, e),
    }
}

/// `repository` (or `destination`), `live_tag` and `to`, each text when given.
fn inputs(with: &Map<String, Value>) -> Result<(&str, Option<&str>, Option<&str>), String> {
    let repository = match super::text(with, "repository")? {
        Some(repository) => repository,
        None => super::text(with, "destination")?.ok_or("with.repository is required")?,
    };
    Ok((
        repository,
        super::text(with, "live_tag")?,
        super::text(with, "to")?,
    ))
}
