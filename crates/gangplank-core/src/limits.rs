//! Every upper bound the API enforces on what callers send, in one place, with the checks as
//! pure functions that name the offending field. `docs/limits.md` lists them for users; a
//! test there keeps the table and these constants in step.

mod yaml_depth;

pub use yaml_depth::{Refused, check_yaml_depth};

use crate::ValidationError;

/// Deepest nesting of a JSON or YAML request document (serde_json's own recursion limit,
/// applied to multipart YAML before parsing).
pub const MAX_DOCUMENT_DEPTH: usize = 128;

/// The scanning work a YAML form part may need: the sum, over its tokens, of the flow
/// collections enclosing each (libyaml's cost per token grows with that depth). Ordinary
/// documents need a few per byte, and this bound is about 0.1 s of parsing; a megabyte of
/// side-by-side collections 127 deep would need fifty million and two seconds of CPU.
pub const MAX_DOCUMENT_WORK: usize = 10_000_000;

/// Values a YAML form part may expand to (aliases repeat their anchor's subtree); without
/// aliases a document within the default body limit has at most about half a million.
pub const MAX_DOCUMENT_NODES: usize = 1_000_000;

/// Display names of apps, environments, users, deltas.
pub const MAX_NAME_LEN: usize = 200;
/// Free-text descriptions (environment types, tokens) and deployment comments.
pub const MAX_TEXT_LEN: usize = 4096;
/// Opaque identifiers the API takes where its own ID pattern does not apply (token ids,
/// deployment, delta and set ids, e-mail addresses).
pub const MAX_REF_LEN: usize = 256;
/// URLs (webhooks, agents) and registry prefixes.
pub const MAX_URL_LEN: usize = 2048;

/// A deploy target's `timeout_seconds`: one day.
pub const MAX_TARGET_TIMEOUT_SECONDS: u64 = 24 * 60 * 60;
/// A compose target's `auto_heal_after_seconds`: one day.
pub const MAX_AUTO_HEAL_AFTER_SECONDS: u64 = 24 * 60 * 60;
/// Agents of one deploy target.
pub const MAX_TARGET_AGENTS: usize = 64;
/// Workload → compose service entries of one agent.
pub const MAX_AGENT_SERVICES: usize = 256;
/// A workload id, compose service or project name of a target.
pub const MAX_SERVICE_NAME_LEN: usize = 128;

/// Custom headers of one webhook.
pub const MAX_WEBHOOK_HEADERS: usize = 32;
/// A custom header's name.
pub const MAX_HEADER_NAME_LEN: usize = 256;
/// A custom header's value (template).
pub const MAX_HEADER_VALUE_LEN: usize = 4096;
/// Triggers of one webhook.
pub const MAX_WEBHOOK_TRIGGERS: usize = 64;

/// Artefact filters of one automation rule.
pub const MAX_RULE_FILTERS: usize = 100;
/// A rule's filter entry, `match_ref`, `match` regex, or version policy constraint/pattern.
pub const MAX_PATTERN_LEN: usize = 1024;

/// The largest pipeline definition (YAML) accepted, in bytes.
pub const MAX_PIPELINE_DEFINITION_BYTES: usize = 256 * 1024;
/// Jobs in one pipeline.
pub const MAX_PIPELINE_JOBS: usize = 100;
/// Steps in one job.
pub const MAX_JOB_STEPS: usize = 100;
/// The longest `timeout-minutes` of a run, job or step: 30 days (approvals can wait long).
pub const MAX_PIPELINE_TIMEOUT_MINUTES: u32 = 30 * 24 * 60;

/// How far in the future a token may expire: ten years, in milliseconds.
pub const MAX_TOKEN_LIFETIME_MS: i64 = 10 * 366 * 24 * 60 * 60 * 1000;

/// Deltas in one `PATCH …/deltas/{id}` array.
pub const MAX_DELTA_PATCHES: usize = 100;
/// Entries of a delta's `modules.add`, `modules.remove` and `modules.update` together, and of
/// `shared`.
pub const MAX_DELTA_ENTRIES: usize = 1000;

