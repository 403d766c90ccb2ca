//! Turning the YAML's value into a [`Definition`]: every key known, every type right, every
//! `uses` a known action with the `with` inputs it requires, every expression valid, every
//! `needs` a known job and no cycle. A fault names the path of the node at fault, so the
//! caller can point at its line.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde_json::{Map, Value};

use crate::id::is_valid_id;
use crate::limits::{
    MAX_JOB_STEPS, MAX_NAME_LEN, MAX_PATTERN_LEN, MAX_PIPELINE_JOBS, MAX_PIPELINE_TIMEOUT_MINUTES,
    MAX_RULE_FILTERS, MAX_TEXT_LEN,
};
use crate::pipeline::action::Action;
use crate::pipeline::definition::yaml::Seg;
use crate::pipeline::definition::{
    ArtefactKind, ArtefactTrigger, Definition, InputSpec, InputType, JobDef, PipelineCallTrigger,
    StepDef, Triggers,
};
use crate::pipeline::expr;

/// What is wrong, and where.
#[derive(Debug)]
pub(super) struct Fault {
    pub path: Vec<Seg>,
    pub message: String,
}

type Read<T> = Result<T, Fault>;

/// The `with` inputs each action requires: each inner list is satisfied by any one of its keys.
pub(super) fn required_with(action: Action) -> &'static [&'static [&'static str]] {
    match action {
        Action::Approve => &[&["env_id", "environment"]],
        Action::Log | Action::Fail => &[&["message"]],
        Action::Deploy | Action::WaitForReadiness => &[&["env_id"]],
        // `source` defaults to the run's pinned image (`inputs.image`@`inputs.digest`).
        Action::PromoteImage => &[&["destination"]],
        Action::RollbackImage => &[&["destination"]],
        Action::Http => &[&["url"]],
        // `command` defaults to the image's own; where it runs must be said.
        Action::Run => &[&["env_id", "agent_url"]],
    }
}

/// The default `timeout-minutes` of a run (Humanitec's).
const DEFAULT_TIMEOUT_MINUTES: u32 = 60;

pub(super) fn definition(root: &Value) -> Read<Definition> {
    let path = Vec::new();
    let map = match root {
        Value::Null => return Err(fault(&path, "the definition is empty")),
        other => object(other, &path, "the definition")?,
    };
    known_keys(
        map,
        &path,
        &[
            "id",
            "name",
            "metadata",
            "on",
            "jobs",
            "timeout-minutes",
            "concurrency",
            "permissions",
        ],
    )?;
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let at = at(&path, key("id"));
            let id = string(value, &at, "id")?;
            if !is_valid_id(id) {
                return Err(fault(
                    &at,
                    "id must match ^[a-z0-9](?:-?[a-z0-9]+)+$ and be at most 50 characters",
                ));
            }
            Some(id.to_owned())
        }
    };
    let name = match map.get("name") {
        None => return Err(fault(&path, "`name` is required")),
        Some(value) => bounded_string(value, &at(&path, key("name")), "name", MAX_NAME_LEN)?,
    };
    if name.trim().is_empty() {
        return Err(fault(&at(&path, key("name")), "name must not be empty"));
    }
    let metadata = match map.get("metadata") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(value) => metadata(value, &at(&path, key("metadata")))?,
    };
    let on = match map.get("on") {
        None => return Err(fault(&path, "`on` is required (at least one trigger)")),
        Some(value) => triggers(value, &at(&path, key("on")))?,
    };
    let timeout_minutes = match map.get("timeout-minutes") {
        None => DEFAULT_TIMEOUT_MINUTES,
        Some(value) => minutes(value, &at(&path, key("timeout-minutes")))?,
    };
    let concurrency_group = match map.get("concurrency") {
        None | Some(Value::Null) => None,
        Some(value) => Some(concurrency(value, &at(&path, key("concurrency")))?),
    };
    if let Some(value) = map.get("permissions") {
        permissions(value, &at(&path, key("permissions")))?;
    }
    let jobs = match map.get("jobs") {
        None => return Err(fault(&path, "`jobs` is required (at least one job)")),
        Some(value) => jobs(value, &at(&path, key("jobs")))?,
    };
    Ok(Definition {
        id,
        name,
        metadata,
        on,
        timeout_minutes,
        concurrency_group,
        jobs,
    })
}

