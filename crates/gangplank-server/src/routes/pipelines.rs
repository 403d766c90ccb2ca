//! Pipelines and their criteria (promotion.md §1.1): created and updated with the YAML
//! definition as the body (`application/x-yaml`), validated by `gangplank_core::pipeline`
//! (a refusal names the line), versioned, guarded by `Etag`/`If-Match`, and the JSON Schema
//! of the format.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gangplank_api::pipelines::{
    Pipeline, PipelineCriteria, PipelineCriteriaCreateBody, PipelineVersion,
};
use gangplank_core::access::Action;
use gangplank_core::id::ResourceId;
use gangplank_core::limits::MAX_PIPELINE_DEFINITION_BYTES;
use gangplank_core::pipeline::definition::{self, Definition};
use gangplank_core::pipeline::schema;
use gangplank_core::timestamp::format_millis;
use gangplank_store::{
    CriteriaRow, NewPipelineVersion, PipelineFilter, PipelineRow, PipelineVersionRow,
};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AppAccess, Caller};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;
use crate::yaml::parse_document;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_in_org))
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(versions))
        .routes(routes!(definition_of))
        .routes(routes!(latest_schema))
        .routes(routes!(batch))
        .routes(routes!(list_criteria))
        .routes(routes!(create_criteria))
        .routes(routes!(get_criteria, delete_criteria))
}

/// The media type Humanitec serves a definition as (and accepts, besides `application/x-yaml`).
const HUMANITEC_YAML: &str = "application/x.humanitec-pipelines-v1.0+yaml";

/// `dry_run`: validate, answer 204, store nothing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DryRun {
    /// Validate only: 204 when the definition is valid, nothing is stored.
    #[serde(default)]
    dry_run: bool,
}

/// `version`: a pipeline version id (the current one when absent).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct VersionParam {
    /// A version id from `…/versions`; the current version when absent.
    version: Option<String>,
}

/// The filters of the pipeline lists (documentation; parsed by [`list_filter`]).
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListParams {
    /// Only pipelines with this trigger in `on`: `pipeline_call`, `deployment_request` or
    /// `artefact`.
    trigger: Option<String>,
    /// `metadata[KEY]=VALUE`: only pipelines with this metadata (repeatable, all must match).
    #[param(style = DeepObject, explode, value_type = Option<Object>)]
    metadata: Option<BTreeMap<String, String>>,
}

/// The org-wide list's extra filter (documentation).
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AppParams {
    /// Only these apps (repeat the parameter for several).
    #[param(style = Form, explode)]
    app: Option<Vec<String>>,
}

