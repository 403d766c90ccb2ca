//! Builds (seed 002): a build's lifecycle, which pushes a definition builds (its branch
//! filter), the tags it pushes (templates over the commit and ref), and the rules a build
//! definition's fields must satisfy. No I/O: the server and the builder agent call these.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::ValidationError;
use crate::pipeline::lifecycle::IllegalTransition;

/// Default and largest build timeout, in seconds.
pub const DEFAULT_BUILD_TIMEOUT_SECONDS: u64 = 1800;
pub const MAX_BUILD_TIMEOUT_SECONDS: u64 = 86_400;
/// Bounds on a definition's lists (they travel in every build request).
pub const MAX_BRANCHES: usize = 32;
pub const MAX_TAGS: usize = 16;
pub const MAX_BUILD_ARGS: usize = 64;
/// Longest build-arg value, clone URL, path or template, in bytes.
pub const MAX_FIELD_LEN: usize = 2048;
/// Lines of a build's log kept by the server; later lines are counted, not stored.
pub const MAX_LOG_LINES: u64 = 20_000;
/// Longest log line kept, in bytes (longer lines are cut on a character boundary).
pub const MAX_LOG_LINE: usize = 4096;

/// Where a build is. `failed` is the build's own fault (a failing `docker build`, a push the
/// registry refused); `errored` is technical (the builder unreachable, or it lost the build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Errored,
    Cancelled,
    /// A newer push to the same branch arrived while this one was queued.
    Superseded,
}

/// What happens to a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildEvent {
    Start,
    Succeed,
    Fail,
    Error,
    Cancel,
    Supersede,
}

impl BuildStatus {
    pub const ALL: [BuildStatus; 7] = [
        BuildStatus::Queued,
        BuildStatus::Running,
        BuildStatus::Succeeded,
        BuildStatus::Failed,
        BuildStatus::Errored,
        BuildStatus::Cancelled,
        BuildStatus::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Queued => "queued",
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
            BuildStatus::Errored => "errored",
            BuildStatus::Cancelled => "cancelled",
            BuildStatus::Superseded => "superseded",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, BuildStatus::Queued | BuildStatus::Running)
    }

    /// The status after `event`, or why it cannot happen.
    pub fn next(self, event: BuildEvent) -> Result<BuildStatus, IllegalTransition> {
        use BuildStatus::*;
        let next = match (self, event) {
            (Queued, BuildEvent::Start) => Some(Running),
            (Running, BuildEvent::Succeed) => Some(Succeeded),
            (Running, BuildEvent::Fail) => Some(Failed),
            (Queued | Running, BuildEvent::Error) => Some(Errored),
            (Queued | Running, BuildEvent::Cancel) => Some(Cancelled),
            (Queued, BuildEvent::Supersede) => Some(Superseded),
            _ => None,
        };
        next.ok_or(IllegalTransition {
            subject: "a build",
            from: self.as_str(),
            verb: match event {
                BuildEvent::Start => "started",
                BuildEvent::Succeed => "succeeded",
                BuildEvent::Fail => "failed",
                BuildEvent::Error => "errored",
                BuildEvent::Cancel => "cancelled",
                BuildEvent::Supersede => "superseded",
            },
        })
    }
}

impl FromStr for BuildStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BuildStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown build status {s:?}"))
    }
}

/// `main` → `refs/heads/main`; a full ref is kept.
pub fn full_ref(branch: &str) -> String {
    if branch.starts_with("refs/") {
        branch.to_owned()
    } else {
        format!("refs/heads/{branch}")
    }
}

/// Whether a push to `git_ref` passes the branch filter (seed 002's `$.ref` check).
pub fn branch_matches(branches: &[String], git_ref: &str) -> bool {
    branches.iter().any(|branch| full_ref(branch) == git_ref)
}

