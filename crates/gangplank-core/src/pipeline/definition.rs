//! A pipeline's definition: the typed form of its YAML (Humanitec's format, plus Gangplank's
//! extensions), what `parse` produces once the text is valid. Strings that may hold `${{ … }}`
//! expressions stay text here; they are checked when parsed and evaluated when a step runs.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::limits::{self, MAX_PIPELINE_DEFINITION_BYTES};
use crate::pipeline::action::Action;

/// A pipeline's definition, valid by construction (see `parse`).
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// `id`: optional in the YAML (the server then picks one).
    pub id: Option<String>,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    pub on: Triggers,
    /// `timeout-minutes` (default 60): the run is cancelled after it.
    pub timeout_minutes: u32,
    /// `concurrency.group`: runs of one group (after expansion) run one at a time, in order.
    pub concurrency_group: Option<String>,
    /// In the order the YAML lists them.
    pub jobs: Vec<JobDef>,
}

/// `on`: which triggers may start a run (at least one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Triggers {
    pub pipeline_call: Option<PipelineCallTrigger>,
    /// `deployment_request: {}`: routed by pipeline criteria.
    pub deployment_request: bool,
    pub artefact: Option<ArtefactTrigger>,
}

/// `on.pipeline_call`: started through the API or CLI with inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineCallTrigger {
    pub inputs: BTreeMap<String, InputSpec>,
}

/// One declared input of a `pipeline_call` trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub kind: InputType,
    pub required: bool,
    pub description: String,
    pub default: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    String,
    Number,
    Boolean,
    Object,
    Array,
}

/// `on.artefact`: a registered artefact version whose name matches one `include` pattern and
/// no `exclude` pattern (regular expressions, anchored by the author), and, as Gangplank's
/// extension, whose version is in `tags` when that list is given.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtefactTrigger {
    pub kind: ArtefactKind,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtefactKind {
    Container,
    Workload,
}

/// `jobs.<id>`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDef {
    pub id: String,
    /// `name`, or the id when absent.
    pub name: String,
    /// `needs`: jobs that must succeed first (no cycles, all known).
    pub needs: Vec<String>,
    /// `timeout-minutes`, when the job sets one.
    pub timeout_minutes: Option<u32>,
    /// `if`: a condition expression (the text inside or without `${{ }}`).
    pub condition: Option<String>,
    pub steps: Vec<StepDef>,
}

/// `jobs.<id>.steps[n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDef {
    /// `id`: how later steps refer to its outputs (`steps.<id>.outputs.<name>`).
    pub id: Option<String>,
    /// `name`, or a generated default (the action's short name).
    pub name: String,
    pub uses: Action,
    /// `with`: the action's inputs; strings may hold `${{ … }}`.
    pub with: serde_json::Map<String, Value>,
    /// `if`: a condition expression.
    pub condition: Option<String>,
    /// `continue-on-error`: a failure of this step does not fail its job.
    pub continue_on_error: bool,
    /// `timeout-minutes`, when the step sets one.
    pub timeout_minutes: Option<u32>,
}

/// Why a definition was refused, and on which line of the YAML (1-based) when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .line { Some(line) => format!("line {line}: {}", .message), None => .message.clone() })]
pub struct DefinitionError {
    pub line: Option<usize>,
    pub message: String,
}

/// Parses and validates a pipeline's YAML: every key known, every type right, every `uses` a
/// known action with the `with` inputs it requires, every expression valid, every `needs` a
/// known job and no cycle. Bounded: at most [`MAX_PIPELINE_DEFINITION_BYTES`], the nesting of
/// `limits::check_document_depth`, and a node budget against alias expansion.
pub fn parse(yaml: &str) -> Result<Definition, DefinitionError> {
    if yaml.len() > MAX_PIPELINE_DEFINITION_BYTES {
        return Err(DefinitionError {
            line: None,
            message: format!("the definition is larger than {MAX_PIPELINE_DEFINITION_BYTES} bytes"),
        });
    }
    limits::check_document_depth("definition", yaml.as_bytes()).map_err(|error| {
        DefinitionError {
            line: None,
            message: error.message,
        }
    })?;
    let value = yaml::read(yaml).map_err(|error| DefinitionError {
        line: error.line,
        message: format!("invalid YAML: {}", error.message),
    })?;
    let mut definition = read::definition(&value).map_err(|fault| DefinitionError {
        line: yaml::line_of(yaml, &fault.path),
        message: fault.message,
    })?;
    let order = yaml::keys_in_order(yaml, &["jobs"]);
    definition
        .jobs
        .sort_by_key(|job| order.iter().position(|id| *id == job.id));
    Ok(definition)
}

/// The `with` inputs `action` requires: each inner list is satisfied by any one of its keys.
pub fn required_with(action: Action) -> &'static [&'static [&'static str]] {
    read::required_with(action)
}

mod read;
#[cfg(test)]
mod tests;
mod yaml;
