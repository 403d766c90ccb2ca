//! `actions/gangplank/promote-image`: copies the run's image by digest into `destination` and
//! versions the image it replaces there (`crate::promotion::promote`), idempotent per step: a
//! resumed step finishes its recorded promotion from the journal.
//!
//! `with`: `destination` (repository, no tag; required), `source` (`repo@digest` or `repo:tag`;
//! default the run's `inputs.image` at `inputs.digest`), `live_tag` (default `latest`),
//! `version_tags` (only `major.minor`, the default).

use std::collections::BTreeMap;

use gangplank_core::image::ImageReference;
use serde_json::{Map, Value, json};

use crate::promotion::{PromotionError, promote, registry};
use crate::worker::pipeline::step::{LogLevel, StepCtx, StepOutcome, StepResult};

/// How soon a step that found the destination locked looks again.
const LOCKED_RECHECK_MS: i64 = 5_000;

pub async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    let inputs = match Inputs::read(ctx, with) {
        Ok(inputs) => inputs,
        Err(message) => return super::bad_input(message),
    };
    let Inputs {
        destination,
        reference,
        live_tag,
    } = inputs;
    // Three independent store reads (the two registry records, the approvals): side by side,
    // as they stand between the approval and the promotion's first registry call.
    let source_image = reference.repository.to_string();
    let (source_repo, dest_repo, approvals) = tokio::join!(
        registry::open(ctx.state, ctx.org_id, &source_image),
        registry::open(ctx.state, ctx.org_id, &destination),
        run_approvals(ctx)
    );
    let source_repo = match source_repo {
        Ok(r) => r,
        Err(e) => return outcome_of_error(ctx, e),
    };
    let dest_repo = match dest_repo {
        Ok(r) => r,
        Err(e) => return outcome_of_error(ctx, e),
    };
    let approvals = match approvals {
        Ok(approvals) => approvals,
        Err(e) => {
            return StepResult::new(StepOutcome::Errored {
                message: format!("reading the run's approvals: {e}"),
            });
        }
    };
    let request = promote::Request {
        promotion_id: uuid::Uuid::now_v7().to_string(),
        org_id: ctx.org_id.to_owned(),
        app_id: ctx.app_id.to_owned(),
        step_key: ctx.step_key(),
        run_id: ctx.run_id.to_owned(),
        job_id: ctx.job_id.to_owned(),
        step_index: i64::from(ctx.step_index),
        source_tag: reference.tag.clone().unwrap_or_default(),
        source_digest: reference.digest.clone().unwrap_or_default(),
        live_tag,
        created_by: ctx.run_as.to_owned(),
        approvals,
        automatic: ctx.automatic,
    };
    let hold = ctx.state.test_hold.as_deref();
    match promote::promote_holding(&ctx.state.store, &source_repo, &dest_repo, request, hold).await
    {
        Ok(row) => {
            let mut outputs = Map::new();
            outputs.insert("promotion_id".into(), json!(row.id));
            outputs.insert("digest".into(), json!(row.source_digest));
            outputs.insert(
                "image".into(),
                json!(format!("{}:{}", row.dest_image, row.live_tag)),
            );
            outputs.insert("archive_tag".into(), json!(row.archive_tag));
            outputs.insert("version_before".into(), json!(row.version_before));
            outputs.insert("version_after".into(), json!(row.version_after));
            outputs.insert("bytes_moved".into(), json!(row.bytes_moved));
            let message = if row.archive_tag.is_empty() {
                format!(
                    "{} is live as {}:{}",
                    row.source_digest, row.dest_image, row.live_tag
                )
            } else {
                format!(
                    "{} archived as {}:{}; {} is live as {}",
                    row.previous_live_digest,
                    row.dest_image,
                    row.archive_tag,
                    row.source_digest,
                    row.live_tag
                )
            };
            let related = BTreeMap::from([("promotion_id".to_owned(), row.id.clone())]);
            StepResult::new(StepOutcome::Succeeded {
                outputs,
                related,
                message: message.clone(),
            })
            .log(
                ctx.now,
                LogLevel::Info,
                format!(
                    "copied {}@{} to {} ({} bytes moved, {} blobs mounted, {} present)",
                    row.source_image,
                    row.source_digest,
                    row.dest_image,
                    row.bytes_moved,
                    row.blobs_mounted,
                    row.blobs_skipped
                ),
            )
            .log(ctx.now, LogLevel::Info, message)
        }
        Err(e) => outcome_of_error(ctx, e),
    }
}