fn triggers(value: &Value, path: &[Seg]) -> Read<Triggers> {
    let map = object(value, path, "on")?;
    known_keys(
        map,
        path,
        &["pipeline_call", "deployment_request", "artefact"],
    )?;
    if map.is_empty() {
        return Err(fault(path, "`on` needs at least one trigger"));
    }
    let pipeline_call = match map.get("pipeline_call") {
        None => None,
        Some(value) => Some(pipeline_call(value, &at(path, key("pipeline_call")))?),
    };
    let deployment_request = match map.get("deployment_request") {
        None => false,
        Some(Value::Null) => true,
        Some(value) => {
            let at = at(path, key("deployment_request"));
            let map = object(value, &at, "deployment_request")?;
            known_keys(map, &at, &[])?;
            true
        }
    };
    let artefact = match map.get("artefact") {
        None => None,
        Some(value) => Some(artefact(value, &at(path, key("artefact")))?),
    };
    Ok(Triggers {
        pipeline_call,
        deployment_request,
        artefact,
    })
}

fn pipeline_call(value: &Value, path: &[Seg]) -> Read<PipelineCallTrigger> {
    if value.is_null() {
        return Ok(PipelineCallTrigger::default());
    }
    let map = object(value, path, "pipeline_call")?;
    known_keys(map, path, &["inputs"])?;
    let mut inputs = BTreeMap::new();
    if let Some(value) = map.get("inputs").filter(|v| !v.is_null()) {
        let path = at(path, key("inputs"));
        for (name, spec) in object(value, &path, "inputs")? {
            if !is_identifier(name) {
                return Err(fault(
                    &at(&path, Seg::KeyName(name.clone())),
                    format!("input name `{name}` must match ^[A-Za-z_][A-Za-z0-9_-]*$"),
                ));
            }
            inputs.insert(name.clone(), input_spec(spec, &at(&path, key(name)), name)?);
        }
    }
    Ok(PipelineCallTrigger { inputs })
}

fn input_spec(value: &Value, path: &[Seg], name: &str) -> Read<InputSpec> {
    let map = object(value, path, &format!("input `{name}`"))?;
    known_keys(map, path, &["type", "required", "description", "default"])?;
    let kind = match map.get("type") {
        None => InputType::String,
        Some(value) => {
            let at = at(path, key("type"));
            match string(value, &at, "type")? {
                "string" => InputType::String,
                "number" => InputType::Number,
                "boolean" => InputType::Boolean,
                "object" => InputType::Object,
                "array" => InputType::Array,
                other => {
                    return Err(fault(
                        &at,
                        format!(
                            "unknown input type `{other}` (string, number, boolean, object or array)"
                        ),
                    ));
                }
            }
        }
    };
    let required = match map.get("required") {
        None => false,
        Some(value) => boolean(value, &at(path, key("required")), "required")?,
    };
    let description = match map.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(value) => bounded_string(
            value,
            &at(path, key("description")),
            "description",
            MAX_TEXT_LEN,
        )?,
    };
    let default = match map.get("default") {
        None => None,
        Some(value) => {
            if !crate::pipeline::inputs::has_type(value, kind) {
                return Err(fault(
                    &at(path, key("default")),
                    format!("the default of input `{name}` is not a {}", type_name(kind)),
                ));
            }
            Some(value.clone())
        }
    };
    Ok(InputSpec {
        kind,
        required,
        description,
        default,
    })
}

fn artefact(value: &Value, path: &[Seg]) -> Read<ArtefactTrigger> {
    let map = object(value, path, "artefact")?;
    known_keys(map, path, &["type", "include", "exclude", "tags"])?;
    let kind = match map.get("type") {
        None => return Err(fault(path, "`type` is required (container or workload)")),
        Some(value) => {
            let at = at(path, key("type"));
            match string(value, &at, "type")? {
                "container" => ArtefactKind::Container,
                "workload" => ArtefactKind::Workload,
                other => {
                    return Err(fault(
                        &at,
                        format!("unknown artefact type `{other}` (container or workload)"),
                    ));
                }
            }
        }
    };
    let include = match map.get("include") {
        None => return Err(fault(path, "`include` is required (at least one pattern)")),
        Some(value) => patterns(value, &at(path, key("include")), "include")?,
    };
    if include.is_empty() {
        return Err(fault(
            &at(path, key("include")),
            "`include` needs at least one pattern",
        ));
    }
    let exclude = match map.get("exclude") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => patterns(value, &at(path, key("exclude")), "exclude")?,
    };
    let tags = match map.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => strings(value, &at(path, key("tags")), "tags", MAX_NAME_LEN)?,
    };
    Ok(ArtefactTrigger {
        kind,
        include,
        exclude,
        tags,
    })
}

