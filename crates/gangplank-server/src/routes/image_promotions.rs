//! Image promotions: `GET …/image-promotions` (what was copied where, by which run, versions
//! before and after), `POST …/image-promotions/rollback` (the seed's `rollback.sh`: 409 while a
//! run holds the repository) and `POST …/image-promotions/resume` (lifts the hold a manual
//! rollback puts on automatic promotion). Gangplank's own paths; Humanitec has none.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::image_promotions::{ImagePromotion, ImageRef, ResumeRequest, RollbackRequest};
use gangplank_core::access::Action;
use gangplank_core::image::RepositoryName;
use gangplank_core::timestamp::format_millis;
use gangplank_store::PromotionRow;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::page::{PageParams, Paged, Paging};
use crate::promotion::{PromotionError, registry, rollback};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(roll_back))
        .routes(routes!(resume))
}

pub fn view(row: PromotionRow) -> ImagePromotion {
    ImagePromotion {
        id: row.id,
        app_id: row.app_id,
        action: row.action,
        status: row.status,
        status_message: row.status_message,
        run_id: row.run_id,
        job_id: row.job_id,
        step_index: row.step_index,
        source: ImageRef {
            repository: row.source_image,
            tag: row.source_tag,
            digest: row.source_digest,
        },
        destination: row.dest_image,
        live_tag: row.live_tag,
        previous_live_digest: row.previous_live_digest,
        archive_tag: row.archive_tag,
        dropped_tag: row.dropped_tag,
        new_live_digest: row.new_live_digest,
        version_before: row.version_before,
        version_after: row.version_after,
        bytes_moved: row.bytes_moved,
        blobs_mounted: row.blobs_mounted,
        blobs_skipped: row.blobs_skipped,
        approvals: serde_json::from_str(&row.approvals).unwrap_or_else(|_| serde_json::json!([])),
        comment: row.comment,
        created_by: row.created_by,
        created_at: format_millis(row.created_at),
        finished_at: (row.finished_at > 0).then(|| format_millis(row.finished_at)),
        rolled_back_by: row.rolled_back_by,
    }
}

/// The filter of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListFilter {
    /// Only promotions into this repository (`host/path`).
    repository: Option<String>,
}

/// The app's image promotions and rollbacks, newest first.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/image-promotions", tag = "image-promotions", params(("org" = String, Path), ("app" = String, Path), ListFilter, PageParams), responses((status = 200, body = Vec<ImagePromotion>), (status = 400, description = "a malformed query")))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiQuery(filter): ApiQuery<ListFilter>,
    paging: Paging,
) -> Result<Paged<ImagePromotion>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let repository = filter.repository.unwrap_or_default();
    if repository.len() > gangplank_core::limits::MAX_URL_LEN {
        return Err(ApiError::invalid("repository", "is too long"));
    }
    let page = state
        .store
        .list_promotions(&org, &app, &repository, paging.request())
        .await?;
    Ok(paging.reply(page.map(view)))
}

/// A repository name from a request, normalised; 400 naming `repository` otherwise.
fn repository(value: &str) -> Result<String, ApiError> {
    RepositoryName::parse(value)
        .map(|n| n.to_string())
        .map_err(|e| ApiError::invalid("repository", e))
}

/// A tag from a request (the distribution grammar's tag); 400 naming `field` otherwise.
fn tag(field: &str, value: Option<String>) -> Result<String, ApiError> {
    let value = value.unwrap_or_else(|| "latest".to_owned());
    let valid = !value.is_empty()
        && value.len() <= 128
        && value.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphanumeric() || b == b'_' || (i > 0 && (b == b'.' || b == b'-'))
        });
    if valid {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            field,
            "must be a tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
        ))
    }
}

/// Moves the repository's live tag back to its highest version (or `to_version`) and drops
/// that version tag, as the seed's `rollback.sh`; then holds automatic promotion into the
/// repository until resumed. The rollback's own registry write starts no pipeline.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/image-promotions/rollback", tag = "image-promotions", params(("org" = String, Path), ("app" = String, Path)), request_body = RollbackRequest, responses((status = 201, body = ImagePromotion), (status = 400, description = "nothing to roll back to, or to_version is not a version tag of the repository, or is live already"), (status = 403, description = "the live image was not promoted there by this app"), (status = 409, description = "a run holds the repository, or its live tag moved since the last promotion"), (status = 502, description = "the registry failed")))]
async fn roll_back(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> Result<(StatusCode, Json<ImagePromotion>), ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::Deploy)?;
    let image = repository(&body.repository)?;
    let live_tag = tag("live_tag", body.live_tag)?;
    let to = match body.to_version {
        Some(v) => Some(tag("to_version", Some(v))?),
        None => None,
    };
    let dest = registry::open(&state, &org, &image)
        .await
        .map_err(api_error)?;
    let id = uuid::Uuid::now_v7().to_string();
    let row = rollback::rollback(
        &state.store,
        &dest,
        rollback::Request {
            promotion_id: id.clone(),
            org_id: org.clone(),
            app_id: app.clone(),
            step_key: format!("manual:{id}"),
            run_id: String::new(),
            job_id: String::new(),
            step_index: 0,
            live_tag,
            to,
            comment: body.comment.unwrap_or_default(),
            created_by: access.org.user_id.clone(),
            hold: true,
        },
    )
    .await
    .map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// Lifts the hold a manual rollback put on automatic promotion into the repository's live tag.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/image-promotions/resume", tag = "image-promotions", params(("org" = String, Path), ("app" = String, Path)), request_body = ResumeRequest, responses((status = 204), (status = 404, description = "the repository is not held")))]
async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<ResumeRequest>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::Deploy)?;
    let image = repository(&body.repository)?;
    let live_tag = tag("live_tag", body.live_tag)?;
    // Only the app whose rollback put the hold there lifts it.
    if state
        .store
        .resume_promotion(&org, &app, &image, &live_tag)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "automatic promotion into {image}:{live_tag} is not held by app {app}"
        )))
    }
}

fn api_error(error: PromotionError) -> ApiError {
    match error {
        PromotionError::Locked { .. }
        | PromotionError::Drift { .. }
        | PromotionError::Held { .. } => ApiError::Conflict(error.to_string()),
        PromotionError::Refused(message) => ApiError::Invalid(message),
        PromotionError::Forbidden(message) => ApiError::Forbidden(message),
        PromotionError::Unavailable(message) => ApiError::BadGateway(message),
    }
}
