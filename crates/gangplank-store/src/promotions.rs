//! Image promotions (what was copied where, versions before and after, what a rollback
//! restores), the journal of their tag writes, the registry writes Gangplank expects to see
//! come back as registrations, repository locks, and holds on automatic promotion.
//!
//! Image names are stored normalised (`gangplank_core::image::RepositoryName`), so an
//! expected write recorded as `localhost:5000/a` matches a registration of the same name
//! spelt any equivalent way.

use gangplank_core::image::RepositoryName;
use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, into_page};
use crate::sql::{query, row_struct};
use crate::{Store, StoreError};

/// An image promotion or rollback record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PromotionRow {
    pub id: String,
    pub org_id: String,
    pub app_id: String,
    /// `run/job/step` for a step's record; `manual:<id>` for an API rollback.
    pub step_key: String,
    pub run_id: String,
    pub job_id: String,
    pub step_index: i64,
    /// `promote` | `rollback`.
    pub action: String,
    pub source_image: String,
    pub source_tag: String,
    pub source_digest: String,
    pub dest_image: String,
    pub live_tag: String,
    pub previous_live_digest: String,
    pub previous_live_media_type: String,
    /// The previous live manifest, exact text, so the live tag can be restored even when its
    /// version tag is gone.
    pub previous_live_manifest: String,
    pub archive_tag: String,
    /// A rollback's dropped version tag.
    pub dropped_tag: String,
    pub new_live_digest: String,
    pub new_live_media_type: String,
    pub version_before: String,
    pub version_after: String,
    pub bytes_moved: i64,
    pub blobs_mounted: i64,
    pub blobs_skipped: i64,
    /// JSON array of the run's approval responses.
    pub approvals: String,
    pub comment: String,
    pub created_by: String,
    pub created_at: i64,
    pub finished_at: i64,
    /// `planned` | `applied` | `failed` | `rolled_back`.
    pub status: String,
    pub status_message: String,
    pub rolled_back_by: String,
}
row_struct!(PromotionRow {
    id,
    org_id,
    app_id,
    step_key,
    run_id,
    job_id,
    step_index,
    action,
    source_image,
    source_tag,
    source_digest,
    dest_image,
    live_tag,
    previous_live_digest,
    previous_live_media_type,
    previous_live_manifest,
    archive_tag,
    dropped_tag,
    new_live_digest,
    new_live_media_type,
    version_before,
    version_after,
    bytes_moved,
    blobs_mounted,
    blobs_skipped,
    approvals,
    comment,
    created_by,
    created_at,
    finished_at,
    status,
    status_message,
    rolled_back_by
});

const COLUMNS: &str = "id, org_id, app_id, step_key, run_id, job_id, step_index, action, \
     source_image, source_tag, source_digest, dest_image, live_tag, previous_live_digest, \
     previous_live_media_type, previous_live_manifest, archive_tag, dropped_tag, \
     new_live_digest, new_live_media_type, version_before, version_after, bytes_moved, \
     blobs_mounted, blobs_skipped, approvals, comment, created_by, created_at, finished_at, \
     status, status_message, rolled_back_by";

/// One journalled registry write of a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagOpRow {
    pub seq: i64,
    /// `copy_blobs` | `put_manifest` | `put_tag` | `delete_tag`.
    pub op: String,
    pub repository: String,
    pub tag: String,
    pub digest_before: String,
    pub digest_after: String,
    /// `planned` | `done` | `failed`.
    pub state: String,
    pub at: i64,
}
row_struct!(TagOpRow {
    seq,
    op,
    repository,
    tag,
    digest_before,
    digest_after,
    state,
    at
});

/// A registry write Gangplank is about to make (see `consume_expected_write`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedWrite {
    pub id: String,
    pub org_id: String,
    pub image_name: String,
    pub tag: String,
    pub digest: String,
    /// Unix ms after which the expectation no longer suppresses anything.
    pub expires_at: i64,
}

