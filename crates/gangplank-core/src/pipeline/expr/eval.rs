//! Evaluating a parsed expression against a run's context. Missing inputs, steps and outputs
//! read as null (as in GitHub Actions), so optional inputs can be tested with `||`.

use serde_json::Value;

use crate::pipeline::expr::syntax::{Access, BinOp, Expr, Func, Root};
use crate::pipeline::expr::{Context, ExprError};

/// The value of `expr` in `ctx`.
pub(super) fn evaluate(expr: &Expr, ctx: &Context) -> Result<Value, ExprError> {
    match expr {
        Expr::Literal(value) => Ok(value.clone()),
        Expr::Path(root, accesses) => path(*root, accesses, ctx),
        Expr::Not(inner) => Ok(Value::Bool(!truthy(&evaluate(inner, ctx)?))),
        Expr::Binary(BinOp::Or, left, right) => {
            let left = evaluate(left, ctx)?;
            if truthy(&left) {
                Ok(left)
            } else {
                evaluate(right, ctx)
            }
        }
        Expr::Binary(BinOp::And, left, right) => {
            let left = evaluate(left, ctx)?;
            if truthy(&left) {
                evaluate(right, ctx)
            } else {
                Ok(left)
            }
        }
        Expr::Binary(op, left, right) => {
            compare(*op, &evaluate(left, ctx)?, &evaluate(right, ctx)?).map(Value::Bool)
        }
        Expr::Call(func, args) => {
            let args = args
                .iter()
                .map(|arg| evaluate(arg, ctx))
                .collect::<Result<Vec<_>, _>>()?;
            call(*func, &args)
        }
    }
}

/// false, null, 0 and "" are false; everything else (including `[]` and `{}`) is true.
pub(super) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn path(root: Root, accesses: &[Access], ctx: &Context) -> Result<Value, ExprError> {
    let mut current = match root {
        Root::Inputs => ctx.inputs.clone(),
        Root::Steps => steps_value(ctx),
    };
    for access in accesses {
        current = match access {
            Access::Field(field) => current.get(field).cloned().unwrap_or(Value::Null),
            Access::Index(index) => match (&current, evaluate(index, ctx)?) {
                (Value::Array(items), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|i| items.get(usize::try_from(i).ok()?))
                    .cloned()
                    .unwrap_or(Value::Null),
                (Value::Object(map), Value::String(key)) => {
                    map.get(&key).cloned().unwrap_or(Value::Null)
                }
                _ => Value::Null,
            },
        };
    }
    Ok(current)
}

fn steps_value(ctx: &Context) -> Value {
    Value::Object(
        ctx.steps
            .iter()
            .map(|(id, facts)| {
                let step = serde_json::json!({
                    "status": facts.status.as_str(),
                    "outputs": Value::Object(facts.outputs.clone()),
                });
                (id.clone(), step)
            })
            .collect(),
    )
}

fn compare(op: BinOp, left: &Value, right: &Value) -> Result<bool, ExprError> {
    if let (Value::Number(a), Value::Number(b)) = (left, right) {
        let (a, b) = (
            a.as_f64().unwrap_or(f64::NAN),
            b.as_f64().unwrap_or(f64::NAN),
        );
        return Ok(match op {
            BinOp::Eq => a == b,
            BinOp::Ne => a != b,
            BinOp::Lt => a < b,
            BinOp::Le => a <= b,
            BinOp::Gt => a > b,
            BinOp::Ge => a >= b,
            BinOp::Or | BinOp::And => unreachable!("handled by evaluate"),
        });
    }
    match op {
        BinOp::Eq => Ok(left == right),
        BinOp::Ne => Ok(left != right),
        _ => match (left, right) {
            (Value::String(a), Value::String(b)) => Ok(match op {
                BinOp::Lt => a < b,
                BinOp::Le => a <= b,
                BinOp::Gt => a > b,
                _ => a >= b,
            }),
            _ => Err(ExprError::new(format!(
                "cannot order {} and {}",
                kind(left),
                kind(right)
            ))),
        },
    }
}

fn call(func: Func, args: &[Value]) -> Result<Value, ExprError> {
    match (func, args) {
        (Func::ToJson, [value]) => Ok(Value::String(value.to_string())),
        (Func::Contains, [Value::Array(items), needle]) => Ok(Value::Bool(items.contains(needle))),
        (Func::Contains, [Value::String(hay), needle]) => {
            Ok(Value::Bool(hay.contains(text(needle).as_str())))
        }
        (Func::StartsWith, [Value::String(hay), needle]) => {
            Ok(Value::Bool(hay.starts_with(text(needle).as_str())))
        }
        (Func::EndsWith, [Value::String(hay), needle]) => {
            Ok(Value::Bool(hay.ends_with(text(needle).as_str())))
        }
        // A missing value contains and starts with nothing.
        (Func::Contains | Func::StartsWith | Func::EndsWith, [Value::Null, _]) => {
            Ok(Value::Bool(false))
        }
        (_, [first, ..]) => Err(ExprError::new(format!(
            "{} of {} is not defined",
            name(func),
            kind(first)
        ))),
        (_, []) => Err(ExprError::new(format!("{} needs arguments", name(func)))),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn name(func: Func) -> &'static str {
    match func {
        Func::ToJson => "tojson",
        Func::Contains => "contains",
        Func::StartsWith => "startswith",
        Func::EndsWith => "endswith",
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
