//! Every endpoint with every role: allowed means neither 401 nor 403, denied means 403.

use serde_json::{Value, json};

use crate::support::{ADMIN, SHA64, Server};

/// The callers: org roles, plus `member`s holding each app role on app `shop`.
const CALLERS: [&str; 8] = [
    "administrator",
    "manager",
    "member",
    "artefactContributor",
    "orgViewer",
    "app-viewer",
    "app-developer",
    "app-owner",
];

struct Case {
    method: &'static str,
    path: String,
    body: Option<Value>,
    allowed: &'static [&'static str],
}

fn case(
    method: &'static str,
    path: &str,
    body: Option<Value>,
    allowed: &'static [&'static str],
) -> Case {
    Case {
        method,
        path: path.to_owned(),
        body,
        allowed,
    }
}

const ALL: &[&str] = &CALLERS;
const ADMIN_ONLY: &[&str] = &["administrator"];
const MANAGERS: &[&str] = &["administrator", "manager"];
const APP_READERS: &[&str] = &[
    "administrator",
    "orgViewer",
    "app-viewer",
    "app-developer",
    "app-owner",
];
const APP_WRITERS: &[&str] = &["administrator", "app-developer", "app-owner"];
const APP_OWNERS: &[&str] = &["administrator", "app-owner"];

