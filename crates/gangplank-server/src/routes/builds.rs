//! Builds of an application: its build definition (the clone token sealed, never shown),
//! builds queued by a person (`POST …/builds`) or by a GitHub push (`queue`, called by
//! `inbound_receive`), their logs, and cancel. The build worker (`worker::builder`) runs them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::builds::{
    Build, BuildDefinition, BuildDefinitionRequest, BuildLog, BuildRunRequest,
};
use gangplank_core::access::Action;
use gangplank_core::build::{
    self, BuildStatus, Definition, DefinitionInput, check_commit, check_ref, full_ref,
};
use gangplank_core::timestamp::format_millis;
use gangplank_store::{BuildCancel, BuildDefinitionRow, BuildRow};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AppAccess, Caller};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_definition, put_definition, delete_definition))
        .routes(routes!(list, run))
        .routes(routes!(get_one))
        .routes(routes!(logs))
        .routes(routes!(cancel))
}

/// Most log lines one `GET …/logs` answers.
const LOG_PAGE: i64 = 5000;

/// The sealing context of a definition's clone token.
pub fn token_context(org: &str, app: &str) -> String {
    crate::secrets::context("build-definition", org, app)
}

async fn app_access(
    state: &AppState,
    caller: &Caller,
    org: &str,
    app: &str,
    action: Action,
) -> Result<AppAccess, ApiError> {
    let access = caller.in_org(state, org).await?.app(state, app).await?;
    access.require(action)?;
    Ok(access)
}

/// The stored definition, as core reads it.
pub fn stored_definition(row: &BuildDefinitionRow) -> Result<Definition, ApiError> {
    serde_json::from_str(&row.spec)
        .map_err(|e| ApiError::Internal(format!("build definition of {}: {e}", row.app_id)))
}

fn definition_view(row: &BuildDefinitionRow) -> Result<BuildDefinition, ApiError> {
    let definition = stored_definition(row)?;
    Ok(BuildDefinition {
        app_id: row.app_id.clone(),
        clone_url: definition.clone_url,
        has_clone_token: !row.clone_token_sealed.is_empty(),
        branches: definition.branches,
        dockerfile: definition.dockerfile,
        context: definition.context,
        build_args: definition.build_args,
        image: definition.image,
        tags: definition.tags,
        builder: definition.builder,
        timeout_seconds: definition.timeout_seconds,
        updated_at: format_millis(row.updated_at),
        updated_by: row.updated_by.clone(),
    })
}

pub fn build_view(row: BuildRow) -> Build {
    let image = serde_json::from_str::<Definition>(&row.spec)
        .map(|d| d.image)
        .unwrap_or_default();
    Build {
        tags: serde_json::from_str(&row.tags).unwrap_or_default(),
        id: row.id,
        app_id: row.app_id,
        status: row.status,
        commit: row.commit_sha,
        git_ref: row.git_ref,
        trigger: row.trigger_type,
        delivery_id: row.delivery_id,
        image,
        digest: row.digest,
        version_id: row.version_id,
        message: row.message,
        created_by: row.created_by,
        created_at: format_millis(row.created_at),
        started_at: (row.started_at > 0).then(|| format_millis(row.started_at)),
        finished_at: (row.finished_at > 0).then(|| format_millis(row.finished_at)),
    }
}

/// The application's build definition.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/build-definition", tag = "builds", params(("org" = String, Path), ("app" = String, Path)), responses((status = 200, body = BuildDefinition)))]
async fn get_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
) -> Result<Json<BuildDefinition>, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let row = state.store.get_build_definition(&org, &app).await?;
    Ok(Json(definition_view(&row)?))
}

