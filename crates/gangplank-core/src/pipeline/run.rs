//! The `run` action's inputs: which image (the run's pinned one unless another is named), the
//! command as argv, the environment, the timeout, and which agent runs it (one of an
//! environment's compose agents, or a known agent by URL). The server talks to the agent.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::with::scalar_text;
use crate::agent::{
    DEFAULT_RUN_TIMEOUT_SECONDS, MAX_RUN_TIMEOUT_SECONDS, RunRequestError, check_run_request,
};

/// Where the container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunTarget {
    /// An agent of the environment's compose target: the only one, or the one whose URL is
    /// `agent`.
    Env {
        env_id: String,
        agent: Option<String>,
    },
    /// An agent by URL; it must be an agent of one of the app's environments.
    Url(String),
}

/// A `run` step, checked. `Debug` shows the env's names, never its values.
#[derive(Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// `None`: the run's pinned image (`inputs.image@inputs.digest`).
    pub image: Option<String>,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub timeout_seconds: u64,
    pub target: RunTarget,
}

impl std::fmt::Debug for RunSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSpec")
            .field("image", &self.image)
            .field("command", &self.command)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("timeout_seconds", &self.timeout_seconds)
            .field("target", &self.target)
            .finish()
    }
}

impl RunSpec {
    /// Reads a step's `with` (expressions already rendered). The error names the input.
    pub fn parse(with: &Map<String, Value>) -> Result<RunSpec, String> {
        if let Some(key) = with.keys().find(|k| {
            !matches!(
                k.as_str(),
                "image" | "command" | "env" | "timeout_seconds" | "env_id" | "agent" | "agent_url"
            )
        }) {
            return Err(format!("with.{key}: not an input of the run action"));
        }
        let text = |key: &str| super::with::text(with, key).map(|t| t.map(str::to_owned));
        let image = text("image")?;
        let command = match with.get("command") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(args)) => args
                .iter()
                .map(scalar_text)
                .collect::<Option<Vec<_>>>()
                .ok_or("with.command: a list of strings (argv; no shell)")?,
            Some(_) => {
                return Err(
                    "with.command: a list of strings (argv; no shell), e.g. [\"/bin/sh\", \"-c\", \"make test\"]"
                        .to_owned(),
                );
            }
        };
        let env = match with.get("env") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    scalar_text(v)
                        .map(|v| (k.clone(), v))
                        .ok_or(format!("with.env.{k}: a string, number or boolean"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("with.env: a map of names to values".to_owned()),
        };
        let timeout_seconds = match with.get("timeout_seconds") {
            None => DEFAULT_RUN_TIMEOUT_SECONDS,
            Some(v) => v
                .as_u64()
                .filter(|t| (1..=MAX_RUN_TIMEOUT_SECONDS).contains(t))
                .ok_or(format!(
                    "with.timeout_seconds: 1 to {MAX_RUN_TIMEOUT_SECONDS}"
                ))?,
        };
        let target = match (text("env_id")?, text("agent")?, text("agent_url")?) {
            (Some(env_id), agent, None) => RunTarget::Env { env_id, agent },
            (None, None, Some(url)) => RunTarget::Url(url),
            (None, Some(_), None) => {
                return Err("with.agent: names an agent of with.env_id; give env_id too".to_owned());
            }
            (None, None, None) => {
                return Err(
                    "with: name where to run: env_id (an environment with a compose target) or agent_url"
                        .to_owned(),
                );
            }
            (_, _, Some(_)) => {
                return Err("with: give env_id (and agent) or agent_url, not both".to_owned());
            }
        };
        // The agent's own rules, checked here so a bad step fails before any request.
        let probe = image.as_deref().unwrap_or("image");
        check_run_request("check", probe, &command, &env, Some(timeout_seconds)).map_err(
            |error| match error {
                RunRequestError::Image => format!("with.image: {error}"),
                RunRequestError::Command => format!("with.command: {error}"),
                RunRequestError::Timeout(_) => format!("with.timeout_seconds: {error}"),
                other => format!("with.{other}"),
            },
        )?;
        Ok(RunSpec {
            image,
            command,
            env,
            timeout_seconds,
            target,
        })
    }
}

/// The image a run uses by default: the one its trigger pinned (`inputs.image@inputs.digest`),
/// else `inputs.image` as it is.
pub fn pinned_image(inputs: &Value) -> Option<String> {
    let image = inputs.get("image")?.as_str().filter(|i| !i.is_empty())?;
    match inputs.get("digest").and_then(Value::as_str) {
        Some(digest) if !digest.is_empty() && !image.contains('@') => {
            Some(format!("{image}@{digest}"))
        }
        _ => Some(image.to_owned()),
    }
}

/// Picks an agent from `agents` (the URLs of a compose target's agents): the one `wanted`
/// names, else the only one. The answer is the agent's URL as configured, without a trailing
/// `/`: the base its requests go to and the audience they are signed for. `wanted` matches
/// whatever its trailing `/` and the case of its scheme and host.
pub fn pick_agent<'a>(agents: &'a [String], wanted: Option<&str>) -> Result<&'a str, String> {
    let base = |a: &'a String| a.trim_end_matches('/');
    match wanted {
        Some(wanted) => {
            let key = agent_key(wanted);
            agents
                .iter()
                .find(|a| agent_key(a) == key)
                .map(base)
                .ok_or_else(|| format!("the environment has no agent {wanted}"))
        }
        None => match agents {
            [] => Err("the environment's target has no agents".to_owned()),
            [one] => Ok(base(one)),
            _ => Err(format!(
                "the environment has {} agents: name one with with.agent",
                agents.len()
            )),
        },
    }
}

/// An agent URL as compared: no trailing `/`, scheme and host (everything before the path)
/// in lower case, the path as written.
fn agent_key(url: &str) -> String {
    let url = url.trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    format!(
        "{}://{}{path}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests;
