//! Outbound webhooks: the event catalogue, payload templates with `${var}` placeholders,
//! signatures (Standard Webhooks and GitHub style), secrets, and the retry policy.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::ValidationError;

/// One event webhooks can subscribe to, and the variables its payload may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpec {
    pub scope: &'static str,
    pub kind: &'static str,
    pub properties: &'static [&'static str],
}

impl EventSpec {
    /// `scope.type`, the value of `${event}` and `X-Gangplank-Event`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.scope, self.kind)
    }
}

const COMMON: [&str; 4] = ["event", "org_id", "triggered_at", "triggered_by"];

const ENVIRONMENT_PROPERTIES: [&str; 8] = [
    "event",
    "org_id",
    "triggered_at",
    "triggered_by",
    "app_id",
    "env_id",
    "name",
    "type",
];

const DEPLOYMENT_PROPERTIES: [&str; 11] = [
    "event",
    "org_id",
    "triggered_at",
    "triggered_by",
    "app_id",
    "env_id",
    "deploy_id",
    "delta_id",
    "set_id",
    "comment",
    "status",
];

/// Every event, Humanitec's four first (reference §3), then Gangplank's own.
pub const EVENTS: &[EventSpec] = &[
    EventSpec {
        scope: "environment",
        kind: "created",
        properties: &ENVIRONMENT_PROPERTIES,
    },
    EventSpec {
        scope: "environment",
        kind: "deleted",
        properties: &ENVIRONMENT_PROPERTIES,
    },
    EventSpec {
        scope: "deployment",
        kind: "started",
        properties: &DEPLOYMENT_PROPERTIES,
    },
    EventSpec {
        scope: "deployment",
        kind: "finished",
        properties: &DEPLOYMENT_PROPERTIES,
    },
    EventSpec {
        scope: "artefact-version",
        kind: "created",
        properties: &[
            "event",
            "org_id",
            "triggered_at",
            "triggered_by",
            "artefact_id",
            "artefact_version_id",
            "name",
            "version",
            "ref",
            "commit",
            "digest",
            "type",
        ],
    },
    EventSpec {
        scope: "automation",
        kind: "skipped",
        properties: &[
            "event",
            "org_id",
            "triggered_at",
            "triggered_by",
            "app_id",
            "env_id",
            "rule_id",
            "name",
            "version",
            "reason",
        ],
    },
    EventSpec {
        scope: "environment",
        kind: "drifted",
        properties: &DRIFT_PROPERTIES,
    },
    EventSpec {
        scope: "environment",
        kind: "in_sync",
        properties: &DRIFT_PROPERTIES,
    },
    EventSpec {
        scope: "pipeline.approval",
        kind: "requested",
        properties: &APPROVAL_PROPERTIES,
    },
    EventSpec {
        scope: "pipeline.approval",
        kind: "approved",
        properties: &APPROVAL_PROPERTIES,
    },
    EventSpec {
        scope: "pipeline.approval",
        kind: "denied",
        properties: &APPROVAL_PROPERTIES,
    },
    EventSpec {
        scope: "pipeline.approval",
        kind: "expired",
        properties: &APPROVAL_PROPERTIES,
    },
    EventSpec {
        scope: "pipeline.run",
        kind: "finished",
        properties: &[
            "event",
            "org_id",
            "triggered_at",
            "triggered_by",
            "app_id",
            "pipeline_id",
            "run_id",
            "status",
            "status_message",
            "trigger",
            "created_by",
        ],
    },
    EventSpec {
        scope: "build",
        kind: "started",
        properties: &BUILD_PROPERTIES,
    },
    EventSpec {
        scope: "build",
        kind: "finished",
        properties: &BUILD_PROPERTIES,
    },
];

/// `build.started` / `build.finished`: the build, what it built and what came of it.
const BUILD_PROPERTIES: [&str; 14] = [
    "event",
    "org_id",
    "triggered_at",
    "triggered_by",
    "app_id",
    "build_id",
    "status",
    "message",
    "commit",
    "ref",
    "image",
    "digest",
    "version_id",
    "trigger",
];

/// `pipeline.approval.*`: the request, its run, and the API paths that approve and deny it,
/// so a notifier needs no glue.
const APPROVAL_PROPERTIES: [&str; 16] = [
    "event",
    "org_id",
    "triggered_at",
    "triggered_by",
    "app_id",
    "approval_id",
    "pipeline_id",
    "run_id",
    "job_id",
    "env_id",
    "message",
    "status",
    "approve_path",
    "deny_path",
    "required_approvals",
    "approvals",
];

/// `environment.drifted` / `environment.in_sync`: since when it drifted, and which workloads
/// (comma-separated) were out of sync, with the first one's reason.
const DRIFT_PROPERTIES: [&str; 9] = [
    "event",
    "org_id",
    "triggered_at",
    "triggered_by",
    "app_id",
    "env_id",
    "drifted_since",
    "workloads",
    "reason",
];

/// The event `scope`/`kind`, if it exists.
pub fn find_event(scope: &str, kind: &str) -> Option<&'static EventSpec> {
    EVENTS.iter().find(|e| e.scope == scope && e.kind == kind)
}

/// Humanitec's default payload: the common properties plus app and env, leaving out those
/// none of `triggers` (`scope`, `type`) carries (a build has no environment). No triggers
/// means every event.
pub fn default_payload(triggers: &[(String, String)]) -> Value {
    let specs: Vec<&EventSpec> = triggers
        .iter()
        .filter_map(|(scope, kind)| find_event(scope, kind))
        .collect();
    let carried =
        |name: &str| specs.is_empty() || specs.iter().any(|s| s.properties.contains(&name));
    let mut map = Map::new();
    for name in COMMON.iter().chain(&["app_id", "env_id"]) {
        if carried(name) {
            map.insert((*name).to_owned(), Value::String(format!("${{{name}}}")));
        }
    }
    Value::Object(map)
}

