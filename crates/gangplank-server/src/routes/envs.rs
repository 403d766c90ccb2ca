//! Environments of an application.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::apps::{CreateEnv, Env, Rename};
use gangplank_api::deploys::{AutomationLogEntry, AutomationState};
use gangplank_core::access::Action;
use gangplank_core::automation::{FirstError, error_line, explained_reason};
use gangplank_core::id::ResourceId;
use gangplank_store::{EnvRow, NewEnv};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::extract::ApiQuery;
use crate::page::{PageParams, Paged, Paging};
use crate::routes::deploys::deploy_view;
use crate::state::AppState;
use gangplank_core::timestamp::format_millis;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, rename, remove))
        .routes(routes!(rebase))
        .routes(routes!(resume))
        .routes(routes!(automation_log))
}

/// The wire form of an environment, with its `from_deploy` and `last_deploy`.
async fn env_view(state: &AppState, org: &str, app: &str, row: EnvRow) -> Result<Env, ApiError> {
    let created_at = format_millis(row.created_at);
    let deploy = |id: String| async move {
        if id.is_empty() {
            return Ok::<_, ApiError>(None);
        }
        Ok(state
            .store
            .get_deploy(org, app, &id)
            .await?
            .map(deploy_view))
    };
    Ok(Env {
        from_deploy: deploy(row.from_deploy_id).await?,
        last_deploy: deploy(row.last_deploy_id).await?,
        automation: Some(AutomationState {
            held: row.automation_held_at != 0,
            held_since: (row.automation_held_at != 0)
                .then(|| format_millis(row.automation_held_at)),
            held_by: row.automation_held_by,
        }),
        id: row.id,
        name: row.name,
        kind: row.env_type,
        status_changed_at: created_at.clone(),
        created_at,
        created_by: row.created_by,
        status: "active".to_owned(),
    })
}

/// The app's environments, oldest first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs", tag = "envs", params(("org" = String, Path), ("app" = String, Path), PageParams), responses((status = 200, body = Vec<Env>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    paging: Paging,
) -> Result<Paged<Env>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let page = state
        .store
        .list_envs_page(&org, &app, paging.request())
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for row in page.items {
        items.push(env_view(&state, &org, &app, row).await?);
    }
    Ok(paging.reply(gangplank_core::page::Page {
        items,
        next: page.next,
    }))
}

/// Creates an environment (type `development` unless given).
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/envs", tag = "envs", params(("org" = String, Path), ("app" = String, Path)), request_body = CreateEnv, responses((status = 201, body = Env), (status = 400, description = "`type` must name an existing environment type and `from_deploy_id` a deployment of the app")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<CreateEnv>,
) -> Result<(StatusCode, Json<Env>), ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::ManageEnvs)?;
    let id = ResourceId::parse("id", &body.id)?;
    let env_type = ResourceId::parse("type", body.kind.as_deref().unwrap_or("development"))?;
    let from_deploy_id = body.from_deploy_id.unwrap_or_default();
    if !from_deploy_id.is_empty()
        && state
            .store
            .get_deploy(&org, &app, &from_deploy_id)
            .await?
            .is_none()
    {
        return Err(ApiError::invalid(
            "from_deploy_id",
            format!("no deployment {from_deploy_id} in app {app}"),
        ));
    }
    let env = NewEnv {
        name: body.name.unwrap_or_else(|| id.to_string()),
        from_deploy_id,
        id: id.to_string(),
        env_type: env_type.to_string(),
    };
    let row = state
        .store
        .create_env(&org, &app, env, &access.org.user_id)
        .await?;
    state.wake.delivery.notify_one();
    Ok((
        StatusCode::CREATED,
        Json(env_view(&state, &org, &app, row).await?),
    ))
}

/// One environment.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}", tag = "envs", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), responses((status = 200, body = Env)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
) -> Result<Json<Env>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    let row = state
        .store
        .get_env(&org, &app, &env)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no environment {env} in app {app}")))?;
    Ok(Json(env_view(&state, &org, &app, row).await?))
}

