//! A run's jobs (Humanitec's `listPipelineJobs`, `getPipelineJob`) and a step's log
//! (`listPipelineStepLogs`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use gangplank_api::pipeline_runs::{PipelineJob, PipelineJobPartial, PipelineStepLog};
use gangplank_core::access::Action;
use gangplank_core::page::Page;
use gangplank_core::pipeline::status::JobStatus;
use gangplank_store::RunRow;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::run_views::{etag_header, job_view, log_view, repeated, step_view};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(logs))
}

/// The run, after checking the caller may read the app (404 when it is not the pipeline's).
async fn readable_run(
    state: &AppState,
    caller: &Caller,
    (org, app, pipeline, run): (&str, &str, &str, &str),
) -> Result<RunRow, ApiError> {
    caller
        .in_org(state, org)
        .await?
        .app(state, app)
        .await?
        .require(Action::ReadApp)?;
    state
        .store
        .get_run(org, app, run)
        .await?
        .filter(|r| r.pipeline_id == pipeline)
        .ok_or_else(|| ApiError::NotFound(format!("no run {run} of pipeline {pipeline}")))
}

/// The run's jobs in definition order; `status` (repeat) narrows them.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("status" = Option<Vec<String>>, Query, explode = true), PageParams), responses((status = 200, body = Vec<PipelineJobPartial>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, run)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
    paging: Paging,
) -> Result<Paged<PipelineJobPartial>, ApiError> {
    let statuses = repeated(query.as_deref(), "status")?;
    if let Some(bad) = statuses.iter().find(|s| JobStatus::parse(s).is_none()) {
        return Err(ApiError::invalid(
            "status",
            format!("{bad:?} is not a job status"),
        ));
    }
    let run_row = readable_run(&state, &caller, (&org, &app, &pipeline, &run)).await?;
    let page = state
        .store
        .list_jobs(&org, &app, &run, statuses, paging.request())
        .await?;
    Ok(paging.reply(page.map(|job| job_view(&run_row, job))))
}

/// One job with the steps that ran or run, and its `Etag`.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("job" = String, Path)), responses((status = 200, body = PipelineJob, headers(("Etag" = String)))))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, run, job)): Path<(String, String, String, String, String)>,
) -> Result<Response, ApiError> {
    let run_row = readable_run(&state, &caller, (&org, &app, &pipeline, &run)).await?;
    let (job_row, steps) = state
        .store
        .get_job(&org, &app, &run, &job)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {job} in run {run}")))?;
    let etag = etag_header(&job_row.etag);
    let body = PipelineJob {
        job: job_view(&run_row, job_row),
        steps: steps.into_iter().map(step_view).collect(),
    };
    Ok(([etag], Json(body)).into_response())
}

/// A step's log, oldest first (404 until the step has started).
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}/steps/{step}/logs", tag = "pipeline-runs", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("run" = String, Path), ("job" = String, Path), ("step" = u32, Path, description = "the step's index in the job"), PageParams), responses((status = 200, body = Vec<PipelineStepLog>, headers(("Etag" = String, description = "changes when the page's lines do"), ("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, run, job, step)): Path<(
        String,
        String,
        String,
        String,
        String,
        String,
    )>,
    paging: Paging,
) -> Result<Response, ApiError> {
    let index: u32 = step
        .parse()
        .map_err(|_| ApiError::invalid("step", "must be a step index (0, 1, …)"))?;
    readable_run(&state, &caller, (&org, &app, &pipeline, &run)).await?;
    let page = state
        .store
        .list_step_logs(&org, &app, &run, &job, i64::from(index), paging.request())
        .await?;
    let lines: Vec<PipelineStepLog> = page.items.into_iter().map(log_view).collect();
    // The page's lines decide its tag: a step that logs more gets a new one.
    let body = serde_json::to_vec(&lines).unwrap_or_default();
    let tag = hex::encode(&Sha256::digest(&body)[..16]);
    let page = Page {
        items: lines,
        next: page.next,
    };
    Ok(([etag_header(&tag)], paging.reply(page)).into_response())
}
