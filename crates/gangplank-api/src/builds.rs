//! Builds: an application's build definition (what to clone, build and push), its builds with
//! their logs, and the contract with a builder agent (`POST /builds`, `GET /builds/{id}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An application's build definition, as sent to `PUT …/apps/{app}/build-definition`. Absent
/// fields take their defaults; the clone token, once set, is kept when a later `PUT` leaves
/// it out (send `""` to remove it).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildDefinitionRequest {
    /// The git repository to clone, `http://` or `https://`, with no credentials in it.
    #[schema(example = "https://github.com/acme/shop.git")]
    pub clone_url: String,
    /// A token to clone with (sent as HTTP basic auth, user `x-access-token`, as GitHub
    /// expects); sealed at rest and never shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_token: Option<String>,
    /// Branches a push must be to (`main`, or a full ref `refs/heads/main`). Default `["main"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
    /// The Dockerfile, relative to the repository root. Default `Dockerfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The build context, relative to the repository root. Default `.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// `--build-arg` values. They are kept in the image's history, so no secrets here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// The repository to push to, with its registry host: `host/path`, no tag.
    #[schema(example = "registry.example.com/shop/web")]
    pub image: String,
    /// Tags to push, templated from `${commit}`, `${short_commit}`, `${branch}` and `${ref}`.
    /// Default `["${commit}", "latest"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The base URL of the `gangplank agent` (configured with `[builder]`) that builds.
    #[schema(example = "http://builder.internal:8686")]
    pub builder: String,
    /// A build is stopped after this many seconds. Default 1800, at most 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 86400)]
    pub timeout_seconds: Option<u64>,
}

impl std::fmt::Debug for BuildDefinitionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildDefinitionRequest")
            .field("clone_url", &self.clone_url)
            .field(
                "clone_token",
                &self.clone_token.as_ref().map(|_| "[redacted]"),
            )
            .field("branches", &self.branches)
            .field("dockerfile", &self.dockerfile)
            .field("context", &self.context)
            .field("build_args", &self.build_args)
            .field("image", &self.image)
            .field("tags", &self.tags)
            .field("builder", &self.builder)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

/// A build definition as stored (defaults filled in; the token never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuildDefinition {
    pub app_id: String,
    pub clone_url: String,
    /// Whether a clone token is set.
    pub has_clone_token: bool,
    pub branches: Vec<String>,
    pub dockerfile: String,
    pub context: String,
    pub build_args: BTreeMap<String, String>,
    pub image: String,
    pub tags: Vec<String>,
    pub builder: String,
    pub timeout_seconds: u64,
    pub updated_at: String,
    pub updated_by: String,
}

/// `POST …/apps/{app}/builds`: build a commit now. Without `commit`, the head of `ref` (default
/// the definition's first branch) at the time the builder clones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildRunRequest {
    /// A full commit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-f]{40}([0-9a-f]{24})?$")]
    pub commit: Option<String>,
    /// A branch (`main`) or full ref (`refs/heads/main`).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
}

/// A build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Build {
    pub id: String,
    pub app_id: String,
    /// `queued`, `running`, `succeeded`, `failed` (the build or push failed), `errored` (the
    /// builder could not be reached or lost the build), `cancelled` or `superseded` (a newer
    /// push to the same branch came while this one was queued).
    pub status: String,
    /// The commit built; empty until the builder resolved it when none was asked for.
    pub commit: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// What asked for it: `github` (a push delivery) or `api`.
    pub trigger: String,
    /// The inbound delivery that queued it, if any.
    pub delivery_id: String,
    pub image: String,
    /// The tags pushed (templated).
    pub tags: Vec<String>,
    /// The digest the registry reports for the pushed image.
    pub digest: String,
    /// The artefact version registered from it.
    pub version_id: String,
    /// Why it ended as it did, in one sentence; empty while it runs and on success.
    pub message: String,
    pub created_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

/// Lines of a build's log, from `GET …/builds/{id}/logs?from=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuildLog {
    /// The lines from `from` on (each numbered from 0).
    pub lines: Vec<String>,
    /// Where the next request should start (`from` + the number of lines).
    pub next: u64,
    /// The build's status; the log is complete once it is final.
    pub status: String,
}

/// What the server sends a builder agent's `POST /builds`. A repeated `id` answers the build
/// it started. Secrets (the clone token) never appear in `Debug` or in the agent's answers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentBuildRequest {
    pub id: String,
    pub clone_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_token: Option<String>,
    /// The ref to fetch (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The exact commit to build (40 or 64 hex digits); the head of `ref` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub dockerfile: String,
    pub context: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// The repository to push to (`host/path`).
    pub image: String,
    /// Tag templates, rendered by the agent once it knows the commit
    /// (`gangplank_core::build::render_tags`).
    pub tags: Vec<String>,
    /// The Gangplank registry whose credentials the agent fetches (with its own agent token,
    /// `[credentials]`) to push; none when the registry needs no login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,
    pub timeout_seconds: u64,
}

impl std::fmt::Debug for AgentBuildRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBuildRequest")
            .field("id", &self.id)
            .field("clone_url", &self.clone_url)
            .field(
                "clone_token",
                &self.clone_token.as_ref().map(|_| "[redacted]"),
            )
            .field("ref", &self.git_ref)
            .field("commit", &self.commit)
            .field("dockerfile", &self.dockerfile)
            .field("context", &self.context)
            .field("build_args", &self.build_args)
            .field("image", &self.image)
            .field("tags", &self.tags)
            .field("registry_id", &self.registry_id)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

/// Where a build on an agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentBuildStatus {
    /// Accepted; waiting for one of the builder's slots.
    Pending,
    Running,
    Succeeded,
    /// Clone, build or push failed; `message` says which and why.
    Failed,
    Cancelled,
}

impl AgentBuildStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, AgentBuildStatus::Pending | AgentBuildStatus::Running)
    }
}

/// A build on an agent, as `GET /builds/{id}?from=N` answers it (a long poll with `wait=S`,
/// answered early when the build changes or logs a line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentBuild {
    pub id: String,
    pub status: AgentBuildStatus,
    /// The commit checked out (known once cloned).
    #[serde(default)]
    pub commit: String,
    /// The tags pushed.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The manifest digest `docker push` reported.
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub message: String,
    /// Log lines from `from` on; secrets are redacted.
    #[serde(default)]
    pub lines: Vec<String>,
    /// The number of the first of `lines`: lines before it were dropped from the agent's
    /// bounded buffer (the server then records that some were lost).
    #[serde(default)]
    pub first_line: u64,
    /// Where the next request should start.
    pub next: u64,
}
