//! An environment's deploy target as the domain sees it: parsed once where it enters (the API,
//! or a stored row), captured by each deployment when it is created, and never re-read from
//! the environment while that deployment runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How long a compose deployment may take when the target does not say (seconds).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 600;
/// How long drift must persist before `auto_heal` redeploys, when the target does not say.
pub const DEFAULT_AUTO_HEAL_AFTER_SECONDS: u64 = 60;

/// Where an environment's deployments are applied. Stored as this JSON (tagged by `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TargetConfig {
    /// Recorded only: another system applies the set, told by webhooks.
    None,
    /// Host agents running compose projects.
    Compose(ComposeConfig),
}

/// A `compose` target: its agents and how long they get.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeConfig {
    pub agents: Vec<AgentBinding>,
    /// How long a deployment may take, agents' retries included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Redeploy the environment's current set when its hosts drift from it for longer than
    /// `auto_heal_after_seconds`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_heal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_heal_after_seconds: Option<u64>,
}

/// One agent of an environment, and which workloads it runs as which compose services.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentBinding {
    /// The agent's base URL, e.g. `http://10.0.0.5:8686`.
    pub url: String,
    /// The compose project, when the agent has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Workload id (or `workload/container`) → compose service name.
    pub services: BTreeMap<String, String>,
}

impl TargetConfig {
    /// The name environments and the API use: `none` or `compose`.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetConfig::None => "none",
            TargetConfig::Compose(_) => "compose",
        }
    }

    /// How long one deployment to this target may take, in milliseconds.
    pub fn timeout_ms(&self) -> i64 {
        let seconds = match self {
            TargetConfig::None => DEFAULT_TIMEOUT_SECONDS,
            TargetConfig::Compose(c) => c.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        };
        i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// Reads a stored target: the tagged JSON, or (rows written before targets were typed)
    /// the kind column beside a configuration without `type`.
    pub fn from_stored(kind: &str, config: &str) -> Result<TargetConfig, String> {
        let mut value: serde_json::Value = if config.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(config).map_err(|e| format!("unreadable target: {e}"))?
        };
        // Targets stored before the type was part of the config have none, or an empty one
        // (the route blanked it): the column's kind stands.
        if let Some(object) = value.as_object_mut()
            && object
                .get("type")
                .is_none_or(|t| t.as_str().is_some_and(str::is_empty))
        {
            let kind = if kind.is_empty() { "none" } else { kind };
            object.insert("type".to_owned(), serde_json::Value::from(kind));
        }
        serde_json::from_value(value).map_err(|e| format!("unreadable {kind} target: {e}"))
    }

    /// The JSON stored for this target.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_targets_read_with_or_without_their_type() {
        assert_eq!(
            TargetConfig::from_stored("none", ""),
            Ok(TargetConfig::None)
        );
        assert_eq!(TargetConfig::from_stored("", "{}"), Ok(TargetConfig::None));
        let old =
            r#"{"agents":[{"url":"http://h:1","services":{"web":"web"}}],"timeout_seconds":5}"#;
        let parsed = TargetConfig::from_stored("compose", old).unwrap();
        let TargetConfig::Compose(compose) = &parsed else {
            panic!("not compose: {parsed:?}");
        };
        assert_eq!(compose.agents[0].url, "http://h:1");
        assert_eq!(parsed.timeout_ms(), 5000);
        assert_eq!(
            TargetConfig::from_stored("compose", &parsed.to_stored()),
            Ok(parsed)
        );
        // What `PUT …/target` stores: the type blanked, the column holding it.
        let blank = r#"{"type":"","agents":[{"url":"http://h:1","services":{"web":"web"}}]}"#;
        assert!(matches!(
            TargetConfig::from_stored("compose", blank),
            Ok(TargetConfig::Compose(_))
        ));
        assert!(TargetConfig::from_stored("ftp", "{}").is_err());
        assert!(TargetConfig::from_stored("compose", "[1]").is_err());
    }

    #[test]
    fn the_default_timeout_applies_when_none_is_set() {
        assert_eq!(TargetConfig::None.timeout_ms(), 600_000);
        let compose = TargetConfig::Compose(ComposeConfig::default());
        assert_eq!(compose.timeout_ms(), 600_000);
    }
}
