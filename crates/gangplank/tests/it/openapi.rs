//! The served OpenAPI document is a contract: unique operationIds, JSON bodies documented as
//! JSON, query parameters in the query, the error responses and the binary's version.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::Server;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn document() -> Value {
    let server = Server::start();
    let (status, doc) = server.call("GET", "/openapi.json", None, None);
    assert_eq!(status, 200);
    doc
}

/// Every (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                all.push((method.to_owned(), path.clone(), operation.clone()));
            }
        }
    }
    all
}

#[test]
fn the_document_is_a_contract() {
    let doc = document();
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let operations = operations(&doc);
    assert!(
        operations.len() > 70,
        "only {} operations",
        operations.len()
    );

    let mut ids = BTreeSet::new();
    for (method, path, operation) in &operations {
        let label = format!("{} {path}", method.to_uppercase());
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{label} has no operationId");
        assert!(
            ids.insert(id.to_owned()),
            "{label}: duplicate operationId {id}"
        );

        for (content_type, _) in operation["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            assert!(
                // Pipelines take their YAML definition as the body, as Humanitec's do.
                content_type == "application/json"
                    || content_type == "multipart/form-data"
                    || content_type == "application/x-yaml",
                "{label} documents a {content_type} body"
            );
        }

        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let mut declared = BTreeSet::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap();
            if parameter["in"] == "path" {
                assert!(
                    in_template.contains(name),
                    "{label}: {name} is declared in the path but is not part of it"
                );
                declared.insert(name);
            }
        }
        assert_eq!(declared, in_template, "{label}: path parameters");

        let responses = operation["responses"].as_object().unwrap();
        for status in ["400", "401"] {
            assert!(responses.contains_key(status), "{label} lacks {status}");
        }
        if !in_template.is_empty() {
            assert!(responses.contains_key("404"), "{label} lacks 404");
        }
        if operation.get("requestBody").is_some() {
            for status in ["413", "415", "422"] {
                assert!(responses.contains_key(status), "{label} lacks {status}");
            }
        }
        for (status, response) in responses {
            // Shared error responses are references to `#/components/responses/…`.
            let response = match response["$ref"].as_str() {
                Some(reference) => {
                    let name = reference
                        .strip_prefix("#/components/responses/")
                        .unwrap_or_else(|| panic!("{label} {status}: {reference}"));
                    &doc["components"]["responses"][name]
                }
                None => response,
            };
            if status.starts_with('4') && !(status == "409" && id == "deleteEnvironmentType") {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{label} {status}"
                );
            }
        }
    }
    let responses_of = |method: &str, path: &str| {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(responses_of("post", "/orgs/{org}/apps").contains(&"409".to_owned()));
    assert!(!responses_of("patch", "/orgs/{org}/apps/{app}").contains(&"409".to_owned()));
    assert!(!responses_of("get", "/current-user").contains(&"403".to_owned()));
    for name in [
        "createApplication",
        "getApplication",
        "createArtefactVersion",
        "getCurrentUser",
    ] {
        assert!(ids.contains(name), "no operation {name}");
    }
}

#[test]
fn the_document_declares_uploads_patterns_and_enums() {
    let doc = document();
    let create = &doc["paths"]["/orgs/{org}/artefact-versions"]["post"]["requestBody"]["content"];
    assert!(create.get("multipart/form-data").is_some(), "{create}");
    assert!(create.get("application/json").is_some(), "{create}");

    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["CreateApp"]["properties"]["id"]["pattern"],
        "^[a-z0-9](?:-?[a-z0-9]+)+$"
    );
    assert_eq!(schemas["CreateApp"]["properties"]["id"]["maxLength"], 50);
    assert_eq!(
        schemas["ArtefactType"]["enum"],
        serde_json::json!(["container", "workload"])
    );
    assert_eq!(
        schemas["DeploymentStatus"]["enum"],
        serde_json::json!(["pending", "in progress", "succeeded", "failed", "cancelled"])
    );
}
