//! Image promotions (Gangplank's own; Humanitec has none): what was copied where, by which
//! run, the destination's versions before and after, and rollbacks.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One promotion or rollback record, newest first in lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImagePromotion {
    pub id: String,
    pub app_id: String,
    /// `promote` or `rollback`.
    pub action: String,
    /// `planned`, `applied`, `failed` or `rolled_back`.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// The pipeline run, job and step index that made it (empty for an API rollback).
    pub run_id: String,
    pub job_id: String,
    pub step_index: i64,
    /// What was copied (a rollback: the version image restored).
    pub source: ImageRef,
    /// The destination repository (`host/path`) and its live tag.
    pub destination: String,
    pub live_tag: String,
    /// The digest live before, and the tag it was archived under (empty: first promotion).
    pub previous_live_digest: String,
    pub archive_tag: String,
    /// A rollback's dropped version tag.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dropped_tag: String,
    pub new_live_digest: String,
    /// The live image's version before and after (empty before a first promotion).
    pub version_before: String,
    pub version_after: String,
    /// Blob bytes that went through Gangplank (0 when the registry mounted every blob).
    pub bytes_moved: i64,
    pub blobs_mounted: i64,
    pub blobs_skipped: i64,
    /// The run's approval responses, as recorded.
    #[schema(value_type = Vec<Object>)]
    pub approvals: serde_json::Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    pub created_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The rollback record that undid this promotion.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rolled_back_by: String,
}

/// An image by repository, tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImageRef {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

/// `POST …/image-promotions/rollback`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// The repository to roll back (`host/path`, no tag).
    #[schema(min_length = 1, max_length = 255)]
    pub repository: String,
    /// The live tag (default `latest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_tag: Option<String>,
    /// The version to return to (default: the highest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `POST …/image-promotions/resume`: lifts the hold a manual rollback put on automatic
/// promotion into a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResumeRequest {
    #[schema(min_length = 1, max_length = 255)]
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_tag: Option<String>,
}
