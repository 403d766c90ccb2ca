//! Expressions in a pipeline's YAML: `${{ … }}` inside strings of `with` and `concurrency.group`,
//! and `if` conditions. A small GitHub-Actions-like language: literals, `inputs.<name>`,
//! `steps.<id>.outputs.<name>`, `steps.<id>.status`, `!`, `==`, `!=`, `<`, `<=`, `>`, `>=`,
//! `&&`, `||`, parentheses and the functions `tojson`, `contains`, `startswith`, `endswith`.

mod eval;
mod syntax;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::pipeline::status::StepStatus;

/// What an expression can see while a run executes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Context {
    /// The run's frozen inputs (an object).
    pub inputs: Value,
    /// The steps that have a status so far, by their `id`.
    pub steps: BTreeMap<String, StepFacts>,
}

/// What an expression can see of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFacts {
    pub status: StepStatus,
    pub outputs: serde_json::Map<String, Value>,
}

/// An expression that does not parse or cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
}

impl ExprError {
    fn new(message: impl Into<String>) -> ExprError {
        ExprError {
            message: message.into(),
        }
    }
}

/// Checks every `${{ … }}` in `text` (a string without one is plain text, and fine).
pub fn check(text: &str) -> Result<(), ExprError> {
    for piece in syntax::split_template(text)? {
        if let syntax::Piece::Expr(source) = piece {
            syntax::parse(source)?;
        }
    }
    Ok(())
}

/// Checks an `if`: one expression, bare or wrapped in `${{ }}`.
pub fn check_condition(text: &str) -> Result<(), ExprError> {
    syntax::parse(syntax::condition_source(text)?).map(|_| ())
}

/// The step ids that `text` (a template, or a condition when `condition` is true) refers to
/// through `steps.<id>`: the definition checks that each names a step.
pub fn step_references(text: &str, condition: bool) -> Result<Vec<String>, ExprError> {
    let mut ids = Vec::new();
    if condition {
        syntax::parse(syntax::condition_source(text)?)?.step_ids(&mut ids);
    } else {
        for piece in syntax::split_template(text)? {
            if let syntax::Piece::Expr(source) = piece {
                syntax::parse(source)?.step_ids(&mut ids);
            }
        }
    }
    Ok(ids)
}

/// Evaluates every `${{ … }}` in the strings of `value`, recursively (object keys are left as
/// they are). A string that is exactly one expression becomes that expression's JSON value;
/// otherwise each expression's value is written into the text (null as nothing, strings as
/// they are, anything else as compact JSON).
pub fn render(value: &Value, ctx: &Context) -> Result<Value, ExprError> {
    Ok(match value {
        Value::String(text) => render_string(text, ctx)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render(item, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| Ok((key.clone(), render(item, ctx)?)))
                .collect::<Result<_, ExprError>>()?,
        ),
        other => other.clone(),
    })
}

/// Evaluates an `if` (bare or in `${{ }}`): false, null, 0 and "" are false, anything else true.
pub fn condition(text: &str, ctx: &Context) -> Result<bool, ExprError> {
    let expr = syntax::parse(syntax::condition_source(text)?)?;
    Ok(eval::truthy(&eval::evaluate(&expr, ctx)?))
}

fn render_string(text: &str, ctx: &Context) -> Result<Value, ExprError> {
    let pieces = syntax::split_template(text)?;
    if let [syntax::Piece::Expr(source)] = pieces.as_slice() {
        return eval::evaluate(&syntax::parse(source)?, ctx);
    }
    let mut out = String::with_capacity(text.len());
    for piece in pieces {
        match piece {
            syntax::Piece::Text(part) => out.push_str(part),
            syntax::Piece::Expr(source) => match eval::evaluate(&syntax::parse(source)?, ctx)? {
                Value::Null => {}
                Value::String(part) => out.push_str(&part),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests;
