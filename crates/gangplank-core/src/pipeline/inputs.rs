//! Checking the inputs a `pipeline_call` run is started with against the trigger's declared
//! inputs: every key declared, every type right, every required input present, defaults filled.

use serde_json::{Map, Value};

use crate::pipeline::definition::{InputType, PipelineCallTrigger};

/// The run's inputs: `inputs` (an object, or null for none) checked against `trigger`, with the
/// declared defaults filled in. The error names the input and what is wrong with it.
pub fn validate_inputs(trigger: &PipelineCallTrigger, inputs: &Value) -> Result<Value, String> {
    let given = match inputs {
        Value::Null => Map::new(),
        Value::Object(map) => map.clone(),
        _ => return Err("inputs must be an object".to_owned()),
    };
    if let Some(unknown) = given.keys().find(|k| !trigger.inputs.contains_key(*k)) {
        return Err(format!("input `{unknown}` is not declared by the pipeline"));
    }
    let mut out = Map::new();
    for (name, spec) in &trigger.inputs {
        match given
            .get(name)
            .filter(|v| !v.is_null())
            .or(spec.default.as_ref())
        {
            Some(value) if has_type(value, spec.kind) => {
                out.insert(name.clone(), value.clone());
            }
            Some(_) => {
                return Err(format!("input `{name}` must be {}", article(spec.kind)));
            }
            None if spec.required => return Err(format!("input `{name}` is required")),
            None => {}
        }
    }
    Ok(Value::Object(out))
}

/// True when `value` is of the declared input type.
pub fn has_type(value: &Value, kind: InputType) -> bool {
    match kind {
        InputType::String => value.is_string(),
        InputType::Number => value.is_number(),
        InputType::Boolean => value.is_boolean(),
        InputType::Object => value.is_object(),
        InputType::Array => value.is_array(),
    }
}

fn article(kind: InputType) -> &'static str {
    match kind {
        InputType::String => "a string",
        InputType::Number => "a number",
        InputType::Boolean => "a boolean",
        InputType::Object => "an object",
        InputType::Array => "an array",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use crate::pipeline::definition::{InputSpec, InputType, PipelineCallTrigger};
    use crate::pipeline::inputs::validate_inputs;

    fn trigger() -> PipelineCallTrigger {
        let spec = |kind, required, default| InputSpec {
            kind,
            required,
            description: String::new(),
            default,
        };
        let mut inputs = BTreeMap::new();
        inputs.insert("env_id".to_owned(), spec(InputType::String, true, None));
        inputs.insert(
            "replicas".to_owned(),
            spec(InputType::Number, false, Some(json!(1))),
        );
        inputs.insert("dry".to_owned(), spec(InputType::Boolean, false, None));
        inputs.insert("extra".to_owned(), spec(InputType::Object, false, None));
        inputs.insert("list".to_owned(), spec(InputType::Array, false, None));
        PipelineCallTrigger { inputs }
    }

    #[test]
    fn inputs_are_typed_required_and_defaulted() {
        let cases = [
            (
                json!({"env_id": "dev"}),
                Ok(json!({"env_id": "dev", "replicas": 1})),
            ),
            (
                json!({"env_id": "dev", "replicas": 3, "dry": true}),
                Ok(json!({"env_id": "dev", "replicas": 3, "dry": true})),
            ),
            (
                json!({"env_id": "dev", "extra": {"a": 1}, "list": [1]}),
                Ok(json!({"env_id": "dev", "replicas": 1, "extra": {"a": 1}, "list": [1]})),
            ),
            (
                json!({"env_id": "dev", "replicas": null}),
                Ok(json!({"env_id": "dev", "replicas": 1})),
            ),
            (json!({}), Err("input `env_id` is required")),
            (json!(null), Err("input `env_id` is required")),
            (json!({"env_id": 1}), Err("input `env_id` must be a string")),
            (
                json!({"env_id": "x", "replicas": "3"}),
                Err("input `replicas` must be a number"),
            ),
            (
                json!({"env_id": "x", "dry": "yes"}),
                Err("input `dry` must be a boolean"),
            ),
            (
                json!({"env_id": "x", "extra": []}),
                Err("input `extra` must be an object"),
            ),
            (
                json!({"env_id": "x", "list": {}}),
                Err("input `list` must be an array"),
            ),
            (
                json!({"env_id": "x", "other": 1}),
                Err("input `other` is not declared by the pipeline"),
            ),
            (json!([1]), Err("inputs must be an object")),
        ];
        for (given, expected) in cases {
            assert_eq!(
                validate_inputs(&trigger(), &given),
                expected.map_err(str::to_owned),
                "{given}"
            );
        }
    }
}
