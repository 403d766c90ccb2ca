//! Automation rules of an environment (reference §2), with Gangplank's version policy.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gangplank_api::rules::{Rule, RuleRequest, VersionPolicy};
use gangplank_core::access::Action;
use gangplank_core::automation::{self, RuleInput};
use gangplank_core::timestamp::format_millis;
use gangplank_store::RuleRow;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AppAccess, Caller};
use crate::deploying::new_rule_id;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;
use crate::worker::automation::policy_from_text;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, remove))
}

fn rule_view(row: RuleRow) -> Rule {
    let policy = policy_from_text(&row.version_policy).map(|p| match p {
        automation::VersionPolicy::Semver {
            constraint,
            include_prerelease,
        } => VersionPolicy::Semver {
            constraint,
            include_prerelease,
        },
        automation::VersionPolicy::Regex { pattern } => VersionPolicy::Regex { pattern },
    });
    let filter: Vec<String> = serde_json::from_str(&row.artefacts_filter).unwrap_or_default();
    Rule {
        id: row.id,
        kind: "update".to_owned(),
        active: row.active,
        images_filter: filter.clone(),
        artefacts_filter: filter,
        exclude_images_filter: row.exclude_artefacts_filter,
        exclude_artefacts_filter: row.exclude_artefacts_filter,
        match_ref: row.match_ref,
        legacy_match: row.legacy_match,
        update_to: row.update_to,
        version_policy: policy,
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
        updated_at: format_millis(row.updated_at),
    }
}

/// Validates a request through the core's rule and returns the storable fields.
fn validated(env_id: &str, body: RuleRequest) -> Result<RuleRow, ApiError> {
    let policy_text = body
        .version_policy
        .as_ref()
        .map(|p| serde_json::to_string(p).unwrap_or_default())
        .unwrap_or_default();
    let rule = automation::Rule::validate(RuleInput {
        kind: body.kind,
        active: body.active,
        artefacts_filter: body.artefacts_filter,
        exclude_artefacts_filter: body.exclude_artefacts_filter,
        images_filter: body.images_filter,
        exclude_images_filter: body.exclude_images_filter,
        match_ref: body.match_ref,
        legacy_match: body.legacy_match,
        update_to: body.update_to,
        version_policy: policy_from_text(&policy_text),
    })?;
    Ok(RuleRow {
        id: String::new(),
        env_id: env_id.to_owned(),
        active: rule.active,
        artefacts_filter: serde_json::to_string(&rule.artefacts_filter)
            .unwrap_or_else(|_| "[]".to_owned()),
        exclude_artefacts_filter: rule.exclude_artefacts_filter,
        match_ref: rule.match_ref,
        legacy_match: rule.legacy_match,
        update_to: rule
            .update_to
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
        version_policy: policy_text,
        created_at: 0,
        created_by: String::new(),
        updated_at: 0,
    })
}

async fn access_env(
    state: &AppState,
    caller: &Caller,
    org: &str,
    app: &str,
    env: &str,
    action: Action,
) -> Result<AppAccess, ApiError> {
    let access = caller.in_org(state, org).await?.app(state, app).await?;
    access.require(action)?;
    if state.store.get_env(org, app, env).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "no environment {env} in app {app}"
        )));
    }
    Ok(access)
}

/// The environment's rules, in the order they are tried, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}/rules", tag = "automation", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path), PageParams), responses((status = 200, body = Vec<Rule>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
    paging: Paging,
) -> Result<Paged<Rule>, ApiError> {
    access_env(&state, &caller, &org, &app, &env, Action::ReadApp).await?;
    let page = state
        .store
        .list_rules_page(&org, &app, &env, paging.request())
        .await?;
    Ok(paging.reply(page.map(rule_view)))
}

/// Creates a rule.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/envs/{env}/rules", tag = "automation", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path)), request_body = RuleRequest, responses((status = 201, body = Rule), (status = 400, description = "`match_ref` and `match` must be valid regexes, a semver `constraint` must parse, and the deprecated fields cannot be combined with their replacements")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<RuleRequest>,
) -> Result<(StatusCode, Json<Rule>), ApiError> {
    let access = access_env(&state, &caller, &org, &app, &env, Action::ManageRules).await?;
    let now = gangplank_store::now_millis();
    let row = RuleRow {
        id: new_rule_id(),
        created_at: now,
        created_by: access.org.user_id.clone(),
        updated_at: now,
        ..validated(&env, body)?
    };
    let row = state.store.create_rule(&org, &app, row).await?;
    Ok((StatusCode::CREATED, Json(rule_view(row))))
}

/// One rule.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/envs/{env}/rules/{rule}", tag = "automation", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path), ("rule" = String, Path)), responses((status = 200, body = Rule)))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env, rule)): Path<(String, String, String, String)>,
) -> Result<Json<Rule>, ApiError> {
    access_env(&state, &caller, &org, &app, &env, Action::ReadApp).await?;
    let rows = state.store.list_rules(&org, &app, &env).await?;
    rows.into_iter()
        .find(|r| r.id == rule)
        .map(|r| Json(rule_view(r)))
        .ok_or_else(|| ApiError::NotFound(format!("no rule {rule} in environment {env}")))
}

/// Replaces a rule.
#[utoipa::path(put, path = "/orgs/{org}/apps/{app}/envs/{env}/rules/{rule}", tag = "automation", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path), ("rule" = String, Path)), request_body = RuleRequest, responses((status = 200, body = Rule), (status = 400, description = "the rules of create")))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env, rule)): Path<(String, String, String, String)>,
    ApiJson(body): ApiJson<RuleRequest>,
) -> Result<Json<Rule>, ApiError> {
    access_env(&state, &caller, &org, &app, &env, Action::ManageRules).await?;
    let row = RuleRow {
        id: rule,
        updated_at: gangplank_store::now_millis(),
        ..validated(&env, body)?
    };
    Ok(Json(rule_view(
        state.store.replace_rule(&org, &app, row).await?,
    )))
}

/// Deletes a rule.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/envs/{env}/rules/{rule}", tag = "automation", params(("org" = String, Path), ("app" = String, Path), ("env" = String, Path), ("rule" = String, Path)), responses((status = 204)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, env, rule)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    access_env(&state, &caller, &org, &app, &env, Action::ManageRules).await?;
    state.store.delete_rule(&org, &app, &env, &rule).await?;
    Ok(StatusCode::NO_CONTENT)
}