/// The criteria list's filters (documentation).
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct CriteriaParams {
    /// Only the criteria of this pipeline.
    pipeline: Option<String>,
    /// `match[ATTRIBUTE]=VALUE` for `env_type`, `app_id`, `env_id`, `deployment_type`.
    #[param(style = DeepObject, explode, value_type = Option<Object>)]
    r#match: Option<BTreeMap<String, String>>,
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

/// The API's view of a stored pipeline.
fn pipeline_view(row: PipelineRow) -> Pipeline {
    Pipeline {
        trigger_types: serde_json::from_str(&row.trigger_types).unwrap_or_default(),
        metadata: serde_json::from_str(&row.metadata).unwrap_or_default(),
        id: row.id,
        etag: row.etag,
        org_id: row.org_id,
        app_id: row.app_id,
        name: row.name,
        status: row.status,
        version: row.version_id,
        created_at: format_millis(row.created_at),
    }
}

fn version_view(row: PipelineVersionRow) -> PipelineVersion {
    PipelineVersion {
        id: row.id,
        org_id: row.org_id,
        app_id: row.app_id,
        pipeline_id: row.pipeline_id,
        created_by: row.created_by,
        created_at: format_millis(row.created_at),
    }
}

fn criteria_view(row: CriteriaRow) -> PipelineCriteria {
    let some = |text: String| (!text.is_empty()).then_some(text);
    PipelineCriteria {
        trigger: row.trigger_type,
        id: row.id,
        pipeline_id: row.pipeline_id,
        pipeline_name: row.pipeline_name,
        env_type: some(row.env_type),
        app_id: some(row.match_app_id),
        env_id: some(row.env_id),
        deployment_type: some(row.deployment_type),
    }
}

/// A pipeline with its `Etag` header (the etag, quoted as RFC 9110 writes entity tags).
fn with_etag(status: StatusCode, pipeline: Pipeline) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", pipeline.etag)).ok();
    let mut response = (status, Json(pipeline)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// `If-Match`, with or without quotes (`W/` and `*` are treated as Humanitec clients send
/// them: a weak tag compares by value, `*` matches any existing pipeline).
fn if_match(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid("If-Match", "is not valid text"))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let text = text.strip_prefix("W/").unwrap_or(text);
    Ok(Some(text.trim_matches('"').to_owned()))
}

/// Reads a YAML definition body and validates it: 415 unless YAML, 413 over the bound, 400
/// naming the line of the first mistake.
async fn read_definition(
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(String, Definition), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let yaml = matches!(
        content_type.as_str(),
        "application/x-yaml" | "application/yaml" | "text/yaml" | "text/x-yaml" | HUMANITEC_YAML
    );
    if !yaml {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/x-yaml (the pipeline definition)".to_owned(),
        ));
    }
    if body.len() > MAX_PIPELINE_DEFINITION_BYTES {
        return Err(ApiError::PayloadTooLarge(MAX_PIPELINE_DEFINITION_BYTES));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::invalid("definition", "is not UTF-8 text"))?;
    // Parsing is bounded, but it is CPU work: keep it off the async workers.
    let parsed = tokio::task::spawn_blocking({
        let text = text.clone();
        move || definition::parse(&text)
    })
    .await
    .map_err(|error| ApiError::Internal(format!("parsing a pipeline: {error}")))?
    .map_err(|error| ApiError::Invalid(format!("definition: {error}")))?;
    Ok((text, parsed))
}

fn trigger_types(definition: &Definition) -> Vec<String> {
    let on = &definition.on;
    [
        (on.pipeline_call.is_some(), "pipeline_call"),
        (on.deployment_request, "deployment_request"),
        (on.artefact.is_some(), "artefact"),
    ]
    .into_iter()
    .filter(|(present, _)| *present)
    .map(|(_, name)| name.to_owned())
    .collect()
}

fn new_version(
    app: &str,
    pipeline_id: String,
    text: String,
    definition: &Definition,
    created_by: &str,
) -> NewPipelineVersion {
    NewPipelineVersion {
        app_id: app.to_owned(),
        pipeline_id,
        name: definition.name.clone(),
        trigger_types: trigger_types(definition),
        metadata: definition.metadata.clone(),
        definition: text,
        created_by: created_by.to_owned(),
    }
}

/// The filters of a pipeline list, from the raw query: `trigger`, `metadata[KEY]=VALUE`
/// (repeatable), and on the org-wide list `app` (repeatable).
fn list_filter(query: Option<&str>, org_wide: bool) -> Result<PipelineFilter, ApiError> {
    let mut filter = PipelineFilter::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "per_page" | "page" => {}
            "trigger" => {
                if filter.trigger.replace(value.into_owned()).is_some() {
                    return Err(ApiError::invalid("trigger", "is given more than once"));
                }
            }
            "app" if org_wide => filter.apps.push(value.into_owned()),
            other => match other
                .strip_prefix("metadata[")
                .and_then(|rest| rest.strip_suffix(']'))
            {
                Some(meta_key) => {
                    filter
                        .metadata
                        .insert(meta_key.to_owned(), value.into_owned());
                }
                None => {
                    return Err(ApiError::invalid(other, "is not a parameter of this list"));
                }
            },
        }
    }
    if filter.apps.len() > 100 || filter.metadata.len() > 20 {
        return Err(ApiError::Invalid(
            "at most 100 `app` and 20 `metadata[…]` filters".to_owned(),
        ));
    }
    Ok(filter)
}

