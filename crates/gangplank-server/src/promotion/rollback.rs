//! `rollback-image` and the rollback endpoint: the live tag back to the image of the highest
//! version (or `to`), that version tag dropped so the live image again carries only the live
//! tag (the seed's `rollback.sh`), recorded with `version_before`/`version_after`, and the
//! promotion that made the rolled-back image live marked `rolled_back`.
//!
//! Journal sequence numbers: 1 the live tag, 2 the dropped version tag, and when the registry
//! cannot delete a tag (docker-registry 2 deletes only by digest): 3 the restored manifest
//! deleted by digest (which drops every tag on it), 4 the live tag written again.

use gangplank_core::promotion::{RollbackInput, plan_rollback};
use gangplank_oci::{Manifest, OciError};
use gangplank_store::{ExpectedWrite, HoldRow, PromotionRow, Store, now_millis};

use super::journal::{Journal, Write};
use super::promote::manifest_text;
use super::registry::Repo;
use super::{EXPECTED_WRITE_TTL_MS, LOCK_LEASE_MS, PromotionError};

const LIVE: i64 = 1;
const DROP: i64 = 2;
const DELETE_BY_DIGEST: i64 = 3;
const LIVE_AGAIN: i64 = 4;

/// What to roll back.
#[derive(Debug, Clone)]
pub struct Request {
    pub promotion_id: String,
    pub org_id: String,
    pub app_id: String,
    /// The step's key, or `manual:<promotion_id>` for the endpoint.
    pub step_key: String,
    pub run_id: String,
    pub job_id: String,
    pub step_index: i64,
    pub live_tag: String,
    /// The version to return to; `None`: the highest.
    pub to: Option<String>,
    pub comment: String,
    pub created_by: String,
    /// A person asked (the endpoint): hold automatic promotion into the repository after.
    pub hold: bool,
}

/// Runs (or resumes) a rollback; the rollback's record.
pub async fn rollback(
    store: &Store,
    dest: &Repo,
    request: Request,
) -> Result<PromotionRow, PromotionError> {
    let now = now_millis();
    let locked = store
        .lock_repository(
            &request.org_id,
            &dest.image,
            &request.step_key,
            &request.run_id,
            now,
            now + LOCK_LEASE_MS,
        )
        .await?;
    if !locked {
        let holder = store
            .repository_lock(&request.org_id, &dest.image, now)
            .await?
            .map_or_else(|| "another writer".to_owned(), |l| l.holder);
        return Err(PromotionError::Locked {
            image: dest.image.clone(),
            holder,
        });
    }
    let outcome = run(store, dest, &request, now).await;
    store
        .unlock_repository(&request.org_id, &dest.image, &request.step_key)
        .await?;
    outcome
}

async fn run(
    store: &Store,
    dest: &Repo,
    request: &Request,
    now: i64,
) -> Result<PromotionRow, PromotionError> {
    // A refused plan (nothing to roll back to) records nothing; a resumed rollback carries on
    // with the plan it recorded, whatever the tags say now.
    let mut row = match store
        .promotion_by_step(&request.org_id, &request.step_key)
        .await?
    {
        Some(row) => row,
        None => {
            let mut row = PromotionRow {
                id: request.promotion_id.clone(),
                org_id: request.org_id.clone(),
                app_id: request.app_id.clone(),
                step_key: request.step_key.clone(),
                run_id: request.run_id.clone(),
                job_id: request.job_id.clone(),
                step_index: request.step_index,
                action: "rollback".into(),
                dest_image: dest.image.clone(),
                live_tag: request.live_tag.clone(),
                comment: request.comment.clone(),
                created_by: request.created_by.clone(),
                created_at: now,
                status: "planned".into(),
                approvals: "[]".into(),
                ..PromotionRow::default()
            };
            plan(dest, request, &mut row).await?;
            store.begin_promotion(row).await?
        }
    };
    if row.status == "applied" {
        return Ok(row);
    }
    let mut journal = Journal::load(store, &row.id).await?;
    match apply(store, dest, &mut row, &mut journal).await {
        Ok(()) => {}
        Err(error @ PromotionError::Unavailable(_)) => return Err(error),
        Err(error) => {
            row.status = "failed".into();
            row.status_message = error.to_string();
            row.finished_at = now_millis();
            store.update_promotion(row).await?;
            return Err(error);
        }
    }
    row.status = "applied".into();
    row.finished_at = now_millis();
    store.update_promotion(row.clone()).await?;
    if let Some(undone) = store
        .applied_promotion_of(
            &row.org_id,
            &row.dest_image,
            &row.live_tag,
            &row.previous_live_digest,
        )
        .await?
    {
        store
            .mark_rolled_back(&row.org_id, &undone.id, &row.id)
            .await?;
    }
    if request.hold {
        store
            .hold_promotion(
                &row.org_id,
                HoldRow {
                    image_name: row.dest_image.clone(),
                    live_tag: row.live_tag.clone(),
                    app_id: row.app_id.clone(),
                    promotion_id: row.id.clone(),
                    held_by: row.created_by.clone(),
                    held_at: now_millis(),
                },
            )
            .await?;
    }
    Ok(row)
}

