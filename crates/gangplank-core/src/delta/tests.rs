//! Applying deltas, the PATCH combination rules, and diffs between sets.

use serde_json::json;

use super::DeltaContent;
use crate::set::Set;

fn delta(value: serde_json::Value) -> DeltaContent {
    serde_json::from_value(value).unwrap()
}

#[test]
fn apply_adds_updates_and_removes_modules() {
    let base: Set = serde_json::from_value(json!({"modules": {
        "old": {"profile": "", "spec": {}, "externals": {}},
        "web": {"profile": "", "spec": {"containers": {"main": {"image": "nginx:1"}}}, "externals": {}}
    }}))
    .unwrap();
    let change = delta(json!({"modules": {
        "add": {"api": {"spec": {"containers": {"main": {"image": "api:1"}}}}},
        "remove": ["old"],
        "update": {"web": [{"op": "replace", "path": "/spec/containers/main/image", "value": "nginx:2"}]}
    }}));
    let next = change.apply_to(&base).unwrap();
    assert_eq!(next.modules.len(), 2);
    assert_eq!(
        next.modules["api"]["profile"], "",
        "added modules are completed"
    );
    assert_eq!(
        next.modules["web"]["spec"]["containers"]["main"]["image"],
        "nginx:2"
    );
    assert_eq!(
        DeltaContent::between(&base, &next).apply_to(&base).unwrap(),
        next
    );
}

#[test]
fn update_of_a_missing_module_is_an_error_naming_it() {
    let change = delta(
        json!({"modules": {"update": {"ghost": [{"op": "add", "path": "/spec/a", "value": 1}]}}}),
    );
    let err = change.apply_to(&Set::default()).unwrap_err();
    assert!(err.to_string().contains("modules.update.ghost"), "{err}");
}

#[test]
fn patch_combination_follows_the_reference() {
    let mut base = delta(json!({"modules": {
        "add": {"a": {"spec": {"x": 1}}, "b": {"spec": {}}},
        "remove": ["c"],
        "update": {"d": [{"op": "add", "path": "/spec/y", "value": 1}]}
    }}));
    base.combine(&delta(json!({"modules": {
        "add": {"a": {"spec": {"x": 2}}, "c": null},
        "remove": ["b", "e"],
        "updates": {"d": [{"op": "add", "path": "/spec/y", "value": 2}, {"op": "add", "path": "/spec/z", "value": 3}],
                    "a": [{"op": "add", "path": "/spec/w", "value": true}]}
    }})));
    assert_eq!(
        base.modules.add["a"],
        json!({"spec": {"x": 2, "w": true}}),
        "later add wins, update folded in"
    );
    assert!(!base.modules.add.contains_key("b"), "removed IDs leave add");
    assert_eq!(
        base.modules.remove,
        vec!["b", "e"],
        "null add un-removes c; lists are unioned"
    );
    assert_eq!(
        base.modules.update["d"].len(),
        2,
        "same-path actions are minimised"
    );
    assert_eq!(base.modules.update["d"][0].value, Some(json!(2)));
    assert!(!base.modules.update.contains_key("a"));
}

#[test]
fn emptiness() {
    assert!(DeltaContent::default().is_empty());
    assert!(!delta(json!({"modules": {"remove": ["x"]}})).is_empty());
}
