//! The run action's inputs, its default image and the choice of agent.

use serde_json::{Map, Value, json};

use super::*;

fn with(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn a_full_step_is_read() {
    let spec = RunSpec::parse(&with(json!({
        "image": "reg.example/tests:1", "command": ["/bin/busybox", "sh", "-c", "exit 0", 3],
        "env": {"TARGET": "test", "N": 2, "DEBUG": true}, "timeout_seconds": 30,
        "env_id": "test", "agent": "http://10.0.0.5:8686"
    })))
    .unwrap();
    assert_eq!(spec.image.as_deref(), Some("reg.example/tests:1"));
    assert_eq!(spec.command, ["/bin/busybox", "sh", "-c", "exit 0", "3"]);
    assert_eq!(spec.env["N"], "2");
    assert_eq!(spec.env["DEBUG"], "true");
    assert_eq!(spec.timeout_seconds, 30);
    assert_eq!(
        spec.target,
        RunTarget::Env {
            env_id: "test".into(),
            agent: Some("http://10.0.0.5:8686".into())
        }
    );
    // An empty text input is not given: the pinned image, the only agent.
    let spec = RunSpec::parse(&with(json!({"env_id": "test", "image": "", "agent": ""}))).unwrap();
    assert_eq!(
        (spec.image, spec.target),
        (
            None,
            RunTarget::Env {
                env_id: "test".into(),
                agent: None
            }
        )
    );
    let spec = RunSpec::parse(&with(json!({"agent_url": "http://a:1"}))).unwrap();
    assert_eq!(
        (spec.image, spec.command.len(), spec.timeout_seconds),
        (None, 0, 600)
    );
    assert_eq!(spec.target, RunTarget::Url("http://a:1".into()));
}

#[test]
fn bad_steps_are_refused_naming_the_input() {
    for (bad, names) in [
        (json!({}), "with:"),
        (json!({"agent": "x"}), "with.agent"),
        (json!({"env_id": "e", "agent_url": "u"}), "with:"),
        (
            json!({"env_id": "e", "command": "make test"}),
            "with.command",
        ),
        (json!({"env_id": "e", "command": [["a"]]}), "with.command"),
        (json!({"env_id": "e", "env": ["A=1"]}), "with.env"),
        (json!({"env_id": "e", "env": {"A": {"b": 1}}}), "with.env.A"),
        (
            json!({"env_id": "e", "env": {"PATH": "/x"}}),
            "with.env.PATH",
        ),
        (json!({"env_id": "e", "env": {"1A": "x"}}), "with.env.1A"),
        (
            json!({"env_id": "e", "image": "--privileged"}),
            "with.image",
        ),
        (json!({"env_id": "e", "image": 3}), "with.image"),
        (json!({"env_id": "e", "agent": ["a"]}), "with.agent"),
        (json!({"agent_url": true}), "with.agent_url"),
        (
            json!({"env_id": "e", "timeout_seconds": 0}),
            "with.timeout_seconds",
        ),
        (
            json!({"env_id": "e", "timeout_seconds": 86401}),
            "with.timeout_seconds",
        ),
        (json!({"env_id": 3}), "with.env_id"),
        (json!({"env_id": "e", "shell": true}), "with.shell"),
    ] {
        let error = RunSpec::parse(&with(bad.clone())).unwrap_err();
        assert!(error.starts_with(names), "{bad}: {error}");
    }
}

#[test]
fn the_default_image_is_the_pinned_one() {
    let inputs = json!({"image": "reg/app", "digest": "sha256:ab"});
    assert_eq!(pinned_image(&inputs).as_deref(), Some("reg/app@sha256:ab"));
    assert_eq!(
        pinned_image(&json!({"image": "reg/app:1"})).as_deref(),
        Some("reg/app:1")
    );
    assert_eq!(
        pinned_image(&json!({"image": "reg/app@sha256:cd", "digest": "sha256:ab"})).as_deref(),
        Some("reg/app@sha256:cd")
    );
    assert_eq!(pinned_image(&json!({"digest": "sha256:ab"})), None);
    assert_eq!(pinned_image(&json!({"image": ""})), None);
}

#[test]
fn the_agent_is_the_named_or_the_only_one() {
    let agents = |urls: &[&str]| urls.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
    let one = agents(&["http://a:1/"]);
    let two = agents(&["http://a:1", "http://b:2/"]);
    let paths = agents(&["http://h:1/x/", "http://h:1/X"]);
    // (agents, wanted, the agent's base URL or a piece of the refusal)
    for (agents, wanted, expect) in [
        (&one, None, Ok("http://a:1")),
        (&one, Some("http://a:1"), Ok("http://a:1")),
        (&two, Some("http://b:2"), Ok("http://b:2")),
        (&two, Some("http://b:2///"), Ok("http://b:2")),
        (&two, Some("HTTP://B:2/"), Ok("http://b:2")),
        (&paths, Some("http://H:1/x"), Ok("http://h:1/x")),
        (&paths, Some("http://h:1/X/"), Ok("http://h:1/X")),
        (&two, None, Err("name one")),
        (&two, Some("http://c:3"), Err("no agent http://c:3")),
        (&two, Some("https://a:1"), Err("no agent https://a:1")),
        (&two, Some("http://a:10"), Err("no agent http://a:10")),
        (&paths, Some("http://h:1/y"), Err("no agent http://h:1/y")),
        (&Vec::new(), None, Err("no agents")),
        (&Vec::new(), Some("http://a:1"), Err("no agent http://a:1")),
    ] {
        match (pick_agent(agents, wanted), expect) {
            (Ok(got), Ok(base)) => assert_eq!(got, base, "{wanted:?} of {agents:?}"),
            (Err(got), Err(piece)) => assert!(got.contains(piece), "{wanted:?}: {got}"),
            (got, _) => panic!("{wanted:?} of {agents:?}: {got:?}, expected {expect:?}"),
        }
    }
}

#[test]
fn debug_shows_env_names_not_values() {
    let spec = RunSpec::parse(&with(
        json!({"env": {"API_TOKEN": "s3cret-value-Q9"}, "env_id": "test"}),
    ))
    .unwrap();
    let shown = format!("{spec:?}");
    assert!(shown.contains("API_TOKEN"), "{shown}");
    assert!(!shown.contains("s3cret-value-Q9"), "{shown}");
}