/// A repository lock to take, renew or give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryLock {
    pub image_name: String,
    /// The step's key (or `manual:<id>`): who may renew and release it.
    pub holder: String,
    pub run_id: String,
    /// Unix ms; ignored when giving the lock back.
    pub expires_at: i64,
}

/// A promotion's writes, applied together by `Store::record_promotion` (one commit per stage
/// on the promotion's hot path instead of one per row).
#[derive(Debug, Clone, Default)]
pub struct PromotionWrites {
    /// Taken or renewed first: when another writer holds the repository nothing is written.
    pub lock: Option<RepositoryLock>,
    pub row: Option<PromotionRow>,
    pub journal: Vec<TagOpRow>,
    pub expected: Vec<ExpectedWrite>,
    /// Given back last.
    pub unlock: Option<RepositoryLock>,
}

impl PromotionWrites {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.lock.is_none()
            && self.row.is_none()
            && self.journal.is_empty()
            && self.expected.is_empty()
            && self.unlock.is_none()
    }
}

/// Who holds a repository's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRow {
    pub holder: String,
    pub run_id: String,
    pub acquired_at: i64,
    pub expires_at: i64,
}
row_struct!(LockRow {
    holder,
    run_id,
    acquired_at,
    expires_at
});

/// A hold on automatic promotion into a repository's live tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    pub image_name: String,
    pub live_tag: String,
    pub app_id: String,
    pub promotion_id: String,
    pub held_by: String,
    pub held_at: i64,
}
row_struct!(HoldRow {
    image_name,
    live_tag,
    app_id,
    promotion_id,
    held_by,
    held_at
});

/// The stored spelling of an image name: normalised when it parses, as given otherwise.
pub fn normalise_image(name: &str) -> String {
    RepositoryName::parse(name).map_or_else(|_| name.to_owned(), |n| n.to_string())
}