/// A commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub fn check_commit(commit: &str) -> Result<(), String> {
    let hex = commit
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex && matches!(commit.len(), 40 | 64) {
        Ok(())
    } else {
        Err("must be a full commit id: 40 or 64 lowercase hex digits".to_owned())
    }
}

/// A ref a build may fetch: `refs/…`, git's ref-name rules reduced to what can never be
/// mistaken for an option or a path outside `refs/`.
pub fn check_ref(git_ref: &str) -> Result<(), String> {
    let ok = git_ref.starts_with("refs/")
        && git_ref.len() <= 255
        && !git_ref.ends_with('/')
        && !git_ref.ends_with(".lock")
        && !git_ref.contains("..")
        && !git_ref.contains("//")
        && !git_ref.contains("@{")
        && git_ref.bytes().all(|b| {
            b > b' ' && b != 0x7f && !matches!(b, b'~' | b'^' | b':' | b'?' | b'*' | b'[' | b'\\')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{git_ref:?} is not a valid git ref (refs/heads/NAME)"
        ))
    }
}

/// The tags a build pushes: each template with `${commit}`, `${short_commit}` (7 digits),
/// `${branch}` (the ref without `refs/heads/`) and `${ref}` replaced, then `/` made `-`. Every
/// result must be a valid OCI tag; duplicates are dropped, order kept.
pub fn render_tags(
    templates: &[String],
    commit: &str,
    git_ref: &str,
) -> Result<Vec<String>, String> {
    let branch = git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(git_ref);
    let short = &commit[..commit.len().min(7)];
    let mut tags: Vec<String> = Vec::new();
    for template in templates {
        let tag = render(
            template,
            &[
                ("commit", commit),
                ("short_commit", short),
                ("branch", branch),
                ("ref", git_ref),
            ],
        )?
        .replace('/', "-");
        check_tag(&tag).map_err(|e| format!("tag template {template:?} gives {tag:?}: {e}"))?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

fn render(template: &str, values: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("tag template {template:?} has an unclosed \"${{\""))?;
        let name = &after[..end];
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                format!(
                    "tag template {template:?} names ${{{name}}}; known: ${{commit}}, \
                     ${{short_commit}}, ${{branch}}, ${{ref}}"
                )
            })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// An OCI tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if first_ok
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Ok(())
    } else {
        Err("not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-], at most 128)".to_owned())
    }
}

/// A path inside the cloned repository: relative, no `..`, no NUL, not an option.
fn check_repo_path(field: &str, path: &str) -> Result<(), ValidationError> {
    let bad = path.is_empty()
        || path.len() > MAX_FIELD_LEN
        || path.starts_with('/')
        || path.starts_with('-')
        || path.contains('\0')
        || path.contains('\\')
        || path.split('/').any(|part| part == "..");
    if bad {
        Err(ValidationError::new(
            field,
            "must be a relative path inside the repository (no leading /, no ..)",
        ))
    } else {
        Ok(())
    }
}

/// An `http://` or `https://` URL with a host and no credentials in it.
pub fn check_http_url(field: &str, url: &str) -> Result<(), ValidationError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(ValidationError::new(
            field,
            "must be an http:// or https:// URL",
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err(ValidationError::new(field, "must name a host"));
    }
    if authority.contains('@') {
        return Err(ValidationError::new(
            field,
            "must not carry credentials (use clone_token)",
        ));
    }
    if url.len() > MAX_FIELD_LEN || url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ValidationError::new(
            field,
            "must be at most 2048 bytes with no spaces or control characters",
        ));
    }
    Ok(())
}

/// A build definition with its defaults filled in, every field checked (stored as JSON, and
/// frozen into each build when it is queued).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Definition {
    pub clone_url: String,
    pub branches: Vec<String>,
    pub dockerfile: String,
    pub context: String,
    pub build_args: BTreeMap<String, String>,
    pub image: String,
    pub tags: Vec<String>,
    pub builder: String,
    pub timeout_seconds: u64,
}