/// A regular expression or a list of them, each compiled once to prove it is valid.
fn patterns(value: &Value, path: &[Seg], what: &str) -> Read<Vec<String>> {
    let list = strings(value, path, what, MAX_PATTERN_LEN)?;
    for (i, pattern) in list.iter().enumerate() {
        if let Err(error) = Regex::new(pattern) {
            let at = if value.is_array() {
                at(path, Seg::Index(i))
            } else {
                path.to_vec()
            };
            let reason = error.to_string();
            let reason = reason.lines().last().unwrap_or_default().trim().to_owned();
            return Err(fault(
                &at,
                format!("`{pattern}` is not a valid regular expression: {reason}"),
            ));
        }
    }
    Ok(list)
}

fn concurrency(value: &Value, path: &[Seg]) -> Read<String> {
    let (group, at) = match value {
        Value::String(_) => (value, path.to_vec()),
        other => {
            let map = object(other, path, "concurrency")?;
            known_keys(map, path, &["group"])?;
            match map.get("group") {
                Some(group) => (group, at(path, key("group"))),
                None => return Err(fault(path, "`concurrency` needs a `group`")),
            }
        }
    };
    let group = bounded_string(group, &at, "concurrency group", MAX_NAME_LEN)?;
    expr::check(&group).map_err(|error| fault(&at, format!("bad expression: {error}")))?;
    Ok(group)
}

/// `permissions` (Humanitec's roles delegated to a run: `run-as`, `application`,
/// `env-types`) is refused unless empty: a run acts with the roles of whoever started it and
/// its steps are not held to a role, so accepting a delegation or a limit would promise what
/// no run honours. Empty (`permissions: {}`) or null is accepted for YAML that spells it out.
fn permissions(value: &Value, path: &[Seg]) -> Read<()> {
    if value.is_null() {
        return Ok(());
    }
    let map = object(value, path, "permissions")?;
    match map.keys().next() {
        None => Ok(()),
        Some(first) => Err(fault(
            &at(path, Seg::KeyName(first.clone())),
            format!(
                "`permissions.{first}` is not supported: Gangplank delegates no roles to a run \
                 (no `run-as`, `application` or `env-types`); a run acts with the roles of \
                 whoever started it. Remove `permissions`, or leave it empty"
            ),
        )),
    }
}

fn jobs(value: &Value, path: &[Seg]) -> Read<Vec<JobDef>> {
    let map = object(value, path, "jobs")?;
    if map.is_empty() {
        return Err(fault(path, "`jobs` needs at least one job"));
    }
    if map.len() > MAX_PIPELINE_JOBS {
        return Err(fault(path, format!("at most {MAX_PIPELINE_JOBS} jobs")));
    }
    let mut jobs = Vec::with_capacity(map.len());
    for (id, job) in map {
        if !is_identifier(id) || id.len() > MAX_NAME_LEN {
            return Err(fault(
                &at(path, Seg::KeyName(id.clone())),
                format!("job id `{id}` must match ^[A-Za-z_][A-Za-z0-9_-]*$"),
            ));
        }
        jobs.push(job_def(id, job, &at(path, key(id)))?);
    }
    check_needs(&jobs, path)?;
    check_step_references(&jobs, path)?;
    Ok(jobs)
}