async fn by_id(conn: &mut Conn<'_>, org_id: &str, id: &str) -> Result<PromotionRow, StoreError> {
    query(format!(
        "SELECT {COLUMNS} FROM image_promotions WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional::<PromotionRow>(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("image promotion {id} not found")))
}

impl Store {
    /// Records a promotion's plan, or returns the record its step already has (a resumed step
    /// carries on with the plan it recorded, never a second one).
    pub async fn begin_promotion(&self, mut row: PromotionRow) -> Result<PromotionRow, StoreError> {
        row.dest_image = normalise_image(&row.dest_image);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let existing = query(format!(
                    "SELECT {COLUMNS} FROM image_promotions WHERE org_id = $1 AND step_key = $2"
                ))
                .bind(&row.org_id)
                .bind(&row.step_key)
                .fetch_optional::<PromotionRow>(conn)
                .await?;
                if let Some(existing) = existing {
                    return Ok(existing);
                }
                insert(conn, &row).await?;
                Ok(row)
            })
        }))
        .await
    }

    /// The record a step (or a manual rollback) began, if any.
    pub async fn promotion_by_step(
        &self,
        org_id: &str,
        step_key: &str,
    ) -> Result<Option<PromotionRow>, StoreError> {
        let (org_id, step_key) = (org_id.to_owned(), step_key.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(format!(
                    "SELECT {COLUMNS} FROM image_promotions WHERE org_id = $1 AND step_key = $2"
                ))
                .bind(&org_id)
                .bind(&step_key)
                .fetch_optional::<PromotionRow>(conn)
                .await
            })
        }))
        .await
    }

    /// Writes a record's changeable fields (plan details, outcome, counters).
    pub async fn update_promotion(&self, row: PromotionRow) -> Result<(), StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move { update(conn, &row).await })
        }))
        .await
    }

    /// One record.
    pub async fn get_promotion(&self, org_id: &str, id: &str) -> Result<PromotionRow, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { by_id(conn, &org_id, &id).await })
        }))
        .await
    }

    /// An app's records, newest first; `dest_image` (when not empty) keeps one destination.
    pub async fn list_promotions(
        &self,
        org_id: &str,
        app_id: &str,
        dest_image: &str,
        page: &PageRequest,
    ) -> Result<Page<PromotionRow>, StoreError> {
        let dest = if dest_image.is_empty() {
            String::new()
        } else {
            normalise_image(dest_image)
        };
        let args = [org_id, app_id].map(str::to_owned);
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id] = &args;
                let (after_n, after_s) = match &page.after {
                    Some(p) => (p.number, p.text.clone()),
                    None => (i64::MAX, String::new()),
                };
                let rows = query(format!(
                    "SELECT created_at AS page_n, id AS page_s, {COLUMNS} FROM image_promotions \
                     WHERE org_id = $1 AND app_id = $2 AND ($3 = '' OR dest_image = $3) \
                     AND (created_at < $4 OR (created_at = $4 AND id < $5)) \
                     ORDER BY created_at DESC, id DESC LIMIT $6"
                ))
                .bind(org_id)
                .bind(app_id)
                .bind(&dest)
                .bind(after_n)
                .bind(&after_s)
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<PromotionRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Marks `id` rolled back by the rollback record `by`.
    pub async fn mark_rolled_back(
        &self,
        org_id: &str,
        id: &str,
        by: &str,
    ) -> Result<(), StoreError> {
        let args = [org_id, id, by].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, id, by] = &args;
                query(
                    "UPDATE image_promotions SET status = 'rolled_back', rolled_back_by = $3 \
                     WHERE org_id = $1 AND id = $2",
                )
                .bind(org_id)
                .bind(id)
                .bind(by)
                .execute(conn)
                .await?;
                Ok(())
            })
        }))
        .await
    }

    /// The newest applied promotion that made `new_live_digest` live under `live_tag` of
    /// `dest_image`: what a rollback from that digest undoes.
    pub async fn applied_promotion_of(
        &self,
        org_id: &str,
        dest_image: &str,
        live_tag: &str,
        new_live_digest: &str,
    ) -> Result<Option<PromotionRow>, StoreError> {
        let args = [
            org_id.to_owned(),
            normalise_image(dest_image),
            live_tag.to_owned(),
            new_live_digest.to_owned(),
        ];
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, dest, live_tag, digest] = &args;
                query(format!(
                    "SELECT {COLUMNS} FROM image_promotions WHERE org_id = $1 AND dest_image = $2 \
                     AND live_tag = $3 AND new_live_digest = $4 AND action = 'promote' \
                     AND status = 'applied' ORDER BY created_at DESC, id DESC LIMIT 1"
                ))
                .bind(org_id)
                .bind(dest)
                .bind(live_tag)
                .bind(digest)
                .fetch_optional::<PromotionRow>(conn)
                .await
            })
        }))
        .await
    }

    /// The newest applied record (a promotion or a rollback) into `live_tag` of `dest_image`:
    /// what the live tag should point at now, and the app that put it there.
    pub async fn newest_applied_promotion(
        &self,
        org_id: &str,
        dest_image: &str,
        live_tag: &str,
    ) -> Result<Option<PromotionRow>, StoreError> {
        let args = [
            org_id.to_owned(),
            normalise_image(dest_image),
            live_tag.to_owned(),
        ];
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, dest, live_tag] = &args;
                query(format!(
                    "SELECT {COLUMNS} FROM image_promotions WHERE org_id = $1 AND dest_image = $2 \
                     AND live_tag = $3 AND status = 'applied' AND new_live_digest <> '' \
                     ORDER BY created_at DESC, id DESC LIMIT 1"
                ))
                .bind(org_id)
                .bind(dest)
                .bind(live_tag)
                .fetch_optional::<PromotionRow>(conn)
                .await
            })
        }))
        .await
    }

    /// A promotion's journal, in order.
    pub async fn tag_ops(&self, promotion_id: &str) -> Result<Vec<TagOpRow>, StoreError> {
        let id = promotion_id.to_owned();
        self.read(Box::new(move |conn| {
            Box::pin(async move { journal_of(conn, &id).await })
        }))
        .await
    }

    /// Writes a journal entry (a new `seq`, or the new state of an existing one).
    pub async fn journal_tag_op(&self, promotion_id: &str, op: TagOpRow) -> Result<(), StoreError> {
        let id = promotion_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move { journal(conn, &id, &op).await })
        }))
        .await
    }

    /// Records that Gangplank is about to write `image:tag` = `digest` (valid until
    /// `expires_at`), and forgets expectations that lapsed. Recording the same `id` again (a
    /// step resumed after a crash between this and its journal entry) changes nothing.
    pub async fn expect_registry_write(
        &self,
        write: ExpectedWrite,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move { expect(conn, &write, now).await })
        }))
        .await
    }

    /// Whether the registration `consumer` (a version id) of `image_name:tag` at `digest` is a
    /// write Gangplank made itself: true once per recorded expectation (the oldest unconsumed,
    /// unexpired one is consumed, on behalf of `consumer`), and true again for the same
    /// `consumer` (its evaluation repeated after a crash); false for everything else, so a
    /// genuine push of the same tag still triggers.
    pub async fn consume_expected_write(
        &self,
        org_id: &str,
        image_name: &str,
        tag: &str,
        digest: &str,
        consumer: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let args = [
            org_id.to_owned(),
            normalise_image(image_name),
            tag.to_owned(),
            digest.to_owned(),
            consumer.to_owned(),
        ];
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, image, tag, digest, consumer] = &args;
                if digest.is_empty() {
                    return Ok(false);
                }
                if !consumer.is_empty() {
                    let before = query(
                        "SELECT id FROM expected_registry_writes WHERE org_id = $1 \
                         AND image_name = $2 AND tag = $3 AND digest = $4 AND consumed_by = $5 \
                         LIMIT 1",
                    )
                    .bind(org_id)
                    .bind(image)
                    .bind(tag)
                    .bind(digest)
                    .bind(consumer)
                    .fetch_optional::<String>(conn)
                    .await?;
                    if before.is_some() {
                        return Ok(true);
                    }
                }
                // `consumed_at = 0` again outside the sub-select: on PostgreSQL a concurrent
                // consumer of the same row re-checks it after the first one's commit.
                let changed = query(
                    "UPDATE expected_registry_writes SET consumed_at = $5, consumed_by = $6 \
                     WHERE consumed_at = 0 \
                     AND id = (SELECT id FROM expected_registry_writes WHERE org_id = $1 \
                       AND image_name = $2 AND tag = $3 AND digest = $4 AND consumed_at = 0 \
                       AND expires_at > $5 ORDER BY created_at, id LIMIT 1)",
                )
                .bind(org_id)
                .bind(image)
                .bind(tag)
                .bind(digest)
                .bind(now)
                .bind(consumer)
                .execute(conn)
                .await?;
                Ok(changed == 1)
            })
        }))
        .await
    }

    /// Takes the lock of `image_name` for `holder` until `expires_at`: true when taken (or
    /// already held by `holder`, whose lease is extended), false while another holder's
    /// unexpired lock stands.
    pub async fn lock_repository(
        &self,
        org_id: &str,
        image_name: &str,
        holder: &str,
        run_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let org_id = org_id.to_owned();
        let lock = RepositoryLock {
            image_name: image_name.to_owned(),
            holder: holder.to_owned(),
            run_id: run_id.to_owned(),
            expires_at,
        };
        self.write(Box::new(move |conn| {
            Box::pin(async move { take_lock(conn, &org_id, &lock, now).await })
        }))
        .await
    }

    /// Gives up `holder`'s lock of `image_name` (nothing when another holds it).
    pub async fn unlock_repository(
        &self,
        org_id: &str,
        image_name: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        let args = [org_id.to_owned(), image_name.to_owned(), holder.to_owned()];
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, image, holder] = &args;
                release_lock(conn, org_id, image, holder).await
            })
        }))
        .await
    }

    /// Takes (or renews) the destination's lock, then finds the record `row.step_key` already
    /// has or records `row`, with its journal: one commit. `None` while another writer holds
    /// the repository (nothing is written).
    pub async fn begin_promotion_locked(
        &self,
        mut row: PromotionRow,
        lock: RepositoryLock,
        now: i64,
    ) -> Result<Option<(PromotionRow, Vec<TagOpRow>)>, StoreError> {
        row.dest_image = normalise_image(&row.dest_image);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                if !take_lock(conn, &row.org_id, &lock, now).await? {
                    return Ok(None);
                }
                let existing = query(format!(
                    "SELECT {COLUMNS} FROM image_promotions WHERE org_id = $1 AND step_key = $2"
                ))
                .bind(&row.org_id)
                .bind(&row.step_key)
                .fetch_optional::<PromotionRow>(conn)
                .await?;
                let row = match existing {
                    Some(existing) => existing,
                    None => {
                        insert(conn, &row).await?;
                        row
                    }
                };
                let ops = journal_of(conn, &row.id).await?;
                Ok(Some((row, ops)))
            })
        }))
        .await
    }

    /// Applies a promotion's `writes` in one transaction: the lock first (when it is not
    /// held, nothing is written and the answer is false), then the record, the journal
    /// entries, the expected registry writes, and the unlock.
    pub async fn record_promotion(
        &self,
        org_id: &str,
        promotion_id: &str,
        writes: PromotionWrites,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (org_id, id) = (org_id.to_owned(), promotion_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                if let Some(lock) = &writes.lock
                    && !take_lock(conn, &org_id, lock, now).await?
                {
                    return Ok(false);
                }
                if let Some(row) = &writes.row {
                    update(conn, row).await?;
                }
                for op in &writes.journal {
                    journal(conn, &id, op).await?;
                }
                for write in &writes.expected {
                    expect(conn, write, now).await?;
                }
                if let Some(lock) = &writes.unlock {
                    release_lock(conn, &org_id, &lock.image_name, &lock.holder).await?;
                }
                Ok(true)
            })
        }))
        .await
    }

    /// Who holds `image_name` now, if anyone (expired locks do not count).
    pub async fn repository_lock(
        &self,
        org_id: &str,
        image_name: &str,
        now: i64,
    ) -> Result<Option<LockRow>, StoreError> {
        let args = [org_id.to_owned(), normalise_image(image_name)];
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, image] = &args;
                query(
                    "SELECT holder, run_id, acquired_at, expires_at FROM repository_locks \
                     WHERE org_id = $1 AND image_name = $2 AND expires_at > $3",
                )
                .bind(org_id)
                .bind(image)
                .bind(now)
                .fetch_optional::<LockRow>(conn)
                .await
            })
        }))
        .await
    }

    /// Holds automatic promotion into `image_name:live_tag` (after a manual rollback).
    pub async fn hold_promotion(&self, org_id: &str, hold: HoldRow) -> Result<(), StoreError> {
        let org_id = org_id.to_owned();
        let image = normalise_image(&hold.image_name);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "DELETE FROM promotion_holds WHERE org_id = $1 AND image_name = $2 \
                     AND live_tag = $3",
                )
                .bind(&org_id)
                .bind(&image)
                .bind(&hold.live_tag)
                .execute(conn)
                .await?;
                query(
                    "INSERT INTO promotion_holds (org_id, image_name, live_tag, app_id, \
                     promotion_id, held_by, held_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&org_id)
                .bind(&image)
                .bind(&hold.live_tag)
                .bind(&hold.app_id)
                .bind(&hold.promotion_id)
                .bind(&hold.held_by)
                .bind(hold.held_at)
                .execute(conn)
                .await?;
                Ok(())
            })
        }))
        .await
    }

    /// The hold on `image_name:live_tag`, if any.
    pub async fn promotion_hold(
        &self,
        org_id: &str,
        image_name: &str,
        live_tag: &str,
    ) -> Result<Option<HoldRow>, StoreError> {
        let args = [
            org_id.to_owned(),
            normalise_image(image_name),
            live_tag.to_owned(),
        ];
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, image, live_tag] = &args;
                query(
                    "SELECT image_name, live_tag, app_id, promotion_id, held_by, held_at \
                     FROM promotion_holds WHERE org_id = $1 AND image_name = $2 AND live_tag = $3",
                )
                .bind(org_id)
                .bind(image)
                .bind(live_tag)
                .fetch_optional::<HoldRow>(conn)
                .await
            })
        }))
        .await
    }

    /// Lifts the hold `app_id` put on `image_name:live_tag`; false when there was none (or
    /// another app's rollback put it there: only that app may lift it).
    pub async fn resume_promotion(
        &self,
        org_id: &str,
        app_id: &str,
        image_name: &str,
        live_tag: &str,
    ) -> Result<bool, StoreError> {
        let args = [
            org_id.to_owned(),
            normalise_image(image_name),
            live_tag.to_owned(),
            app_id.to_owned(),
        ];
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, image, live_tag, app_id] = &args;
                let changed = query(
                    "DELETE FROM promotion_holds WHERE org_id = $1 AND image_name = $2 \
                     AND live_tag = $3 AND app_id = $4",
                )
                .bind(org_id)
                .bind(image)
                .bind(live_tag)
                .bind(app_id)
                .execute(conn)
                .await?;
                Ok(changed == 1)
            })
        }))
        .await
    }
}

