//! Every bound of `gangplank_core::limits` (docs/limits.md): at its maximum the request
//! passes, one past it the answer is a 400 naming the field.

use serde_json::{Value, json};

use crate::support::{ADMIN, Server, error_message};

/// RFC 3339 for now plus `days`.
fn days_from_now(days: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn each_bound_passes_at_its_maximum_and_fails_one_past_it() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
    ]);
    server.create_app("bounds");
    let (user, _) = server.user("member");
    let target = "/orgs/default/apps/bounds/envs/development/target";
    let agent = |services: usize| {
        let services: serde_json::Map<String, Value> = (0..services)
            .map(|i| (format!("w{i}"), json!(format!("s{i}"))))
            .collect();
        json!({"url": "http://127.0.0.1:8686", "services": services})
    };
    let headers = |n: usize| -> Value {
        (0..n)
            .map(|i| (format!("x-h{i}"), json!("v")))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut hook = 0;
    let mut webhook = |extra: Value| {
        hook += 1;
        let mut body = json!({"id": format!("hook-{hook}"), "url": "http://127.0.0.1:9/hook"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let filters = |n: usize| json!({"type": "update", "artefacts_filter": vec!["x"; n]});
    let long = |n: usize| "a".repeat(n);
    type Case = (&'static str, &'static str, String, Value, u16, Value);
    // (field, method, path, body at the maximum, its status, body one past it)
    let cases: Vec<Case> = vec![
        (
            "timeout_seconds",
            "PUT",
            target.into(),
            json!({"type": "compose", "agents": [agent(1)], "timeout_seconds": 86400}),
            200,
            json!({"type": "compose", "agents": [agent(1)], "timeout_seconds": 86401}),
        ),
        (
            "agents[0].services",
            "PUT",
            target.into(),
            json!({"type": "compose", "agents": [agent(256)]}),
            200,
            json!({"type": "compose", "agents": [agent(257)]}),
        ),
        (
            "agents",
            "PUT",
            target.into(),
            json!({"type": "compose", "agents": vec![agent(1); 64]}),
            200,
            json!({"type": "compose", "agents": vec![agent(1); 65]}),
        ),
        (
            "name",
            "POST",
            "/orgs/default/apps".into(),
            json!({"id": "long-name", "name": long(200)}),
            201,
            json!({"id": "longer-name", "name": long(201)}),
        ),
        (
            "description",
            "POST",
            "/orgs/default/env-types".into(),
            json!({"id": "described", "description": long(4096)}),
            201,
            json!({"id": "overdescribed", "description": long(4097)}),
        ),
        (
            "headers",
            "POST",
            "/orgs/default/apps/bounds/webhooks".into(),
            webhook(json!({"headers": headers(32)})),
            201,
            webhook(json!({"headers": headers(33)})),
        ),
        (
            "url",
            "POST",
            "/orgs/default/apps/bounds/webhooks".into(),
            webhook(json!({"url": format!("http://127.0.0.1:9/{}", long(2048 - 19))})),
            201,
            webhook(json!({"url": format!("http://127.0.0.1:9/{}", long(2048 - 18))})),
        ),
        (
            "artefacts_filter",
            "POST",
            "/orgs/default/apps/bounds/envs/development/rules".into(),
            filters(100),
            201,
            filters(101),
        ),
        (
            "expires_at",
            "POST",
            format!("/users/{user}/tokens"),
            json!({"id": "long-lived", "expires_at": days_from_now(3650)}),
            200,
            json!({"id": "too-long-lived", "expires_at": days_from_now(3661)}),
        ),
    ];
    for (field, method, path, at_max, ok_status, over) in cases {
        let (status, body) = server.call(method, &path, Some(ADMIN), Some(at_max));
        assert_eq!(status, ok_status, "{field} at its maximum: {body}");
        let (status, body) = server.call(method, &path, Some(ADMIN), Some(over));
        assert_eq!(status, 400, "{field} past its maximum: {body}");
        let message = error_message(&body);
        assert!(
            message.starts_with(&format!("{field}:")),
            "{field}: {message}"
        );
    }
    // The reported hole: u64::MAX seconds.
    let (status, body) = server.call(
        "PUT",
        target,
        Some(ADMIN),
        Some(json!({"type": "compose", "agents": [agent(1)], "timeout_seconds": u64::MAX})),
    );
    assert_eq!(status, 400, "{body}");
}
