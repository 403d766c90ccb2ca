//! Automation rules (reference §2): which newly registered container versions an environment
//! deploys by itself, the delta it deploys, and a reason for every version it does not.

use std::fmt;

use regex::Regex;

use crate::ValidationError;
use crate::delta::DeltaContent;
use crate::image::{ImageReference, RepositoryName, pinned_image};
use crate::json_patch::{UpdateAction, escape_token};
use crate::set::Set;

/// The legacy `update_to`: which kind of ref the legacy `match` applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateTo {
    Branch,
    Tag,
}

impl UpdateTo {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateTo::Branch => "branch",
            UpdateTo::Tag => "tag",
        }
    }
}

/// Gangplank's addition: which versions, by their version string, a rule accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionPolicy {
    /// A semver requirement (`^1.2`, `>=2, <3`); a leading `v` on versions is ignored.
    /// Pre-releases satisfy it only when `include_prerelease` is set.
    Semver {
        constraint: String,
        include_prerelease: bool,
    },
    /// A regex the version string must match (unanchored, like `match_ref`).
    Regex { pattern: String },
}

/// A rule as the API receives it, before validation. `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct RuleInput {
    pub kind: String,
    pub active: Option<bool>,
    pub artefacts_filter: Option<Vec<String>>,
    pub exclude_artefacts_filter: Option<bool>,
    pub images_filter: Option<Vec<String>>,
    pub exclude_images_filter: Option<bool>,
    pub match_ref: Option<String>,
    pub legacy_match: Option<String>,
    pub update_to: Option<String>,
    pub version_policy: Option<VersionPolicy>,
}

/// A valid rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub active: bool,
    /// Artefact names; empty means all.
    pub artefacts_filter: Vec<String>,
    /// `true`: the filter lists names to exclude; `false`: the only names to include.
    pub exclude_artefacts_filter: bool,
    /// A regex on the full ref; empty matches everything.
    pub match_ref: String,
    /// Deprecated: a regex on the bare branch or tag name, chosen by `update_to`.
    pub legacy_match: String,
    pub update_to: Option<UpdateTo>,
    pub version_policy: Option<VersionPolicy>,
}

/// A version being considered.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub git_ref: &'a str,
}

/// Why a version was not deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Inactive,
    NotInFilter,
    Excluded,
    RefMismatch {
        git_ref: String,
        pattern: String,
    },
    PolicyMismatch {
        version: String,
        policy: String,
    },
    NoWorkload,
    Held,
    Downgrade {
        running: String,
    },
    NoRule,
    /// Re-evaluated after `resume`: a newer accepted version of the repository deploys instead.
    Superseded {
        newer: String,
    },
}

impl Skip {
    /// A short machine-readable code for the log.
    pub fn code(&self) -> &'static str {
        match self {
            Skip::Inactive => "inactive",
            Skip::NotInFilter | Skip::Excluded => "filter",
            Skip::RefMismatch { .. } => "ref",
            Skip::PolicyMismatch { .. } => "policy",
            Skip::NoWorkload => "no_workload",
            Skip::Held => "held",
            Skip::Downgrade { .. } => "downgrade",
            Skip::NoRule => "no_rule",
            Skip::Superseded { .. } => "superseded",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Inactive => f.write_str("the rule is not active"),
            Skip::NotInFilter => f.write_str("the artefact is not in artefacts_filter"),
            Skip::Excluded => f.write_str("the artefact is excluded by artefacts_filter"),
            Skip::RefMismatch { git_ref, pattern } => {
                write!(f, "ref {git_ref:?} does not match {pattern:?}")
            }
            Skip::PolicyMismatch { version, policy } => {
                write!(
                    f,
                    "version {version:?} does not satisfy the policy {policy}"
                )
            }
            Skip::NoWorkload => f.write_str("no workload in the environment uses this image"),
            Skip::Held => {
                f.write_str("automation is held after a rollback; resume it to deploy new versions")
            }
            Skip::Downgrade { running } => write!(
                f,
                "the environment runs {running}, registered after this version: automation never downgrades"
            ),
            Skip::NoRule => f.write_str("the environment has no automation rule"),
            Skip::Superseded { newer } => {
                write!(f, "{newer}, a newer version, is deployed instead")
            }
        }
    }
}