/// The organization's pipelines (of the apps the caller may read), oldest first.
#[utoipa::path(get, path = "/orgs/{org}/pipelines", tag = "pipelines", params(("org" = String, Path), AppParams, ListParams, PageParams), responses((status = 200, body = Vec<Pipeline>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list_in_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
    paging: Paging,
) -> Result<Paged<Pipeline>, ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::ReadOrg)?;
    let mut filter = list_filter(query.as_deref(), true)?;
    filter.visible_to = (!access.role.sees_all_apps()).then(|| access.user_id.clone());
    let page = state
        .store
        .list_pipelines(&org, None, &filter, paging.request())
        .await?;
    Ok(paging.reply(page.map(pipeline_view)))
}

/// The app's pipelines, oldest first.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ListParams, PageParams), responses((status = 200, body = Vec<Pipeline>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    paging: Paging,
) -> Result<Paged<Pipeline>, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let filter = list_filter(query.as_deref(), false)?;
    let page = state
        .store
        .list_pipelines(&org, Some(&app), &filter, paging.request())
        .await?;
    Ok(paging.reply(page.map(pipeline_view)))
}

/// Creates a pipeline from its YAML definition (its `id`, or a generated one). With
/// `dry_run=true`, only validates: 204.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/pipelines", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), DryRun), request_body(content = String, content_type = "application/x-yaml", description = "the pipeline definition (docs/pipelines.md)"), responses((status = 201, body = Pipeline, headers(("Etag" = String))), (status = 204, description = "valid, but no pipeline was created (dry run)"), (status = 400, description = "the definition is refused; the message names the line (`definition: line N: …`)"), (status = 409, description = "a pipeline with this id exists in the app")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    ApiQuery(dry): ApiQuery<DryRun>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let access = app_access(&state, &caller, &org, &app, Action::ManageRules).await?;
    let (text, definition) = read_definition(&headers, body).await?;
    if dry.dry_run {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let pipeline_id = definition
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let new = new_version(&app, pipeline_id, text, &definition, &access.org.user_id);
    let (row, _) = state
        .store
        .create_pipeline(&org, new, gangplank_store::now_millis())
        .await?;
    Ok(with_etag(StatusCode::CREATED, pipeline_view(row)))
}

/// One pipeline (at a version, with `version`), with its `Etag`.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), VersionParam), responses((status = 200, body = Pipeline, headers(("Etag" = String)))))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline)): Path<(String, String, String)>,
    ApiQuery(version): ApiQuery<VersionParam>,
) -> Result<Response, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let (mut row, version) = state
        .store
        .get_pipeline(&org, &app, &pipeline, version.version.as_deref())
        .await?;
    row.version_id = version.id;
    Ok(with_etag(StatusCode::OK, pipeline_view(row)))
}

/// Replaces the definition: a new version becomes current. `If-Match` guards against
/// overwriting a change made since the caller read it (412).
#[utoipa::path(patch, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), DryRun, ("If-Match" = Option<String>, Header, description = "the pipeline's etag")), request_body(content = String, content_type = "application/x-yaml", description = "the pipeline definition (docs/pipelines.md)"), responses((status = 200, body = Pipeline, headers(("Etag" = String))), (status = 204, description = "valid, but the pipeline was not changed (dry run)"), (status = 400, description = "the definition is refused; the message names the line; or its `id` differs from the path's"), (status = 412, description = "`If-Match` is not the pipeline's etag")))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline)): Path<(String, String, String)>,
    ApiQuery(dry): ApiQuery<DryRun>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let access = app_access(&state, &caller, &org, &app, Action::ManageRules).await?;
    let expected = if_match(&headers)?;
    let (text, definition) = read_definition(&headers, body).await?;
    if let Some(id) = &definition.id
        && *id != pipeline
    {
        return Err(ApiError::invalid(
            "definition",
            format!("its id {id} is not the pipeline's ({pipeline}); a pipeline keeps its id"),
        ));
    }
    if dry.dry_run {
        state
            .store
            .get_pipeline(&org, &app, &pipeline, None)
            .await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let new = new_version(&app, pipeline, text, &definition, &access.org.user_id);
    let (row, _) = state
        .store
        .update_pipeline(&org, new, expected, gangplank_store::now_millis())
        .await
        .map_err(precondition)?;
    Ok(with_etag(StatusCode::OK, pipeline_view(row)))
}