/// What a caller sent for a definition, before defaults.
#[derive(Debug, Clone)]
pub struct DefinitionInput<'a> {
    pub clone_url: &'a str,
    pub branches: &'a [String],
    pub dockerfile: Option<&'a str>,
    pub context: Option<&'a str>,
    pub build_args: &'a BTreeMap<String, String>,
    pub image: &'a str,
    pub tags: &'a [String],
    pub builder: &'a str,
    pub timeout_seconds: Option<u64>,
}

impl Default for DefinitionInput<'_> {
    fn default() -> Self {
        const NO_ARGS: &BTreeMap<String, String> = &BTreeMap::new();
        DefinitionInput {
            clone_url: "",
            branches: &[],
            dockerfile: None,
            context: None,
            build_args: NO_ARGS,
            image: "",
            tags: &[],
            builder: "",
            timeout_seconds: None,
        }
    }
}

/// Checks a definition and fills in its defaults.
pub fn check_definition(input: &DefinitionInput<'_>) -> Result<Definition, ValidationError> {
    check_http_url("clone_url", input.clone_url)?;
    check_http_url("builder", input.builder)?;
    let branches = if input.branches.is_empty() {
        vec!["main".to_owned()]
    } else {
        input.branches.to_vec()
    };
    if branches.len() > MAX_BRANCHES {
        return Err(ValidationError::new(
            "branches",
            format!("at most {MAX_BRANCHES}"),
        ));
    }
    for (i, branch) in branches.iter().enumerate() {
        check_ref(&full_ref(branch))
            .map_err(|e| ValidationError::new(format!("branches[{i}]"), e))?;
    }
    let dockerfile = input.dockerfile.unwrap_or("Dockerfile").to_owned();
    check_repo_path("dockerfile", &dockerfile)?;
    let context = input.context.unwrap_or(".").to_owned();
    check_repo_path("context", &context)?;
    if input.build_args.len() > MAX_BUILD_ARGS {
        return Err(ValidationError::new(
            "build_args",
            format!("at most {MAX_BUILD_ARGS}"),
        ));
    }
    for (name, value) in input.build_args {
        let name_ok = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.len() <= 128
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            return Err(ValidationError::new(
                format!("build_args.{name}"),
                "a name must be letters, digits and _, not starting with a digit",
            ));
        }
        if value.len() > MAX_FIELD_LEN || value.contains('\0') {
            return Err(ValidationError::new(
                format!("build_args.{name}"),
                "a value must be at most 2048 bytes, with no NUL",
            ));
        }
    }
    let repository = crate::watch::parse_image(input.image)?;
    let tags = if input.tags.is_empty() {
        vec!["${commit}".to_owned(), "latest".to_owned()]
    } else {
        input.tags.to_vec()
    };
    if tags.len() > MAX_TAGS {
        return Err(ValidationError::new("tags", format!("at most {MAX_TAGS}")));
    }
    let sample_commit = "0123456789abcdef0123456789abcdef01234567";
    render_tags(&tags, sample_commit, &full_ref(&branches[0]))
        .map_err(|e| ValidationError::new("tags", e))?;
    let timeout_seconds = input
        .timeout_seconds
        .unwrap_or(DEFAULT_BUILD_TIMEOUT_SECONDS);
    if timeout_seconds == 0 || timeout_seconds > MAX_BUILD_TIMEOUT_SECONDS {
        return Err(ValidationError::new(
            "timeout_seconds",
            format!("must be between 1 and {MAX_BUILD_TIMEOUT_SECONDS}"),
        ));
    }
    Ok(Definition {
        clone_url: input.clone_url.to_owned(),
        branches,
        dockerfile,
        context,
        build_args: input.build_args.clone(),
        image: repository.to_string(),
        tags,
        builder: input.builder.trim_end_matches('/').to_owned(),
        timeout_seconds,
    })
}

