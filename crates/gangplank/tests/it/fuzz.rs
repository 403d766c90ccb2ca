//! Arbitrary bytes, arbitrary JSON and oversized bodies to every endpoint: always a 4xx with
//! the JSON error shape, never a 5xx, and the server keeps answering.

use proptest::prelude::*;

use crate::support::{ADMIN, Server};

const ENDPOINTS: [(&str, &str); 22] = [
    ("POST", "/orgs/default/artefact-versions"),
    (
        "POST",
        "/orgs/default/artefact-versions?vcs=git&dry_run=true",
    ),
    (
        "GET",
        "/orgs/default/artefact-versions?archived=maybe&limit=-1",
    ),
    ("GET", "/orgs/default/artefact-versions/not-a-uuid"),
    (
        "GET",
        "/orgs/default/artefact-versions/00000000-0000-0000-0000-000000000000/workload-spec",
    ),
    ("PATCH", "/orgs/default/artefacts/x/versions/y"),
    ("DELETE", "/orgs/default/artefacts/x"),
    ("POST", "/orgs/default/apps"),
    ("PATCH", "/orgs/default/apps/shop"),
    ("POST", "/orgs/default/apps/shop/envs"),
    ("PATCH", "/orgs/default/apps/shop/envs/development"),
    ("POST", "/orgs/default/apps/shop/users"),
    ("PATCH", "/orgs/default/apps/shop/users/x"),
    ("POST", "/orgs/default/env-types"),
    ("PATCH", "/orgs/default/env-types/development"),
    ("POST", "/orgs/default/users"),
    ("PATCH", "/orgs/default/users/x"),
    ("POST", "/users/x/tokens"),
    ("GET", "/users/x/tokens/y"),
    ("GET", "/current-user"),
    ("PUT", "/orgs/default/apps"),
    ("POST", "/orgs/%ff/apps"),
];

/// A server owned by the test (so it is stopped when the test ends) with an app to aim at.
fn server() -> Server {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_MAX_BODY_BYTES", "65536"),
    ]);
    server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(serde_json::json!({"id": "shop", "name": "Shop"})),
    );
    server
}

/// Runs `strategy` through proptest's runner against one server for all cases.
fn run<S: Strategy>(strategy: S, test: impl Fn(&Server, S::Value) -> Result<(), TestCaseError>) {
    let server = server();
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    if let Err(error) = runner.run(&strategy, |value| test(&server, value)) {
        panic!("{error}");
    }
}

fn check(status: u16, body: &serde_json::Value, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "{what}: {status} {body}");
    if status >= 400 {
        prop_assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{what}: not the error shape: {status} {body}"
        );
    }
    Ok(())
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z:/@._-]{0,20}|\\PC{0,20}".prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("type".to_owned()),
        Just("name".to_owned()),
        Just("id".to_owned()),
        Just("version".to_owned()),
        Just("commit".to_owned()),
        Just("ref".to_owned()),
        Just("digest".to_owned()),
        Just("spec".to_owned()),
        Just("role".to_owned()),
        Just("archived".to_owned()),
        Just("env".to_owned()),
        "[a-z_]{1,8}"
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn arbitrary_bytes_never_cause_a_server_error() {
    let content_types = prop_oneof![
        Just("application/json"),
        Just("multipart/form-data; boundary=x"),
        Just("text/plain"),
        Just("")
    ];
    run(
        (prop::collection::vec(any::<u8>(), 0..512), content_types),
        |server, (bytes, content_type)| {
            for (method, path) in ENDPOINTS {
                let (status, body) =
                    server.raw(method, path, Some(ADMIN), content_type, bytes.clone());
                check(status, &body, &format!("{method} {path}"))?;
            }
            Ok(())
        },
    );
}

#[test]
fn arbitrary_json_never_causes_a_server_error() {
    run(arbitrary_json(), |server, value| {
        for (method, path) in ENDPOINTS {
            let (status, body) = server.raw(
                method,
                path,
                Some(ADMIN),
                "application/json",
                value.to_string().into_bytes(),
            );
            check(status, &body, &format!("{method} {path} {value}"))?;
        }
        Ok(())
    });
}

#[test]
fn oversized_bodies_get_413_everywhere() {
    let server = server();
    let big = vec![b'{'; 70_000];
    for (method, path) in ENDPOINTS.iter().filter(|(m, _)| *m != "GET") {
        let (status, body) = server.raw(method, path, Some(ADMIN), "application/json", big.clone());
        assert!(
            status == 413 || (400..500).contains(&status),
            "{method} {path}: {status} {body}"
        );
        assert!(body["error"].is_string(), "{method} {path}: {body}");
    }
    let (status, _) = server.raw(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        "application/json",
        big,
    );
    assert_eq!(status, 413);
    let (status, _) = server.raw(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        "multipart/form-data; boundary=x",
        [
            b"--x\r\nContent-Disposition: form-data; name=\"spec\"\r\n\r\n".as_slice(),
            &vec![b'a'; 70_000],
            b"\r\n--x--\r\n",
        ]
        .concat(),
    );
    assert_eq!(status, 413);
}
