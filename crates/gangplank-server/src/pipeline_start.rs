//! Starting pipeline runs: what the three triggers (`pipeline_call` through the API or CLI,
//! `deployment_request` through criteria, `artefact` from the automation inbox) and restart
//! share. The pipeline's current version is parsed again from its YAML, the inputs are checked
//! and frozen, the concurrency group is expanded, and the run is queued for the runner.

use std::collections::BTreeMap;

use gangplank_core::pipeline::definition::{Definition, parse};
use gangplank_core::pipeline::expr::{Context, render};
use gangplank_core::pipeline::inputs::validate_inputs;
use gangplank_core::pipeline::trigger;
use gangplank_store::{NewRun, PipelineVersionRow, RunRow};
use serde_json::Value;

use crate::error::ApiError;
use crate::state::AppState;

/// A pipeline's version as a run freezes it.
#[derive(Debug, Clone)]
pub struct PipelineVersion {
    pub pipeline_id: String,
    pub version_id: String,
    /// The YAML text.
    pub yaml: String,
    pub definition: Definition,
}

/// A version of a pipeline (its current one when `version_id` is `None`); 404 when missing.
pub async fn version(
    state: &AppState,
    org: &str,
    app: &str,
    pipeline_id: &str,
    version_id: Option<&str>,
) -> Result<PipelineVersion, ApiError> {
    let (_, version) = state
        .store
        .get_pipeline(org, app, pipeline_id, version_id)
        .await?;
    from_row(version)
}

/// A stored version, parsed again. The text was valid when stored; a refusal now means a
/// newer server reads it stricter (409: the pipeline needs a new version).
fn from_row(version: PipelineVersionRow) -> Result<PipelineVersion, ApiError> {
    let definition = parse(&version.definition).map_err(|e| {
        ApiError::Conflict(format!(
            "pipeline {} version {} no longer parses: {e}",
            version.pipeline_id, version.id
        ))
    })?;
    Ok(PipelineVersion {
        pipeline_id: version.pipeline_id,
        version_id: version.id,
        yaml: version.definition,
        definition,
    })
}

/// What starts a run, besides the pipeline.
#[derive(Debug, Clone)]
pub struct Start {
    /// `pipeline_call`, `deployment_request` or `artefact`.
    pub trigger: &'static str,
    /// Already checked for a `pipeline_call` (see [`call_inputs`]).
    pub inputs: Value,
    pub created_by: String,
    /// The artefact version's registrant, for an artefact run.
    pub registrant: String,
    pub idempotency_key: String,
}

/// A `pipeline_call`'s inputs checked against the definition's declared ones (types,
/// required, defaults): 400 naming the problem, or 400 when the pipeline has no such trigger.
pub fn call_inputs(pipeline: &PipelineVersion, inputs: Value) -> Result<Value, ApiError> {
    let Some(call) = &pipeline.definition.on.pipeline_call else {
        return Err(ApiError::invalid(
            "pipeline",
            format!(
                "pipeline {} has no pipeline_call trigger",
                pipeline.pipeline_id
            ),
        ));
    };
    validate_inputs(call, &inputs).map_err(|message| ApiError::invalid("inputs", message))
}

/// The run `start` would create, checked but not stored (what `dry_run` answers 204 for).
pub fn plan(
    org: &str,
    app: &str,
    pipeline: &PipelineVersion,
    start: Start,
) -> Result<NewRun, ApiError> {
    let definition = &pipeline.definition;
    let ctx = Context {
        inputs: start.inputs.clone(),
        steps: BTreeMap::new(),
    };
    let concurrency_group = match &definition.concurrency_group {
        None => String::new(),
        Some(group) => match render(&Value::String(group.clone()), &ctx) {
            Ok(Value::String(text)) => text,
            Ok(other) => other.to_string(),
            Err(e) => {
                return Err(ApiError::invalid(
                    "concurrency.group",
                    format!("cannot be expanded with these inputs: {e}"),
                ));
            }
        },
    };
    let env_ids = start
        .inputs
        .get("env_id")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(|e| vec![e.to_owned()])
        .unwrap_or_default();
    Ok(NewRun {
        org_id: org.to_owned(),
        app_id: app.to_owned(),
        id: uuid::Uuid::new_v4().to_string(),
        pipeline_id: pipeline.pipeline_id.clone(),
        pipeline_version: pipeline.version_id.clone(),
        definition: pipeline.yaml.clone(),
        run_as: start.created_by.clone(),
        created_by: start.created_by,
        registrant: start.registrant,
        trigger: start.trigger.to_owned(),
        inputs: start.inputs,
        timeout_seconds: i64::from(definition.timeout_minutes) * 60,
        concurrency_group,
        idempotency_key: start.idempotency_key,
        env_ids,
    })
}

/// Creates the run (or finds the one its idempotency key made) and wakes the runner. The
/// flag is whether it is new.
pub async fn start(
    state: &AppState,
    org: &str,
    app: &str,
    pipeline: &PipelineVersion,
    start: Start,
) -> Result<(RunRow, bool), ApiError> {
    let new = plan(org, app, pipeline, start)?;
    let (run, created) = state.store.create_run(new).await?;
    if created {
        tracing::info!(run = %run.id, pipeline = %run.pipeline_id, trigger = %run.trigger_type, "pipeline run queued");
        state.wake.pipeline.notify_one();
    }
    Ok((run, created))
}

/// The pipelines an artefact version starts: every pipeline in the org whose artefact trigger
/// matches it, one run each (idempotent per version and pipeline, so a repeated evaluation of
/// the same inbox row starts nothing twice). A pipeline that fails to start is logged and
/// skipped: one broken definition does not hold the others back.
pub async fn for_artefact(
    state: &AppState,
    org: &str,
    event: &trigger::ArtefactEvent<'_>,
) -> Result<usize, gangplank_store::StoreError> {
    let candidates = state
        .store
        .pipelines_with_trigger(org, trigger::ARTEFACT)
        .await?;
    let mut started = 0;
    for (candidate, version) in candidates {
        let (app, pipeline_id) = (&candidate.app_id, &candidate.id);
        let pipeline = match from_row(version) {
            Ok(pipeline) => pipeline,
            Err(error) => {
                tracing::warn!(app = %app, pipeline = %pipeline_id, ?error, "artefact trigger skipped a pipeline");
                continue;
            }
        };
        let Some(on_artefact) = &pipeline.definition.on.artefact else {
            continue;
        };
        if !trigger::artefact_matches(on_artefact, event) {
            continue;
        }
        let start_with = Start {
            trigger: trigger::ARTEFACT,
            inputs: trigger::artefact_inputs(event),
            created_by: event.registrant.to_owned(),
            registrant: event.registrant.to_owned(),
            idempotency_key: trigger::artefact_idempotency_key(event.version_id),
        };
        match start(state, org, app, &pipeline, start_with).await {
            Ok((_, true)) => started += 1,
            Ok((_, false)) => {}
            // The database failed: keep the inbox row, so the trigger is evaluated again.
            Err(ApiError::Internal(detail)) => {
                return Err(gangplank_store::StoreError::Database(detail));
            }
            Err(error) => {
                tracing::warn!(app = %app, pipeline = %pipeline_id, ?error, "artefact trigger could not start a run");
            }
        }
    }
    Ok(started)
}
