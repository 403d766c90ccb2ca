//! The http executor against a real receiver on 127.0.0.1: a pass, retries until the answer
//! is right, a failing check with its log, the SSRF refusal, the attempt timeout and a cancel.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{any, get};
use serde_json::{Map, Value, json};

use super::execute;
use crate::worker::pipeline::step::{LogLevel, StepOutcome};
use crate::worker::pipeline::test_state::{ctx, state};

/// The receiver: `/flaky` answers 503 twice then 200 "ready 7"; `/echo` answers the method,
/// a header and the body; `/slow` answers after 5 s. Returns its base URL and the hit count.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route(
            "/flaky",
            get(move || {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting".to_owned())
                    } else {
                        (StatusCode::OK, "ready 7".to_owned())
                    }
                }
            }),
        )
        .route(
            "/echo",
            any(
                |method: axum::http::Method, headers: HeaderMap, body: String| async move {
                    let token = headers
                        .get("x-token")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_owned();
                    let kind = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_owned();
                    (
                        StatusCode::CREATED,
                        format!("{method} {token} {kind} {body}"),
                    )
                },
            ),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

fn with(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn far() -> i64 {
    gangplank_store::now_millis() + 60_000
}

#[tokio::test]
async fn a_check_passes_after_retries_and_logs_each_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), true).await;
    let (base, hits) = receiver().await;
    let inputs = json!({});
    let step = ctx(&state, &inputs, far());
    let result = execute(
        &step,
        &with(json!({"url": format!("{base}/flaky?token=secret-q"), "expect_status": 200,
                     "expect_body": {"regex": "^ready \\d+$"}, "retries": 3, "retry_interval": "50ms"})),
    )
    .await;
    let StepOutcome::Succeeded { outputs, .. } = &result.outcome else {
        panic!("{result:?}");
    };
    assert_eq!(outputs["status"], 200);
    assert_eq!(outputs["body"], "ready 7");
    assert_eq!(outputs["attempts"], 3);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let levels: Vec<LogLevel> = result.logs.iter().map(|l| l.level).collect();
    assert_eq!(
        levels,
        [LogLevel::Warn, LogLevel::Warn, LogLevel::Info],
        "{:?}",
        result.logs
    );
    assert!(
        result.logs[0].message.contains("503") && result.logs[0].message.contains("expected 200")
    );
    assert!(
        result.logs.iter().all(|l| !l.message.contains("secret-q")),
        "the query is never logged: {:?}",
        result.logs
    );
}

#[tokio::test]
async fn method_headers_and_a_json_body_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), true).await;
    let (base, _) = receiver().await;
    let inputs = json!({});
    let step = ctx(&state, &inputs, far());
    let result = execute(
        &step,
        &with(
            json!({"method": "post", "url": format!("{base}/echo"), "headers": {"X-Token": "t1"},
                     "body": {"image": "reg/app@sha256:ab"}, "expect_status": [201],
                     "expect_body": "POST t1 application/json {\"image\":\"reg/app@sha256:ab\"}"}),
        ),
    )
    .await;
    assert!(
        matches!(result.outcome, StepOutcome::Succeeded { .. }),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_failing_check_fails_the_step_after_its_retries() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), true).await;
    let (base, hits) = receiver().await;
    let inputs = json!({});
    let step = ctx(&state, &inputs, far());
    let result = execute(
        &step,
        &with(json!({"url": format!("{base}/echo"), "expect_status": 200, "retries": 1, "retry_interval": 0})),
    )
    .await;
    let StepOutcome::Failed { message } = &result.outcome else {
        panic!("{result:?}");
    };
    assert!(
        message.contains("status 201, expected 200") && message.contains("after 2 attempts"),
        "{message}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "only /echo was asked");
    assert_eq!(result.logs.last().unwrap().level, LogLevel::Error);

    // Nothing listens: a failed check too, with the reason.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let result = execute(
        &step,
        &with(json!({"url": format!("http://127.0.0.1:{port}/")})),
    )
    .await;
    let StepOutcome::Failed { message } = &result.outcome else {
        panic!("{result:?}");
    };
    assert!(message.contains("could not connect"), "{message}");
}

#[tokio::test]
async fn loopback_is_refused_unless_private_targets_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), false).await;
    let (base, hits) = receiver().await;
    let inputs = json!({});
    let step = ctx(&state, &inputs, far());
    for url in [
        format!("{base}/flaky"),
        "https://localhost/x".to_owned(),
        "ftp://example.com/".to_owned(),
    ] {
        let result = execute(&step, &with(json!({"url": url}))).await;
        let StepOutcome::Failed { message } = &result.outcome else {
            panic!("{result:?}");
        };
        assert!(message.starts_with("with.url: "), "{message}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was sent");
    let result = execute(
        &step,
        &with(json!({"url": "https://example.com", "retries": "many"})),
    )
    .await;
    assert!(
        matches!(&result.outcome, StepOutcome::Failed { message } if message.starts_with("with.retries")),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_attempt_times_out_and_a_cancel_stops_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), true).await;
    let (base, _) = receiver().await;
    let inputs = json!({});
    let step = ctx(&state, &inputs, far());
    let started = std::time::Instant::now();
    let result = execute(
        &step,
        &with(json!({"url": format!("{base}/slow"), "timeout_seconds": 1})),
    )
    .await;
    let StepOutcome::Failed { message } = &result.outcome else {
        panic!("{result:?}");
    };
    assert!(
        message.contains("timed out") || message.contains("within"),
        "{message}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(4));

    let cancel = step.cancel.clone();
    let canceller = tokio::spawn(async move {
        tokio::task::yield_now().await;
        cancel.cancel();
    });
    let result = execute(&step, &with(json!({"url": format!("{base}/slow")}))).await;
    canceller.await.unwrap();
    assert_eq!(
        result.outcome,
        StepOutcome::Errored {
            message: "cancelled".to_owned()
        }
    );

    // The step's deadline bounds the attempts too.
    let short = ctx(&state, &inputs, gangplank_store::now_millis() + 800);
    let result = execute(
        &short,
        &with(json!({"url": format!("{base}/slow"), "retries": 5, "retry_interval": 0})),
    )
    .await;
    assert!(
        matches!(result.outcome, StepOutcome::Failed { .. }),
        "{result:?}"
    );
}
