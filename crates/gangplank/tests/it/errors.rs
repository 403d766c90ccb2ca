//! Every error class comes back with its status and the JSON error shape.

use std::time::Duration;

use serde_json::json;

use crate::support::{ADMIN, Server, error_message};

#[test]
fn each_error_class_has_its_status_and_json_body() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_MAX_BODY_BYTES", "4096"),
    ]);
    let versions = "/orgs/default/artefact-versions";
    let cases: Vec<(&str, u16, (u16, serde_json::Value))> = vec![
        (
            "400 names the field",
            400,
            server.call(
                "POST",
                versions,
                Some(ADMIN),
                Some(json!({"type": "container", "name": "app", "commit": "zz"})),
            ),
        ),
        (
            "401 without a token",
            401,
            server.call("GET", versions, None, None),
        ),
        (
            "401 with a wrong token",
            401,
            server.call("GET", versions, Some("gp_wrong"), None),
        ),
        (
            "403 outside the org",
            403,
            server.call("GET", "/orgs/other/artefact-versions", Some(ADMIN), None),
        ),
        (
            "404 unknown object",
            404,
            server.call("GET", "/orgs/default/apps/nope", Some(ADMIN), None),
        ),
        (
            "404 unknown route",
            404,
            server.call("GET", "/no/such/route", Some(ADMIN), None),
        ),
        (
            "405 wrong method",
            405,
            server.call("PUT", versions, Some(ADMIN), None),
        ),
        (
            "413 body too large",
            413,
            server.raw(
                "POST",
                versions,
                Some(ADMIN),
                "application/json",
                vec![b' '; 8192],
            ),
        ),
        (
            "415 not JSON",
            415,
            server.raw(
                "POST",
                "/orgs/default/apps",
                Some(ADMIN),
                "text/plain",
                b"{}".to_vec(),
            ),
        ),
        (
            "422 malformed JSON",
            422,
            server.raw(
                "POST",
                versions,
                Some(ADMIN),
                "application/json",
                b"{\"type\":".to_vec(),
            ),
        ),
        (
            "422 wrong shape",
            422,
            server.raw(
                "POST",
                versions,
                Some(ADMIN),
                "application/json",
                b"{\"type\": 5, \"name\": \"x\"}".to_vec(),
            ),
        ),
    ];
    for (what, expected, (status, body)) in cases {
        assert_eq!(status, expected, "{what}: {body}");
        error_message(&body);
    }
    let (_, body) = server.call(
        "POST",
        versions,
        Some(ADMIN),
        Some(json!({"type": "container", "name": "app", "commit": "zz"})),
    );
    assert!(error_message(&body).starts_with("commit:"), "{body}");
    let (_, body) = server.raw(
        "POST",
        versions,
        Some(ADMIN),
        "application/json",
        b"{\"type\": 5, \"name\": \"x\"}".to_vec(),
    );
    assert!(error_message(&body).contains("type"), "{body}");
    let (status, _) = server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "dup", "name": "d"})),
    );
    assert_eq!(status, 201);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "dup", "name": "d"})),
    );
    assert_eq!(status, 409);
    error_message(&body);
}

#[test]
fn expired_and_deleted_tokens_are_refused() {
    let server = Server::start();
    let (user, _) = server.user("member");
    let soon = time_in(Duration::from_secs(2));
    let (status, created) = server.call(
        "POST",
        &format!("/users/{user}/tokens"),
        Some(ADMIN),
        Some(json!({"id": "short", "type": "static", "expires_at": soon})),
    );
    assert_eq!(status, 200, "{created}");
    let token = created["token"].as_str().unwrap();
    assert_eq!(
        server.call("GET", "/current-user", Some(token), None).0,
        200
    );
    let body = crate::support::poll("the token to expire", || {
        let (status, body) = server.call("GET", "/current-user", Some(token), None);
        (status == 401).then_some(body)
    });
    assert_eq!(error_message(&body), "token expired");
    let (_, tokens) = server.call("GET", &format!("/users/{user}/tokens"), Some(ADMIN), None);
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("token").is_none()),
        "secrets are never listed: {tokens}"
    );
    let (status, _) = server.call(
        "DELETE",
        &format!("/users/{user}/tokens/ci"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    let (status, _) = server.call(
        "POST",
        &format!("/users/{user}/tokens"),
        Some(ADMIN),
        Some(json!({"id": "short", "type": "static"})),
    );
    assert_eq!(status, 409, "token ids are unique per user");
}

fn time_in(delta: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + delta;
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
