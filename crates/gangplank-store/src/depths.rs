//! How much work waits in each durable queue, for the metrics endpoint: one statement of
//! capped, index-backed counts, so a scrape costs the same whatever the backlog.

use crate::sql::query;
use crate::{Store, StoreError};

/// The largest depth reported: counting stops there (a backlog that deep is an alert either way).
pub const DEPTH_CAP: i64 = 100_000;

/// Rows waiting in each queue, each at most [`DEPTH_CAP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepths {
    /// Deployments queued or running (`work_queue` rows of kind `deploy`).
    pub deploy_jobs: i64,
    /// Webhook deliveries not yet delivered or given up (the outbox).
    pub webhook_outbox: i64,
    /// Registered versions automation has not judged yet.
    pub automation_inbox: i64,
    /// Container versions whose tag waits to be resolved to a digest.
    pub digest_resolution: i64,
}

impl Store {
    /// The depth of every queue. Each count walks at most [`DEPTH_CAP`] index entries.
    pub async fn queue_depths(&self) -> Result<QueueDepths, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT \
                     (SELECT COUNT(*) FROM (SELECT 1 FROM work_queue WHERE kind = 'deploy' LIMIT {DEPTH_CAP}) j), \
                     (SELECT COUNT(*) FROM (SELECT 1 FROM webhook_deliveries \
                      WHERE state = 'pending' LIMIT {DEPTH_CAP}) w), \
                     (SELECT COUNT(*) FROM (SELECT 1 FROM automation_inbox LIMIT {DEPTH_CAP}) i), \
                     (SELECT COUNT(*) FROM (SELECT 1 FROM artefact_versions \
                      WHERE digest_status IN ('pending', 'retrying') LIMIT {DEPTH_CAP}) d)"
                );
                let (deploy_jobs, webhook_outbox, automation_inbox, digest_resolution) =
                    query(sql).fetch_one::<(i64, i64, i64, i64)>(conn).await?;
                Ok(QueueDepths {
                    deploy_jobs,
                    webhook_outbox,
                    automation_inbox,
                    digest_resolution,
                })
            })
        }))
        .await
    }
}
