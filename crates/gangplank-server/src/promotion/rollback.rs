//! `rollback-image` and the rollback endpoint: the live tag back to the image of the highest
//! version (or `to`), that version tag dropped so the live image again carries only the live
//! tag (the seed's `rollback.sh`), recorded with `version_before`/`version_after`, and the
//! promotion that made the rolled-back image live marked `rolled_back`.
//!
//! Only the app whose promotion (or rollback) put the live image there may roll it back, and
//! only while the live tag still points where that record left it (promotion.md §5.8).
//!
//! Journal sequence numbers: 1 the live tag, 2 the dropped version tag, 5 the safety tag
//! `rolled-back-<version_before>` that keeps the image rolled back from reachable. A registry
//! that refuses to delete a tag keeps it (the live manifest is never deleted by digest).

use gangplank_core::promotion::{RollbackError, rollback_to};
use gangplank_store::{ExpectedWrite, HoldRow, PromotionRow, Store, now_millis};

use super::journal::{Journal, Write};
use super::promote::manifest_text;
use super::registry::Repo;
use super::{EXPECTED_WRITE_TTL_MS, PromotionError};

const LIVE: i64 = 1;
const DROP: i64 = 2;
const SAFETY: i64 = 5;

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
    super::lock(
        store,
        &request.org_id,
        &dest.image,
        &request.step_key,
        &request.run_id,
    )
    .await?;
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
            let live = owned_live(store, dest, request).await?;
            plan(store, dest, request, &live, &mut row).await?;
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

/// The digest live now, after checking the request's app put it there: the newest applied
/// promotion or rollback into the live tag is this app's (else `Forbidden`), and the live tag
/// still points at what it left (else `Drift`: someone else moved it since).
async fn owned_live(
    store: &Store,
    dest: &Repo,
    request: &Request,
) -> Result<String, PromotionError> {
    let target = format!("{}:{}", dest.image, request.live_tag);
    let newest = store
        .newest_applied_promotion(&request.org_id, &dest.image, &request.live_tag)
        .await?
        .ok_or_else(|| {
            PromotionError::Forbidden(format!(
                "app {} has no applied promotion into {target} to roll back",
                request.app_id
            ))
        })?;
    if newest.app_id != request.app_id {
        return Err(PromotionError::Forbidden(format!(
            "{target} was last promoted by app {}, not {}",
            newest.app_id, request.app_id
        )));
    }
    let live = dest
        .client
        .tag_digest(&dest.path, &request.live_tag)
        .await?
        .unwrap_or_default();
    if live != newest.new_live_digest {
        return Err(PromotionError::Drift {
            tag: target,
            expected: newest.new_live_digest,
            found: if live.is_empty() {
                "no tag".into()
            } else {
                live
            },
        });
    }
    Ok(live)
}

/// Decides what to restore and records what is live now (so the record can be undone): the
/// promotion that made the live image live says which version it replaced (its archive tag)
/// and which version the live image is; `to` picks an older version tag instead. The tags
/// alone cannot say it: a registry that refused to drop a version tag leaves it behind.
async fn plan(
    store: &Store,
    dest: &Repo,
    request: &Request,
    live: &str,
    row: &mut PromotionRow,
) -> Result<(), PromotionError> {
    let refused =
        |error: RollbackError| PromotionError::Refused(format!("{}: {error}", dest.image));
    let current = store
        .applied_promotion_of(&request.org_id, &dest.image, &request.live_tag, live)
        .await?
        .ok_or_else(|| refused(RollbackError::NothingToRollBack))?;
    // `to` must be a version tag the repository has, and not the version live now.
    let restore_tag = match &request.to {
        Some(to) => {
            let tags = dest.client.all_tags(&dest.path).await?;
            rollback_to(to, &tags, &current.version_after).map_err(refused)?
        }
        None if current.archive_tag.is_empty() => {
            return Err(refused(RollbackError::NothingToRollBack));
        }
        None => current.archive_tag.clone(),
    };
    let restore = if request.to.is_none() && !current.previous_live_digest.is_empty() {
        dest.client
            .get_manifest(&dest.path, &current.previous_live_digest)
            .await?
    } else {
        dest.client.get_manifest(&dest.path, &restore_tag).await?
    };
    // A version tag a registry refused to drop can still be on the live image.
    if restore.digest == live {
        return Err(refused(RollbackError::Live(restore_tag)));
    }
    let now_live = dest.client.get_manifest(&dest.path, live).await?;
    row.previous_live_digest = now_live.digest;
    row.previous_live_media_type = now_live.media_type;
    row.previous_live_manifest = manifest_text(&now_live.bytes)?;
    row.source_image = dest.image.clone();
    row.source_tag = restore_tag.clone();
    row.source_digest = restore.digest.clone();
    row.dropped_tag = restore_tag.clone();
    row.new_live_digest = restore.digest;
    row.new_live_media_type = restore.media_type;
    row.version_before = current.version_after;
    row.version_after = restore_tag;
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
            safety_tag(store, dest, row, journal).await?;
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
    if journal.get(DROP).is_some_and(|o| o.state != "planned") {
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
        // The live tag moved already: the rollback stands. A registry that cannot delete a tag
        // (docker-registry 2 deletes only by digest, which would take the live image down
        // with it) or fails now keeps the version tag on the live image; say so.
        Err(error) => {
            row.status_message = format!(
                "version tag {dropped} was kept on the live image: the registry did not delete it ({error})"
            );
            journal.record(store, &write, "failed", now_millis()).await
        }
    }
}

/// Before the live tag leaves the image rolled back from, tags that image
/// `rolled-back-<version_before>` so it stays reachable (a registry may collect an untagged
/// manifest).
async fn safety_tag(
    store: &Store,
    dest: &Repo,
    row: &PromotionRow,
    journal: &mut Journal,
) -> Result<(), PromotionError> {
    if row.previous_live_digest.is_empty() || journal.done(SAFETY) {
        return Ok(());
    }
    let tag = format!("rolled-back-{}", row.version_before);
    let previous = row.previous_live_digest.clone();
    let write = Write {
        seq: SAFETY,
        op: "put_tag",
        repository: &dest.path,
        tag: &tag,
        digest_before: "",
        digest_after: &previous,
    };
    expect_write(store, row, &dest.image, &tag, &previous, SAFETY, journal).await?;
    journal
        .record(store, &write, "planned", now_millis())
        .await?;
    let manifest = gangplank_oci::Manifest {
        media_type: row.previous_live_media_type.clone(),
        bytes: row.previous_live_manifest.clone().into_bytes(),
        digest: previous.clone(),
    };
    dest.client
        .put_manifest(&dest.path, &tag, &manifest)
        .await?;
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
