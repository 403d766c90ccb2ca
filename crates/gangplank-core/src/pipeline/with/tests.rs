//! The text rule every action's `with` is read by.

use serde_json::{Value, json};

use super::*;

#[test]
fn text_inputs() {
    let with = json!({
        "s": "prod", "empty": "", "null": null, "n": 3, "b": true, "l": ["a"], "m": {"a": 1}
    });
    let with = with.as_object().unwrap();
    for (key, expect) in [
        ("s", Ok(Some("prod"))),
        ("empty", Ok(None)),
        ("null", Ok(None)),
        ("absent", Ok(None)),
        ("n", Err("with.n: must be text, not a number")),
        ("b", Err("with.b: must be text, not a boolean")),
        ("l", Err("with.l: must be text, not a list")),
        ("m", Err("with.m: must be text, not a map")),
    ] {
        assert_eq!(text(with, key), expect.map_err(str::to_owned), "{key}");
    }
}

#[test]
fn scalars_as_text() {
    for (value, expect) in [
        (json!("a b"), Some("a b")),
        (json!(""), Some("")),
        (json!(2), Some("2")),
        (json!(1.5), Some("1.5")),
        (json!(false), Some("false")),
        (Value::Null, None),
        (json!(["a"]), None),
        (json!({"a": 1}), None),
    ] {
        assert_eq!(scalar_text(&value).as_deref(), expect, "{value}");
    }
}