async fn insert(conn: &mut Conn<'_>, row: &PromotionRow) -> Result<(), StoreError> {
    query(format!(
        "INSERT INTO image_promotions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, \
         $27, $28, $29, $30, $31, $32, $33)"
    ))
    .bind(&row.id)
    .bind(&row.org_id)
    .bind(&row.app_id)
    .bind(&row.step_key)
    .bind(&row.run_id)
    .bind(&row.job_id)
    .bind(row.step_index)
    .bind(&row.action)
    .bind(&row.source_image)
    .bind(&row.source_tag)
    .bind(&row.source_digest)
    .bind(&row.dest_image)
    .bind(&row.live_tag)
    .bind(&row.previous_live_digest)
    .bind(&row.previous_live_media_type)
    .bind(&row.previous_live_manifest)
    .bind(&row.archive_tag)
    .bind(&row.dropped_tag)
    .bind(&row.new_live_digest)
    .bind(&row.new_live_media_type)
    .bind(&row.version_before)
    .bind(&row.version_after)
    .bind(row.bytes_moved)
    .bind(row.blobs_mounted)
    .bind(row.blobs_skipped)
    .bind(&row.approvals)
    .bind(&row.comment)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(row.finished_at)
    .bind(&row.status)
    .bind(&row.status_message)
    .bind(&row.rolled_back_by)
    .execute(conn)
    .await?;
    Ok(())
}

