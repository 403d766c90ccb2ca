//! Every action reads its text inputs by one rule: a number, a boolean, a list or a map where
//! text is expected fails the step (a business failure, not an error) with a message naming
//! the input, before anything is sent or stored.

use gangplank_core::pipeline::action::Action;
use serde_json::{Value, json};

use super::execute;
use crate::worker::pipeline::step::StepOutcome;
use crate::worker::pipeline::test_state::{ctx, state};

#[tokio::test]
async fn a_non_text_input_fails_the_step_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), true).await;
    let inputs = json!({"image": "reg.example/app", "digest": "sha256:ab"});
    let step = ctx(&state, &inputs, gangplank_store::now_millis() + 60_000);
    for (action, with, input) in [
        (Action::Run, json!({"env_id": 7}), "with.env_id"),
        (
            Action::Run,
            json!({"env_id": "development", "agent": ["a"]}),
            "with.agent",
        ),
        (
            Action::Run,
            json!({"agent_url": {"u": 1}}),
            "with.agent_url",
        ),
        (
            Action::Run,
            json!({"agent_url": "http://127.0.0.1:9", "image": 3}),
            "with.image",
        ),
        (Action::Http, json!({"url": 443}), "with.url"),
        (
            Action::Http,
            json!({"url": "http://127.0.0.1:9", "method": true}),
            "with.method",
        ),
        (
            Action::Deploy,
            json!({"env_id": ["development"]}),
            "with.env_id",
        ),
        (
            Action::Deploy,
            json!({"env_id": "development", "set_id": 12}),
            "with.set_id",
        ),
        (
            Action::Deploy,
            json!({"env_id": "development", "image": {"name": "app"}}),
            "with.image",
        ),
        (
            Action::Deploy,
            json!({"env_id": "development", "message": false}),
            "with.message",
        ),
        (
            Action::WaitForReadiness,
            json!({"env_id": 1}),
            "with.env_id",
        ),
        (
            Action::RollbackImage,
            json!({"repository": 5}),
            "with.repository",
        ),
        (
            Action::RollbackImage,
            json!({"destination": ["reg.example/app"]}),
            "with.destination",
        ),
        (
            Action::RollbackImage,
            json!({"repository": "reg.example/app", "to": 0.14}),
            "with.to",
        ),
        (
            Action::RollbackImage,
            json!({"repository": "reg.example/app", "live_tag": true}),
            "with.live_tag",
        ),
        (Action::Log, json!({"message": 1}), "with.message"),
        (Action::Fail, json!({"message": [1]}), "with.message"),
    ] {
        let Value::Object(with) = with else {
            unreachable!()
        };
        let result = execute(action, &step, &with).await;
        let StepOutcome::Failed { message } = &result.outcome else {
            panic!("{action} {with:?}: {result:?}");
        };
        assert!(
            message.starts_with(&format!("{input}: must be text, not ")),
            "{action} {with:?}: {message}"
        );
    }
}

#[tokio::test]
async fn an_empty_text_input_is_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), true).await;
    let inputs = json!({});
    let step = ctx(&state, &inputs, gangplank_store::now_millis() + 60_000);
    for (action, with, expect) in [
        (
            Action::Deploy,
            json!({"env_id": ""}),
            "input env_id is required",
        ),
        (
            Action::RollbackImage,
            json!({"repository": "", "destination": ""}),
            "with.repository is required",
        ),
        (Action::Http, json!({"url": ""}), "with.url: required"),
        (
            Action::Run,
            json!({"agent_url": "", "env_id": ""}),
            "with: name where to run",
        ),
    ] {
        let Value::Object(with) = with else {
            unreachable!()
        };
        let result = execute(action, &step, &with).await;
        let StepOutcome::Failed { message } = &result.outcome else {
            panic!("{action} {with:?}: {result:?}");
        };
        assert!(message.starts_with(expect), "{action} {with:?}: {message}");
    }
}
