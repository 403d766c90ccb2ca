//! Deltas: changes to a set, their PATCH combination rules, applying them, and the delta
//! between two sets (reference §5.6).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::json_patch::{self, PatchError, UpdateAction};
use crate::set::Set;

/// `modules` of a delta: whole modules to add, module IDs to remove, patches per module.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModuleDeltas {
    /// A `null` value is only meaningful in a PATCH: it takes the ID out of `remove`.
    #[serde(default)]
    pub add: BTreeMap<String, Value>,
    #[serde(default)]
    pub remove: Vec<String>,
    /// The reference's example spells this `updates`; both are accepted.
    #[serde(default, alias = "updates")]
    pub update: BTreeMap<String, Vec<UpdateAction>>,
}

/// The content of a delta (its metadata lives beside it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeltaContent {
    #[serde(default)]
    pub modules: ModuleDeltas,
    #[serde(default)]
    pub shared: Vec<UpdateAction>,
}

/// Why a delta does not apply to a set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("modules.update.{module}: the set has no module {module}")]
    UnknownModule { module: String },
    #[error("modules.add.{module}: a module must be a JSON object")]
    NotAnObject { module: String },
    #[error("modules.update.{module}: {error}")]
    Patch { module: String, error: PatchError },
    #[error("shared: {0}")]
    Shared(PatchError),
}

impl DeltaContent {
    /// Whether the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.modules.add.is_empty()
            && self.modules.remove.is_empty()
            && self.modules.update.values().all(Vec::is_empty)
            && self.shared.is_empty()
    }

    /// Applies one PATCH element per the reference's rules: `add` entries replace earlier ones
    /// (a `null` one takes the ID out of `remove`), `remove` lists are unioned and drop their
    /// IDs from `add`, `update` lists are concatenated; then the result is simplified.
    pub fn combine(&mut self, patch: &DeltaContent) {
        for (id, module) in &patch.modules.add {
            if module.is_null() {
                self.modules.remove.retain(|r| r != id);
            } else {
                self.modules.add.insert(id.clone(), module.clone());
            }
        }
        for id in &patch.modules.remove {
            if !self.modules.remove.contains(id) {
                self.modules.remove.push(id.clone());
            }
        }
        for (id, actions) in &patch.modules.update {
            self.modules
                .update
                .entry(id.clone())
                .or_default()
                .extend(actions.iter().cloned());
        }
        self.shared.extend(patch.shared.iter().cloned());
        self.simplify();
    }

    /// Folds updates into matching `add` entries, drops removed modules from `add`, drops
    /// actions overwritten by a later action on the same path, and drops empty lists.
    pub fn simplify(&mut self) {
        let removed = self.modules.remove.clone();
        self.modules.add.retain(|id, _| !removed.contains(id));
        let mut folded = Vec::new();
        for (id, module) in &mut self.modules.add {
            if let Some(actions) = self.modules.update.get(id) {
                let mut candidate = module.clone();
                if json_patch::apply(&mut candidate, actions).is_ok() {
                    *module = candidate;
                    folded.push(id.clone());
                }
            }
        }
        for id in folded {
            self.modules.update.remove(&id);
        }
        for actions in self.modules.update.values_mut() {
            *actions = minimise(std::mem::take(actions));
        }
        self.modules.update.retain(|_, actions| !actions.is_empty());
        self.shared = minimise(std::mem::take(&mut self.shared));
    }

    /// The set that results from applying this delta to `base`.
    pub fn apply_to(&self, base: &Set) -> Result<Set, ApplyError> {
        let mut set = base.clone();
        for id in &self.modules.remove {
            set.modules.remove(id);
        }
        for (id, module) in &self.modules.add {
            if module.is_null() {
                continue;
            }
            let Value::Object(fields) = module else {
                return Err(ApplyError::NotAnObject { module: id.clone() });
            };
            set.modules
                .insert(id.clone(), complete_module(fields.clone()));
        }
        for (id, actions) in &self.modules.update {
            let module = set
                .modules
                .get_mut(id)
                .ok_or_else(|| ApplyError::UnknownModule { module: id.clone() })?;
            json_patch::apply(module, actions).map_err(|error| ApplyError::Patch {
                module: id.clone(),
                error,
            })?;
        }
        if !self.shared.is_empty() {
            let mut shared = Value::Object(set.shared.clone());
            json_patch::apply(&mut shared, &self.shared).map_err(ApplyError::Shared)?;
            set.shared = match shared {
                Value::Object(map) => map,
                _ => Map::new(),
            };
        }
        Ok(set)
    }

    /// The delta that turns `source` into `target` (`GET …/sets/{target}?diff={source}`).
    pub fn between(source: &Set, target: &Set) -> DeltaContent {
        let mut delta = DeltaContent::default();
        for (id, module) in &target.modules {
            match source.modules.get(id) {
                None => {
                    delta.modules.add.insert(id.clone(), module.clone());
                }
                Some(old) => {
                    let actions = json_patch::diff(old, module, "");
                    if !actions.is_empty() {
                        delta.modules.update.insert(id.clone(), actions);
                    }
                }
            }
        }
        for id in source.modules.keys() {
            if !target.modules.contains_key(id) {
                delta.modules.remove.push(id.clone());
            }
        }
        delta.shared = json_patch::diff(
            &Value::Object(source.shared.clone()),
            &Value::Object(target.shared.clone()),
            "",
        );
        delta
    }
}

/// A module in a set always has `profile`, `spec` and `externals`.
fn complete_module(mut fields: Map<String, Value>) -> Value {
    fields
        .entry("profile")
        .or_insert_with(|| Value::String(String::new()));
    fields
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    fields
        .entry("externals")
        .or_insert_with(|| Value::Object(Map::new()));
    Value::Object(fields)
}

/// Keeps only the last action for each path (a later `add`/`replace`/`remove` of the same path
/// makes the earlier one irrelevant) and drops `{"scope":"delta"}` markers.
fn minimise(actions: Vec<UpdateAction>) -> Vec<UpdateAction> {
    let mut out: Vec<UpdateAction> = Vec::with_capacity(actions.len());
    for action in actions {
        out.retain(|earlier| earlier.path != action.path);
        if !action.is_delta_scoped() {
            out.push(action);
        }
    }
    out
}

#[cfg(test)]
mod tests;
