//! Table tests for the expression language: parsing, rendering, conditions, and refusals.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::pipeline::expr::{
    Context, StepFacts, check, check_condition, condition, render, step_references,
};
use crate::pipeline::status::StepStatus;

fn ctx() -> Context {
    let mut steps = BTreeMap::new();
    steps.insert(
        "promote".to_owned(),
        StepFacts {
            status: StepStatus::Succeeded,
            outputs: json!({"digest": "sha256:abc", "count": 3})
                .as_object()
                .unwrap()
                .clone(),
        },
    );
    steps.insert(
        "smoke".to_owned(),
        StepFacts {
            status: StepStatus::Failed,
            outputs: serde_json::Map::new(),
        },
    );
    Context {
        inputs: json!({"env_id": "test", "replicas": 2, "flag": true, "tags": ["a", "b"]}),
        steps,
    }
}

#[test]
fn templates_render_values_and_text() {
    let cases: Vec<(Value, Value)> = vec![
        (json!("${{ inputs.env_id }}"), json!("test")),
        (json!("${{inputs.replicas}}"), json!(2)),
        (json!(" ${{ inputs.replicas }} "), json!(" 2 ")),
        (
            json!("deploy-${{ inputs.env_id }}-${{ inputs.flag }}"),
            json!("deploy-test-true"),
        ),
        (json!("${{ inputs.missing }}"), Value::Null),
        (json!("x${{ inputs.missing }}y"), json!("xy")),
        (
            json!("${{ steps.promote.outputs.digest }}"),
            json!("sha256:abc"),
        ),
        (json!("${{ steps['promote'].outputs['count'] }}"), json!(3)),
        (json!("${{ steps.smoke.status }}"), json!("failed")),
        (json!("${{ tojson(inputs.tags) }}"), json!("[\"a\",\"b\"]")),
        (json!("${{ inputs.tags[1] }}"), json!("b")),
        (
            json!("${{ inputs.missing || 'fallback' }}"),
            json!("fallback"),
        ),
        (json!("${{ 'it''s' }}"), json!("it's")),
        (json!("no expressions"), json!("no expressions")),
        (
            json!({"a": ["${{ inputs.env_id }}", 1, null]}),
            json!({"a": ["test", 1, null]}),
        ),
    ];
    for (template, expected) in cases {
        assert_eq!(render(&template, &ctx()).unwrap(), expected, "{template}");
    }
}

#[test]
fn conditions_follow_truthiness_and_comparisons() {
    let cases = [
        ("steps.smoke.status == 'failed'", true),
        ("${{ steps.smoke.status == 'failed' }}", true),
        ("${{ steps.promote.status != 'succeeded' }}", false),
        ("!inputs.flag", false),
        ("inputs.replicas >= 2 && inputs.replicas < 3", true),
        ("inputs.replicas == 2.0", true),
        ("'b' > 'a'", true),
        ("inputs.missing", false),
        ("contains(inputs.tags, 'a') || false", true),
        (
            "startsWith(inputs.env_id, 'te') && endswith(inputs.env_id, 'st')",
            true,
        ),
        ("contains(inputs.missing, 'x')", false),
        ("(false || 0) || ''", false),
        ("steps.nope.status == 'succeeded'", false),
    ];
    for (text, expected) in cases {
        assert_eq!(condition(text, &ctx()).unwrap(), expected, "{text}");
    }
}

#[test]
fn bad_expressions_are_refused_with_a_reason() {
    let cases = [
        ("${{ inputs.env_id", "unterminated"),
        ("${{ }}", "empty expression"),
        ("${{ env.HOME }}", "unknown name `env`"),
        ("${{ inputs. }}", "expected a name after `.`"),
        ("${{ nope(1) }}", "unknown function `nope`"),
        ("${{ contains('a') }}", "takes 2 arguments"),
        ("${{ inputs.a == }}", "ends too early"),
        ("${{ 'open }}", "unterminated"),
        ("${{ steps.x }}", "steps.x is read as"),
        ("${{ steps.x.outcome }}", "steps.x is read as"),
        ("${{ inputs.a @ 1 }}", "unexpected character `@`"),
        ("${{ (inputs.a }}", "expected `)`"),
        ("${{ 1 2 }}", "unexpected `2`"),
    ];
    for (text, needle) in cases {
        let error = check(text).unwrap_err();
        assert!(error.message.contains(needle), "{text}: {error}");
    }
    let deep = format!("${{{{ {}1{} }}}}", "(".repeat(100), ")".repeat(100));
    assert!(check(&deep).unwrap_err().message.contains("nests deeper"));
    let long = format!("${{{{ '{}' }}}}", "a".repeat(2000));
    assert!(check(&long).unwrap_err().message.contains("longer than"));
    assert!(check_condition("${{ a }} && ${{ b }}").is_err());
    assert!(check_condition("inputs.a == 'x'").is_ok());
    assert!(
        check_condition("inputs.a == 'x")
            .unwrap_err()
            .message
            .contains("unterminated string")
    );
}

#[test]
fn evaluation_errors_are_errors_not_panics() {
    assert!(condition("inputs.tags < 1", &ctx()).is_err());
    assert!(render(&json!("${{ startswith(inputs.replicas, 'x') }}"), &ctx()).is_err());
}

#[test]
fn step_references_are_listed() {
    let ids = step_references(
        "a ${{ steps.one.outputs.x }} ${{ steps.two.status }}",
        false,
    )
    .unwrap();
    assert_eq!(ids, ["one", "two"]);
    let ids = step_references("steps.three.status == 'failed'", true).unwrap();
    assert_eq!(ids, ["three"]);
}