impl fmt::Display for VersionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionPolicy::Semver {
                constraint,
                include_prerelease,
            } => {
                write!(f, "semver {constraint:?}")?;
                if *include_prerelease {
                    f.write_str(" (pre-releases included)")?;
                }
                Ok(())
            }
            VersionPolicy::Regex { pattern } => write!(f, "regex {pattern:?}"),
        }
    }
}

impl Rule {
    /// Validates a request per the reference: `type` must be `update`; the deprecated fields
    /// must not be mixed with their replacements; every regex and semver constraint must parse.
    pub fn validate(input: RuleInput) -> Result<Rule, ValidationError> {
        if input.kind != "update" {
            return Err(ValidationError::new("type", "must be \"update\""));
        }
        if input.images_filter.is_some() && input.artefacts_filter.is_some() {
            return Err(ValidationError::new(
                "images_filter",
                "cannot be combined with artefacts_filter (images_filter is deprecated)",
            ));
        }
        if input.exclude_images_filter.is_some() && input.exclude_artefacts_filter.is_some() {
            return Err(ValidationError::new(
                "exclude_images_filter",
                "cannot be combined with exclude_artefacts_filter (exclude_images_filter is deprecated)",
            ));
        }
        let legacy_given = input.legacy_match.as_deref().is_some_and(|m| !m.is_empty())
            || input.update_to.is_some();
        if legacy_given && input.match_ref.as_deref().is_some_and(|m| !m.is_empty()) {
            return Err(ValidationError::new(
                "match_ref",
                "cannot be combined with the deprecated match/update_to",
            ));
        }
        let update_to = match input.update_to.as_deref() {
            None | Some("") => None,
            Some("branch") => Some(UpdateTo::Branch),
            Some("tag") => Some(UpdateTo::Tag),
            Some(_) => {
                return Err(ValidationError::new(
                    "update_to",
                    "must be \"branch\" or \"tag\"",
                ));
            }
        };
        let rule = Rule {
            active: input.active.unwrap_or(true),
            artefacts_filter: input
                .artefacts_filter
                .or(input.images_filter)
                .unwrap_or_default(),
            exclude_artefacts_filter: input
                .exclude_artefacts_filter
                .or(input.exclude_images_filter)
                .unwrap_or(false),
            match_ref: input.match_ref.unwrap_or_default(),
            legacy_match: input.legacy_match.unwrap_or_default(),
            update_to,
            version_policy: input.version_policy,
        };
        rule.compile()?;
        Ok(rule)
    }

    /// Compiles the rule's patterns once for repeated judging.
    pub fn compile(&self) -> Result<CompiledRule, ValidationError> {
        let pattern = |field: &str, text: &str| -> Result<Option<Regex>, ValidationError> {
            if text.is_empty() {
                return Ok(None);
            }
            Regex::new(text)
                .map(Some)
                .map_err(|e| ValidationError::new(field, format!("not a valid regex: {e}")))
        };
        let policy = match &self.version_policy {
            None => None,
            Some(VersionPolicy::Semver { constraint, .. }) => Some(CompiledPolicy::Semver(
                semver::VersionReq::parse(constraint).map_err(|e| {
                    ValidationError::new(
                        "version_policy.constraint",
                        format!("not a semver constraint: {e}"),
                    )
                })?,
            )),
            Some(VersionPolicy::Regex { pattern: p }) => Some(CompiledPolicy::Regex(
                pattern("version_policy.pattern", p)?
                    .unwrap_or_else(|| Regex::new("").expect("the empty regex compiles")),
            )),
        };
        Ok(CompiledRule {
            match_ref: pattern("match_ref", &self.match_ref)?,
            legacy_match: pattern("match", &self.legacy_match)?,
            policy,
            rule: self.clone(),
        })
    }
}

