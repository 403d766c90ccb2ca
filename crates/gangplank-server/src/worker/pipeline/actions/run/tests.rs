//! The run executor's choices before and around the agent: which agent (an environment's
//! compose agents, a known agent by URL, nothing else), the default image, and an agent that
//! cannot be reached. Runs on a real agent and Docker are in the `it` tests.

use serde_json::{Map, Value, json};

use super::execute;
use crate::worker::pipeline::step::StepOutcome;
use crate::worker::pipeline::test_state::{ctx, state};

fn with(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn failed(outcome: &StepOutcome) -> &str {
    match outcome {
        StepOutcome::Failed { message } => message,
        other => panic!("not failed: {other:?}"),
    }
}

#[tokio::test]
async fn the_agent_must_be_one_the_app_knows() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), true).await;
    let inputs = json!({"image": "reg.example/app", "digest": "sha256:ab"});
    let step = ctx(&state, &inputs, gangplank_store::now_millis() + 60_000);

    let result = execute(&step, &with(json!({"env_id": "nope"}))).await;
    assert!(
        failed(&result.outcome).contains("nope does not exist"),
        "{result:?}"
    );
    let result = execute(&step, &with(json!({"env_id": "development"}))).await;
    assert!(
        failed(&result.outcome).contains("has no compose target"),
        "{result:?}"
    );
    let result = execute(&step, &with(json!({"agent_url": "http://169.254.169.254"}))).await;
    assert!(
        failed(&result.outcome).contains("is not an agent of any environment"),
        "{result:?}"
    );

    let target = json!({"agents": [{"url": "http://127.0.0.1:9/", "services": {"web": "web"}},
                                   {"url": "http://127.0.0.1:10", "services": {"api": "api"}}]});
    state
        .store
        .set_env_target(
            "default",
            "shop",
            "development",
            "compose",
            &target.to_string(),
        )
        .await
        .unwrap();
    let result = execute(&step, &with(json!({"env_id": "development"}))).await;
    assert!(
        failed(&result.outcome).contains("name one with with.agent"),
        "{result:?}"
    );
    let result = execute(
        &step,
        &with(json!({"env_id": "development", "agent": "http://127.0.0.1:11"})),
    )
    .await;
    assert!(
        failed(&result.outcome).contains("no agent http://127.0.0.1:11"),
        "{result:?}"
    );
    let no_image = json!({});
    let bare = ctx(&state, &no_image, gangplank_store::now_millis() + 60_000);
    let result = execute(&bare, &with(json!({"agent_url": "http://127.0.0.1:9"}))).await;
    assert!(
        failed(&result.outcome).starts_with("with.image"),
        "{result:?}"
    );
    let result = execute(
        &step,
        &with(json!({"env_id": "development", "command": "make test"})),
    )
    .await;
    assert!(
        failed(&result.outcome).starts_with("with.command"),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_unreachable_agent_errors_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), true).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let target = json!({"agents": [{"url": url, "services": {"web": "web"}}]});
    state
        .store
        .set_env_target(
            "default",
            "shop",
            "development",
            "compose",
            &target.to_string(),
        )
        .await
        .unwrap();
    let inputs = json!({"image": "reg.example/app", "digest": "sha256:ab"});
    let step = ctx(&state, &inputs, gangplank_store::now_millis() + 2_000);
    let result = execute(&step, &with(json!({"agent_url": format!("{url}/")}))).await;
    let StepOutcome::Errored { message } = &result.outcome else {
        panic!("{result:?}");
    };
    assert!(
        message.contains("could not be reached") && message.contains(&url),
        "{message}"
    );
    assert!(
        result.logs[0].message.contains("reg.example/app@sha256:ab"),
        "{:?}",
        result.logs
    );
}
