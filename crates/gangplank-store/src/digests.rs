//! Digest resolution bookkeeping: which container versions wait for their tag to be resolved,
//! and the outcome of each attempt.

use crate::sql::{query, row_struct};
use crate::{Store, StoreError};

/// A version whose digest is to be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToResolve {
    pub org_id: String,
    pub id: String,
    pub name: String,
    pub version: String,
    pub attempts: i64,
}
row_struct!(ToResolve {
    org_id,
    id,
    name,
    version,
    attempts
});

impl Store {
    /// Versions due for a resolution attempt, oldest first.
    pub async fn versions_to_resolve(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<ToResolve>, StoreError> {
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "SELECT v.org_id, v.id, a.name, v.version, v.digest_attempts AS attempts \
                     FROM artefact_versions v JOIN artefacts a ON a.id = v.artefact_id \
                     WHERE v.digest_status IN ('pending', 'retrying') AND v.digest_next_at <= $1 \
                     ORDER BY v.seq LIMIT $2",
                )
                .bind(now)
                .bind(limit)
                .fetch_all::<ToResolve>(conn)
                .await
            })
        }))
        .await
    }

    /// When the next resolution attempt is due, if any version waits.
    pub async fn next_resolution_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                query(
                    "SELECT MIN(digest_next_at) FROM artefact_versions WHERE digest_status IN ('pending', 'retrying')"
                )
                .fetch_one::<Option<i64>>(conn)
                .await
            })
        }))
        .await
    }

    /// Records an attempt: the digest, or the error and when to try again.
    pub async fn record_resolution(
        &self,
        id: &str,
        outcome: Result<String, (String, i64)>,
    ) -> Result<(), StoreError> {
        let id = id.to_owned();
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                match outcome {
                    Ok(digest) => query(
                        "UPDATE artefact_versions SET resolved_digest = $2, digest_status = 'resolved', \
                         digest_error = '', digest_attempts = digest_attempts + 1, updated_at = $3 WHERE id = $1"
                    )
                    .bind(&id)
                    .bind(&digest)
                    .bind(now)
                    .execute(conn)
                    .await
                    .map(|_| ())?,
                    Err((error, next_at)) => query(
                        "UPDATE artefact_versions SET digest_status = 'retrying', digest_error = $2, \
                         digest_attempts = digest_attempts + 1, digest_next_at = $3 WHERE id = $1"
                    )
                    .bind(&id)
                    .bind(&error)
                    .bind(next_at)
                    .execute(conn)
                    .await
                    .map(|_| ())?,
                }
                Ok(())
            })
        }))
        .await
    }
}
