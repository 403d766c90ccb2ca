//! Pipeline runs, their jobs, steps and step logs, and approval requests: Humanitec's shapes
//! (promotion.md §1.3) byte for byte, plus Gangplank's optional extras on approvals
//! (`required_approvals`, `expires_at`, `responses`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A run of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineRun {
    pub id: String,
    pub etag: String,
    pub org_id: String,
    pub app_id: String,
    /// Environments linked to the run through its inputs or its steps.
    pub env_ids: Vec<String>,
    pub pipeline_id: String,
    pub pipeline_version: String,
    /// `queued`, `executing`, `succeeded`, `failed` or `cancelled`.
    #[schema(value_type = RunStatusName)]
    pub status: String,
    pub status_message: String,
    pub created_at: String,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executing_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_requested_at: Option<String>,
    /// When the run entered `succeeded`, `failed` or `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub timeout_seconds: u64,
    /// `pipeline_call`, `deployment_request` or `artefact`.
    pub trigger: String,
    /// The inputs, frozen when the run was created.
    #[schema(value_type = Object)]
    pub inputs: Value,
    /// The user the run acts as.
    pub run_as: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_group: Option<String>,
    /// Job id → the event it waits for, e.g. `approval(<id>)`.
    pub waiting_for: BTreeMap<String, String>,
}

/// `POST …/pipelines/{pipeline}/runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineRunCreateBody {
    /// The run's inputs, checked against the pipeline's `on.pipeline_call.inputs`.
    #[schema(value_type = Object)]
    pub inputs: serde_json::Map<String, Value>,
}

/// `POST …/pipeline-runs`: a run of the pipeline whose criteria match a deployment request.
/// `trigger` must be `deployment_request`; at most one of `delta_id`, `deployment_id`, `set_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineRunCreateByTriggerCriteriaBody {
    pub trigger: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_id: Option<String>,
    /// Deprecated spelling of `env_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_set_version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// A job of a run, without its steps (list items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineJobPartial {
    /// The job's key in the definition.
    pub id: String,
    pub name: String,
    pub etag: String,
    pub org_id: String,
    pub app_id: String,
    pub pipeline_id: String,
    pub pipeline_version: String,
    pub run_id: String,
    /// `queued`, `executing`, `succeeded`, `failed`, `cancelled` or `skipped`.
    #[schema(value_type = JobStatusName)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    pub status_message: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_requested_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub timeout_seconds: u64,
}

/// A job with the steps that ran or run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineJob {
    #[serde(flatten)]
    pub job: PipelineJobPartial,
    pub steps: Vec<PipelineStep>,
}

/// A step of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineStep {
    /// Its index within the job's `steps`.
    pub index: u32,
    pub name: String,
    pub uses: String,
    /// `executing`, `succeeded`, `failed`, `cancelled` or `skipped`.
    #[schema(value_type = StepStatusName)]
    pub status: String,
    pub status_message: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub timeout_seconds: u64,
    /// E.g. `{"env_id": "production", "deployment_id": "…"}`.
    pub related_entities: BTreeMap<String, String>,
}

/// One line of a step's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PipelineStepLog {
    pub at: String,
    /// `INFO`, `WARN` or `ERROR`.
    pub level: String,
    pub message: String,
}

/// A request for people to approve a job, Humanitec's shape with Gangplank's extras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineApprovalRequest {
    pub id: String,
    pub org_id: String,
    pub app_id: String,
    pub pipeline_id: String,
    pub run_id: String,
    pub job_id: String,
    /// The environment an approver must be allowed to deploy to.
    pub env_id: String,
    pub message: String,
    pub created_at: String,
    #[schema(value_type = ApprovalStatusName)]
    pub status: String,
    /// The user whose response decided the request (the last approval, or the deny).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    /// Gangplank: distinct approvals needed.
    pub required_approvals: u32,
    /// Gangplank: when a waiting request is cancelled and its run fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Gangplank: every response, in order.
    pub responses: Vec<ApprovalResponse>,
}

/// One person's answer to an approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalResponse {
    pub user: String,
    /// `approve` or `deny`.
    pub action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    pub at: String,
}

/// The optional body of approve and deny (Gangplank's extra; no body is valid too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalResponseBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A run's status (the strings of `gangplank_core::pipeline::status::RunStatus`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatusName {
    Queued,
    Executing,
    Succeeded,
    Failed,
    Cancelled,
}

/// A job's status (`gangplank_core::pipeline::status::JobStatus`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatusName {
    Queued,
    Executing,
    Succeeded,
    Failed,
    Cancelled,
    Skipped,
}

/// A step's status (`gangplank_core::pipeline::status::StepStatus`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepStatusName {
    Executing,
    Succeeded,
    Failed,
    Cancelled,
    Skipped,
}

/// An approval request's status: Humanitec's enum.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatusName {
    Waiting,
    Approved,
    Denied,
    Cancelled,
}

#[cfg(test)]
mod tests {
    use gangplank_core::pipeline::status::{ApprovalStatus, JobStatus, RunStatus, StepStatus};
    use serde_json::json;

    use super::*;

    /// The schema enums list exactly the core's wire strings, so the document cannot drift
    /// from what the server sends.
    #[test]
    fn schema_enums_match_the_core_strings() {
        fn names<T: Serialize>(all: &[T]) -> Vec<String> {
            all.iter()
                .map(|v| json!(v).as_str().unwrap().to_owned())
                .collect()
        }
        use ApprovalStatusName as A;
        use JobStatusName as J;
        use RunStatusName as R;
        use StepStatusName as S;
        let core = |all: Vec<&'static str>| all.into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            names(&[
                R::Queued,
                R::Executing,
                R::Succeeded,
                R::Failed,
                R::Cancelled
            ]),
            core(RunStatus::ALL.iter().map(|s| s.as_str()).collect())
        );
        assert_eq!(
            names(&[
                J::Queued,
                J::Executing,
                J::Succeeded,
                J::Failed,
                J::Cancelled,
                J::Skipped
            ]),
            core(JobStatus::ALL.iter().map(|s| s.as_str()).collect())
        );
        assert_eq!(
            names(&[
                S::Executing,
                S::Succeeded,
                S::Failed,
                S::Cancelled,
                S::Skipped
            ]),
            core(StepStatus::ALL.iter().map(|s| s.as_str()).collect())
        );
        assert_eq!(
            names(&[A::Waiting, A::Approved, A::Denied, A::Cancelled]),
            core(ApprovalStatus::ALL.iter().map(|s| s.as_str()).collect())
        );
    }

    #[test]
    fn approve_takes_no_body_or_a_comment_only() {
        let body: ApprovalResponseBody = serde_json::from_value(json!({})).unwrap();
        assert_eq!(body.comment, None);
        let body: ApprovalResponseBody =
            serde_json::from_value(json!({"comment": "ship it"})).unwrap();
        assert_eq!(body.comment.as_deref(), Some("ship it"));
        assert!(serde_json::from_value::<ApprovalResponseBody>(json!({"x": 1})).is_err());
    }
}