fn job_def(id: &str, value: &Value, path: &[Seg]) -> Read<JobDef> {
    let map = object(value, path, &format!("job `{id}`"))?;
    known_keys(
        map,
        path,
        &["name", "needs", "timeout-minutes", "if", "steps"],
    )?;
    let name = match map.get("name") {
        None | Some(Value::Null) => id.to_owned(),
        Some(value) => bounded_string(value, &at(path, key("name")), "name", MAX_NAME_LEN)?,
    };
    let needs = match map.get("needs") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => strings(value, &at(path, key("needs")), "needs", MAX_NAME_LEN)?,
    };
    let timeout_minutes = match map.get("timeout-minutes") {
        None => None,
        Some(value) => Some(minutes(value, &at(path, key("timeout-minutes")))?),
    };
    let condition = match map.get("if") {
        None => None,
        Some(value) => Some(condition(value, &at(path, key("if")))?),
    };
    let steps_path = at(path, key("steps"));
    let items = match map.get("steps") {
        None => return Err(fault(path, format!("job `{id}` needs `steps`"))),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type(other, &steps_path, "steps", "a list")),
    };
    if items.is_empty() {
        return Err(fault(
            &steps_path,
            format!("job `{id}` needs at least one step"),
        ));
    }
    if items.len() > MAX_JOB_STEPS {
        return Err(fault(
            &steps_path,
            format!("at most {MAX_JOB_STEPS} steps in a job"),
        ));
    }
    let mut steps: Vec<StepDef> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let step = step_def(item, &at(&steps_path, Seg::Index(index)))?;
        if let Some(step_id) = &step.id
            && steps.iter().any(|s| s.id.as_ref() == Some(step_id))
        {
            return Err(fault(
                &at(&at(&steps_path, Seg::Index(index)), key("id")),
                format!("step id `{step_id}` is used twice in job `{id}`"),
            ));
        }
        steps.push(step);
    }
    Ok(JobDef {
        id: id.to_owned(),
        name,
        needs,
        timeout_minutes,
        condition,
        steps,
    })
}

fn step_def(value: &Value, path: &[Seg]) -> Read<StepDef> {
    let map = object(value, path, "a step")?;
    known_keys(
        map,
        path,
        &[
            "id",
            "name",
            "uses",
            "with",
            "if",
            "continue-on-error",
            "timeout-minutes",
        ],
    )?;
    let uses = match map.get("uses") {
        None => return Err(fault(path, "a step needs `uses` (the action it runs)")),
        Some(value) => {
            let at = at(path, key("uses"));
            let text = string(value, &at, "uses")?;
            Action::from_uses(text).ok_or_else(|| fault(&at, format!("unknown action `{text}`")))?
        }
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let at = at(path, key("id"));
            let id = string(value, &at, "id")?;
            if !is_identifier(id) || id.len() > MAX_NAME_LEN {
                return Err(fault(
                    &at,
                    format!("step id `{id}` must match ^[A-Za-z_][A-Za-z0-9_-]*$"),
                ));
            }
            Some(id.to_owned())
        }
    };
    let name = match map.get("name") {
        None | Some(Value::Null) => uses
            .uses()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned(),
        Some(value) => bounded_string(value, &at(path, key("name")), "name", MAX_NAME_LEN)?,
    };
    let with = match map.get("with") {
        None | Some(Value::Null) => Map::new(),
        Some(value) => {
            let at = at(path, key("with"));
            let with = object(value, &at, "with")?.clone();
            check_templates(value, &at)?;
            with
        }
    };
    for choices in required_with(uses) {
        if !choices
            .iter()
            .any(|k| with.get(*k).is_some_and(|v| !v.is_null()))
        {
            let named = if map.contains_key("with") {
                "with"
            } else {
                "uses"
            };
            let at = at(path, Seg::KeyName(named.to_owned()));
            return Err(fault(
                &at,
                format!("{uses} requires `with.{}`", choices.join("` or `with.")),
            ));
        }
    }
    let condition = match map.get("if") {
        None => None,
        Some(value) => Some(condition(value, &at(path, key("if")))?),
    };
    let continue_on_error = match map.get("continue-on-error") {
        None => false,
        Some(value) => boolean(
            value,
            &at(path, key("continue-on-error")),
            "continue-on-error",
        )?,
    };
    let timeout_minutes = match map.get("timeout-minutes") {
        None => None,
        Some(value) => Some(minutes(value, &at(path, key("timeout-minutes")))?),
    };
    Ok(StepDef {
        id,
        name,
        uses,
        with,
        condition,
        continue_on_error,
        timeout_minutes,
    })
}