/// Decides what to restore and records what is live now (so the record can be undone).
async fn plan(
    dest: &Repo,
    request: &Request,
    row: &mut PromotionRow,
) -> Result<(), PromotionError> {
    let tags = dest.client.all_tags(&dest.path).await?;
    let plan = plan_rollback(&RollbackInput {
        tags: &tags,
        to: request.to.as_deref(),
    })
    .map_err(|e| PromotionError::Refused(format!("{}: {e}", dest.image)))?;
    let restore = dest
        .client
        .get_manifest(&dest.path, &plan.restore_tag)
        .await?;
    if let Some(live) = dest.client.tag_digest(&dest.path, &row.live_tag).await? {
        let current = dest.client.get_manifest(&dest.path, &live).await?;
        row.previous_live_digest = current.digest;
        row.previous_live_media_type = current.media_type;
        row.previous_live_manifest = manifest_text(&current.bytes)?;
    }
    row.source_image = dest.image.clone();
    row.source_tag = plan.restore_tag.clone();
    row.source_digest = restore.digest.clone();
    row.dropped_tag = plan.restore_tag;
    row.new_live_digest = restore.digest;
    row.new_live_media_type = restore.media_type;
    row.version_before = plan.version_before;
    row.version_after = plan.version_after;
    Ok(())
}

async fn apply(
    store: &Store,
    dest: &Repo,
    row: &mut PromotionRow,
    journal: &mut Journal,
) -> Result<(), PromotionError> {
    let (tag, new, previous) = (
        row.live_tag.clone(),
        row.new_live_digest.clone(),
        row.previous_live_digest.clone(),
    );
    let manifest = dest.client.get_manifest(&dest.path, &new).await?;
    if !journal.done(LIVE) {
        let live = dest.client.tag_digest(&dest.path, &tag).await?;
        let write = Write {
            seq: LIVE,
            op: "put_tag",
            repository: &dest.path,
            tag: &tag,
            digest_before: &previous,
            digest_after: &new,
        };
        if live.as_deref() != Some(new.as_str()) {
            if live.as_deref().unwrap_or_default() != previous {
                return Err(PromotionError::Drift {
                    tag: format!("{}:{tag}", dest.image),
                    expected: previous,
                    found: live.unwrap_or_else(|| "no tag".into()),
                });
            }
            expect_write(store, row, &dest.image, &tag, &new, LIVE, journal).await?;
            journal
                .record(store, &write, "planned", now_millis())
                .await?;
            dest.client
                .put_manifest(&dest.path, &tag, &manifest)
                .await?;
        }
        journal.record(store, &write, "done", now_millis()).await?;
    }
    if journal.done(DROP) || journal.done(LIVE_AGAIN) {
        return Ok(());
    }
    let dropped = row.dropped_tag.clone();
    let write = Write {
        seq: DROP,
        op: "delete_tag",
        repository: &dest.path,
        tag: &dropped,
        digest_before: &new,
        digest_after: "",
    };
    journal
        .record(store, &write, "planned", now_millis())
        .await?;
    match dest.client.delete_tag(&dest.path, &dropped).await {
        Ok(()) => journal.record(store, &write, "done", now_millis()).await,
        Err(OciError::Status {
            status: 400 | 405, ..
        }) => {
            journal
                .record(store, &write, "failed", now_millis())
                .await?;
            drop_by_digest(store, dest, row, journal, &manifest).await
        }
        Err(error) => Err(error.into()),
    }
}

/// For registries that delete only by digest: delete the restored manifest (every tag on it
/// goes) and write the live tag again with the same bytes (its blobs stay until a GC).
async fn drop_by_digest(
    store: &Store,
    dest: &Repo,
    row: &PromotionRow,
    journal: &mut Journal,
    manifest: &Manifest,
) -> Result<(), PromotionError> {
    let tag = row.live_tag.clone();
    let new = row.new_live_digest.clone();
    if !journal.done(DELETE_BY_DIGEST) {
        let write = Write {
            seq: DELETE_BY_DIGEST,
            op: "delete_manifest",
            repository: &dest.path,
            tag: &new,
            digest_before: &new,
            digest_after: "",
        };
        journal
            .record(store, &write, "planned", now_millis())
            .await?;
        dest.client.delete_tag(&dest.path, &new).await?;
        journal.record(store, &write, "done", now_millis()).await?;
    }
    let write = Write {
        seq: LIVE_AGAIN,
        op: "put_tag",
        repository: &dest.path,
        tag: &tag,
        digest_before: "",
        digest_after: &new,
    };
    if journal.get(LIVE_AGAIN).is_none() {
        expect_write(store, row, &dest.image, &tag, &new, LIVE_AGAIN, journal).await?;
    }
    journal
        .record(store, &write, "planned", now_millis())
        .await?;
    dest.client.put_manifest(&dest.path, &tag, manifest).await?;
    journal.record(store, &write, "done", now_millis()).await
}

/// Records the expected write of journal entry `seq`, once.
async fn expect_write(
    store: &Store,
    row: &PromotionRow,
    image: &str,
    tag: &str,
    digest: &str,
    seq: i64,
    journal: &Journal,
) -> Result<(), PromotionError> {
    if journal.get(seq).is_some() {
        return Ok(());
    }
    let now = now_millis();
    store
        .expect_registry_write(
            ExpectedWrite {
                id: format!("{}-{seq}", row.id),
                org_id: row.org_id.clone(),
                image_name: image.to_owned(),
                tag: tag.to_owned(),
                digest: digest.to_owned(),
                expires_at: now + EXPECTED_WRITE_TTL_MS,
            },
            now,
        )
        .await?;
    Ok(())
}
