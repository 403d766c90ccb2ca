//! The subset of JSON Patch (RFC 6902) that deltas use: `add`, `remove` and `replace` on
//! JSON Pointer paths (RFC 6901), plus a structural diff that produces such patches.
//!
//! One deliberate difference from the RFC: `add` creates missing intermediate objects, because
//! delta paths such as `/spec/containers/web/variables/KEY` routinely name objects the set does
//! not have yet (Humanitec behaves the same way).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One patch operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
}

/// A JSON-Patch-like update action, as deltas carry them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateAction {
    pub op: PatchOp,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl UpdateAction {
    /// A `replace` of `path` with `value`.
    pub fn replace(path: impl Into<String>, value: Value) -> Self {
        UpdateAction {
            op: PatchOp::Replace,
            path: path.into(),
            value: Some(value),
            from: None,
        }
    }

    fn add(path: String, value: Value) -> Self {
        UpdateAction {
            op: PatchOp::Add,
            path,
            value: Some(value),
            from: None,
        }
    }

    fn remove(path: String) -> Self {
        UpdateAction {
            op: PatchOp::Remove,
            path,
            value: None,
            from: None,
        }
    }

    /// Humanitec's simplification marker (`remove` with value `{"scope":"delta"}`): it means
    /// "drop this path from the delta", never "remove it from the set".
    pub fn is_delta_scoped(&self) -> bool {
        self.op == PatchOp::Remove
            && self
                .value
                .as_ref()
                .and_then(|v| v.get("scope"))
                .is_some_and(|scope| scope == "delta")
    }
}

/// Why a patch could not be applied; the message names the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PatchError {
    pub path: String,
    pub message: String,
}

fn patch_error(path: &str, message: impl Into<String>) -> PatchError {
    PatchError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Splits a JSON Pointer into unescaped tokens. The empty pointer is the whole document.
pub fn pointer_tokens(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(patch_error(path, "a path must start with /"));
    };
    Ok(rest
        .split('/')
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// Escapes one pointer token.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Applies `actions` to `doc` in order. On error `doc` may be partly changed; callers apply to
/// a copy.
pub fn apply(doc: &mut Value, actions: &[UpdateAction]) -> Result<(), PatchError> {
    for action in actions {
        if action.is_delta_scoped() {
            continue;
        }
        let tokens = pointer_tokens(&action.path)?;
        let Some((last, parents)) = tokens.split_last() else {
            match action.op {
                PatchOp::Remove => *doc = Value::Null,
                PatchOp::Add | PatchOp::Replace => {
                    *doc = action.value.clone().unwrap_or(Value::Null);
                }
            }
            continue;
        };
        let create = action.op == PatchOp::Add;
        let parent = walk(doc, parents, create)
            .ok_or_else(|| patch_error(&action.path, "the parent of this path does not exist"))?;
        match (action.op, parent) {
            (PatchOp::Add, Value::Object(map)) => {
                map.insert(last.clone(), action.value.clone().unwrap_or(Value::Null));
            }
            (PatchOp::Replace, Value::Object(map)) => match map.get_mut(last) {
                Some(slot) => *slot = action.value.clone().unwrap_or(Value::Null),
                None => return Err(patch_error(&action.path, "nothing to replace here")),
            },
            (PatchOp::Remove, Value::Object(map)) => {
                if map.remove(last).is_none() {
                    return Err(patch_error(&action.path, "nothing to remove here"));
                }
            }
            (op, Value::Array(items)) => {
                let value = action.value.clone().unwrap_or(Value::Null);
                let index = if last == "-" && op == PatchOp::Add {
                    items.len()
                } else {
                    last.parse::<usize>()
                        .map_err(|_| patch_error(&action.path, "not an array index"))?
                };
                let in_range = match op {
                    PatchOp::Add => index <= items.len(),
                    PatchOp::Remove | PatchOp::Replace => index < items.len(),
                };
                if !in_range {
                    return Err(patch_error(&action.path, "array index out of range"));
                }
                match op {
                    PatchOp::Add => items.insert(index, value),
                    PatchOp::Remove => {
                        items.remove(index);
                    }
                    PatchOp::Replace => items[index] = value,
                }
            }
            _ => {
                return Err(patch_error(
                    &action.path,
                    "the parent is not an object or array",
                ));
            }
        }
    }
    Ok(())
}

/// Follows `tokens` from `doc`; with `create`, missing or null members become empty objects.
fn walk<'v>(doc: &'v mut Value, tokens: &[String], create: bool) -> Option<&'v mut Value> {
    let mut current = doc;
    for token in tokens {
        if create && current.is_null() {
            *current = Value::Object(Map::new());
        }
        current = match current {
            Value::Object(map) => {
                if create && !map.contains_key(token) {
                    map.insert(token.clone(), Value::Object(Map::new()));
                }
                map.get_mut(token)?
            }
            Value::Array(items) => items.get_mut(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The actions that turn `from` into `to`, rooted at `prefix` (a pointer, `""` for the root).
/// Objects are compared member by member; anything else that differs is replaced whole.
pub fn diff(from: &Value, to: &Value, prefix: &str) -> Vec<UpdateAction> {
    let mut out = Vec::new();
    diff_into(from, to, prefix, &mut out);
    out
}

fn diff_into(from: &Value, to: &Value, prefix: &str, out: &mut Vec<UpdateAction>) {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, old) in a {
                let path = format!("{prefix}/{}", escape_token(key));
                match b.get(key) {
                    Some(new) => diff_into(old, new, &path, out),
                    None => out.push(UpdateAction::remove(path)),
                }
            }
            for (key, new) in b {
                if !a.contains_key(key) {
                    out.push(UpdateAction::add(
                        format!("{prefix}/{}", escape_token(key)),
                        new.clone(),
                    ));
                }
            }
        }
        _ if from == to => {}
        _ => out.push(UpdateAction::replace(prefix, to.clone())),
    }
}

#[cfg(test)]
mod tests;