/// Deletes a pipeline with its versions and criteria.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("If-Match" = Option<String>, Header, description = "the pipeline's etag")), responses((status = 204, description = "deleted"), (status = 409, description = "runs of the pipeline are not finished"), (status = 412, description = "`If-Match` is not the pipeline's etag")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ManageRules).await?;
    let expected = if_match(&headers)?;
    state
        .store
        .delete_pipeline(&org, &app, &pipeline, expected)
        .await
        .map_err(precondition)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The store refuses a write whose `If-Match` is outdated: that is a 412.
fn precondition(error: gangplank_store::StoreError) -> ApiError {
    match error {
        gangplank_store::StoreError::Refused(message) => ApiError::PreconditionFailed(message),
        other => other.into(),
    }
}

/// A pipeline's versions, newest first.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/versions", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), PageParams), responses((status = 200, body = Vec<PipelineVersion>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline)): Path<(String, String, String)>,
    paging: Paging,
) -> Result<Paged<PipelineVersion>, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let page = state
        .store
        .list_pipeline_versions(&org, &app, &pipeline, paging.request())
        .await?;
    Ok(paging.reply(page.map(version_view)))
}

/// The definition of a version (the current one without `version`): the YAML as sent, or,
/// with `Accept: application/json`, the same document as JSON.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/schema", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), VersionParam), responses((status = 200, description = "the definition", content((String = "application/x.humanitec-pipelines-v1.0+yaml"), (Object = "application/json")))))]
async fn definition_of(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline)): Path<(String, String, String)>,
    ApiQuery(version): ApiQuery<VersionParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let (_, version) = state
        .store
        .get_pipeline(&org, &app, &pipeline, version.version.as_deref())
        .await?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("json") && !accept.contains("yaml"));
    if wants_json {
        let value = parse_document("definition", Bytes::from(version.definition)).await?;
        return Ok(Json(value).into_response());
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(HUMANITEC_YAML),
        )],
        version.definition,
    )
        .into_response())
}

/// The JSON Schema of the pipeline YAML format.
#[utoipa::path(get, path = "/orgs/{org}/pipeline-schemas/latest", tag = "pipelines", params(("org" = String, Path)), responses((status = 200, description = "a JSON Schema (draft 2020-12)", body = Object)))]
async fn latest_schema(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    Ok(Json(schema::json_schema()))
}

/// Humanitec batches artefact triggers; Gangplank starts a run per matching version at once,
/// so there is never a pending batch: 404 (after the usual checks).
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/batches/{batch_type}", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("batch_type" = String, Path, description = "only `artefact`")), responses((status = 404, description = "no pending batch: Gangplank does not batch artefact triggers")))]
async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, batch_type)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    state
        .store
        .get_pipeline(&org, &app, &pipeline, None)
        .await?;
    if batch_type != "artefact" {
        return Err(ApiError::invalid(
            "batch_type",
            "only artefact is implemented",
        ));
    }
    Err(ApiError::NotFound(
        "no pending artefact batch: Gangplank starts a run for each matching version at once"
            .to_owned(),
    ))
}

/// `match[ATTRIBUTE]=VALUE` and `pipeline` of the criteria list.
fn criteria_filter(
    query: Option<&str>,
) -> Result<(Option<String>, BTreeMap<String, String>), ApiError> {
    let mut pipeline = None;
    let mut matching = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "per_page" | "page" => {}
            "pipeline" => pipeline = Some(value.into_owned()),
            other => {
                let attribute = other
                    .strip_prefix("match[")
                    .and_then(|rest| rest.strip_suffix(']'))
                    .filter(|a| ["env_type", "app_id", "env_id", "deployment_type"].contains(a))
                    .ok_or_else(|| ApiError::invalid(other, "is not a parameter of this list"))?;
                let value = match attribute {
                    "deployment_type" => deployment_type(&value)?,
                    _ => value.into_owned(),
                };
                matching.insert(attribute.to_owned(), value);
            }
        }
    }
    Ok((pipeline, matching))
}

/// `deploy` or `redeploy` (Humanitec's own text also says `re-deploy`).
fn deployment_type(text: &str) -> Result<String, ApiError> {
    match text {
        "deploy" => Ok("deploy".to_owned()),
        "redeploy" | "re-deploy" => Ok("redeploy".to_owned()),
        _ => Err(ApiError::invalid(
            "deployment_type",
            "must be deploy or redeploy",
        )),
    }
}