/// Whether two clone URLs name the same repository: scheme and host case-insensitive, a
/// trailing `/` or `.git` ignored (GitHub's `clone_url` ends in `.git`, its `html_url` not).
pub fn same_repository(a: &str, b: &str) -> bool {
    fn key(url: &str) -> String {
        let url = url.trim_end_matches('/');
        let url = url.strip_suffix(".git").unwrap_or(url);
        match url.split_once("://") {
            Some((scheme, rest)) => {
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                format!(
                    "{}://{}/{path}",
                    scheme.to_ascii_lowercase(),
                    host.to_ascii_lowercase()
                )
            }
            None => url.to_owned(),
        }
    }
    key(a) == key(b)
}

/// A log line as kept: at most `MAX_LOG_LINE` bytes, cut on a character boundary, with every
/// occurrence of each secret replaced.
pub fn keep_line(line: &str, secrets: &[&str]) -> String {
    let mut line = line.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        line = line.replace(secret, "[redacted]");
    }
    if line.len() > MAX_LOG_LINE {
        let mut end = MAX_LOG_LINE;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}

/// Longest build id a builder agent takes (it names the build's directory and local tag).
pub const MAX_AGENT_BUILD_ID_LEN: usize = 128;

/// What a builder agent is asked to build (`AgentBuildRequest`'s fields, borrowed).
#[derive(Debug, Clone, Copy)]
pub struct AgentBuildInput<'a> {
    pub id: &'a str,
    pub clone_url: &'a str,
    pub git_ref: &'a str,
    pub commit: Option<&'a str>,
    pub dockerfile: &'a str,
    pub context: &'a str,
    pub build_args: &'a BTreeMap<String, String>,
    pub image: &'a str,
    pub tags: &'a [String],
    pub registry_id: Option<&'a str>,
    pub timeout_seconds: u64,
}

/// Checks a builder agent's request with the definition's rules (the agent trusts no field:
/// each ends up in a git or docker argv or a path), plus its own: the id (a directory and a
/// local tag), the exact ref and commit, at least one tag, and the registry id (a URL path
/// segment).
pub fn check_agent_build(input: &AgentBuildInput<'_>) -> Result<(), ValidationError> {
    let id_ok = !input.id.is_empty()
        && input.id.len() <= MAX_AGENT_BUILD_ID_LEN
        && input.id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && input
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !id_ok {
        return Err(ValidationError::new(
            "id",
            "must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    check_ref(input.git_ref).map_err(|e| ValidationError::new("ref", e))?;
    if let Some(commit) = input.commit {
        check_commit(commit).map_err(|e| ValidationError::new("commit", e))?;
    }
    if input.tags.is_empty() {
        return Err(ValidationError::new("tags", "at least one tag template"));
    }
    if let Some(registry_id) = input.registry_id {
        let ok = !registry_id.is_empty()
            && registry_id.len() <= 128
            && !registry_id.starts_with('.')
            && registry_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(ValidationError::new(
                "registry_id",
                "must be letters, digits, '.', '_' or '-'",
            ));
        }
    }
    // The request is the definition as the server filled it in; the ref passed above, so the
    // definition's branch check passes, and the agent has no builder URL of its own: the
    // clone URL stands in for it (it must pass the same check).
    let definition = check_definition(&DefinitionInput {
        clone_url: input.clone_url,
        branches: std::slice::from_ref(&input.git_ref.to_owned()),
        dockerfile: Some(input.dockerfile),
        context: Some(input.context),
        build_args: input.build_args,
        image: input.image,
        tags: input.tags,
        builder: input.clone_url,
        timeout_seconds: Some(input.timeout_seconds),
    })?;
    // A repository as given, not one the parser normalised (`docker push` would be told
    // another name than the server recorded).
    if definition.image != input.image {
        return Err(ValidationError::new(
            "image",
            format!("must be written as {:?}", definition.image),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
