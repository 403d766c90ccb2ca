//! Request bodies must have the shape the API documents: an array where an object is expected
//! is a 422 at any depth, `null` for a required field a 4xx, and nothing is created.

use serde_json::{Value, json};

use crate::support::{ADMIN, Server, error_message};

#[test]
fn arrays_for_objects_and_nulls_for_required_fields_are_refused() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
    ]);
    server.create_app("shapes");
    let env = "/orgs/default/apps/shapes/envs/development";
    // (method, path, body, allowed statuses, GET that must show nothing was created)
    let cases: Vec<(&str, String, Value, &[u16], String)> = vec![
        (
            "POST",
            "/orgs/default/apps".into(),
            json!(["arr-app"]),
            &[422],
            "/orgs/default/apps/arr-app".into(),
        ),
        (
            "POST",
            "/orgs/default/apps".into(),
            json!({"id": "nested-app", "env": ["dev", "Dev", "development"]}),
            &[422],
            "/orgs/default/apps/nested-app".into(),
        ),
        (
            "POST",
            "/orgs/default/apps".into(),
            json!({"id": null}),
            &[400, 422],
            "/orgs/default/apps/null".into(),
        ),
        (
            "POST",
            "/orgs/default/apps/shapes/envs".into(),
            json!(["arr-env", "Arr", "development"]),
            &[422],
            "/orgs/default/apps/shapes/envs/arr-env".into(),
        ),
        (
            "POST",
            "/orgs/default/env-types".into(),
            json!(["arr-type", "x"]),
            &[422],
            "/orgs/default/env-types/arr-type".into(),
        ),
        (
            "POST",
            "/orgs/default/env-types".into(),
            json!({"id": "null-type", "description": null}),
            &[400, 422],
            "/orgs/default/env-types/null-type".into(),
        ),
        (
            "POST",
            format!("{env}/rules"),
            json!(["update", true]),
            &[422],
            format!("{env}/rules"),
        ),
        (
            "POST",
            format!("{env}/rules"),
            json!({"type": "update", "version_policy": ["semver", "^1.2"]}),
            &[422],
            format!("{env}/rules"),
        ),
        (
            "POST",
            format!("{env}/rules"),
            json!({"type": null}),
            &[400, 422],
            format!("{env}/rules"),
        ),
        (
            "POST",
            "/orgs/default/apps/shapes/webhooks".into(),
            json!(["arr-hook", "http://127.0.0.1:9/hook"]),
            &[422],
            "/orgs/default/apps/shapes/webhooks".into(),
        ),
        (
            "POST",
            "/orgs/default/apps/shapes/webhooks".into(),
            json!({"id": "nested-hook", "url": "http://127.0.0.1:9/hook", "triggers": [["deployment", "started"]]}),
            &[422],
            "/orgs/default/apps/shapes/webhooks".into(),
        ),
        (
            "POST",
            "/orgs/default/artefact-versions".into(),
            json!(["container", "registry.example.com/arr"]),
            &[422],
            "/orgs/default/artefact-versions?name=registry.example.com/arr".into(),
        ),
        (
            "POST",
            "/orgs/default/artefact-versions".into(),
            json!({"type": "container", "name": null}),
            &[400, 422],
            "/orgs/default/artefact-versions".into(),
        ),
        (
            "POST",
            "/orgs/default/apps/shapes/deltas".into(),
            json!({"modules": [{}, [], []]}),
            &[400, 422],
            "/orgs/default/apps/shapes/deltas".into(),
        ),
        (
            "POST",
            "/orgs/default/apps/shapes/deltas".into(),
            json!({"metadata": ["development", "arr-delta"]}),
            &[422],
            "/orgs/default/apps/shapes/deltas".into(),
        ),
        (
            "PUT",
            format!("{env}/target"),
            json!({"type": "compose", "agents": [["http://127.0.0.1:9", null, {"w": "s"}]]}),
            &[422],
            format!("{env}/target"),
        ),
    ];
    for (method, path, body, allowed, check) in cases {
        let (status, answer) = server.call(method, &path, Some(ADMIN), Some(body.clone()));
        assert!(
            allowed.contains(&status),
            "{method} {path} {body}: {status} {answer}"
        );
        error_message(&answer);
        let (status, seen) = server.call("GET", &check, Some(ADMIN), None);
        let nothing = status == 404
            || seen == json!([])
            || (check.ends_with("/target") && seen["type"] != json!("compose"));
        assert!(nothing, "{method} {path} {body} created something: {seen}");
    }
}