/// The app's pipeline criteria, oldest first.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipeline-criteria", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), CriteriaParams, PageParams), responses((status = 200, body = Vec<PipelineCriteria>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list_criteria(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    paging: Paging,
) -> Result<Paged<PipelineCriteria>, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let (pipeline, matching) = criteria_filter(query.as_deref())?;
    let page = state
        .store
        .list_pipeline_criteria(&org, &app, pipeline.as_deref(), &matching, paging.request())
        .await?;
    Ok(paging.reply(page.map(criteria_view)))
}

/// Routes deployment requests matching the attributes to this pipeline.
#[utoipa::path(post, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/criteria", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path)), request_body = PipelineCriteriaCreateBody, responses((status = 201, body = PipelineCriteria), (status = 400, description = "`trigger` must be deployment_request and the pipeline must have that trigger; ids must be valid"), (status = 409, description = "another criteria of the app matches the same requests")))]
async fn create_criteria(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<PipelineCriteriaCreateBody>,
) -> Result<(StatusCode, Json<PipelineCriteria>), ApiError> {
    app_access(&state, &caller, &org, &app, Action::ManageRules).await?;
    if body.trigger != "deployment_request" {
        return Err(ApiError::invalid("trigger", "must be deployment_request"));
    }
    let id_or_empty = |field: &str, value: Option<String>| -> Result<String, ApiError> {
        match value {
            None => Ok(String::new()),
            Some(text) if field == "env_type" && text == "*" => Ok(String::new()),
            Some(text) => Ok(ResourceId::parse(field, &text)?.to_string()),
        }
    };
    let (_, version) = state
        .store
        .get_pipeline(&org, &app, &pipeline, None)
        .await?;
    let definition = definition::parse(&version.definition)
        .map_err(|error| ApiError::Internal(format!("stored pipeline {pipeline}: {error}")))?;
    if !definition.on.deployment_request {
        return Err(ApiError::invalid(
            "trigger",
            format!("pipeline {pipeline} has no deployment_request trigger in `on`"),
        ));
    }
    let row = CriteriaRow {
        org_id: org.clone(),
        app_id: app.clone(),
        pipeline_id: pipeline,
        pipeline_name: String::new(),
        id: uuid::Uuid::now_v7().to_string(),
        trigger_type: body.trigger,
        env_type: id_or_empty("env_type", body.env_type)?,
        match_app_id: match body.app_id {
            Some(id) => ResourceId::parse("app_id", &id)?.to_string(),
            None => app,
        },
        env_id: id_or_empty("env_id", body.env_id)?,
        deployment_type: body
            .deployment_type
            .as_deref()
            .map(deployment_type)
            .transpose()?
            .unwrap_or_default(),
        created_at: gangplank_store::now_millis(),
    };
    let row = state.store.create_pipeline_criteria(&org, row).await?;
    Ok((StatusCode::CREATED, Json(criteria_view(row))))
}

/// One criteria of a pipeline.
#[utoipa::path(get, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/criteria/{criteria}", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("criteria" = String, Path)), responses((status = 200, body = PipelineCriteria)))]
async fn get_criteria(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, criteria)): Path<(String, String, String, String)>,
) -> Result<Json<PipelineCriteria>, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ReadApp).await?;
    let row = state
        .store
        .get_pipeline_criteria(&org, &app, &pipeline, &criteria)
        .await?;
    Ok(Json(criteria_view(row)))
}

/// Deletes one criteria.
#[utoipa::path(delete, path = "/orgs/{org}/apps/{app}/pipelines/{pipeline}/criteria/{criteria}", tag = "pipelines", params(("org" = String, Path), ("app" = String, Path), ("pipeline" = String, Path), ("criteria" = String, Path)), responses((status = 204, description = "deleted")))]
async fn delete_criteria(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, app, pipeline, criteria)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    app_access(&state, &caller, &org, &app, Action::ManageRules).await?;
    state
        .store
        .delete_pipeline_criteria(&org, &app, &pipeline, &criteria)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
