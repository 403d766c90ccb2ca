//! The http action's inputs, verdicts and retry schedule.

use serde_json::{Map, Value, json};

use super::*;

fn with(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn spec(value: Value) -> HttpSpec {
    HttpSpec::parse(&with(value)).unwrap()
}

#[test]
fn defaults_are_a_get_expecting_2xx_once_with_a_30_second_timeout() {
    let s = spec(json!({"url": "https://example.com/health"}));
    assert_eq!(s.method, "GET");
    assert!(s.expect_status.is_empty() && s.expect_body.is_none() && s.body.is_none());
    assert_eq!(
        (s.retries, s.retry_interval_ms, s.timeout_ms),
        (0, 5000, 30_000)
    );
    assert_eq!(s.judge(204, ""), Verdict::Pass);
    assert_eq!(
        s.judge(301, ""),
        Verdict::Fail("status 301, expected 2xx".to_owned())
    );
}

#[test]
fn every_input_is_read() {
    let s = spec(json!({
        "method": "post", "url": "http://127.0.0.1:9/x",
        "headers": {"X-Token": "abc", "X-Count": 3},
        "body": {"a": 1}, "expect_status": [200, "201"], "expect_body": {"regex": "^ok \\d+$"},
        "retries": 3, "retry_interval": "250ms", "timeout_minutes": 2
    }));
    assert_eq!(s.method, "POST");
    // Sorted by name (a JSON map's order).
    assert_eq!(
        s.headers,
        [
            ("X-Count".to_owned(), "3".to_owned()),
            ("X-Token".to_owned(), "abc".to_owned())
        ]
    );
    assert_eq!(s.body, Some(HttpBody::Json(json!({"a": 1}))));
    assert_eq!(s.expect_status, [200, 201]);
    assert_eq!(
        (s.retries, s.retry_interval_ms, s.timeout_ms),
        (3, 250, 120_000)
    );
    assert_eq!(s.judge(201, "ok 42"), Verdict::Pass);
    assert_eq!(
        s.judge(200, "ok x"),
        Verdict::Fail("the body does not match /^ok \\d+$/".to_owned())
    );
    assert_eq!(
        s.judge(500, "ok 1"),
        Verdict::Fail("status 500, expected 200 or 201".to_owned())
    );
    for (interval, ms) in [
        (json!(2), 2000),
        (json!(0.5), 500),
        (json!("2m"), 120_000),
        (json!("7"), 7000),
        (json!("3s"), 3000),
    ] {
        let s = spec(json!({"url": "u", "retry_interval": interval}));
        assert_eq!(s.retry_interval_ms, ms, "{interval}");
    }
    let s = spec(
        json!({"url": "u", "expect_status": 418, "expect_body": "teapot", "body": "raw", "timeout_seconds": 1}),
    );
    assert_eq!(s.expect_status, [418]);
    assert_eq!(s.body, Some(HttpBody::Text("raw".to_owned())));
    assert_eq!(s.timeout_ms, 1000);
    assert_eq!(s.judge(418, "I'm a teapot"), Verdict::Pass);
    assert_eq!(
        s.judge(418, "coffee"),
        Verdict::Fail("the body does not contain \"teapot\"".to_owned())
    );
}

#[test]
fn bad_inputs_are_refused_naming_the_input() {
    for (bad, names) in [
        (json!({}), "with.url"),
        (json!({"url": ""}), "with.url"),
        (
            json!({"url": ["https://example.com"]}),
            "with.url: must be text",
        ),
        (json!({"url": "x".repeat(3000)}), "with.url"),
        (json!({"url": "u", "method": "TRACE"}), "with.method"),
        (
            json!({"url": "u", "method": 1}),
            "with.method: must be text",
        ),
        (json!({"url": "u", "headers": ["a"]}), "with.headers"),
        (json!({"url": "u", "headers": {"a b": "x"}}), "with.headers"),
        (
            json!({"url": "u", "headers": {"a": "x\ny"}}),
            "with.headers.a",
        ),
        (
            json!({"url": "u", "headers": {"a": {"b": 1}}}),
            "with.headers.a",
        ),
        (
            json!({"url": "u", "expect_status": 99}),
            "with.expect_status",
        ),
        (
            json!({"url": "u", "expect_status": [200, 600]}),
            "with.expect_status",
        ),
        (
            json!({"url": "u", "expect_status": []}),
            "with.expect_status",
        ),
        (json!({"url": "u", "expect_body": 3}), "with.expect_body"),
        (
            json!({"url": "u", "expect_body": {"regex": "("}}),
            "with.expect_body.regex",
        ),
        (
            json!({"url": "u", "expect_body": {"regex": "a", "x": 1}}),
            "with.expect_body",
        ),
        (json!({"url": "u", "retries": -1}), "with.retries"),
        (json!({"url": "u", "retries": 101}), "with.retries"),
        (
            json!({"url": "u", "retry_interval": "soon"}),
            "with.retry_interval",
        ),
        (
            json!({"url": "u", "retry_interval": 3601}),
            "with.retry_interval",
        ),
        (
            json!({"url": "u", "timeout_seconds": 0}),
            "with.timeout_seconds",
        ),
        (
            json!({"url": "u", "timeout_seconds": 3601}),
            "with.timeout_seconds",
        ),
        (
            json!({"url": "u", "timeout_seconds": 1, "timeout_minutes": 1}),
            "with:",
        ),
        (json!({"url": "u", "expect": 200}), "with.expect"),
    ] {
        let error = HttpSpec::parse(&with(bad.clone())).unwrap_err();
        assert!(error.starts_with(names), "{bad}: {error}");
    }
}

#[test]
fn attempts_follow_the_retries_and_stop_at_the_deadline() {
    let s = spec(json!({"url": "u", "retries": 2, "retry_interval": 1}));
    assert_eq!(s.next_attempt(1, 10_000, 60_000), Some(11_000));
    assert_eq!(s.next_attempt(2, 11_000, 60_000), Some(12_000));
    assert_eq!(s.next_attempt(3, 12_000, 60_000), None, "retries spent");
    assert_eq!(
        s.next_attempt(1, 59_500, 60_000),
        None,
        "it could not start in time"
    );
    let once = spec(json!({"url": "u"}));
    assert_eq!(once.next_attempt(1, 0, i64::MAX), None);
}

#[test]
fn excerpts_cut_at_character_boundaries() {
    assert_eq!(excerpt("abc", 3), "abc");
    assert_eq!(excerpt("abcd", 3), "abc…");
    assert_eq!(excerpt("aé", 2), "a…");
}

#[test]
fn debug_shows_no_header_value_body_or_query() {
    let s = spec(json!({
        "url": "https://example.com/hook?token=q-s3cret",
        "method": "POST",
        "headers": {"Authorization": "Bearer h-s3cret"},
        "body": "b-s3cret"
    }));
    let shown = format!("{s:?}");
    assert!(
        shown.contains("Authorization") && shown.contains("example.com/hook"),
        "{shown}"
    );
    for secret in ["q-s3cret", "h-s3cret", "b-s3cret"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
