//! Finishing the generated OpenAPI document so it is a contract: one unique `operationId` per
//! operation (Humanitec's name where Humanitec has the operation), the error responses each
//! operation can really return, and the server's version.
//!
//! The error statuses follow from the shared request path rather than from each handler, which
//! is why they are added here once instead of in ~90 annotations: every operation authenticates
//! (401) and checks a role (403); a path with an id can name something missing (404); a body is
//! read through the size limit (413) and, for JSON, the content-type and shape checks of
//! `extract::ApiJson` (415, 422); a caller-chosen id or name can be taken (409); and the
//! authentication header, path, query or body can break a rule (400).

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{OpenApi, Ref, RefOr, Response};

/// Humanitec's operationIds for the operations Gangplank shares with it (and a few of
/// Gangplank's own in the same style), by method and path.
const HUMANITEC_NAMES: &[(&str, &str, &str)] = &[
    ("get", "/current-user", "getCurrentUser"),
    ("get", "/users/{user}/tokens", "getUserTokens"),
    ("post", "/users/{user}/tokens", "createUserToken"),
    ("get", "/users/{user}/tokens/{token}", "getUserToken"),
    ("delete", "/users/{user}/tokens/{token}", "deleteUserToken"),
    ("get", "/orgs/{org}/users", "listUserRolesInOrg"),
    ("post", "/orgs/{org}/users", "createServiceUserInOrg"),
    ("get", "/orgs/{org}/users/{user}", "getUserRoleInOrg"),
    ("patch", "/orgs/{org}/users/{user}", "updateUserRoleInOrg"),
    ("delete", "/orgs/{org}/users/{user}", "deleteUserRoleInOrg"),
    ("get", "/orgs/{org}/apps", "listApplications"),
    (
        "get",
        "/orgs/{org}/apps/{app}/build-definition",
        "getBuildDefinition",
    ),
    (
        "put",
        "/orgs/{org}/apps/{app}/build-definition",
        "putBuildDefinition",
    ),
    (
        "delete",
        "/orgs/{org}/apps/{app}/build-definition",
        "deleteBuildDefinition",
    ),
    ("get", "/orgs/{org}/apps/{app}/builds", "listBuilds"),
    ("post", "/orgs/{org}/apps/{app}/builds", "createBuild"),
    ("get", "/orgs/{org}/apps/{app}/builds/{id}", "getBuild"),
    (
        "get",
        "/orgs/{org}/apps/{app}/builds/{id}/logs",
        "getBuildLogs",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/builds/{id}/cancel",
        "cancelBuild",
    ),
    ("post", "/orgs/{org}/apps", "createApplication"),
    ("get", "/orgs/{org}/apps/{app}", "getApplication"),
    ("patch", "/orgs/{org}/apps/{app}", "patchApplication"),
    ("delete", "/orgs/{org}/apps/{app}", "deleteApplication"),
    ("get", "/orgs/{org}/apps/{app}/users", "listUserRolesInApp"),
    (
        "post",
        "/orgs/{org}/apps/{app}/users",
        "createUserRoleInApp",
    ),
    (
        "patch",
        "/orgs/{org}/apps/{app}/users/{user}",
        "updateUserRoleInApp",
    ),
    (
        "delete",
        "/orgs/{org}/apps/{app}/users/{user}",
        "deleteUserRoleInApp",
    ),
    ("get", "/orgs/{org}/env-types", "listEnvironmentTypes"),
    ("post", "/orgs/{org}/env-types", "createEnvironmentType"),
    ("get", "/orgs/{org}/env-types/{id}", "getEnvironmentType"),
    (
        "patch",
        "/orgs/{org}/env-types/{id}",
        "updateEnvironmentType",
    ),
    (
        "delete",
        "/orgs/{org}/env-types/{id}",
        "deleteEnvironmentType",
    ),
    ("get", "/orgs/{org}/apps/{app}/envs", "listEnvironments"),
    ("post", "/orgs/{org}/apps/{app}/envs", "createEnvironment"),
    ("get", "/orgs/{org}/apps/{app}/envs/{env}", "getEnvironment"),
    (
        "patch",
        "/orgs/{org}/apps/{app}/envs/{env}",
        "updateEnvironment",
    ),
    (
        "delete",
        "/orgs/{org}/apps/{app}/envs/{env}",
        "deleteEnvironment",
    ),
    (
        "put",
        "/orgs/{org}/apps/{app}/envs/{env}/from_deploy_id",
        "rebaseEnvironment",
    ),
    // Pipelines (promotion.md §1.1).
    ("get", "/orgs/{org}/pipelines", "listPipelinesInOrg"),
    ("get", "/orgs/{org}/apps/{app}/pipelines", "listPipelines"),
    ("post", "/orgs/{org}/apps/{app}/pipelines", "createPipeline"),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}",
        "getPipeline",
    ),
    (
        "patch",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}",
        "updatePipeline",
    ),
    (
        "delete",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}",
        "deletePipeline",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/versions",
        "listPipelineVersions",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/schema",
        "getPipelineDefinition",
    ),
    (
        "get",
        "/orgs/{org}/pipeline-schemas/latest",
        "getLatestPipelineDefinitionSchema",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/batches/{batch_type}",
        "GetBatch",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipeline-criteria",
        "listPipelineCriteriaInApp",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/criteria",
        "createPipelineCriteria",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/criteria/{criteria}",
        "getPipelineCriteria",
    ),
    (
        "delete",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/criteria/{criteria}",
        "deletePipelineCriteria",
    ),
    // Gangplank's own, named in Humanitec's style.
    (
        "post",
        "/orgs/{org}/apps/{app}/envs/{env}/automation/resume",
        "resumeAutomation",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/envs/{env}/automation-log",
        "listAutomationLog",
    ),
    (
        "get",
        "/orgs/{org}/registries/{id}/creds-audit",
        "listRegistryCredsFetches",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/webhooks/{id}/deliveries",
        "listWebhookDeliveries",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/webhooks/{id}/deliveries/{delivery}/redeliver",
        "redeliverWebhookDelivery",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/envs/{env}/target",
        "getEnvironmentTarget",
    ),
    (
        "put",
        "/orgs/{org}/apps/{app}/envs/{env}/target",
        "putEnvironmentTarget",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/envs/{env}/deploys",
        "listDeployments",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/envs/{env}/deploys",
        "createDeployment",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/envs/{env}/deploys/{deploy}",
        "getDeployment",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/envs/{env}/deploys/{deploy}/errors",
        "listDeploymentErrors",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/envs/{env}/rules",
        "listAutomationRules",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/envs/{env}/rules",
        "createAutomationRule",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/envs/{env}/rules/{rule}",
        "getAutomationRule",
    ),
    (
        "put",
        "/orgs/{org}/apps/{app}/envs/{env}/rules/{rule}",
        "updateAutomationRule",
    ),
    (
        "delete",
        "/orgs/{org}/apps/{app}/envs/{env}/rules/{rule}",
        "deleteAutomationRule",
    ),
    ("get", "/orgs/{org}/apps/{app}/deltas", "listDeltas"),
    ("post", "/orgs/{org}/apps/{app}/deltas", "createDelta"),
    ("get", "/orgs/{org}/apps/{app}/deltas/{delta}", "getDelta"),
    (
        "patch",
        "/orgs/{org}/apps/{app}/deltas/{delta}",
        "patchDelta",
    ),
    ("put", "/orgs/{org}/apps/{app}/deltas/{delta}", "putDelta"),
    (
        "put",
        "/orgs/{org}/apps/{app}/deltas/{delta}/metadata/archived",
        "putDeltaMetadataArchived",
    ),
    (
        "put",
        "/orgs/{org}/apps/{app}/deltas/{delta}/metadata/env_id",
        "putDeltaMetadataEnvId",
    ),
    (
        "put",
        "/orgs/{org}/apps/{app}/deltas/{delta}/metadata/name",
        "putDeltaMetadataName",
    ),
    ("get", "/orgs/{org}/apps/{app}/sets", "listSets"),
    ("get", "/orgs/{org}/apps/{app}/sets/{set}", "getSet"),
    ("post", "/orgs/{org}/apps/{app}/sets/{set}", "updateSet"),
    (
        "get",
        "/orgs/{org}/apps/{app}/sets/{set}/diff/{source}",
        "getDiff",
    ),
    ("get", "/orgs/{org}/apps/{app}/webhooks", "listWebhooks"),
    ("post", "/orgs/{org}/apps/{app}/webhooks", "createWebhook"),
    ("get", "/orgs/{org}/apps/{app}/webhooks/{id}", "getWebhook"),
    (
        "patch",
        "/orgs/{org}/apps/{app}/webhooks/{id}",
        "patchWebhook",
    ),
    (
        "delete",
        "/orgs/{org}/apps/{app}/webhooks/{id}",
        "deleteWebhook",
    ),
    ("delete", "/orgs/{org}/apps/{app}/jobs", "deleteJobs"),
    ("get", "/orgs/{org}/events", "listEvents"),
    ("get", "/orgs/{org}/registries", "listRegistries"),
    ("get", "/orgs/{org}/watches", "listWatches"),
    ("post", "/orgs/{org}/watches", "createWatch"),
    ("get", "/orgs/{org}/watches/{id}", "getWatch"),
    ("delete", "/orgs/{org}/watches/{id}", "deleteWatch"),
    ("post", "/orgs/{org}/registries", "createRegistry"),
    ("get", "/orgs/{org}/registries/{id}", "getRegistry"),
    ("patch", "/orgs/{org}/registries/{id}", "updateRegistry"),
    ("delete", "/orgs/{org}/registries/{id}", "deleteRegistry"),
    (
        "get",
        "/orgs/{org}/registries/{id}/creds",
        "getRegistryCreds",
    ),
    (
        "post",
        "/orgs/{org}/artefact-versions",
        "createArtefactVersion",
    ),
    (
        "get",
        "/orgs/{org}/artefact-versions",
        "listArtefactVersionsInOrg",
    ),
    (
        "get",
        "/orgs/{org}/artefact-versions/{id}",
        "getArtefactVersion",
    ),
    (
        "get",
        "/orgs/{org}/artefact-versions/{id}/workload-spec",
        "getWorkloadArtefactVersionSpec",
    ),
    ("get", "/orgs/{org}/artefacts", "listArtefacts"),
    ("delete", "/orgs/{org}/artefacts/{id}", "deleteArtefact"),
    (
        "get",
        "/orgs/{org}/artefacts/{id}/versions",
        "listArtefactVersions",
    ),
    (
        "patch",
        "/orgs/{org}/artefacts/{id}/versions/{version}",
        "patchArtefactVersion",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/envs/{env}/runtime",
        "getRuntime",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/envs/{env}/deploys/{deploy}/cancel",
        "cancelDeployment",
    ),
    // Image promotions (Gangplank's own).
    (
        "get",
        "/orgs/{org}/apps/{app}/image-promotions",
        "listImagePromotions",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/image-promotions/rollback",
        "rollbackImage",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/image-promotions/resume",
        "resumeImagePromotion",
    ),
    // Pipeline runs, jobs, step logs and approvals (promotion.md §1.1).
    ("get", "/orgs/{org}/pipeline-runs", "listPipelineRunsByOrg"),
    (
        "post",
        "/orgs/{org}/apps/{app}/pipeline-runs",
        "createPipelineRunByTriggerCriteria",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs",
        "listPipelineRuns",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs",
        "createPipelineRun",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}",
        "getPipelineRun",
    ),
    (
        "delete",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}",
        "deletePipelineRun",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/cancel",
        "cancelPipelineRun",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/restart",
        "restartPipelineRun",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs",
        "listPipelineJobs",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}",
        "getPipelineJob",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}/steps/{step}/logs",
        "listPipelineStepLogs",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/approvals",
        "listPipelineApprovalRequests",
    ),
    (
        "get",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}/approvals/{approval}",
        "getPipelineApprovalRequest",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}/approvals/{approval}/approve",
        "approvePipelineApprovalRequest",
    ),
    (
        "post",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}/jobs/{job}/approvals/{approval}/deny",
        "denyPipelineApprovalRequest",
    ),
];

