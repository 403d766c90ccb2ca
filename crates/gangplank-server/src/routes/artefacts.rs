//! Artefacts and artefact versions: what CI tells Gangplank about every build.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gangplank_api::artefacts::{
    Artefact, ArtefactVersion, CreateArtefactVersion, CreateArtefactVersionForm,
    PatchArtefactVersion,
};
use gangplank_api::vocabulary::ArtefactType;
use gangplank_core::access::Action;
use gangplank_core::artefact::{ArtefactReference, ArtefactVersionFields, ArtefactVersionInput};
use gangplank_store::{ArtefactRow, ArtefactVersionRow, VersionFilter, VersionOutcome};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, body_bytes, is_json, parse_json};
use crate::page::{PageParams, Paged, Paging};
use crate::state::AppState;
use crate::yaml::parse_document;
use gangplank_core::timestamp::format_millis;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_versions, create_version))
        .routes(routes!(get_version))
        .routes(routes!(workload_spec))
        .routes(routes!(list_artefacts))
        .routes(routes!(delete_artefact))
        .routes(routes!(list_artefact_versions))
        .routes(routes!(patch_version))
}

fn version_response(row: ArtefactVersionRow) -> ArtefactVersion {
    ArtefactVersion {
        digest: (row.kind == "container").then_some(row.digest),
        digest_status: (!row.digest_status.is_empty()).then_some(row.digest_status),
        digest_error: (!row.digest_error.is_empty()).then_some(row.digest_error),
        id: row.id,
        artefact_id: row.artefact_id,
        name: row.name,
        kind: row.kind,
        archived: row.archived,
        version: row.version,
        git_ref: row.git_ref,
        commit: row.commit_sha,
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
        updated_at: format_millis(row.updated_at),
        updated_by: row.updated_by,
    }
}

fn artefact_response(row: ArtefactRow) -> Artefact {
    Artefact {
        id: row.id,
        name: row.name,
        kind: row.kind,
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
        updated_at: format_millis(row.updated_at),
        updated_by: row.updated_by,
    }
}

/// A query flag: `true`/`false`/`1`/`0`.
fn parse_flag(field: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(_) => Err(ApiError::invalid(field, "must be true or false")),
    }
}

fn parse_uuid(field: &str, value: &str) -> Result<(), ApiError> {
    uuid::Uuid::try_parse(value)
        .map(|_| ())
        .map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

#[derive(Debug, Default, Deserialize)]
struct CreateQuery {
    vcs: Option<String>,
    dry_run: Option<String>,
}

/// Workload-only fields, in the order errors name them.
const WORKLOAD_FIELDS: [&str; 5] = [
    "image",
    "overrides",
    "property_overrides",
    "resource_type_aliases",
    "extensions",
];

/// Registers an artefact version (JSON, or multipart with the Score `spec` as a YAML file).
/// Posting an identical version again returns the stored one.
#[utoipa::path(
    post, path = "/orgs/{org}/artefact-versions", tag = "artefacts",
    params(("org" = String, Path), ("vcs" = Option<String>, Query), ("dry_run" = Option<bool>, Query)),
    request_body(content(
        (CreateArtefactVersion = "application/json"),
        (CreateArtefactVersionForm = "multipart/form-data"),
    ), description = "JSON, or a form with the Score spec as a YAML file part"),
    responses((status = 200, body = ArtefactVersion), (status = 204, description = "dry run: valid, nothing created"), (status = 400, description = "a field breaks a rule of its type: a container needs a name that is an image reference and takes no workload fields; a workload needs a `spec` object; commit, digest and version formats"))
)]
async fn create_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(query): ApiQuery<CreateQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::CreateArtefactVersion)?;
    let body = read_create_body(request, &state).await?;
    let workload_fields: Vec<&'static str> = WORKLOAD_FIELDS
        .into_iter()
        .filter(|field| match *field {
            "image" => body.image.is_some(),
            "overrides" => body.overrides.is_some(),
            "property_overrides" => body.property_overrides.is_some(),
            "resource_type_aliases" => body.resource_type_aliases.is_some(),
            _ => body.extensions.is_some(),
        })
        .collect();
    let fields = ArtefactVersionFields::parse(&ArtefactVersionInput {
        kind: &body.kind,
        name: &body.name,
        version: body.version.as_deref(),
        git_ref: body.git_ref.as_deref(),
        commit: body.commit.as_deref(),
        digest: body.digest.as_deref(),
        vcs: query.vcs.as_deref(),
        has_spec: body.spec.is_some(),
        workload_fields,
    })?;
    let workload = match &body.spec {
        None => None,
        Some(spec) if !spec.is_object() => {
            return Err(ApiError::invalid(
                "spec",
                "must be an object (a Score workload)",
            ));
        }
        Some(_) => Some(workload_document(&body)),
    };
    if parse_flag("dry_run", query.dry_run.as_deref())? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (content_hash, spec) = match workload {
        Some(document) => {
            let text = document.to_string();
            (hex::encode(Sha256::digest(text.as_bytes())), Some(text))
        }
        None => (String::new(), None),
    };
    let new =
        crate::verified_versions::new_version(&org, fields, (content_hash, spec), &access.user_id);
    let row = match state.store.record_artefact_version(new).await? {
        VersionOutcome::Created(row, follow_up) => {
            crate::verified_versions::recorded(&state, &row, follow_up);
            row
        }
        VersionOutcome::Existing(row) => row,
    };
    Ok(Json(version_response(row)).into_response())
}

