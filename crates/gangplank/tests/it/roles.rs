//! Every endpoint with every role: allowed means neither 401 nor 403, denied means 403. Then
//! the user and token endpoints across users: nobody manages a user whose role they could not
//! grant, and the last administrator keeps a token.

use serde_json::{Value, json};

use crate::support::{ADMIN, SHA64, Server, error_message};

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
const SELF_OR_MANAGERS: &[&str] = &["administrator", "manager", "member"];
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
    let (_, me) = server.call("GET", "/current-user", Some(ADMIN), None);
    let admin_id = me["id"].as_str().unwrap().to_owned();
    let (spare_id, _) = server.user("member");
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
            SELF_OR_MANAGERS,
        ),
        case(
            "POST",
            &format!("/users/{member_id}/tokens"),
            Some(json!({"id": "extra", "type": "static"})),
            SELF_OR_MANAGERS,
        ),
        case(
            "GET",
            &format!("/users/{member_id}/tokens/extra"),
            None,
            SELF_OR_MANAGERS,
        ),
        case(
            "DELETE",
            &format!("/users/{member_id}/tokens/extra"),
            None,
            SELF_OR_MANAGERS,
        ),
        // An administrator's tokens: only they (or another administrator) manage them.
        case(
            "GET",
            &format!("/users/{admin_id}/tokens"),
            None,
            ADMIN_ONLY,
        ),
        case(
            "POST",
            &format!("/users/{admin_id}/tokens"),
            Some(json!({"id": "matrix", "type": "static"})),
            ADMIN_ONLY,
        ),
        case(
            "GET",
            &format!("/users/{admin_id}/tokens/matrix"),
            None,
            ADMIN_ONLY,
        ),
        case(
            "DELETE",
            &format!("/users/{admin_id}/tokens/matrix"),
            None,
            ADMIN_ONLY,
        ),
        case(
            "POST",
            "/orgs/default/users",
            Some(json!({"name": "x", "role": "administrator"})),
            ADMIN_ONLY,
        ),
        case("GET", &format!("/orgs/default/users/{admin_id}"), None, ALL),
        case(
            "PATCH",
            &format!("/orgs/default/users/{admin_id}"),
            Some(json!({"role": "administrator"})),
            ADMIN_ONLY,
        ),
        // The last administrator cannot be removed (400), but only an administrator is told so.
        case(
            "DELETE",
            &format!("/orgs/default/users/{admin_id}"),
            None,
            ADMIN_ONLY,
        ),
        case(
            "PATCH",
            &format!("/orgs/default/users/{spare_id}"),
            Some(json!({"role": "administrator"})),
            ADMIN_ONLY,
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
        case("GET", "/orgs/default/watches", None, ALL),
        case(
            "POST",
            "/orgs/default/watches",
            Some(json!({"image": "registry.example.com/team/app", "interval_seconds": 300})),
            ADMIN_ONLY,
        ),
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
        case(
            "POST",
            "/orgs/default/inbound-hooks",
            Some(json!({"id": "reg", "kind": "distribution"})),
            ADMIN_ONLY,
        ),
        case("GET", "/orgs/default/inbound-hooks", None, ADMIN_ONLY),
        case("GET", "/orgs/default/inbound-hooks/reg", None, ADMIN_ONLY),
        case(
            "PATCH",
            "/orgs/default/inbound-hooks/reg",
            Some(json!({"watches": ["acme/"]})),
            ADMIN_ONLY,
        ),
        case(
            "GET",
            "/orgs/default/inbound-hooks/reg/deliveries",
            None,
            ADMIN_ONLY,
        ),
        case(
            "DELETE",
            "/orgs/default/inbound-hooks/reg",
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

#[test]
fn user_endpoints_follow_the_grant_rule() {
    let server = Server::start();
    let (manager_id, manager) = server.user("manager");
    let (member_id, _) = server.user("member");
    let (_, me) = server.call("GET", "/current-user", Some(ADMIN), None);
    let admin_id = me["id"].as_str().unwrap().to_owned();
    let patch = |token: &str, user: &str, role: &str| {
        server
            .call(
                "PATCH",
                &format!("/orgs/default/users/{user}"),
                Some(token),
                Some(json!({"role": role})),
            )
            .0
    };
    assert_eq!(
        patch(&manager, &manager_id, "administrator"),
        403,
        "self-promotion"
    );
    assert_eq!(patch(&manager, &member_id, "administrator"), 403);
    assert_eq!(
        patch(&manager, &admin_id, "member"),
        403,
        "demoting an administrator"
    );
    assert_eq!(patch(&manager, &member_id, "manager"), 200);
    assert_eq!(patch(&manager, &member_id, "member"), 200);
    assert_eq!(patch(ADMIN, &manager_id, "administrator"), 200);
    assert_eq!(patch(ADMIN, &manager_id, "manager"), 200);
}

#[test]
fn token_endpoints_across_users() {
    let server = Server::start();
    let (_, me) = server.call("GET", "/current-user", Some(ADMIN), None);
    let admin = me["id"].as_str().unwrap().to_owned();
    let mut ids = std::collections::HashMap::new();
    let mut tokens = std::collections::HashMap::new();
    ids.insert("admin", admin);
    tokens.insert("admin", ADMIN.to_owned());
    for (name, role) in [
        ("admin2", "administrator"),
        ("manager", "manager"),
        ("manager2", "manager"),
        ("member", "member"),
        ("viewer", "orgViewer"),
        ("app-owner", "member"),
        ("owning-manager", "manager"),
    ] {
        let (id, token) = server.user(role);
        ids.insert(name, id);
        tokens.insert(name, token);
    }
    // A token carries its user's app roles too: `app-owner` owns `payments`, which no org
    // role of a manager reaches; `owning-manager` owns it as well, so could grant that.
    server.create_app("payments");
    for owner in ["app-owner", "owning-manager"] {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/apps/payments/users",
            Some(ADMIN),
            Some(json!({"id": ids[owner], "role": "owner"})),
        );
        assert_eq!(status, 200, "{body}");
    }
    ids.insert("nobody", "0b0e5a8c-0000-4000-8000-000000000000".to_owned());
    // (caller, target, expected status of list, create, get, delete): each creates a token
    // `t-<caller>` and reads and deletes it; denied callers read and delete the target's `ci`.
    let table: [(&str, &str, [u16; 4]); 16] = [
        ("manager", "admin", [403; 4]),
        ("manager", "admin2", [403; 4]),
        ("manager", "member", [200, 200, 200, 204]),
        ("manager", "manager2", [200, 200, 200, 204]),
        ("manager", "manager", [200, 200, 200, 204]),
        ("admin", "manager", [200, 200, 200, 204]),
        ("admin", "admin2", [200, 200, 200, 204]),
        ("admin2", "admin", [200, 200, 200, 204]),
        ("member", "manager", [403; 4]),
        ("member", "member", [200, 200, 200, 204]),
        ("viewer", "member", [403; 4]),
        ("manager", "app-owner", [403; 4]),
        ("admin", "app-owner", [200, 200, 200, 204]),
        ("owning-manager", "app-owner", [200, 200, 200, 204]),
        ("manager", "nobody", [404; 4]),
        ("member", "nobody", [404; 4]),
    ];
    let mut failures = Vec::new();
    for (caller, target, expected) in table {
        let token = &tokens[caller];
        let base = format!("/users/{}/tokens", ids[target]);
        let mine = format!("t-{caller}");
        let one = if expected[1] == 200 {
            mine.clone()
        } else {
            "ci".to_owned()
        };
        let calls = [
            ("GET", base.clone(), None),
            (
                "POST",
                base.clone(),
                Some(json!({"id": mine, "type": "static"})),
            ),
            ("GET", format!("{base}/{one}"), None),
            ("DELETE", format!("{base}/{one}"), None),
        ];
        for ((method, path, body), want) in calls.into_iter().zip(expected) {
            let (status, answer) = server.call(method, &path, Some(token), body);
            if status != want {
                failures.push(format!(
                    "{caller} {method} {path} ({target}): got {status} {answer}, expected {want}"
                ));
            }
            if status >= 400 {
                error_message(&answer);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // No refused call left a trace: the administrators and the app owner still have exactly
    // their tokens.
    for (admin, kept) in [
        ("admin", "bootstrap"),
        ("admin2", "ci"),
        ("app-owner", "ci"),
    ] {
        let (_, list) = server.call(
            "GET",
            &format!("/users/{}/tokens", ids[admin]),
            Some(ADMIN),
            None,
        );
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(names, [kept], "{admin}");
    }
}

#[test]
fn the_last_administrator_keeps_a_token() {
    let server = Server::start();
    let (_, me) = server.call("GET", "/current-user", Some(ADMIN), None);
    let admin = me["id"].as_str().unwrap().to_owned();
    let tokens = format!("/users/{admin}/tokens");
    // Their only token: not even they may delete it.
    let (status, body) = server.call("DELETE", &format!("{tokens}/bootstrap"), Some(ADMIN), None);
    assert_eq!(status, 400, "{body}");
    assert!(
        error_message(&body).contains("create another token first"),
        "{body}"
    );
    assert_eq!(
        server.call("GET", "/current-user", Some(ADMIN), None).0,
        200
    );
    // With a second token, the first may go; then the second is the last.
    let (status, next) = server.call(
        "POST",
        &tokens,
        Some(ADMIN),
        Some(json!({"id": "next", "type": "static"})),
    );
    assert_eq!(status, 200, "{next}");
    let next = next["token"].as_str().unwrap().to_owned();
    let (status, body) = server.call("DELETE", &format!("{tokens}/bootstrap"), Some(&next), None);
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.call("DELETE", &format!("{tokens}/next"), Some(&next), None);
    assert_eq!(status, 400, "{body}");
    // Once another administrator exists, the first is no longer the last: their tokens go.
    let (admin2_id, admin2) = user_by(&server, &next, "administrator");
    let (status, body) = server.call("DELETE", &format!("{tokens}/next"), Some(&admin2), None);
    assert_eq!(status, 204, "{body}");
    // Now the second is the last administrator, with one token.
    let (status, body) = server.call(
        "DELETE",
        &format!("/users/{admin2_id}/tokens/ci"),
        Some(&admin2),
        None,
    );
    assert_eq!(status, 400, "{body}");
    for (method, body) in [("DELETE", None), ("PATCH", Some(json!({"role": "member"})))] {
        let (status, body) = server.call(
            method,
            &format!("/orgs/default/users/{admin2_id}"),
            Some(&admin2),
            body,
        );
        assert_eq!(
            status, 400,
            "the administrator who can sign in stays: {body}"
        );
    }
    let (_, manager) = user_by(&server, &admin2, "manager");
    let (status, body) = server.call(
        "DELETE",
        &format!("/users/{admin2_id}/tokens/ci"),
        Some(&manager),
        None,
    );
    assert_eq!(status, 403, "{body}");
}

/// Creates a user with `role` as the holder of `token`, with a token `ci`: (id, token).
fn user_by(server: &Server, token: &str, role: &str) -> (String, String) {
    let (status, user) = server.call(
        "POST",
        "/orgs/default/users",
        Some(token),
        Some(json!({"name": role, "role": role})),
    );
    assert_eq!(status, 200, "{user}");
    let id = user["id"].as_str().unwrap().to_owned();
    let (status, minted) = server.call(
        "POST",
        &format!("/users/{id}/tokens"),
        Some(token),
        Some(json!({"id": "ci", "type": "static"})),
    );
    assert_eq!(status, 200, "{minted}");
    (id, minted["token"].as_str().unwrap().to_owned())
}
