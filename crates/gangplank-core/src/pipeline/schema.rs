//! The JSON Schema of the pipeline YAML format, served by `GET /orgs/{org}/pipeline-schemas/latest`.
//! It describes the shape (keys, types, the known actions); `definition::parse` is the full
//! check (expressions, `needs`, required `with` inputs), so a document that passes the schema
//! can still be refused, with the line named.

use serde_json::{Value, json};

use crate::limits::{MAX_JOB_STEPS, MAX_NAME_LEN, MAX_PIPELINE_JOBS, MAX_PIPELINE_TIMEOUT_MINUTES};
use crate::pipeline::action::Action;

/// The schema's `$id`.
pub const SCHEMA_ID: &str = "https://gangplank.dev/schemas/pipeline-v1.json";

/// The JSON Schema (draft 2020-12) of a pipeline definition.
pub fn json_schema() -> Value {
    let timeout = json!({"type": "integer", "minimum": 1, "maximum": MAX_PIPELINE_TIMEOUT_MINUTES});
    let identifier = "^[A-Za-z_][A-Za-z0-9_-]*$";
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Gangplank pipeline (Humanitec Pipelines v1 format)",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "on", "jobs"],
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9](?:-?[a-z0-9]+)+$", "maxLength": 50},
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "timeout-minutes": timeout,
            "concurrency": {
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["group"],
                        "properties": {"group": {"type": "string", "maxLength": MAX_NAME_LEN}}
                    }
                ]
            },
            "permissions": {
                "description": "Accepted only empty: no roles are delegated to a run, which acts with the roles of whoever started it",
                "type": ["object", "null"],
                "maxProperties": 0
            },
            "on": {
                "type": "object",
                "additionalProperties": false,
                "minProperties": 1,
                "properties": {
                    "pipeline_call": {
                        "type": ["object", "null"],
                        "additionalProperties": false,
                        "properties": {
                            "inputs": {
                                "type": ["object", "null"],
                                "propertyNames": {"pattern": identifier},
                                "additionalProperties": {"$ref": "#/$defs/input"}
                            }
                        }
                    },
                    "deployment_request": {"type": ["object", "null"], "additionalProperties": false},
                    "artefact": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["type", "include"],
                        "properties": {
                            "type": {"enum": ["container", "workload"]},
                            "include": {"$ref": "#/$defs/strings"},
                            "exclude": {"$ref": "#/$defs/strings"},
                            "tags": {"$ref": "#/$defs/strings"}
                        }
                    }
                }
            },
            "jobs": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": MAX_PIPELINE_JOBS,
                "propertyNames": {"pattern": identifier},
                "additionalProperties": {"$ref": "#/$defs/job"}
            }
        },
        "$defs": {
            "strings": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "input": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "type": {"enum": ["string", "number", "boolean", "object", "array"]},
                    "required": {"type": "boolean"},
                    "description": {"type": "string"},
                    "default": {}
                }
            },
            "job": {
                "type": "object",
                "additionalProperties": false,
                "required": ["steps"],
                "properties": {
                    "name": {"type": "string"},
                    "needs": {"$ref": "#/$defs/strings"},
                    "timeout-minutes": timeout,
                    "if": {"type": ["string", "boolean"]},
                    "steps": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_JOB_STEPS,
                        "items": {"$ref": "#/$defs/step"}
                    }
                }
            },
            "step": {
                "type": "object",
                "additionalProperties": false,
                "required": ["uses"],
                "properties": {
                    "id": {"type": "string", "pattern": identifier},
                    "name": {"type": "string"},
                    "uses": {"type": "string", "pattern": uses_pattern()},
                    "with": {"type": ["object", "null"]},
                    "if": {"type": ["string", "boolean"]},
                    "continue-on-error": {"type": "boolean"},
                    "timeout-minutes": timeout
                }
            }
        }
    })
}

/// Every accepted spelling of `uses`, as one anchored pattern.
fn uses_pattern() -> String {
    let mut paths: Vec<String> = Action::ALL
        .iter()
        .map(|action| regex::escape(action.uses()))
        .collect();
    paths.push(regex::escape("actions/humanitec/http"));
    format!("^(?:native://)?(?:{})(?:@v1)?$", paths.join("|"))
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use crate::pipeline::action::Action;
    use crate::pipeline::schema::json_schema;

    #[test]
    fn the_uses_pattern_accepts_exactly_the_known_actions() {
        let schema = json_schema();
        let pattern = schema["$defs"]["step"]["properties"]["uses"]["pattern"]
            .as_str()
            .unwrap();
        let pattern = Regex::new(pattern).unwrap();
        for action in Action::ALL {
            for uses in [
                action.uses().to_owned(),
                format!("{}@v1", action.uses()),
                format!("native://{}@v1", action.uses()),
            ] {
                assert!(pattern.is_match(&uses), "{uses}");
                assert_eq!(Action::from_uses(&uses), Some(action));
            }
        }
        for uses in [
            "actions/humanitec/nope",
            "actions/humanitec/log@v2",
            "xactions/humanitec/log",
        ] {
            assert!(!pattern.is_match(uses), "{uses}");
            assert_eq!(Action::from_uses(uses), None);
        }
    }

    #[test]
    fn the_root_keys_are_the_ones_parse_accepts() {
        let schema = json_schema();
        let mut keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "concurrency",
                "id",
                "jobs",
                "metadata",
                "name",
                "on",
                "permissions",
                "timeout-minutes"
            ]
        );
        assert_eq!(
            schema["required"],
            serde_json::json!(["name", "on", "jobs"])
        );
    }
}