/// The step's `with`, read and checked.
struct Inputs {
    destination: String,
    reference: ImageReference,
    live_tag: String,
}

impl Inputs {
    fn read(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> Result<Inputs, String> {
        let text = |key: &str| super::text(with, key);
        let destination = text("destination")?
            .ok_or("with.destination is required (a repository, e.g. reg.example/ecr-test/app)")?;
        if !matches!(text("version_tags")?, None | Some("major.minor")) {
            return Err("with.version_tags: only major.minor is supported".into());
        }
        let source = match text("source")? {
            Some(given) => given.to_owned(),
            None => {
                let input = |key: &str| ctx.inputs[key].as_str().unwrap_or_default();
                let (image, digest) = (input("image"), input("digest"));
                if image.is_empty() || digest.is_empty() {
                    return Err(
                        "with.source is required when the run has no inputs.image and inputs.digest"
                            .into(),
                    );
                }
                format!("{image}@{digest}")
            }
        };
        let reference =
            ImageReference::parse(&source).map_err(|e| format!("with.source {source}: {e}"))?;
        if reference.digest.is_none() && reference.tag.is_none() {
            return Err(format!(
                "with.source {source}: name a digest (@sha256:…) or a tag"
            ));
        }
        Ok(Inputs {
            destination: destination.to_owned(),
            reference,
            live_tag: text("live_tag")?.unwrap_or("latest").to_owned(),
        })
    }
}

/// The step outcome of a promotion or rollback error: a lock waits, a registry or store
/// failure is an error (retried), anything else fails the step.
pub fn outcome_of_error(ctx: &StepCtx<'_>, error: PromotionError) -> StepResult {
    let message = error.to_string();
    let outcome = match &error {
        PromotionError::Locked { image, .. } => StepOutcome::Waiting {
            recheck_at: ctx.now + LOCKED_RECHECK_MS,
            waiting_for: format!("repository({image})"),
            related: BTreeMap::new(),
        },
        PromotionError::Unavailable(_) => StepOutcome::Errored {
            message: message.clone(),
        },
        PromotionError::Drift { .. }
        | PromotionError::Held { .. }
        | PromotionError::Refused(_)
        | PromotionError::Forbidden(_) => StepOutcome::Failed {
            message: message.clone(),
        },
    };
    let level = match error {
        PromotionError::Locked { .. } => LogLevel::Warn,
        _ => LogLevel::Error,
    };
    StepResult::new(outcome).log(ctx.now, level, message)
}

/// Who approved this run so far (every `approve` response of its approved requests), as the
/// JSON array the promotion record keeps: `[{approval_id, job_id, user, at, comment}]`.
async fn run_approvals(ctx: &StepCtx<'_>) -> Result<String, gangplank_store::StoreError> {
    let filter = gangplank_store::ApprovalFilter {
        pipeline_ids: vec![ctx.pipeline_id.to_owned()],
        run_ids: vec![ctx.run_id.to_owned()],
        status: Some("approved".into()),
    };
    let page = gangplank_core::page::PageRequest {
        per_page: gangplank_core::page::MAX_PER_PAGE,
        after: None,
    };
    let requests = ctx
        .state
        .store
        .list_approvals(ctx.org_id, ctx.app_id, filter, &page)
        .await?;
    let approvals: Vec<Value> = requests
        .items
        .iter()
        .flat_map(|view| {
            view.responses
                .iter()
                .filter(|r| r.action == "approve")
                .map(|r| {
                    json!({
                        "approval_id": view.approval.id,
                        "job_id": view.approval.job_id,
                        "user": r.user_id,
                        "at": gangplank_core::timestamp::format_millis(r.at),
                        "comment": r.comment,
                    })
                })
        })
        .collect();
    Ok(Value::Array(approvals).to_string())
}
