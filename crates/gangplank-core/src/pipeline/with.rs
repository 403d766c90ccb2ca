//! Reading a step's `with` (expressions already rendered): the one rule every action applies to
//! a text input, and to the values of a map of names to text (env, headers). A wrong type is the
//! step's failure, with a message that names the input.

use serde_json::{Map, Value};

/// A text input: `None` when absent, null or empty (an expression that rendered to nothing
/// counts as not given), an error naming the input when it is not a string.
pub fn text<'a>(with: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match with.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("with.{key}: must be text, not {}", kind_of(other))),
    }
}

/// A value written as text where text is sent (an env value, a header): strings as they are,
/// numbers and booleans as written; `None` for null, a list or a map.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a JSON value is, in a message's words.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests;