/// The operations whose caller-chosen id or name can clash with an existing one (409). Others
/// that answer 409 for their own reasons (a deployment already running, an environment type
/// still in use) declare it in their annotation.
const CONFLICTS: &[(&str, &str)] = &[
    ("post", "/orgs/{org}/apps/{app}/pipelines"),
    (
        "post",
        "/orgs/{org}/apps/{app}/pipelines/{pipeline}/criteria",
    ),
    ("post", "/orgs/{org}/apps"),
    ("post", "/orgs/{org}/env-types"),
    ("post", "/orgs/{org}/apps/{app}/envs"),
    ("post", "/orgs/{org}/artefact-versions"),
    ("post", "/orgs/{org}/registries"),
    ("post", "/orgs/{org}/inbound-hooks"),
    ("patch", "/orgs/{org}/registries/{id}"),
    ("post", "/orgs/{org}/apps/{app}/webhooks"),
    ("post", "/users/{user}/tokens"),
];

/// The paths whose operations only authenticate: any valid token may call them.
const NO_ROLE_CHECK: &[&str] = &["/current-user", "/hooks/{org}/{id}"];

/// The error responses most operations share: (status, name under
/// `#/components/responses`, description). Operations refer to them rather than each holding
/// a copy: 79 operations × 8 copies cost the server about 1.8 MB of idle memory.
const ERROR_RESPONSES: [(&str, &str, &str); 8] = [
    (
        "400",
        "BadRequest",
        "A value breaks a rule (the message names it), or the request is malformed",
    ),
    ("401", "Unauthorized", "Missing or invalid credentials"),
    ("403", "Forbidden", "The caller's role does not allow this"),
    ("404", "NotFound", "Something the path names does not exist"),
    ("409", "Conflict", "The id or name is already taken"),
    ("413", "PayloadTooLarge", "The request body is too large"),
    (
        "415",
        "UnsupportedMediaType",
        "The Content-Type is not one this operation reads",
    ),
    (
        "422",
        "UnprocessableEntity",
        "The body is not well-formed JSON or not of the expected shape",
    ),
];

