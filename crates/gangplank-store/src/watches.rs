//! Registry watches (a repository polled on an interval for new tags) and the tags each has
//! seen, so a restart neither forgets its schedule nor registers a tag twice.

use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, into_page};
use crate::sql::{query, row_struct};
use crate::{Store, StoreError};

/// A stored watch. `filter_kind` is `semver`, `regex` or `all`; times are Unix ms (0: never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRow {
    pub org_id: String,
    pub id: String,
    pub image: String,
    pub filter_kind: String,
    pub filter_pattern: String,
    pub interval_seconds: i64,
    pub next_poll_at: i64,
    pub last_polled_at: i64,
    pub last_error: String,
    pub created_at: i64,
    pub created_by: String,
}
row_struct!(WatchRow {
    org_id,
    id,
    image,
    filter_kind,
    filter_pattern,
    interval_seconds,
    next_poll_at,
    last_polled_at,
    last_error,
    created_at,
    created_by
});

/// What one poll (or a back-off without a poll) leaves on a watch.
#[derive(Debug, Clone, Default)]
pub struct PollRecord {
    /// When the tags were listed, or `None` when the watch was only put off (a budget or a
    /// registry's back-off): `last_polled_at` then stays.
    pub polled_at: Option<i64>,
    pub next_poll_at: i64,
    /// Empty when the poll went well.
    pub error: String,
    /// Tags now seen, with the digest registered for each (empty for a baseline tag).
    pub seen: Vec<(String, String)>,
}

const COLUMNS: &str = "SELECT org_id, id, image, filter_kind, filter_pattern, interval_seconds, \
     next_poll_at, last_polled_at, last_error, created_at, created_by FROM registry_watches";

async fn watch_by_id(conn: &mut Conn<'_>, org_id: &str, id: &str) -> Result<WatchRow, StoreError> {
    let sql = format!("{COLUMNS} WHERE org_id = $1 AND id = $2");
    query(sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional::<WatchRow>(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no watch {id}")))
}

impl Store {
    /// Creates a watch; its ID is unique in the organization.
    pub async fn create_watch(&self, row: WatchRow) -> Result<WatchRow, StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "INSERT INTO registry_watches (org_id, id, image, filter_kind, filter_pattern, \
                     interval_seconds, next_poll_at, last_polled_at, last_error, created_at, \
                     created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&row.org_id)
                .bind(&row.id)
                .bind(&row.image)
                .bind(&row.filter_kind)
                .bind(&row.filter_pattern)
                .bind(row.interval_seconds)
                .bind(row.next_poll_at)
                .bind(row.last_polled_at)
                .bind(&row.last_error)
                .bind(row.created_at)
                .bind(&row.created_by)
                .execute(conn)
                .await
                .map_err(|e| {
                    e.conflict_as(|| format!("a watch {} exists in the organization", row.id))
                })?;
                Ok(row)
            })
        }))
        .await
    }

    /// A page of the organization's watches, by id.
    pub async fn list_watches(
        &self,
        org_id: &str,
        page: &PageRequest,
    ) -> Result<Page<WatchRow>, StoreError> {
        let org_id = org_id.to_owned();
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (_, after) = after_ascending(&page);
                let sql = format!(
                    "SELECT CAST(0 AS BIGINT) AS page_n, id AS page_s, {} WHERE org_id = $1 \
                     AND id > $2 ORDER BY id LIMIT $3",
                    COLUMNS.trim_start_matches("SELECT ")
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(after)
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<WatchRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One watch.
    pub async fn get_watch(&self, org_id: &str, id: &str) -> Result<WatchRow, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { watch_by_id(conn, &org_id, &id).await })
        }))
        .await
    }

    /// Deletes a watch and the tags it has seen.
    pub async fn delete_watch(&self, org_id: &str, id: &str) -> Result<(), StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query("DELETE FROM registry_watch_tags WHERE org_id = $1 AND watch_id = $2")
                    .bind(&org_id)
                    .bind(&id)
                    .execute(conn)
                    .await?;
                let removed = query("DELETE FROM registry_watches WHERE org_id = $1 AND id = $2")
                    .bind(&org_id)
                    .bind(&id)
                    .execute(conn)
                    .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!("no watch {id}")));
                }
                Ok(())
            })
        }))
        .await
    }

    /// Up to `limit` watches due at `now`, the longest overdue first.
    pub async fn due_watches(&self, now: i64, limit: i64) -> Result<Vec<WatchRow>, StoreError> {
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "{COLUMNS} WHERE next_poll_at <= $1 ORDER BY next_poll_at, id LIMIT $2"
                );
                query(sql)
                    .bind(now)
                    .bind(limit)
                    .fetch_all::<WatchRow>(conn)
                    .await
            })
        }))
        .await
    }

    /// When the next watch falls due after `after`, if one does.
    pub async fn next_watch_due(&self, after: i64) -> Result<Option<i64>, StoreError> {
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query("SELECT MIN(next_poll_at) FROM registry_watches WHERE next_poll_at > $1")
                    .bind(after)
                    .fetch_one::<Option<i64>>(conn)
                    .await
            })
        }))
        .await
    }

    /// The tags a watch has seen.
    pub async fn seen_tags(&self, org_id: &str, watch_id: &str) -> Result<Vec<String>, StoreError> {
        let (org_id, watch_id) = (org_id.to_owned(), watch_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "SELECT tag FROM registry_watch_tags WHERE org_id = $1 AND watch_id = $2 \
                     ORDER BY tag",
                )
                .bind(&org_id)
                .bind(&watch_id)
                .fetch_all::<String>(conn)
                .await
            })
        }))
        .await
    }

    /// Records a poll's outcome; a watch deleted meanwhile is left deleted (not an error).
    pub async fn record_poll(
        &self,
        org_id: &str,
        watch_id: &str,
        record: PollRecord,
    ) -> Result<(), StoreError> {
        let (org_id, watch_id) = (org_id.to_owned(), watch_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let changed = query(
                    "UPDATE registry_watches SET next_poll_at = $3, last_error = $4, \
                     last_polled_at = COALESCE($5, last_polled_at) WHERE org_id = $1 AND id = $2",
                )
                .bind(&org_id)
                .bind(&watch_id)
                .bind(record.next_poll_at)
                .bind(&record.error)
                .bind(record.polled_at)
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Ok(());
                }
                let seen_at = record.polled_at.unwrap_or(record.next_poll_at);
                for (tag, digest) in &record.seen {
                    query(
                        "INSERT INTO registry_watch_tags (org_id, watch_id, tag, digest, seen_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, watch_id, tag) DO NOTHING",
                    )
                    .bind(&org_id)
                    .bind(&watch_id)
                    .bind(tag)
                    .bind(digest)
                    .bind(seen_at)
                    .execute(conn)
                    .await?;
                }
                Ok(())
            })
        }))
        .await
    }
}