/// The stored workload document: the spec and the options that shape its deployment. Its
/// canonical JSON (sorted keys) is hashed into the version's identity.
fn workload_document(body: &CreateArtefactVersion) -> Value {
    let mut document = Map::new();
    let fields = [
        ("spec", body.spec.clone()),
        ("image", body.image.clone().map(Value::String)),
        ("overrides", body.overrides.clone()),
        ("property_overrides", body.property_overrides.clone()),
        ("resource_type_aliases", body.resource_type_aliases.clone()),
        ("extensions", body.extensions.clone()),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            document.insert(key.to_owned(), value);
        }
    }
    Value::Object(document)
}

async fn read_create_body(
    request: Request,
    state: &AppState,
) -> Result<CreateArtefactVersion, ApiError> {
    let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
    if is_json(content_type.as_ref()) {
        return parse_json(&body_bytes(request, state).await?);
    }
    let is_multipart = content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json or multipart/form-data".to_owned(),
        ));
    }
    let multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| {
            ApiError::Invalid(format!(
                "malformed multipart body: {}",
                rejection.body_text()
            ))
        })?;
    read_multipart(multipart, state.max_body_bytes).await
}

/// Reads the form `type=…, name=…, spec=@score.yaml, …`. Structured fields (`spec`,
/// `overrides`, …) are YAML or JSON text, as a file part or a plain one.
async fn read_multipart(
    mut multipart: Multipart,
    limit: usize,
) -> Result<CreateArtefactVersion, ApiError> {
    let mut body = CreateArtefactVersion::default();
    let multipart_error = |error: axum::extract::multipart::MultipartError| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::Invalid(format!("malformed multipart body: {}", error.body_text()))
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_owned();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        let text = || {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::invalid(&name, "must be UTF-8 text"))
        };
        match name.as_str() {
            "type" => body.kind = text()?,
            "name" => body.name = text()?,
            "version" => body.version = Some(text()?),
            "ref" => body.git_ref = Some(text()?),
            "commit" => body.commit = Some(text()?),
            "digest" => body.digest = Some(text()?),
            "image" => body.image = Some(text()?),
            "spec" => body.spec = Some(parse_document(&name, bytes).await?),
            "overrides" => body.overrides = Some(parse_document(&name, bytes).await?),
            "property_overrides" => {
                body.property_overrides = Some(parse_document(&name, bytes).await?)
            }
            "resource_type_aliases" => {
                body.resource_type_aliases = Some(parse_document(&name, bytes).await?)
            }
            "extensions" => body.extensions = Some(parse_document(&name, bytes).await?),
            // Unknown parts are ignored, as unknown JSON fields are.
            _ => {}
        }
    }
    if body.kind.is_empty() {
        return Err(ApiError::invalid("type", "is required"));
    }
    Ok(body)
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    name: Option<String>,
    reference: Option<String>,
    archived: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<i64>,
}

/// The filter, and the legacy `limit` (at most this many versions in all).
fn version_filter(query: ListQuery) -> Result<(VersionFilter, Option<i64>), ApiError> {
    let mut filter = VersionFilter {
        include_archived: parse_flag("archived", query.archived.as_deref())?,
        kind: query.kind,
        name: query.name,
        ..VersionFilter::default()
    };
    if let Some(kind) = &filter.kind {
        gangplank_core::artefact::ArtefactType::parse("type", kind)?;
    }
    if query.limit.is_some_and(|limit| limit < 1) {
        return Err(ApiError::invalid("limit", "must be at least 1"));
    }
    if let Some(reference) = query.reference {
        if filter.name.is_some() {
            return Err(ApiError::invalid(
                "reference",
                "cannot be combined with name",
            ));
        }
        let parsed = ArtefactReference::parse("reference", &reference)?;
        filter.name = Some(parsed.name);
        filter.version = parsed.version;
        filter.digest = parsed.digest;
    }
    Ok((filter, query.limit))
}

/// Artefact versions of the organization, newest first, a page at a time.
#[utoipa::path(
    get, path = "/orgs/{org}/artefact-versions", tag = "artefacts",
    params(("org" = String, Path), ("name" = Option<String>, Query), ("reference" = Option<String>, Query, description = "name[:version][@digest]"), ("archived" = Option<bool>, Query), ("type" = Option<ArtefactType>, Query), ("limit" = Option<i64>, Query, description = "at most this many versions in all, across pages"), PageParams),
    responses((status = 200, body = Vec<ArtefactVersion>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page"))), (status = 400, description = "`reference` must be name[:version][@digest] and cannot be combined with `name`"))
)]
async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
    paging: Paging,
) -> Result<Paged<ArtefactVersion>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    let (filter, limit) = version_filter(query)?;
    let paging = paging.limit(limit);
    let page = state
        .store
        .list_artefact_versions(&org, filter, paging.request())
        .await?;
    Ok(paging.reply(page.map(version_response)))
}

