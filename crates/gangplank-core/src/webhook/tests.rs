//! Webhook templates, validation, signatures against published vectors, and the retry policy.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn templates_substitute_every_string_and_leave_other_values() {
    let template = json!({"event": "${event}", "text": "deploy ${deploy_id} in ${env_id}!", "n": 3, "nested": ["${missing}"]});
    let out = render(
        &template,
        &vars(&[
            ("event", "deployment.finished"),
            ("deploy_id", "d1"),
            ("env_id", "dev"),
        ]),
    );
    assert_eq!(
        out,
        json!({"event": "deployment.finished", "text": "deploy d1 in dev!", "n": 3, "nested": [""]})
    );
    assert_eq!(
        substitute("${a}${b} ${unclosed", &vars(&[("a", "1"), ("b", "2")])),
        "12 ${unclosed"
    );
}

#[test]
fn validation_names_unknown_variables_and_events() {
    let finished = vec![("deployment".to_owned(), "finished".to_owned())];
    assert!(validate(&finished, &json!({"s": "${status}"}), &BTreeMap::new()).is_ok());
    let err = validate(&finished, &json!({"s": "${stauts}"}), &BTreeMap::new()).unwrap_err();
    assert_eq!(err.field, "payload");
    assert!(err.message.contains("${stauts}"));
    let headers = BTreeMap::from([("X-Env".to_owned(), "${name}".to_owned())]);
    let err = validate(&finished, &json!({}), &headers).unwrap_err();
    assert_eq!(err.field, "headers", "name is an environment property only");
    let bad = vec![("deployment".to_owned(), "exploded".to_owned())];
    assert_eq!(
        validate(&bad, &json!({}), &BTreeMap::new())
            .unwrap_err()
            .field,
        "triggers[0]"
    );
    assert!(validate(&[], &default_payload(&[]), &BTreeMap::new()).is_ok());
    // A build has no environment: its default payload names none, and validates.
    let build = vec![("build".to_owned(), "finished".to_owned())];
    let payload = default_payload(&build);
    assert!(payload.get("env_id").is_none() && payload.get("app_id").is_some());
    assert!(validate(&build, &payload, &BTreeMap::new()).is_ok());
}

#[test]
fn signatures_match_published_vectors() {
    // Standard Webhooks' own test vector (standard-webhooks/standard-webhooks, libraries).
    let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let body = br#"{"test": 2432232314}"#;
    assert_eq!(
        key.standard_signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
    let github = SigningKey::from_bytes(b"It's a Secret to Everybody".to_vec());
    assert_eq!(
        github.github_signature(b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    assert!(SigningKey::parse("secret").is_err());
    assert!(SigningKey::parse("whsec_c2hvcnQ=").is_err(), "too short");
    assert_eq!(format!("{key:?}"), "SigningKey([redacted])");
    assert_eq!(SigningKey::parse(&key.to_secret()).unwrap(), key);
}

#[test]
fn retry_policy() {
    let policy = RetryPolicy::default();
    let status = |code| AttemptResult::Status {
        code,
        retry_after_ms: None,
    };
    assert_eq!(policy.next(1, 0, status(204), 0.3), Next::Delivered);
    for code in [500, 503, 408, 429] {
        assert!(
            matches!(policy.next(1, 0, status(code), 0.9), Next::RetryIn(d) if d <= 1000),
            "{code}"
        );
    }
    assert!(matches!(
        policy.next(1, 0, AttemptResult::Failed, 0.0),
        Next::RetryIn(250)
    ));
    for code in [400, 404, 410, 301] {
        assert!(
            matches!(policy.next(1, 0, status(code), 0.5), Next::GiveUp(_)),
            "{code}"
        );
    }
    assert!(
        matches!(policy.next(30, 0, AttemptResult::Failed, 0.999), Next::RetryIn(d) if d <= 300_000 && d > 150_000)
    );
    let after = AttemptResult::Status {
        code: 429,
        retry_after_ms: Some(7000),
    };
    assert_eq!(policy.next(1, 0, after, 0.5), Next::RetryIn(7000));
    let day = 24 * 60 * 60 * 1000;
    assert!(matches!(
        policy.next(3, day - 10, status(500), 0.5),
        Next::GiveUp(_)
    ));
}