/// Creates or replaces the application's build definition. Administrators only: a build
/// pushes with the org's registry credentials and registers the version it pushed.
#[utoipa::path(put, path = "/orgs/{org}/apps/{app}/build-definition", tag = "builds", params(("org" = String, Path), ("app" = String, Path)), request_body = BuildDefinitionRequest, responses((status = 200, body = BuildDefinition), (status = 400, description = "a field breaks its rule: URLs http(s) without credentials, paths relative inside the repository, `image` `host/path`, tags valid once rendered, `timeout_seconds` 1..86400")))]
async fn put_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<BuildDefinitionRequest>,
) -> Result<Json<BuildDefinition>, ApiError> {
    let access = app_access(&state, &caller, &org, &app, Action::ManageBuilds).await?;
    let definition = build::check_definition(&DefinitionInput {
        clone_url: &body.clone_url,
        branches: &body.branches,
        dockerfile: body.dockerfile.as_deref(),
        context: body.context.as_deref(),
        build_args: &body.build_args,
        image: &body.image,
        tags: &body.tags,
        builder: &body.builder,
        timeout_seconds: body.timeout_seconds,
    })?;
    for (field, url) in [
        ("clone_url", &definition.clone_url),
        ("builder", &definition.builder),
    ] {
        reqwest::Url::parse(url).map_err(|e| ApiError::invalid(field, e))?;
    }
    let token = body.clone_token.as_deref().map(str::trim);
    if token.is_some_and(|t| t.len() > 4096 || t.chars().any(char::is_control)) {
        return Err(ApiError::invalid(
            "clone_token",
            "must be at most 4096 bytes with no control characters",
        ));
    }
    let clone_token_sealed = match token {
        Some("") | None => String::new(),
        Some(token) => state
            .secrets
            .seal(&token_context(&org, &app), token.as_bytes()),
    };
    let row = BuildDefinitionRow {
        org_id: org.clone(),
        app_id: app.clone(),
        clone_url: definition.clone_url.clone(),
        clone_token_sealed,
        spec: serde_json::to_string(&definition).map_err(|e| ApiError::Internal(e.to_string()))?,
        updated_at: gangplank_store::now_millis(),
        updated_by: access.org.user_id.clone(),
    };
    let row = state
        .store
        .put_build_definition(row, body.clone_token.is_none())
        .await?;
    Ok(Json(definition_view(&row)?))
}

/// Removes the application's build definition; its builds stay.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/build-definition", tag = "builds", params(("org" = String, Path), ("app" = String, Path)), responses((status = 204)))]
async fn delete_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ManageBuilds).await?;
    state.store.delete_build_definition(&org, &app).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who or what queued a build.
pub struct Trigger<'a> {
    /// `github` or `api`.
    pub kind: &'static str,
    pub delivery_id: &'a str,
    pub created_by: &'a str,
}

/// Queues a build of `commit` (or the head of `git_ref` when `None`) from the stored
/// definition, frozen into the build. A push supersedes the queued builds of its ref.
pub async fn queue(
    state: &AppState,
    definition: &BuildDefinitionRow,
    git_ref: &str,
    commit: Option<&str>,
    trigger: Trigger<'_>,
) -> Result<BuildRow, ApiError> {
    let now = gangplank_store::now_millis();
    let row = BuildRow {
        org_id: definition.org_id.clone(),
        app_id: definition.app_id.clone(),
        id: format!("build-{}", uuid::Uuid::now_v7().simple()),
        status: BuildStatus::Queued.as_str().to_owned(),
        commit_sha: commit.unwrap_or_default().to_owned(),
        git_ref: git_ref.to_owned(),
        trigger_type: trigger.kind.to_owned(),
        delivery_id: trigger.delivery_id.to_owned(),
        clone_url: definition.clone_url.clone(),
        spec: definition.spec.clone(),
        tags: "[]".to_owned(),
        digest: String::new(),
        version_id: String::new(),
        message: String::new(),
        log_lines: 0,
        cancel_requested: false,
        created_by: trigger.created_by.to_owned(),
        created_at: now,
        started_at: 0,
        finished_at: 0,
    };
    let row = state
        .store
        .queue_build(row, trigger.kind == "github", now)
        .await?;
    state.wake.builder.notify_one();
    Ok(row)
}

/// The application's builds, newest first.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/builds", tag = "builds", params(("org" = String, Path), ("app" = String, Path), PageParams), responses((status = 200, body = Vec<Build>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    paging: Paging,
) -> Result<Paged<Build>, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let page = state
        .store
        .list_builds(&org, &app, paging.request())
        .await?;
    Ok(paging.reply(page.map(build_view)))
}

