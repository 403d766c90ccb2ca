//! Which pipelines a trigger starts and with what inputs: an artefact version against
//! `on.artefact`, a deployment request against pipeline criteria. Pure: the server reads the
//! candidates and writes the runs.

use regex::RegexBuilder;
use serde_json::{Map, Value, json};

use super::definition::{ArtefactKind, ArtefactTrigger};

/// The trigger names, as runs record them (`PipelineRun.trigger`) and pipelines list them
/// (`Pipeline.trigger_types`).
pub const PIPELINE_CALL: &str = "pipeline_call";
pub const DEPLOYMENT_REQUEST: &str = "deployment_request";
pub const ARTEFACT: &str = "artefact";

/// A registered artefact version, as an artefact trigger sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtefactEvent<'a> {
    pub version_id: &'a str,
    /// `container` or `workload`.
    pub kind: &'a str,
    /// The artefact's name: for a container, the image without tag or digest.
    pub name: &'a str,
    /// The version (for a container, its tag); may be empty.
    pub version: &'a str,
    /// `sha256:…`, or empty while the registry has not been asked.
    pub digest: &'a str,
    /// The user who registered it.
    pub registrant: &'a str,
}

/// The most a pattern's compiled program may take: patterns come from pipeline authors.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

fn matches_any(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|pattern| {
        RegexBuilder::new(pattern)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            // A pattern that no longer compiles (it was checked at create time) matches nothing.
            .is_ok_and(|re| re.is_match(text))
    })
}

/// Whether `event` starts a pipeline with this artefact trigger: the kind is the trigger's,
/// the name matches an `include` pattern and no `exclude` pattern (as written: the author
/// anchors them), and, when `tags` is given, the version is one of them.
pub fn artefact_matches(trigger: &ArtefactTrigger, event: &ArtefactEvent<'_>) -> bool {
    let kind = match trigger.kind {
        ArtefactKind::Container => "container",
        ArtefactKind::Workload => "workload",
    };
    event.kind == kind
        && matches_any(&trigger.include, event.name)
        && !matches_any(&trigger.exclude, event.name)
        && (trigger.tags.is_empty() || trigger.tags.iter().any(|t| t == event.version))
}

/// The inputs of a run an artefact started (frozen in the run; the digest is pinned, when
/// empty here, as the run starts). A workload is no image: its `image` and `digest` are
/// empty, so the runner pins nothing and a step that defaults to the run's image is told to
/// name one.
pub fn artefact_inputs(event: &ArtefactEvent<'_>) -> Value {
    let container = event.kind == "container";
    json!({
        "artefact_name": event.name,
        "image": if container { event.name } else { "" },
        "version": event.version,
        "digest": if container { event.digest } else { "" },
        "artefact_version_id": event.version_id,
        "registrant": event.registrant,
    })
}

/// The idempotency key of the run an artefact version starts: one run per version and
/// pipeline however often the trigger is evaluated.
pub fn artefact_idempotency_key(version_id: &str) -> String {
    format!("{ARTEFACT_KEY_PREFIX}{version_id}")
}

/// What the artefact trigger's idempotency keys start with: reserved, so a client's
/// `Idempotency-Key` cannot take the key of a run a version would start.
pub const ARTEFACT_KEY_PREFIX: &str = "artefact:";

/// One pipeline criteria row, as matching sees it (empty = any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Criteria<'a> {
    pub id: &'a str,
    pub pipeline_id: &'a str,
    /// An environment type, `*`, or empty.
    pub env_type: &'a str,
    pub app_id: &'a str,
    pub env_id: &'a str,
    /// `deploy`, `redeploy` (also spelled `re-deploy`), or empty for both.
    pub deployment_type: &'a str,
}

/// What a deployment request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRequest<'a> {
    pub app_id: &'a str,
    pub env_id: &'a str,
    pub env_type: &'a str,
    /// `redeploy` when it names a `deployment_id`, else `deploy`.
    pub deployment_type: &'a str,
}

/// Why no single pipeline takes a deployment request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CriteriaError {
    #[error("no pipeline criteria match a {kind} to environment {env}", kind = .deployment_type, env = .env_id)]
    NoMatch {
        env_id: String,
        deployment_type: String,
    },
    #[error("criteria of several pipelines match equally ({}); make one more specific", .pipelines.join(", "))]
    Ambiguous { pipelines: Vec<String> },
}

fn normalise_type(text: &str) -> &str {
    if text == "re-deploy" {
        "redeploy"
    } else {
        text
    }
}

/// The pipeline a deployment request runs: among the matching criteria (every set attribute
/// equal; `env_type` `*` matches any), the most specific (most attributes set); several
/// pipelines equally specific are ambiguous.
pub fn route_deployment_request<'a>(
    criteria: &[Criteria<'a>],
    request: &DeploymentRequest<'_>,
) -> Result<&'a str, CriteriaError> {
    let fits = |wanted: &str, actual: &str| wanted.is_empty() || wanted == actual;
    let matching = criteria.iter().filter(|c| {
        (c.env_type == "*" || fits(c.env_type, request.env_type))
            && fits(c.app_id, request.app_id)
            && fits(c.env_id, request.env_id)
            && fits(
                normalise_type(c.deployment_type),
                normalise_type(request.deployment_type),
            )
    });
    let specificity = |c: &Criteria<'_>| {
        [
            c.env_type != "*" && !c.env_type.is_empty(),
            !c.app_id.is_empty(),
            !c.env_id.is_empty(),
            !c.deployment_type.is_empty(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
    };
    let mut best: Vec<&Criteria<'a>> = Vec::new();
    for c in matching {
        match best.first().map(|b| specificity(b)) {
            Some(top) if specificity(c) < top => {}
            Some(top) if specificity(c) == top => best.push(c),
            _ => best = vec![c],
        }
    }
    let mut pipelines: Vec<&'a str> = best.iter().map(|c| c.pipeline_id).collect();
    pipelines.sort_unstable();
    pipelines.dedup();
    match pipelines.as_slice() {
        [one] => Ok(one),
        [] => Err(CriteriaError::NoMatch {
            env_id: request.env_id.to_owned(),
            deployment_type: request.deployment_type.to_owned(),
        }),
        many => Err(CriteriaError::Ambiguous {
            pipelines: many.iter().map(|p| (*p).to_owned()).collect(),
        }),
    }
}

/// The inputs of a deployment-request run: `env_id`, `comment`, and whichever of `delta_id`,
/// `deployment_id`, `set_id`, `value_set_version_id` and `mode` the request gave.
pub fn deployment_request_inputs(env_id: &str, fields: &[(&str, Option<&str>)]) -> Value {
    let mut inputs = Map::new();
    inputs.insert("env_id".to_owned(), json!(env_id));
    inputs.insert("comment".to_owned(), json!(""));
    for (name, value) in fields {
        if let Some(value) = value {
            inputs.insert((*name).to_owned(), json!(value));
        }
    }
    Value::Object(inputs)
}

#[cfg(test)]
mod tests;
