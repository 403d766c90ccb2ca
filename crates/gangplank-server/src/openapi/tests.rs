//! Unit tests of the document's finishing step.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{ContentBuilder, OpenApiBuilder, PathsBuilder, ResponseBuilder};

use super::*;

#[test]
fn humanitec_operations_keep_humanitec_names() {
    assert_eq!(
        operation_id("post", "/orgs/{org}/apps"),
        "createApplication"
    );
    assert_eq!(
        operation_id("get", "/orgs/{org}/artefact-versions"),
        "listArtefactVersionsInOrg"
    );
}

#[test]
fn other_operations_are_named_by_method_and_path() {
    assert_eq!(
        operation_id("post", "/orgs/{org}/apps/{app}/envs/{env}/pause-now"),
        "postAppsEnvsPauseNow"
    );
    assert_eq!(
        operation_id("get", "/orgs/{org}/things/{id}/sub_things"),
        "getThingsSubThings"
    );
    assert_eq!(
        operation_id("get", "/orgs/{org}/things/{id}"),
        "getThingsById"
    );
}

#[test]
fn the_humanitec_table_has_no_duplicate_names() {
    let mut names: Vec<&str> = HUMANITEC_NAMES.iter().map(|(_, _, n)| *n).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len());
}

fn document() -> OpenApi {
    let read = OperationBuilder::new()
        .operation_id(Some("get_one"))
        .response("200", ResponseBuilder::new().description("ok"))
        .build();
    let create = OperationBuilder::new()
        .operation_id(Some("create"))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", ContentBuilder::new().build())
                .build(),
        ))
        .response("201", ResponseBuilder::new().description("created"))
        .response("409", ResponseBuilder::new().description("exists"))
        .build();
    let list = OperationBuilder::new()
        .operation_id(Some("get_one"))
        .response("200", ResponseBuilder::new().description("ok"))
        .build();
    OpenApiBuilder::new()
        .paths(
            PathsBuilder::new()
                .path(
                    "/orgs/{org}/apps/{app}",
                    PathItem::new(HttpMethod::Get, read),
                )
                .path("/orgs/{org}/apps", PathItem::new(HttpMethod::Post, create))
                .path("/current-user", PathItem::new(HttpMethod::Get, list)),
        )
        .build()
}

fn statuses(
    openapi: &OpenApi,
    path: &str,
    pick: fn(&PathItem) -> Option<&Operation>,
) -> Vec<String> {
    let operation = pick(&openapi.paths.paths[path]).expect("operation");
    operation.responses.responses.keys().cloned().collect()
}

#[test]
fn finishing_names_operations_uniquely_and_sets_the_version() {
    let mut openapi = document();
    finish(&mut openapi);
    assert_eq!(openapi.info.version, env!("CARGO_PKG_VERSION"));
    let item = &openapi.paths.paths["/orgs/{org}/apps/{app}"];
    assert_eq!(
        item.get.as_ref().unwrap().operation_id.as_deref(),
        Some("getApplication")
    );
    let item = &openapi.paths.paths["/current-user"];
    assert_eq!(
        item.get.as_ref().unwrap().operation_id.as_deref(),
        Some("getCurrentUser")
    );
}

#[test]
fn error_responses_follow_what_the_operation_reads() {
    let mut openapi = document();
    finish(&mut openapi);
    assert_eq!(
        statuses(&openapi, "/orgs/{org}/apps/{app}", |i| i.get.as_ref()),
        ["200", "400", "401", "403", "404"]
    );
    assert_eq!(
        statuses(&openapi, "/orgs/{org}/apps", |i| i.post.as_ref()),
        [
            "201", "400", "401", "403", "404", "409", "413", "415", "422"
        ]
    );
    assert_eq!(
        statuses(&openapi, "/current-user", |i| i.get.as_ref()),
        ["200", "400", "401"]
    );
}

#[test]
fn every_error_response_has_the_error_body() {
    let mut openapi = document();
    finish(&mut openapi);
    let create = openapi.paths.paths["/orgs/{org}/apps"]
        .post
        .as_ref()
        .unwrap();
    let shared = &openapi.components.as_ref().unwrap().responses;
    for (status, response) in &create.responses.responses {
        let response = match response {
            RefOr::T(response) => response,
            RefOr::Ref(reference) => {
                let name = reference.ref_location.rsplit('/').next().unwrap();
                let RefOr::T(response) = &shared[name] else {
                    panic!("{status} refers to a reference")
                };
                response
            }
        };
        if status.starts_with('4') {
            assert!(
                response.content.contains_key("application/json"),
                "{status} has no JSON body"
            );
        }
    }
    // A documented description is kept.
    let RefOr::T(conflict) = &create.responses.responses["409"] else {
        panic!()
    };
    assert_eq!(conflict.description, "exists");
}
