//! Gangplank's persistence: one [`Store`] over SQLite (the default) or PostgreSQL.
//!
//! Every operation is written once, as SQL text that both engines accept (see `sql`), and run
//! against whichever backend was chosen at start-up (see `conn`). On SQLite all writes funnel
//! through a single group-commit writer thread (see `group_commit`), so concurrent API writes
//! share one durable `fsync` instead of queueing for the database lock. Nothing outside this
//! crate sees SQL or driver types.

mod approvals;
mod apps;
mod artefacts;
mod auth_cache;
mod automation;
mod builds;
mod conn;
mod deploys;
mod depths;
mod digests;
mod error;
mod group_commit;
mod inbound;
mod page;
mod pipeline_runs;
mod pipelines;
mod promotions;
mod registries;
mod run_progress;
mod runtime;
mod server_secrets;
mod sql;
mod targets;
mod ui_sessions;
mod users;
mod watches;
mod webhooks;
mod work_queue;

pub use approvals::{
    ApprovalFilter, ApprovalRow, ApprovalView, NewApproval, NewResponse, ResponseRow,
};
pub use apps::{AppRow, EnvRow, EnvTypeRow, NewApp, NewEnv};
pub use artefacts::{
    ArtefactRow, ArtefactVersionRow, FollowUp, NewArtefactVersion, VersionFilter, VersionOutcome,
};
pub use automation::{
    Batch, EnvContext, InboxItem, LogRow, LoggedDecision, PendingItem, ResumedEnv, RuleRow,
};
pub use builds::{BuildCancel, BuildDefinitionRow, BuildOutcome, BuildRow, ClaimedBuild};
pub use conn::{Store, now_millis};
pub use deploys::{ClaimedDeploy, DeltaRow, DeployErrorRow, DeployRow, NewDeploy};
pub use depths::{DEPTH_CAP, QueueDepths};
pub use digests::ToResolve;
pub use error::StoreError;
pub use inbound::{DeliveryClaim, IN_PROGRESS, InboundDeliveryRow, InboundHookRow};
pub use pipeline_runs::{
    CancelOutcome, DeleteOutcome, JobRow, NewRun, RunFilter, RunRow, StepLogRow, StepRow,
};
pub use pipelines::{
    CriteriaRow, NewPipelineVersion, PipelineFilter, PipelineRow, PipelineVersionRow,
};
pub use promotions::{
    ExpectedWrite, HoldRow, LockRow, PromotionRow, PromotionWrites, RepositoryLock, TagOpRow,
    normalise_image,
};
pub use registries::{CredsFetchRow, RegistryRow, SealedValue};
pub use run_progress::{ClaimedRun, NewJob, NewLogLine, NewStep, RunSnapshot, RunWrite};
pub use runtime::{ComposeEnv, EnvRuntime, Observation, ObservedWorkload};
pub use targets::SigningKeyRow;
pub use ui_sessions::{NewUiSession, UiSessionRow};
pub use users::{Bootstrap, MemberRow, NewToken, Principal, TokenRow, UserRow};
pub use watches::{PollRecord, WatchRow};
pub use webhooks::{Attempt, AttemptOutcome, AttemptRow, DeliveryRow, DueDelivery, WebhookRow};