/// Sets the version, the operationIds and the error responses of `openapi`.
pub fn finish(openapi: &mut OpenApi) {
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let components = openapi.components.get_or_insert_with(Default::default);
    for (_, name, description) in ERROR_RESPONSES {
        components
            .responses
            .insert(name.to_owned(), RefOr::T(error_response(description)));
    }
    for (path, item) in openapi.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            operation.operation_id = Some(operation_id(method, path));
            add_error_responses(method, path, operation);
            describe_responses(operation);
        }
    }
    close_version_policy(openapi);
}

/// OpenAPI requires a description on every response; an annotation without one gets the
/// status's reason phrase.
fn describe_responses(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && response.description.is_empty()
        {
            response.description = status
                .parse::<u16>()
                .ok()
                .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Response")
                .to_owned();
        }
    }
}

/// `VersionPolicy` denies unknown fields (`#[serde(deny_unknown_fields)]`), which utoipa
/// carries into struct schemas but not into the variants of a tagged enum.
fn close_version_policy(openapi: &mut OpenApi) {
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(RefOr::T(Schema::OneOf(one_of))) = openapi
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("VersionPolicy"))
    else {
        return;
    };
    for variant in one_of.items.iter_mut() {
        if let RefOr::T(Schema::Object(object)) = variant {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
}

/// The operations of a path item with their lower-case methods.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
        ("head", item.head.as_mut()),
        ("options", item.options.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
    .collect()
}

/// Humanitec's name, else the method and the path's literal segments in camelCase:
/// `POST /orgs/{org}/apps/{app}/envs/{env}/automation/resume` is
/// `postAppsEnvsAutomationResume`. A path ending in a parameter adds `ById` so that it differs
/// from its collection.
fn operation_id(method: &str, path: &str) -> String {
    if let Some((_, _, name)) = HUMANITEC_NAMES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
    {
        return (*name).to_owned();
    }
    let mut name = method.to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for segment in segments.iter().filter(|s| !s.starts_with('{')) {
        if *segment == "orgs" {
            continue;
        }
        for word in segment.split(['-', '_']) {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                name.push(first.to_ascii_uppercase());
                name.extend(chars);
            }
        }
    }
    if segments.last().is_some_and(|s| s.starts_with('{')) {
        name.push_str("ById");
    }
    name
}

/// Adds, without replacing a documented one, each error status `operation` can answer.
fn add_error_responses(method: &str, path: &str, operation: &mut Operation) {
    let has_path_params = path.contains('{');
    let body_types: Vec<String> = operation
        .request_body
        .as_ref()
        .and_then(|body| match body {
            RefOr::T(body) => Some(body.content.keys().cloned().collect()),
            RefOr::Ref(_) => None,
        })
        .unwrap_or_default();
    let has_body = !body_types.is_empty();
    let clashes = CONFLICTS.contains(&(method, path));
    let applies = |status: &str| match status {
        "400" | "401" => true,
        "403" => !NO_ROLE_CHECK.contains(&path),
        "404" => has_path_params,
        "409" => clashes,
        _ => has_body,
    };
    for (status, name, _) in ERROR_RESPONSES {
        if applies(status) {
            operation
                .responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))));
        }
    }
    // Statuses an annotation declared without a body still answer the error shape.
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.starts_with(['4', '5'])
            && response.content.is_empty()
        {
            let description = response.description.clone();
            *response = error_response(&description);
        }
    }
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests;