/// Checks the expressions in every string under `value`.
fn check_templates(value: &Value, path: &[Seg]) -> Read<()> {
    match value {
        Value::String(text) => {
            expr::check(text).map_err(|error| fault(path, format!("bad expression: {error}")))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_templates(item, &at(path, Seg::Index(i)))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, item)| check_templates(item, &at(path, key(k)))),
        _ => Ok(()),
    }
}

/// An `if`: text (or a YAML boolean) holding one expression.
fn condition(value: &Value, path: &[Seg]) -> Read<String> {
    let text = match value {
        Value::Bool(b) => b.to_string(),
        other => bounded_string(other, path, "if", MAX_TEXT_LEN)?,
    };
    expr::check_condition(&text)
        .map_err(|error| fault(path, format!("bad expression: {error}")))?;
    Ok(text)
}

/// Every `needs` names another job, and following them never comes back.
fn check_needs(jobs: &[JobDef], path: &[Seg]) -> Read<()> {
    let ids: BTreeSet<&str> = jobs.iter().map(|job| job.id.as_str()).collect();
    for job in jobs {
        let needs_path = at(&at(path, key(&job.id)), key("needs"));
        for (i, need) in job.needs.iter().enumerate() {
            if !ids.contains(need.as_str()) {
                return Err(fault(
                    &at(&needs_path, Seg::Index(i)),
                    format!("job `{}` needs unknown job `{need}`", job.id),
                ));
            }
        }
    }
    // Depth-first search with colours; the first cycle found is reported at its first job.
    let index: BTreeMap<&str, &JobDef> = jobs.iter().map(|job| (job.id.as_str(), job)).collect();
    let mut done = BTreeSet::new();
    for job in jobs {
        let mut trail = Vec::new();
        if let Some(cycle) = find_cycle(job.id.as_str(), &index, &mut trail, &mut done) {
            let first = cycle[0].to_owned();
            return Err(fault(
                &at(&at(path, key(&first)), key("needs")),
                format!("`needs` forms a cycle: {}", cycle.join(" → ")),
            ));
        }
    }
    Ok(())
}

fn find_cycle<'a>(
    id: &'a str,
    index: &BTreeMap<&'a str, &'a JobDef>,
    trail: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<&'a str>> {
    if let Some(start) = trail.iter().position(|seen| *seen == id) {
        let mut cycle = trail[start..].to_vec();
        cycle.push(id);
        return Some(cycle);
    }
    if done.contains(id) {
        return None;
    }
    trail.push(id);
    for need in &index[id].needs {
        if let Some(cycle) = find_cycle(need.as_str(), index, trail, done) {
            return Some(cycle);
        }
    }
    trail.pop();
    done.insert(id);
    None
}

/// `steps.<id>` in a step sees the earlier steps of its job and the steps of every job its
/// job needs, directly or not; in a job's `if`, only the latter.
fn check_step_references(jobs: &[JobDef], path: &[Seg]) -> Read<()> {
    let index: BTreeMap<&str, &JobDef> = jobs.iter().map(|job| (job.id.as_str(), job)).collect();
    for job in jobs {
        let job_path = at(path, key(&job.id));
        let mut visible = BTreeSet::new();
        let mut stack: Vec<&str> = job.needs.iter().map(String::as_str).collect();
        let mut seen = BTreeSet::new();
        while let Some(need) = stack.pop() {
            if seen.insert(need) {
                visible.extend(index[need].steps.iter().filter_map(|s| s.id.clone()));
                stack.extend(index[need].needs.iter().map(String::as_str));
            }
        }
        if let Some(text) = &job.condition {
            check_visible(text, true, &visible, &at(&job_path, key("if")))?;
        }
        for (i, step) in job.steps.iter().enumerate() {
            let step_path = at(&at(&job_path, key("steps")), Seg::Index(i));
            if let Some(text) = &step.condition {
                check_visible(text, true, &visible, &at(&step_path, key("if")))?;
            }
            check_visible_in(
                &Value::Object(step.with.clone()),
                &visible,
                &at(&step_path, key("with")),
            )?;
            if let Some(id) = &step.id {
                visible.insert(id.clone());
            }
        }
    }
    Ok(())
}

fn check_visible_in(value: &Value, visible: &BTreeSet<String>, path: &[Seg]) -> Read<()> {
    match value {
        Value::String(text) => check_visible(text, false, visible, path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_visible_in(item, visible, &at(path, Seg::Index(i)))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, item)| check_visible_in(item, visible, &at(path, key(k)))),
        _ => Ok(()),
    }
}