async fn update(conn: &mut Conn<'_>, row: &PromotionRow) -> Result<(), StoreError> {
    let changed = query(
        "UPDATE image_promotions SET source_tag = $3, source_digest = $4, \
         previous_live_digest = $5, previous_live_media_type = $6, \
         previous_live_manifest = $7, archive_tag = $8, dropped_tag = $9, \
         new_live_digest = $10, new_live_media_type = $11, version_before = $12, \
         version_after = $13, bytes_moved = $14, blobs_mounted = $15, \
         blobs_skipped = $16, approvals = $17, finished_at = $18, status = $19, \
         status_message = $20 WHERE org_id = $1 AND id = $2",
    )
    .bind(&row.org_id)
    .bind(&row.id)
    .bind(&row.source_tag)
    .bind(&row.source_digest)
    .bind(&row.previous_live_digest)
    .bind(&row.previous_live_media_type)
    .bind(&row.previous_live_manifest)
    .bind(&row.archive_tag)
    .bind(&row.dropped_tag)
    .bind(&row.new_live_digest)
    .bind(&row.new_live_media_type)
    .bind(&row.version_before)
    .bind(&row.version_after)
    .bind(row.bytes_moved)
    .bind(row.blobs_mounted)
    .bind(row.blobs_skipped)
    .bind(&row.approvals)
    .bind(row.finished_at)
    .bind(&row.status)
    .bind(&row.status_message)
    .execute(conn)
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!(
            "image promotion {} not found",
            row.id
        )));
    }
    Ok(())
}