/// One artefact version.
#[utoipa::path(get, path = "/orgs/{org}/artefact-versions/{id}", tag = "artefacts", params(("org" = String, Path), ("id" = uuid::Uuid, Path)), responses((status = 200, body = ArtefactVersion)))]
async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<ArtefactVersion>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    parse_uuid("artefactVersionId", &id)?;
    let row = state.store.get_artefact_version(&org, &id).await?;
    row.map(|r| Json(version_response(r)))
        .ok_or_else(|| ApiError::NotFound(format!("no artefact version {id}")))
}

/// The Score spec of a workload version: JSON, or YAML with `Accept: application/x-yaml`.
#[utoipa::path(get, path = "/orgs/{org}/artefact-versions/{id}/workload-spec", tag = "artefacts", params(("org" = String, Path), ("id" = uuid::Uuid, Path)), responses((status = 200, description = "the Score workload spec"), (status = 400, description = "the version is not of type workload")))]
async fn workload_spec(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    parse_uuid("artefactVersionId", &id)?;
    let version = state
        .store
        .get_artefact_version(&org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no artefact version {id}")))?;
    if version.kind != "workload" {
        return Err(ApiError::Invalid(format!(
            "artefact version {id} is of type {}, not workload",
            version.kind
        )));
    }
    let document = state
        .store
        .get_workload_spec(&org, &id)
        .await?
        .unwrap_or_default();
    let document: Value = serde_json::from_str(&document)
        .map_err(|e| ApiError::Internal(format!("stored workload document: {e}")))?;
    let spec = document.get("spec").cloned().unwrap_or(Value::Null);
    let wants_yaml = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-yaml") || v.contains("application/yaml"));
    if wants_yaml {
        let yaml = serde_yaml_ng::to_string(&spec)
            .map_err(|e| ApiError::Internal(format!("rendering YAML: {e}")))?;
        return Ok(([(header::CONTENT_TYPE, "application/x-yaml")], yaml).into_response());
    }
    Ok(Json(spec).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct ArtefactQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
}

/// Artefacts of the organization, oldest first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org}/artefacts", tag = "artefacts", params(("org" = String, Path), ("type" = Option<String>, Query), ("name" = Option<String>, Query), PageParams), responses((status = 200, body = Vec<Artefact>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page")))))]
async fn list_artefacts(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(query): ApiQuery<ArtefactQuery>,
    paging: Paging,
) -> Result<Paged<Artefact>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    let page = state
        .store
        .list_artefacts(
            &org,
            query.kind.as_deref(),
            query.name.as_deref(),
            paging.request(),
        )
        .await?;
    Ok(paging.reply(page.map(artefact_response)))
}

/// Deletes an artefact and every version of it (administrators only).
#[utoipa::path(delete, path = "/orgs/{org}/artefacts/{id}", tag = "artefacts", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204)))]
async fn delete_artefact(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::DeleteArtefact)?;
    state.store.delete_artefact(&org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Versions of one artefact, newest first, a page at a time.
#[utoipa::path(
    get, path = "/orgs/{org}/artefacts/{id}/versions", tag = "artefacts",
    params(("org" = String, Path), ("id" = String, Path), ("archived" = Option<bool>, Query), ("reference" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "at most this many versions in all, across pages"), PageParams),
    responses((status = 200, body = Vec<ArtefactVersion>, headers(("Link" = String, description = "the next page, `<…&page=…&per_page=…>; rel=\"next\"` (RFC 8288); absent on the last page"))), (status = 400, description = "`reference` must be name[:version][@digest]"))
)]
async fn list_artefact_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ListQuery>,
    paging: Paging,
) -> Result<Paged<ArtefactVersion>, ApiError> {
    caller
        .in_org(&state, &org)
        .await?
        .require(Action::ReadOrg)?;
    state
        .store
        .get_artefact(&org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no artefact {id}")))?;
    let (filter, limit) = version_filter(query)?;
    let filter = VersionFilter {
        artefact_id: Some(id),
        ..filter
    };
    let paging = paging.limit(limit);
    let page = state
        .store
        .list_artefact_versions(&org, filter, paging.request())
        .await?;
    Ok(paging.reply(page.map(version_response)))
}

/// Archives or unarchives a version.
#[utoipa::path(patch, path = "/orgs/{org}/artefacts/{id}/versions/{version}", tag = "artefacts", params(("org" = String, Path), ("id" = String, Path), ("version" = String, Path)), request_body = PatchArtefactVersion, responses((status = 200, body = ArtefactVersion)))]
async fn patch_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id, version)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<PatchArtefactVersion>,
) -> Result<Json<ArtefactVersion>, ApiError> {
    let access = caller.in_org(&state, &org).await?;
    access.require(Action::ArchiveArtefactVersion)?;
    let row = state
        .store
        .set_version_archived(&org, &id, &version, body.archived, &access.user_id)
        .await?;
    Ok(Json(version_response(row)))
}