#[test]
fn every_endpoint_with_every_role() {
    let server = Server::start();
    let mut tokens = std::collections::HashMap::new();
    tokens.insert("administrator", ADMIN.to_owned());
    let mut ids = std::collections::HashMap::new();
    for role in ["manager", "member", "artefactContributor", "orgViewer"] {
        let (id, token) = server.user(role);
        ids.insert(role, id);
        tokens.insert(role, token);
    }
    server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "shop", "name": "Shop"})),
    );
    for (caller, app_role) in [
        ("app-viewer", "viewer"),
        ("app-developer", "developer"),
        ("app-owner", "owner"),
    ] {
        let (id, token) = server.user("member");
        let (status, body) = server.call(
            "POST",
            "/orgs/default/apps/shop/users",
            Some(ADMIN),
            Some(json!({"id": id, "role": app_role})),
        );
        assert_eq!(status, 200, "{body}");
        ids.insert(caller, id);
        tokens.insert(caller, token);
    }
    let (_, version) = server.call(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        Some(json!({"type": "container", "name": "reg.io/app", "version": "1"})),
    );
    let artefact = version["artefact_id"].as_str().unwrap().to_owned();
    let version_id = version["id"].as_str().unwrap().to_owned();
    let member_id = ids["member"].clone();
    let viewer_id = ids["app-viewer"].clone();
    let new_version = || {
        Some(json!({"type": "container", "name": "reg.io/app", "version": "2", "commit": SHA64}))
    };

    let cases = vec![
        case("GET", "/current-user", None, ALL),
        case("GET", "/orgs/default/users", None, ALL),
        case(
            "GET",
            &format!("/orgs/default/users/{member_id}"),
            None,
            ALL,
        ),
        case(
            "POST",
            "/orgs/default/users",
            Some(json!({"name": "x", "role": "member"})),
            MANAGERS,
        ),
        case(
            "PATCH",
            &format!("/orgs/default/users/{member_id}"),
            Some(json!({"role": "member"})),
            MANAGERS,
        ),
        case(
            "GET",
            &format!("/users/{member_id}/tokens"),
            None,
            &["administrator", "manager", "member"],
        ),
        case("GET", "/orgs/default/env-types", None, ALL),
        case("GET", "/orgs/default/env-types/development", None, ALL),
        case(
            "POST",
            "/orgs/default/env-types",
            Some(json!({"id": "staging"})),
            ADMIN_ONLY,
        ),
        case(
            "PATCH",
            "/orgs/default/env-types/development",
            Some(json!({"description": "Dev"})),
            ADMIN_ONLY,
        ),
        case(
            "DELETE",
            "/orgs/default/env-types/staging",
            None,
            ADMIN_ONLY,
        ),
        case("GET", "/orgs/default/apps", None, ALL),
        case(
            "POST",
            "/orgs/default/apps",
            Some(json!({"id": "other", "name": "o"})),
            MANAGERS,
        ),
        case("GET", "/orgs/default/apps/shop", None, APP_READERS),
        case(
            "PATCH",
            "/orgs/default/apps/shop",
            Some(json!({"name": "Shop"})),
            APP_WRITERS,
        ),
        case("GET", "/orgs/default/apps/shop/users", None, APP_READERS),
        case(
            "PATCH",
            &format!("/orgs/default/apps/shop/users/{viewer_id}"),
            Some(json!({"role": "viewer"})),
            APP_OWNERS,
        ),
        case("GET", "/orgs/default/apps/shop/envs", None, APP_READERS),
        case(
            "GET",
            "/orgs/default/apps/shop/envs/development",
            None,
            APP_READERS,
        ),
        case(
            "POST",
            "/orgs/default/apps/shop/envs",
            Some(json!({"id": "qa", "name": "QA"})),
            APP_WRITERS,
        ),
        case(
            "PATCH",
            "/orgs/default/apps/shop/envs/development",
            Some(json!({"name": "Dev"})),
            APP_WRITERS,
        ),
        case(
            "DELETE",
            "/orgs/default/apps/shop/envs/qa",
            None,
            APP_WRITERS,
        ),
        case(
            "GET",
            "/orgs/default/apps/shop/envs/development/target",
            None,
            APP_READERS,
        ),
        case(
            "PUT",
            "/orgs/default/apps/shop/envs/development/target",
            Some(json!({"type": "none"})),
            APP_WRITERS,
        ),
        case(
            "POST",
            "/orgs/default/artefact-versions",
            new_version(),
            &["administrator", "artefactContributor"],
        ),
        case("GET", "/orgs/default/artefact-versions", None, ALL),
        case(
            "GET",
            &format!("/orgs/default/artefact-versions/{version_id}"),
            None,
            ALL,
        ),
        case("GET", "/orgs/default/artefacts", None, ALL),
        case(
            "GET",
            &format!("/orgs/default/artefacts/{artefact}/versions"),
            None,
            ALL,
        ),
        case(
            "PATCH",
            &format!("/orgs/default/artefacts/{artefact}/versions/{version_id}"),
            Some(json!({"archived": false})),
            MANAGERS,
        ),
        case(
            "DELETE",
            &format!("/orgs/default/apps/shop/users/{viewer_id}"),
            None,
            APP_OWNERS,
        ),
        case(
            "DELETE",
            &format!("/orgs/default/artefacts/{artefact}"),
            None,
            ADMIN_ONLY,
        ),
        case("DELETE", "/orgs/default/apps/shop", None, APP_OWNERS),
        // Last: it revokes the member's token.
        case(
            "DELETE",
            &format!("/orgs/default/users/{member_id}"),
            None,
            MANAGERS,
        ),
    ];
    let mut failures = Vec::new();
    for case in &cases {
        // Denied callers go first, so an allowed delete cannot hide a denial behind a 404.
        let (allowed, denied): (Vec<&str>, Vec<&str>) =
            CALLERS.iter().partition(|c| case.allowed.contains(c));
        for caller in denied.into_iter().chain(allowed) {
            let (status, body) = server.call(
                case.method,
                &case.path,
                Some(&tokens[caller]),
                case.body.clone(),
            );
            let expect_allowed = case.allowed.contains(&caller);
            let was_allowed = status != 401 && status != 403;
            if expect_allowed != was_allowed || (!was_allowed && status != 403) {
                failures.push(format!(
                    "{} {} as {caller}: got {status} {body}, expected {}",
                    case.method,
                    case.path,
                    if expect_allowed { "allowed" } else { "403" }
                ));
            }
        }
        let (status, _) = server.call(case.method, &case.path, None, case.body.clone());
        if status != 401 {
            failures.push(format!(
                "{} {} without a token: got {status}, expected 401",
                case.method, case.path
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn managers_cannot_make_administrators_and_one_administrator_remains() {
    let server = Server::start();
    let (_, manager) = server.user("manager");
    let (status, _) = server.call(
        "POST",
        "/orgs/default/users",
        Some(&manager),
        Some(json!({"name": "x", "role": "administrator"})),
    );
    assert_eq!(status, 403);
    let (_, me) = server.call("GET", "/current-user", Some(ADMIN), None);
    let admin_id = me["id"].as_str().unwrap();
    assert_eq!(me["roles"], json!({"/orgs/default": "administrator"}));
    let (status, _) = server.call(
        "DELETE",
        &format!("/orgs/default/users/{admin_id}"),
        Some(&manager),
        None,
    );
    assert_eq!(status, 403);
    let (status, body) = server.call(
        "PATCH",
        &format!("/orgs/default/users/{admin_id}"),
        Some(ADMIN),
        Some(json!({"role": "member"})),
    );
    assert_eq!(status, 400, "the last administrator stays: {body}");
}