async fn journal(conn: &mut Conn<'_>, promotion_id: &str, op: &TagOpRow) -> Result<(), StoreError> {
    let changed = query(
        "UPDATE image_tag_ops SET state = $3, digest_before = $4, digest_after = $5, \
         at = $6 WHERE promotion_id = $1 AND seq = $2",
    )
    .bind(promotion_id)
    .bind(op.seq)
    .bind(&op.state)
    .bind(&op.digest_before)
    .bind(&op.digest_after)
    .bind(op.at)
    .execute(conn)
    .await?;
    if changed == 0 {
        query(
            "INSERT INTO image_tag_ops (promotion_id, seq, op, repository, tag, \
             digest_before, digest_after, state, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(promotion_id)
        .bind(op.seq)
        .bind(&op.op)
        .bind(&op.repository)
        .bind(&op.tag)
        .bind(&op.digest_before)
        .bind(&op.digest_after)
        .bind(&op.state)
        .bind(op.at)
        .execute(conn)
        .await?;
    }
    Ok(())
}

async fn journal_of(conn: &mut Conn<'_>, promotion_id: &str) -> Result<Vec<TagOpRow>, StoreError> {
    query(
        "SELECT seq, op, repository, tag, digest_before, digest_after, state, at \
         FROM image_tag_ops WHERE promotion_id = $1 ORDER BY seq",
    )
    .bind(promotion_id)
    .fetch_all::<TagOpRow>(conn)
    .await
}

async fn expect(conn: &mut Conn<'_>, write: &ExpectedWrite, now: i64) -> Result<(), StoreError> {
    query("DELETE FROM expected_registry_writes WHERE expires_at <= $1")
        .bind(now)
        .execute(conn)
        .await?;
    query(
        "INSERT INTO expected_registry_writes (id, org_id, image_name, tag, digest, \
         created_at, expires_at, consumed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&write.id)
    .bind(&write.org_id)
    .bind(normalise_image(&write.image_name))
    .bind(&write.tag)
    .bind(&write.digest)
    .bind(now)
    .bind(write.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes or renews `lock` on `org_id`'s repository; false while another holder's unexpired
/// lock stands.
async fn take_lock(
    conn: &mut Conn<'_>,
    org_id: &str,
    lock: &RepositoryLock,
    now: i64,
) -> Result<bool, StoreError> {
    let image = normalise_image(&lock.image_name);
    let changed = query(
        "UPDATE repository_locks SET holder = $3, run_id = $4, \
         acquired_at = CASE WHEN holder = $3 THEN acquired_at ELSE $5 END, \
         expires_at = $6 WHERE org_id = $1 AND image_name = $2 \
         AND (holder = $3 OR expires_at <= $5)",
    )
    .bind(org_id)
    .bind(&image)
    .bind(&lock.holder)
    .bind(&lock.run_id)
    .bind(now)
    .bind(lock.expires_at)
    .execute(conn)
    .await?;
    if changed == 1 {
        return Ok(true);
    }
    let inserted = query(
        "INSERT INTO repository_locks (org_id, image_name, holder, run_id, \
         acquired_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (org_id, image_name) DO NOTHING",
    )
    .bind(org_id)
    .bind(&image)
    .bind(&lock.holder)
    .bind(&lock.run_id)
    .bind(now)
    .bind(lock.expires_at)
    .execute(conn)
    .await?;
    Ok(inserted == 1)
}

async fn release_lock(
    conn: &mut Conn<'_>,
    org_id: &str,
    image_name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    query("DELETE FROM repository_locks WHERE org_id = $1 AND image_name = $2 AND holder = $3")
        .bind(org_id)
        .bind(normalise_image(image_name))
        .bind(holder)
        .execute(conn)
        .await?;
    Ok(())
}
