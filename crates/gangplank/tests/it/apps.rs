//! Applications, environments and environment types.

use serde_json::json;

use crate::support::{ADMIN, Server, error_message};

#[test]
fn app_lifecycle_with_default_environment_and_cascade() {
    let server = Server::start();
    let (status, app) = server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "automation", "name": "Automation"})),
    );
    assert_eq!(status, 201, "{app}");
    assert_eq!(
        app["envs"],
        json!([{"id": "development", "name": "Development", "type": "development"}])
    );
    let (status, _) = server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "automation", "name": "again"})),
    );
    assert_eq!(status, 409);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "Bad_Id", "name": "x"})),
    );
    assert_eq!(status, 400);
    assert!(error_message(&body).starts_with("id:"), "{body}");

    let (status, bare) = server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "bare", "name": "b", "skip_environment_creation": true})),
    );
    assert_eq!((status, bare["envs"].clone()), (201, json!([])));

    let (status, env) = server.call(
        "POST",
        "/orgs/default/apps/automation/envs",
        Some(ADMIN),
        Some(json!({"id": "staging", "name": "Staging"})),
    );
    assert_eq!(
        (status, env["type"].clone()),
        (201, json!("development")),
        "{env}"
    );
    let (status, _) = server.call(
        "POST",
        "/orgs/default/apps/automation/envs",
        Some(ADMIN),
        Some(json!({"id": "staging", "name": "Staging"})),
    );
    assert_eq!(status, 409);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/automation/envs",
        Some(ADMIN),
        Some(json!({"id": "prod", "name": "P", "type": "production"})),
    );
    assert_eq!(status, 400, "unknown env type: {body}");
    let (status, renamed) = server.call(
        "PATCH",
        "/orgs/default/apps/automation/envs/staging",
        Some(ADMIN),
        Some(json!({"name": "Stage"})),
    );
    assert_eq!((status, renamed["name"].clone()), (200, json!("Stage")));

    let (status, _) = server.call(
        "DELETE",
        "/orgs/default/apps/automation/envs/staging",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    let (status, body) = server.call(
        "DELETE",
        "/orgs/default/apps/automation/envs/development",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 400, "the last environment stays: {body}");

    let (status, _) = server.call("DELETE", "/orgs/default/apps/automation", Some(ADMIN), None);
    assert_eq!(status, 204);
    let (status, _) = server.call(
        "GET",
        "/orgs/default/apps/automation/envs",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "automation", "name": "Automation"})),
    );
    assert_eq!(status, 201, "deleting cascaded: the id is free again");
}

#[test]
fn env_types_refuse_deletion_while_used() {
    let server = Server::start();
    let (status, _) = server.call(
        "POST",
        "/orgs/default/env-types",
        Some(ADMIN),
        Some(json!({"id": "production", "description": "Prod"})),
    );
    assert_eq!(status, 201);
    server.call("POST", "/orgs/default/apps", Some(ADMIN), Some(json!({"id": "shop", "name": "Shop", "env": {"id": "live", "name": "Live", "type": "production"}})));
    let (status, body) = server.call(
        "DELETE",
        "/orgs/default/env-types/production",
        Some(ADMIN),
        None,
    );
    assert_eq!(
        (status, body),
        (409, json!([{"app_id": "shop", "env_id": "live"}]))
    );
    server.call("DELETE", "/orgs/default/apps/shop", Some(ADMIN), None);
    let (status, _) = server.call(
        "DELETE",
        "/orgs/default/env-types/production",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    let (_, types) = server.call("GET", "/orgs/default/env-types", Some(ADMIN), None);
    assert_eq!(
        types,
        json!([{"id": "development", "description": "Development"}])
    );
}
