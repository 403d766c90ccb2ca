//! Registry watches: a repository whose tags Gangplank lists on an interval, registering new
//! ones (verified through the registry) where the registry cannot send an event.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A watch to create. At most one of `semver` and `regex`; with neither every tag matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchRequest {
    /// The repository, with its registry host: `host/path`, no tag or digest.
    #[schema(example = "registry.example.com/team/app")]
    pub image: String,
    /// A semver range tags must satisfy (`>=1.2, <2`); pre-releases never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// A regex tags must match (anywhere; anchor with `^…$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Seconds between polls: default 300, at least the server's minimum (30 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<i64>,
}

/// A watch and how its polling goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Watch {
    pub id: String,
    pub image: String,
    /// `semver`, `regex` or `all`.
    pub filter: String,
    /// The range or regex; empty for `all`.
    pub pattern: String,
    pub interval_seconds: i64,
    pub next_poll_at: String,
    /// Absent until the first poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_polled_at: Option<String>,
    /// Why the last poll failed (or was put off); empty when it went well.
    pub last_error: String,
    pub created_at: String,
    pub created_by: String,
}