enum CompiledPolicy {
    Semver(semver::VersionReq),
    Regex(Regex),
}

/// A rule with its regexes compiled.
pub struct CompiledRule {
    pub rule: Rule,
    match_ref: Option<Regex>,
    legacy_match: Option<Regex>,
    policy: Option<CompiledPolicy>,
}

impl CompiledRule {
    /// Whether the rule accepts `candidate` on its own terms (activity, filter, ref, policy).
    /// The environment's facts (workloads, hold, downgrade) are judged by [`decide`].
    pub fn judge(&self, candidate: &Candidate<'_>) -> Result<(), Skip> {
        let rule = &self.rule;
        if !rule.active {
            return Err(Skip::Inactive);
        }
        if !rule.artefacts_filter.is_empty() {
            let listed = rule
                .artefacts_filter
                .iter()
                .any(|name| same_artefact(name, candidate.name));
            match (rule.exclude_artefacts_filter, listed) {
                (true, true) => return Err(Skip::Excluded),
                (false, false) => return Err(Skip::NotInFilter),
                _ => {}
            }
        }
        if let Some(re) = &self.match_ref
            && !re.is_match(candidate.git_ref)
        {
            return Err(Skip::RefMismatch {
                git_ref: candidate.git_ref.to_owned(),
                pattern: rule.match_ref.clone(),
            });
        }
        let legacy_default = self.legacy_match.as_ref().map(|_| UpdateTo::Branch);
        if let Some(update_to) = rule.update_to.or(legacy_default) {
            let prefix = match update_to {
                UpdateTo::Branch => "refs/heads/",
                UpdateTo::Tag => "refs/tags/",
            };
            let name = candidate.git_ref.strip_prefix(prefix);
            let matched = match (name, &self.legacy_match) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(name), Some(re)) => re.is_match(name),
            };
            if !matched {
                return Err(Skip::RefMismatch {
                    git_ref: candidate.git_ref.to_owned(),
                    pattern: format!("{} {}", update_to.as_str(), rule.legacy_match),
                });
            }
        }
        if let Some(policy) = &self.policy
            && !policy_accepts(policy, candidate.version, self.include_prerelease())
        {
            return Err(Skip::PolicyMismatch {
                version: candidate.version.to_owned(),
                policy: rule
                    .version_policy
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn include_prerelease(&self) -> bool {
        matches!(
            self.rule.version_policy,
            Some(VersionPolicy::Semver {
                include_prerelease: true,
                ..
            })
        )
    }
}

/// Whether `version` satisfies the policy. For semver, a pre-release satisfies it only when
/// `include_prerelease` is set and its release would (`1.3.0-rc.1` under `^1.2`); the semver
/// crate alone would also admit pre-releases of the constraint's own version.
fn policy_accepts(policy: &CompiledPolicy, version: &str, include_prerelease: bool) -> bool {
    match policy {
        CompiledPolicy::Regex(re) => re.is_match(version),
        CompiledPolicy::Semver(req) => {
            let text = version.strip_prefix('v').unwrap_or(version);
            let Ok(mut parsed) = semver::Version::parse(text) else {
                return false;
            };
            if parsed.pre.is_empty() {
                return req.matches(&parsed);
            }
            if !include_prerelease {
                return false;
            }
            parsed.pre = semver::Prerelease::EMPTY;
            req.matches(&parsed)
        }
    }
}

/// Artefact names are equal when they are the same repository after normalisation
/// (`nginx` ≡ `docker.io/library/nginx`), or, for names that are not repositories, equal text.
pub fn same_artefact(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (RepositoryName::parse(a), RepositoryName::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What the environment already runs, for judging a candidate.
#[derive(Debug, Clone, Default)]
pub struct EnvFacts {
    /// Some workload runs an image of the candidate's repository.
    pub uses_image: bool,
    /// Automation is held after a rollback.
    pub held: bool,
    /// The newest registered version the environment runs of this artefact, as
    /// (registration order, `name:version`), if it runs a registered one.
    pub running: Option<(i64, String)>,
}

/// The decision for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Rule `rule_id` fires.
    Deploy { rule_id: String },
    /// Nothing fires; `rule_id` is the rule whose reason is reported, if any.
    Skip {
        rule_id: Option<String>,
        reason: Skip,
    },
}

/// Decides whether an environment deploys `candidate` (registered as number `seq`), given its
/// rules and facts. The first rule that accepts the version fires; if none does, the reason of
/// the first rule is reported. A firing rule still yields to the environment's facts: no
/// workload uses the image, automation is held, or the version is older than what runs.
pub fn decide(
    rules: &[(String, CompiledRule)],
    candidate: &Candidate<'_>,
    seq: i64,
    facts: &EnvFacts,
) -> Decision {
    let mut first_reason = None;
    for (rule_id, rule) in rules {
        match rule.judge(candidate) {
            Ok(()) => {
                let skip = |reason| Decision::Skip {
                    rule_id: Some(rule_id.clone()),
                    reason,
                };
                if !facts.uses_image {
                    return skip(Skip::NoWorkload);
                }
                if facts.held {
                    return skip(Skip::Held);
                }
                if let Some((running_seq, running)) = &facts.running
                    && *running_seq > seq
                {
                    return skip(Skip::Downgrade {
                        running: running.clone(),
                    });
                }
                return Decision::Deploy {
                    rule_id: rule_id.clone(),
                };
            }
            Err(reason) => {
                first_reason.get_or_insert((rule_id.clone(), reason));
            }
        }
    }
    match first_reason {
        Some((rule_id, reason)) => Decision::Skip {
            rule_id: Some(rule_id),
            reason,
        },
        None => Decision::Skip {
            rule_id: None,
            reason: Skip::NoRule,
        },
    }
}

/// A version waiting to be deployed, in order of arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingVersion {
    pub name: String,
    pub version: String,
    pub digest: String,
}

/// Whether a batch whose first version arrived at `first_arrival` is due at `now` (all in
/// milliseconds). A debounce of 0 makes every batch due at once.
pub fn batch_due(first_arrival: i64, debounce_ms: i64, now: i64) -> bool {
    now >= first_arrival.saturating_add(debounce_ms)
}

/// Seed 000's comment: `Automated Deployment: <name>:<version> <name>:<version>`.
pub fn automated_comment(versions: &[PendingVersion]) -> String {
    let list: Vec<String> = versions
        .iter()
        .map(|v| format!("{}:{}", v.name, v.version))
        .collect();
    format!("Automated Deployment: {}", list.join(" "))
}

/// The delta that points every container running one of the versions' repositories at that
/// version (pinned by digest when known). Later versions of the same repository win. Images
/// already equal produce no action, so a version no workload uses yields an empty delta.
pub fn image_update_delta(set: &Set, versions: &[PendingVersion]) -> DeltaContent {
    let mut delta = DeltaContent::default();
    let containers = set.container_images();
    for version in versions {
        let Ok(repository) = RepositoryName::parse(&version.name) else {
            continue;
        };
        let image = pinned_image(&version.name, &version.version, &version.digest);
        for container in &containers {
            let runs_it = ImageReference::parse(&container.image)
                .is_ok_and(|current| current.repository == repository);
            if !runs_it {
                continue;
            }
            let path = format!(
                "/spec/containers/{}/image",
                escape_token(&container.container)
            );
            let actions = delta
                .modules
                .update
                .entry(container.workload.clone())
                .or_default();
            actions.retain(|a| a.path != path);
            if container.image != image {
                actions.push(UpdateAction::replace(path, image.clone().into()));
            }
        }
    }
    delta
        .modules
        .update
        .retain(|_, actions| !actions.is_empty());
    delta
}

/// The log code of a version queued by the re-evaluation after `resume`.
pub const RESUMED: &str = "resumed";

/// A log reason given by the re-evaluation after `resume`.
pub fn resumed_reason(reason: &str) -> String {
    format!("re-evaluated after resume: {reason}")
}

/// A version skipped while automation was held, judged again by [`decide`] after `resume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reevaluated {
    /// The normalised repository of the version.
    pub repository: String,
    /// Registration order of the version.
    pub seq: i64,
    /// `name:version`, for the reason of the versions it supersedes.
    pub label: String,
    pub decision: Decision,
}

/// What `resume` does with the versions skipped while automation was held: per repository,
/// only the newest version [`decide`] accepts now deploys (older accepted ones are
/// superseded by it: deploying them first would only be undone); the others keep their own
/// reason. The result is in the order of `items`.
pub fn after_resume(items: &[Reevaluated]) -> Vec<Decision> {
    let newest = |repository: &str| {
        items
            .iter()
            .filter(|i| i.repository == repository && matches!(i.decision, Decision::Deploy { .. }))
            .max_by_key(|i| i.seq)
    };
    items
        .iter()
        .map(|item| match &item.decision {
            Decision::Deploy { rule_id } => match newest(&item.repository) {
                Some(winner) if winner.seq != item.seq => Decision::Skip {
                    rule_id: Some(rule_id.clone()),
                    reason: Skip::Superseded {
                        newer: winner.label.clone(),
                    },
                },
                _ => item.decision.clone(),
            },
            skip => skip.clone(),
        })
        .collect()
}

/// The log reason of versions that went into deployment `deploy_id` together (`count` of them).
pub fn deployed_reason(deploy_id: &str, count: usize) -> String {
    if count > 1 {
        format!(
            "merged with {} other version(s) into deployment {deploy_id}",
            count - 1
        )
    } else {
        format!("deployed in deployment {deploy_id}")
    }
}

/// The first error a deployment reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstError<'a> {
    pub code: &'a str,
    pub summary: &'a str,
}