/// Builds a commit now (`gangplank build run`): the given one, or the head of `ref` (default:
/// the definition's first branch) when the builder clones.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/builds", tag = "builds", params(("org" = String, Path), ("app" = String, Path)), request_body = BuildRunRequest, responses((status = 201, body = Build), (status = 400, description = "`commit` must be a full commit id, `ref` a git ref"), (status = 404, description = "the application has no build definition")))]
async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<BuildRunRequest>,
) -> Result<(StatusCode, Json<Build>), ApiError> {
    let access = app_access(&state, &caller, &org, &app, Action::Deploy).await?;
    let definition = state.store.get_build_definition(&org, &app).await?;
    let git_ref = match &body.git_ref {
        Some(git_ref) => full_ref(git_ref),
        None => full_ref(&stored_definition(&definition)?.branches[0]),
    };
    check_ref(&git_ref).map_err(|e| ApiError::invalid("ref", e))?;
    if let Some(commit) = &body.commit {
        check_commit(commit).map_err(|e| ApiError::invalid("commit", e))?;
    }
    let trigger = Trigger {
        kind: "api",
        delivery_id: "",
        created_by: &access.org.user_id,
    };
    let row = queue(
        &state,
        &definition,
        &git_ref,
        body.commit.as_deref(),
        trigger,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(build_view(row))))
}

/// One build.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/builds/{id}", tag = "builds", params(("org" = String, Path), ("app" = String, Path), ("id" = String, Path)), responses((status = 200, body = Build)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id)): Path<(String, String, String)>,
) -> Result<Json<Build>, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    Ok(Json(build_view(
        state.store.get_build(&org, &app, &id).await?,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    /// The first line wanted (lines are numbered from 0). Default 0.
    #[param(minimum = 0)]
    from: Option<i64>,
}

/// A build's log from line `from`, at most 5,000 lines; `next` is where to continue. While
/// the build runs, lines keep arriving (`gangplank logs build ID -f` polls this).
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/builds/{id}/logs", tag = "builds", params(("org" = String, Path), ("app" = String, Path), ("id" = String, Path), LogQuery), responses((status = 200, body = BuildLog)))]
async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Json<BuildLog>, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let from = query.from.unwrap_or(0);
    if from < 0 {
        return Err(ApiError::invalid("from", "must be 0 or more"));
    }
    let (build, lines) = state
        .store
        .build_log(&org, &app, &id, from, LOG_PAGE)
        .await?;
    // Lines past the stored cap are counted, not kept: once the stored ones are read, `next`
    // moves past the rest.
    let stored_end = lines.len() < LOG_PAGE as usize;
    let next = lines.last().map_or(from, |(n, _)| n + 1);
    let next = if stored_end && next >= build::MAX_LOG_LINES as i64 {
        next.max(build.log_lines)
    } else {
        next
    };
    Ok(Json(BuildLog {
        lines: lines.into_iter().map(|(_, line)| line).collect(),
        next: u64::try_from(next).unwrap_or(0),
        status: build.status,
    }))
}

/// Cancels a build: a queued one at once (204 answers it), a running one once the builder
/// stopped it (202).
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/builds/{id}/cancel", tag = "builds", params(("org" = String, Path), ("app" = String, Path), ("id" = String, Path)), responses((status = 204, description = "the build was queued and is cancelled"), (status = 202, description = "the build runs; the builder is told to stop it"), (status = 409, description = "the build has finished")))]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = app_access(&state, &caller, &org, &app, Action::Deploy).await?;
    let now = gangplank_store::now_millis();
    let outcome = state
        .store
        .cancel_build(&org, &app, &id, &access.org.user_id, now)
        .await?;
    state.wake.builder.notify_one();
    Ok(match outcome {
        BuildCancel::Cancelled => StatusCode::NO_CONTENT,
        BuildCancel::Requested => StatusCode::ACCEPTED,
    })
}