/// Renames an environment.
#[utoipa::path(patch, path = "/orgs/{org}/apps/{app}/envs/{env}", tag = "envs", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = Rename, responses((status = 200, body = Env)))]
async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Rename>,
) -> Result<Json<Env>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ManageEnvs)?;
    let row = state.store.rename_env(&org, &app, &env, &body.name).await?;
    Ok(Json(env_view(&state, &org, &app, row).await?))
}

/// Deletes an environment; 400 for the app's last one.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/envs/{env}", tag = "envs", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), responses((status = 204), (status = 400, description = "the last environment of an app cannot be deleted")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::ManageEnvs)?;
    state
        .store
        .delete_env(&org, &app, &env, &access.org.user_id)
        .await?;
    state.wake.delivery.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// Rebases the environment on a deployment of the app: the next deployment starts from its
/// set. Rebasing to an earlier deployment of this environment is a rollback and holds
/// automation until it is resumed. The body is the deployment ID as a JSON string.
#[utoipa::path(put, path = "/orgs/{org}/apps/{app}/envs/{env}/from_deploy_id", tag = "envs", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body(content = String, content_type = "application/json", description = "the deployment id as a JSON string"), responses((status = 204), (status = 400, description = "no such deployment in the app")))]
async fn rebase(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
    ApiJson(deploy_id): ApiJson<String>,
) -> Result<StatusCode, ApiError> {
    let access = caller.in_org(&state, &org).await?.app(&state, &app).await?;
    access.require(Action::Deploy)?;
    state
        .store
        .rebase_env(&org, &app, &env, &deploy_id, &access.org.user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lets automation deploy in the environment again after a rollback held it, and
/// re-evaluates the versions skipped while it was held: per repository, the newest one the
/// rules still accept (and that is no downgrade) is queued for deployment, and the log says
/// so.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/envs/{env}/automation/resume", tag = "automation", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), responses((status = 204)))]
async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::Deploy)?;
    if state.store.resume_automation(&org, &app, &env).await? {
        state.wake.automation.notify_one();
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    /// At most this many entries in all, across pages (at least 1).
    limit: Option<i64>,
}

/// Why each artefact version considered for the environment was or was not deployed, newest
/// first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}/automation-log", tag = "automation", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path), LogQuery, PageParams), responses((status = 200, body = Vec<AutomationLogEntry>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn automation_log(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<LogQuery>,
    paging: Paging,
) -> Result<Paged<AutomationLogEntry>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .app(&state, &app)
        .await?
        .require(Action::ReadApp)?;
    if state.store.get_env(&org, &app, &env).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "no environment {env} in app {app}"
        )));
    }
    if query.limit.is_some_and(|limit| limit < 1) {
        return Err(ApiError::invalid("limit", "must be at least 1"));
    }
    let paging = paging.limit(query.limit);
    let page = state
        .store
        .automation_log(&org, &app, &env, paging.request())
        .await?;
    Ok(paging.reply(page.map(|r| {
        let first_error =
            (!r.error_code.is_empty() || !r.error_summary.is_empty()).then_some(FirstError {
                code: &r.error_code,
                summary: &r.error_summary,
            });
        let reason = explained_reason(
            &r.outcome,
            &r.reason,
            &r.deploy_id,
            &r.deploy_status,
            first_error,
        );
        let deploy_error = match first_error {
            Some(error) if r.deploy_status == "failed" => error_line(error),
            _ => String::new(),
        };
        AutomationLogEntry {
            artefact_version_id: r.version_id,
            name: r.artefact_name,
            version: r.version,
            rule_id: r.rule_id,
            outcome: r.outcome,
            code: r.code,
            reason,
            deploy_id: r.deploy_id,
            deploy_status: r.deploy_status,
            deploy_error,
            created_at: format_millis(r.created_at),
        }
    })))
}
