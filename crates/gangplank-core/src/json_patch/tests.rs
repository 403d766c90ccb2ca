//! JSON Patch application and diffing.

use serde_json::json;

use super::{PatchOp, UpdateAction, apply, diff, pointer_tokens};

fn action(op: PatchOp, path: &str, value: Option<serde_json::Value>) -> UpdateAction {
    UpdateAction {
        op,
        path: path.to_owned(),
        value,
        from: None,
    }
}

#[test]
fn add_creates_missing_parents_and_replace_requires_a_target() {
    let mut doc = json!({"spec": {}});
    apply(
        &mut doc,
        &[action(
            PatchOp::Add,
            "/spec/containers/web/variables/A",
            Some(json!("1")),
        )],
    )
    .unwrap();
    assert_eq!(
        doc,
        json!({"spec": {"containers": {"web": {"variables": {"A": "1"}}}}})
    );
    let err = apply(
        &mut doc,
        &[action(PatchOp::Replace, "/spec/nope", Some(json!(1)))],
    );
    assert_eq!(err.unwrap_err().path, "/spec/nope");
    let err = apply(&mut doc, &[action(PatchOp::Remove, "/spec/nope", None)]);
    assert!(err.is_err());
}

#[test]
fn arrays_and_escaped_tokens() {
    let mut doc = json!({"a/b": [1, 2], "c~d": 0});
    apply(
        &mut doc,
        &[
            action(PatchOp::Add, "/a~1b/-", Some(json!(3))),
            action(PatchOp::Replace, "/a~1b/0", Some(json!(9))),
            action(PatchOp::Remove, "/c~0d", None),
        ],
    )
    .unwrap();
    assert_eq!(doc, json!({"a/b": [9, 2, 3]}));
    assert!(
        apply(
            &mut doc,
            &[action(PatchOp::Replace, "/a~1b/7", Some(json!(1)))]
        )
        .is_err()
    );
    assert!(pointer_tokens("no-slash").is_err());
}

#[test]
fn delta_scoped_removes_are_ignored() {
    let mut doc = json!({"a": 1});
    let marker = action(PatchOp::Remove, "/a", Some(json!({"scope": "delta"})));
    apply(&mut doc, &[marker]).unwrap();
    assert_eq!(doc, json!({"a": 1}));
}

#[test]
fn diff_then_apply_round_trips() {
    let cases = [
        (json!({}), json!({"a": {"b": 1}})),
        (json!({"a": 1, "b": [1, 2]}), json!({"b": [2], "c": null})),
        (
            json!({"x": {"y": {"z": "old"}}}),
            json!({"x": {"y": {"z": "new", "w": true}}}),
        ),
        (json!({"same": 1}), json!({"same": 1})),
    ];
    for (from, to) in cases {
        let actions = diff(&from, &to, "");
        let mut doc = from.clone();
        apply(&mut doc, &actions).unwrap();
        assert_eq!(doc, to, "diff {actions:?}");
    }
    assert!(diff(&json!({"same": 1}), &json!({"same": 1}), "").is_empty());
}