fn check_visible(
    text: &str,
    condition: bool,
    visible: &BTreeSet<String>,
    path: &[Seg],
) -> Read<()> {
    let ids = expr::step_references(text, condition)
        .map_err(|error| fault(path, format!("bad expression: {error}")))?;
    match ids.into_iter().find(|id| !visible.contains(id)) {
        None => Ok(()),
        Some(id) => Err(fault(
            path,
            format!(
                "bad expression: no step `{id}` runs before this one (steps.<id> sees earlier steps of the job and the steps of jobs it needs)"
            ),
        )),
    }
}

fn metadata(value: &Value, path: &[Seg]) -> Read<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in object(value, path, "metadata")? {
        out.insert(
            k.clone(),
            bounded_string(v, &at(path, key(k)), "metadata values", MAX_TEXT_LEN)?,
        );
    }
    Ok(out)
}

fn minutes(value: &Value, path: &[Seg]) -> Read<u32> {
    match value.as_u64() {
        Some(n) if (1..=u64::from(MAX_PIPELINE_TIMEOUT_MINUTES)).contains(&n) => {
            Ok(u32::try_from(n).unwrap_or(MAX_PIPELINE_TIMEOUT_MINUTES))
        }
        _ => Err(fault(
            path,
            format!(
                "timeout-minutes must be a whole number from 1 to {MAX_PIPELINE_TIMEOUT_MINUTES}"
            ),
        )),
    }
}

/// A string, or a list of strings (a single string stands for a list of one).
fn strings(value: &Value, path: &[Seg], what: &str, max_len: usize) -> Read<Vec<String>> {
    match value {
        Value::Array(items) => {
            if items.len() > MAX_RULE_FILTERS {
                return Err(fault(
                    path,
                    format!("{what} has more than {MAX_RULE_FILTERS} items"),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| bounded_string(item, &at(path, Seg::Index(i)), what, max_len))
                .collect()
        }
        other => Ok(vec![bounded_string(other, path, what, max_len)?]),
    }
}

fn bounded_string(value: &Value, path: &[Seg], what: &str, max_len: usize) -> Read<String> {
    let text = string(value, path, what)?;
    if text.len() > max_len {
        return Err(fault(
            path,
            format!("{what} is longer than {max_len} bytes"),
        ));
    }
    Ok(text.to_owned())
}

fn string<'a>(value: &'a Value, path: &[Seg], what: &str) -> Read<&'a str> {
    value
        .as_str()
        .ok_or_else(|| wrong_type(value, path, what, "a string"))
}

fn boolean(value: &Value, path: &[Seg], what: &str) -> Read<bool> {
    value
        .as_bool()
        .ok_or_else(|| wrong_type(value, path, what, "true or false"))
}

fn object<'a>(value: &'a Value, path: &[Seg], what: &str) -> Read<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(value, path, what, "a mapping"))
}

fn wrong_type(value: &Value, path: &[Seg], what: &str, expected: &str) -> Fault {
    let found = match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    };
    fault(path, format!("{what} must be {expected}, not {found}"))
}

fn known_keys(map: &Map<String, Value>, path: &[Seg], allowed: &[&str]) -> Read<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) if allowed.is_empty() => Err(fault(
            &at(path, Seg::KeyName(unknown.clone())),
            format!("unknown key `{unknown}` (this mapping takes no keys)"),
        )),
        Some(unknown) => Err(fault(
            &at(path, Seg::KeyName(unknown.clone())),
            format!("unknown key `{unknown}` (expected {})", allowed.join(", ")),
        )),
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn type_name(kind: InputType) -> &'static str {
    match kind {
        InputType::String => "string",
        InputType::Number => "number",
        InputType::Boolean => "boolean",
        InputType::Object => "object",
        InputType::Array => "array",
    }
}

fn key(name: &str) -> Seg {
    Seg::Key(name.to_owned())
}

fn at(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut path = path.to_vec();
    path.push(seg);
    path
}

fn fault(path: &[Seg], message: impl Into<String>) -> Fault {
    Fault {
        path: path.to_vec(),
        message: message.into(),
    }
}
