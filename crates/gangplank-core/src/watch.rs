//! Registry watches: which listed tags a watch accepts (a semver range, a regex, or all),
//! which of them are new (listed minus seen, in registration order), and the per-registry
//! request budget and back-off that all watches of one registry host share. Pure: listing,
//! clocks and storage belong to the server.

use std::collections::{BTreeSet, HashMap};

use regex::{Regex, RegexBuilder};

use crate::ValidationError;
use crate::image::RepositoryName;

/// The default polling interval.
pub const DEFAULT_INTERVAL_SECONDS: i64 = 300;
/// The longest interval accepted (a day).
pub const MAX_INTERVAL_SECONDS: i64 = 86_400;
/// The longest regex or range accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 512;
/// The compiled size a regex may reach: hostile patterns fail to compile instead of eating
/// memory (the `regex` crate runs in linear time, so matching itself cannot be made slow).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Which tags a watch accepts.
#[derive(Debug, Clone)]
pub enum TagFilter {
    /// Every tag.
    All,
    /// Tags that are semantic versions (an optional leading `v`) in the range; pre-releases
    /// never match, as a watch registering `2.0.0-rc.1` for `>=1, <3` would surprise.
    Semver(semver::VersionReq),
    /// Tags the regex matches anywhere (anchor it with `^…$` to match whole tags).
    Regex(Regex),
}

impl TagFilter {
    /// Parses a filter of `kind` (`all`, `semver`, `regex`) and its pattern (empty for `all`).
    pub fn parse(kind: &str, pattern: &str) -> Result<TagFilter, ValidationError> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(ValidationError::new(
                kind_field(kind),
                format!("must be at most {MAX_PATTERN_LEN} bytes"),
            ));
        }
        match kind {
            "all" if pattern.is_empty() => Ok(TagFilter::All),
            "all" => Err(ValidationError::new(
                "filter",
                "takes no pattern for \"all\"",
            )),
            "semver" => semver::VersionReq::parse(pattern)
                .map(TagFilter::Semver)
                .map_err(|e| ValidationError::new("semver", format!("not a semver range: {e}"))),
            "regex" if pattern.is_empty() => {
                Err(ValidationError::new("regex", "must not be empty"))
            }
            "regex" => RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map(TagFilter::Regex)
                .map_err(|e| ValidationError::new("regex", format!("not a valid regex: {e}"))),
            _ => Err(ValidationError::new(
                "filter",
                "must be \"semver\", \"regex\" or \"all\"",
            )),
        }
    }

    /// Whether the filter accepts `tag`.
    pub fn accepts(&self, tag: &str) -> bool {
        match self {
            TagFilter::All => true,
            TagFilter::Regex(re) => re.is_match(tag),
            TagFilter::Semver(req) => version_of(tag).is_some_and(|v| req.matches(&v)),
        }
    }
}

fn kind_field(kind: &str) -> &'static str {
    match kind {
        "semver" => "semver",
        "regex" => "regex",
        _ => "filter",
    }
}

/// The release version a tag names (`1.2.3` or `v1.2.3`), if it names one.
fn version_of(tag: &str) -> Option<semver::Version> {
    let version = semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()?;
    version.pre.is_empty().then_some(version)
}

/// Parses a watch's image: `host/path`, a repository without tag or digest, with an explicit
/// registry host (a watch polls one registry; Docker Hub is `docker.io/…`).
pub fn parse_image(image: &str) -> Result<RepositoryName, ValidationError> {
    let has_host = image.split_once('/').is_some_and(|(first, _)| {
        first.contains('.') || first.contains(':') || first == "localhost"
    });
    if !has_host {
        return Err(ValidationError::new(
            "image",
            "must name the registry host: host/path (docker.io/library/nginx)",
        ));
    }
    RepositoryName::parse(image).map_err(|m| ValidationError::new("image", m))
}

/// Checks an interval in seconds: at least `min_seconds` (the server's floor), at most a day.
pub fn check_interval(seconds: i64, min_seconds: i64) -> Result<i64, ValidationError> {
    if seconds < min_seconds || seconds > MAX_INTERVAL_SECONDS {
        return Err(ValidationError::new(
            "interval_seconds",
            format!("must be {min_seconds} to {MAX_INTERVAL_SECONDS} seconds"),
        ));
    }
    Ok(seconds)
}

/// What a poll found to do, given the tags the registry listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTags {
    /// Accepted tags not seen before, to register, oldest first: by version for a semver
    /// filter, else in the registry's listing order.
    pub register: Vec<String>,
    /// Accepted tags to record as seen without registering (a watch's first poll takes the
    /// registry as it finds it: like Keel and Argo CD Image Updater, it registers nothing
    /// historical, only what is pushed after the watch exists).
    pub baseline: Vec<String>,
}

/// Decides which of `listed` are new for a watch that has seen `seen`; `first_poll` records
/// the accepted tags as the baseline instead of registering them.
pub fn new_tags(
    filter: &TagFilter,
    listed: &[String],
    seen: &BTreeSet<String>,
    first_poll: bool,
) -> NewTags {
    let mut unique = BTreeSet::new();
    let mut fresh: Vec<String> = listed
        .iter()
        .filter(|tag| filter.accepts(tag) && !seen.contains(*tag) && unique.insert(tag.as_str()))
        .cloned()
        .collect();
    if let TagFilter::Semver(_) = filter {
        // Stable: `1.2.3` and `v1.2.3` keep the registry's order between them.
        fresh.sort_by_key(|tag| version_of(tag));
    }
    if first_poll {
        NewTags {
            register: Vec::new(),
            baseline: fresh,
        }
    } else {
        NewTags {
            register: fresh,
            baseline: Vec::new(),
        }
    }
}

/// The tag-list requests all watches of one registry host share: at most `per_minute` in any
/// minute-long window, and none before a back-off (a 429) has passed. Times are Unix ms.
#[derive(Debug, Clone)]
pub struct RegistryBudget {
    per_minute: u32,
    hosts: HashMap<String, HostState>,
}

#[derive(Debug, Clone, Default)]
struct HostState {
    window_start: i64,
    used: u32,
    backoff_until: i64,
}

/// Whether a watch may list its tags now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (the request is counted).
    Go,
    /// Not before this time: the window's budget is spent.
    Spent(i64),
    /// Not before this time: the registry asked to wait (a 429).
    BackedOff(i64),
}

impl RegistryBudget {
    /// A budget of `per_minute` tag-list requests per host (at least 1).
    pub fn new(per_minute: u32) -> RegistryBudget {
        RegistryBudget {
            per_minute: per_minute.max(1),
            hosts: HashMap::new(),
        }
    }

    /// Asks to send one tag-list request to `host` at `now`.
    pub fn admit(&mut self, host: &str, now: i64) -> Admission {
        let state = self.hosts.entry(host.to_owned()).or_default();
        if now < state.backoff_until {
            return Admission::BackedOff(state.backoff_until);
        }
        if state.used == 0 || now >= state.window_start + 60_000 {
            state.window_start = now;
            state.used = 0;
        }
        if state.used >= self.per_minute {
            return Admission::Spent(state.window_start + 60_000);
        }
        state.used += 1;
        Admission::Go
    }

    /// The registry answered 429: nothing goes to `host` before `until`.
    pub fn back_off(&mut self, host: &str, until: i64) {
        let state = self.hosts.entry(host.to_owned()).or_default();
        state.backoff_until = state.backoff_until.max(until);
    }
}

#[cfg(test)]
mod tests;