/// Kubernetes secret references of one registry.
pub const MAX_REGISTRY_SECRETS: usize = 64;
/// A registry credential (username or password; cloud keys run to a few kilobytes).
pub const MAX_CREDENTIAL_LEN: usize = 16384;

/// Top-level `inputs` of one pipeline run (a definition declares a handful).
pub const MAX_RUN_INPUTS: usize = 100;
/// Values of one repeated query filter (`status=`, `app=`, `pipeline=`, `run=`) of a run,
/// job or approval list: beyond it a list is refused (a database bounds its parameters).
pub const MAX_FILTER_VALUES: usize = 100;

/// Refuses `value` longer than `max` bytes.
pub fn check_len(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.len() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} bytes, not {}", value.len()),
        ));
    }
    Ok(())
}

/// Refuses an optional `value` longer than `max` bytes.
pub fn check_opt_len(field: &str, value: Option<&str>, max: usize) -> Result<(), ValidationError> {
    value.map_or(Ok(()), |value| check_len(field, value, max))
}

/// Refuses more than `max` entries.
pub fn check_count(field: &str, count: usize, max: usize) -> Result<(), ValidationError> {
    if count > max {
        return Err(ValidationError::new(
            field,
            format!("must have at most {max} entries, not {count}"),
        ));
    }
    Ok(())
}

/// A deploy target's `timeout_seconds`: 1 to [`MAX_TARGET_TIMEOUT_SECONDS`].
pub fn check_target_timeout(seconds: u64) -> Result<(), ValidationError> {
    if !(1..=MAX_TARGET_TIMEOUT_SECONDS).contains(&seconds) {
        return Err(ValidationError::new(
            "timeout_seconds",
            format!("must be 1 to {MAX_TARGET_TIMEOUT_SECONDS} (one day), not {seconds}"),
        ));
    }
    Ok(())
}

/// A compose target's `auto_heal_after_seconds`: 1 to [`MAX_AUTO_HEAL_AFTER_SECONDS`] (0
/// would redeploy at the first sight of drift, with no time for a hand-made fix to settle).
pub fn check_auto_heal_after(seconds: u64) -> Result<(), ValidationError> {
    if !(1..=MAX_AUTO_HEAL_AFTER_SECONDS).contains(&seconds) {
        return Err(ValidationError::new(
            "auto_heal_after_seconds",
            format!("must be 1 to {MAX_AUTO_HEAL_AFTER_SECONDS} (one day), not {seconds}"),
        ));
    }
    Ok(())
}

/// A token's expiry (Unix milliseconds): at most [`MAX_TOKEN_LIFETIME_MS`] after `now`.
pub fn check_token_expiry(field: &str, expires_at: i64, now: i64) -> Result<(), ValidationError> {
    if expires_at.saturating_sub(now) > MAX_TOKEN_LIFETIME_MS {
        return Err(ValidationError::new(
            field,
            "must be at most ten years from now",
        ));
    }
    Ok(())
}

/// A YAML document's nesting and scanning work: at most [`MAX_DOCUMENT_DEPTH`] and
/// [`MAX_DOCUMENT_WORK`], checked before parsing.
pub fn check_document_depth(field: &str, text: &[u8]) -> Result<(), ValidationError> {
    check_yaml_depth(text, MAX_DOCUMENT_DEPTH, MAX_DOCUMENT_WORK).map_err(|refused| {
        let message = match refused {
            Refused::TooDeep { line } => {
                format!("nests deeper than {MAX_DOCUMENT_DEPTH} levels (at line {line})")
            }
            Refused::TooComplex { line } => format!(
                "nests too many collections too deeply to parse (at line {line}); \
                 send a flatter document"
            ),
        };
        ValidationError::new(field, message)
    })
}

#[cfg(test)]
mod tests;