/// The longest error summary an explanation quotes; the deployment's errors hold the rest.
const SUMMARY_CHARS: usize = 120;

/// A deployment's first error in one bounded line: `GP-AGENT-FAILED web: not healthy`
/// (compose output and health logs follow the summary's first line, and stay in the
/// deployment's errors).
pub fn error_line(error: FirstError<'_>) -> String {
    let line = error.summary.lines().next().unwrap_or("").trim();
    let mut summary: String = line.chars().take(SUMMARY_CHARS).collect();
    if line.chars().count() > SUMMARY_CHARS {
        summary.push('…');
    }
    match (error.code.is_empty(), summary.is_empty()) {
        (_, true) => error.code.to_owned(),
        (true, false) => summary,
        (false, false) => format!("{} {summary}", error.code),
    }
}

/// How a deployment ended (or where it is), for an explanation: `succeeded`, `in progress`,
/// `failed: GP-AGENT-FAILED web: not healthy`. `status` is the stored status word; an empty
/// one means the deployment no longer exists.
pub fn deployment_outcome(status: &str, first_error: Option<FirstError<'_>>) -> String {
    match (status, first_error.map(error_line)) {
        ("", _) => "the deployment no longer exists".to_owned(),
        ("failed", Some(line)) if !line.is_empty() => format!("failed: {line}"),
        (other, _) => other.to_owned(),
    }
}

/// The reason an automation log entry gives: a version that went into a deployment
/// (`outcome` `deployed`, `deploy_id` set) says how that deployment ended, since "deployed
/// in X" alone reads as success; every other entry keeps its reason.
pub fn explained_reason(
    outcome: &str,
    reason: &str,
    deploy_id: &str,
    deploy_status: &str,
    first_error: Option<FirstError<'_>>,
) -> String {
    if outcome != "deployed" || deploy_id.is_empty() {
        return reason.to_owned();
    }
    format!(
        "{reason} ({})",
        deployment_outcome(deploy_status, first_error)
    )
}

#[cfg(test)]
mod tests;