/// The `${name}` placeholders in `text`, in order.
fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

fn strings_in<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

/// Checks a webhook's triggers and that every placeholder in its payload and header values is
/// a property of at least one of its events.
pub fn validate(
    triggers: &[(String, String)],
    payload: &Value,
    headers: &BTreeMap<String, String>,
) -> Result<(), ValidationError> {
    let mut specs = Vec::new();
    for (i, (scope, kind)) in triggers.iter().enumerate() {
        let spec = find_event(scope, kind).ok_or_else(|| {
            ValidationError::new(
                format!("triggers[{i}]"),
                format!("no event {scope}.{kind}; GET /orgs/{{org}}/events lists them"),
            )
        })?;
        specs.push(spec);
    }
    if specs.is_empty() {
        specs.extend(EVENTS);
    }
    let known = |name: &str| specs.iter().any(|s| s.properties.contains(&name));
    let mut texts = Vec::new();
    strings_in(payload, &mut texts);
    for (field, texts) in [
        ("payload", texts),
        ("headers", headers.values().map(String::as_str).collect()),
    ] {
        for text in texts {
            if let Some(unknown) = placeholders(text).into_iter().find(|name| !known(name)) {
                return Err(ValidationError::new(
                    field,
                    format!("unknown variable ${{{unknown}}} for the chosen triggers"),
                ));
            }
        }
    }
    Ok(())
}

/// Replaces `${name}` in `text`; a variable the event does not carry becomes empty.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(vars.get(&after[..end]).map_or("", String::as_str));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Renders a payload template: placeholders in every string value are substituted; keys,
/// numbers and booleans are kept.
pub fn render(template: &Value, vars: &BTreeMap<String, String>) -> Value {
    match template {
        Value::String(s) => Value::String(substitute(s, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A webhook signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// The prefix of Standard Webhooks secrets.
pub const SECRET_PREFIX: &str = "whsec_";

impl SigningKey {
    /// Parses `whsec_<base64 key>`; the key must be 24 to 64 bytes.
    pub fn parse(secret: &str) -> Result<Self, ValidationError> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
            ValidationError::new("secret", "must be whsec_ followed by a base64 key")
        })?;
        let key = BASE64
            .decode(encoded)
            .map_err(|_| ValidationError::new("secret", "the part after whsec_ is not base64"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(ValidationError::new(
                "secret",
                "the key must be 24 to 64 bytes",
            ));
        }
        Ok(SigningKey(key))
    }

    /// Wraps raw key bytes (from the secret store or a random source).
    pub fn from_bytes(key: Vec<u8>) -> Self {
        SigningKey(key)
    }

    /// The raw key, for sealing at rest.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The `whsec_…` form shown to the user once.
    pub fn to_secret(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.0))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }

    /// `webhook-signature`: `v1,<base64 HMAC-SHA256 over "id.timestamp.body">`.
    pub fn standard_signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }

    /// `X-Hub-Signature-256`: `sha256=<hex HMAC-SHA256 over the body>`.
    pub fn github_signature(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(71);
        hex.push_str("sha256=");
        for byte in bytes.iter() {
            hex.push_str(&format!("{byte:02x}"));
        }
        hex
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered with this status; `retry_after_ms` from `Retry-After`, if any.
    Status {
        code: u16,
        retry_after_ms: Option<i64>,
    },
    /// Connecting, sending or reading failed, or the timeout passed.
    Failed,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryIn(i64),
    GiveUp(String),
}

/// Retry timing for deliveries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay_ms: i64,
    pub max_delay_ms: i64,
    pub max_age_ms: i64,
}

impl Default for RetryPolicy {
    /// First retry within a second, doubling to at most five minutes, for up to a day.
    fn default() -> Self {
        RetryPolicy {
            first_delay_ms: 500,
            max_delay_ms: 5 * 60 * 1000,
            max_age_ms: 24 * 60 * 60 * 1000,
        }
    }
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1-based) of a delivery that is `age_ms` old.
    /// `jitter` in [0, 1) spreads retries: the delay is between half and all of the backoff.
    /// Network errors, timeouts, 408, 429 and 5xx are retried; other statuses below 200 or
    /// from 300 are final.
    pub fn next(&self, attempt: u32, age_ms: i64, result: AttemptResult, jitter: f64) -> Next {
        let retry_after = match result {
            AttemptResult::Status { code, .. } if (200..300).contains(&code) => {
                return Next::Delivered;
            }
            AttemptResult::Status {
                code,
                retry_after_ms,
            } if code == 408 || code == 429 || (500..600).contains(&code) => retry_after_ms,
            AttemptResult::Status { code, .. } => {
                return Next::GiveUp(format!(
                    "the receiver answered {code}, which is not retried"
                ));
            }
            AttemptResult::Failed => None,
        };
        let exponent = attempt.saturating_sub(1).min(30);
        let backoff = self
            .first_delay_ms
            .saturating_mul(1_i64 << exponent)
            .min(self.max_delay_ms);
        let jittered = (backoff as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as i64;
        // A receiver's Retry-After wins over our own schedule, within the same cap.
        let delay = retry_after.map_or(jittered, |after| after.clamp(0, self.max_delay_ms));
        if age_ms.saturating_add(delay) > self.max_age_ms {
            return Next::GiveUp("the delivery reached its maximum age".to_owned());
        }
        Next::RetryIn(delay)
    }
}

#[cfg(test)]
mod tests;
