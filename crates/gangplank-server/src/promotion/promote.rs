//! `promote-image`: copy `source@digest` into the destination repository by digest, give the
//! image live there the next version (`gangplank_core::promotion::plan_promotion`), then move
//! the live tag. The stages run in order and each is resumable: the plan is recorded before any
//! tag write, and every tag write is journalled, so a step that crashed between the archive
//! tag and the live move finishes the move and never numbers the old image twice.
//!
//! Journal sequence numbers: 1 the copy (manifest by digest), 2 the archive tag, 3 the live tag.

use gangplank_core::promotion::{PromotionInput, PromotionPlan, Version, plan_promotion};
use gangplank_oci::Manifest;
use gangplank_store::{ExpectedWrite, PromotionRow, Store, now_millis};

use super::journal::{Journal, Write};
use super::registry::Repo;
use super::{EXPECTED_WRITE_TTL_MS, PromotionError};
use crate::test_hold::{self, HoldPoint};

const COPY: i64 = 1;
const ARCHIVE: i64 = 2;
const LIVE: i64 = 3;

/// What to promote, and on whose behalf.
#[derive(Debug, Clone)]
pub struct Request {
    /// The id a new record gets (a resumed step keeps its record's id).
    pub promotion_id: String,
    pub org_id: String,
    pub app_id: String,
    pub step_key: String,
    pub run_id: String,
    pub job_id: String,
    pub step_index: i64,
    /// The source tag, when the source was named by tag (audit only).
    pub source_tag: String,
    /// The pinned source digest; empty: resolve `source_tag` now (once: a resumed step keeps
    /// the digest its record has).
    pub source_digest: String,
    pub live_tag: String,
    pub created_by: String,
    /// JSON array of the run's approval responses (audit).
    pub approvals: String,
    /// Started by a trigger: honour a hold on the destination.
    pub automatic: bool,
}

/// A promotion under way: its record, its journal and the two repositories.
pub struct Promotion<'a> {
    store: &'a Store,
    source: &'a Repo,
    dest: &'a Repo,
    pub row: PromotionRow,
    pub journal: Journal,
}

/// Runs (or resumes) a promotion to the end; the record as applied.
pub async fn promote(
    store: &Store,
    source: &Repo,
    dest: &Repo,
    request: Request,
) -> Result<PromotionRow, PromotionError> {
    promote_holding(store, source, dest, request, None).await
}

/// [`promote`], stopping forever at the test hold point `hold` when it is one of the
/// promotion's (`crate::test_hold`; `None` outside crash tests).
pub async fn promote_holding(
    store: &Store,
    source: &Repo,
    dest: &Repo,
    request: Request,
    hold: Option<&HoldPoint>,
) -> Result<PromotionRow, PromotionError> {
    let mut promotion = Promotion::begin(store, source, dest, request).await?;
    if promotion.row.status == "applied" {
        // Done before (a step run again after its outcome was lost): nothing to write.
        store
            .unlock_repository(&promotion.row.org_id, &dest.image, &promotion.row.step_key)
            .await?;
        return Ok(promotion.row);
    }
    let outcome = promotion.run_stages(hold).await;
    promotion.end(outcome).await
}

impl<'a> Promotion<'a> {
    /// Checks the hold (for automatic runs), takes the destination's lock and records the
    /// promotion (or finds the step's record).
    pub async fn begin(
        store: &'a Store,
        source: &'a Repo,
        dest: &'a Repo,
        request: Request,
    ) -> Result<Promotion<'a>, PromotionError> {
        let now = now_millis();
        if request.automatic
            && let Some(hold) = store
                .promotion_hold(&request.org_id, &dest.image, &request.live_tag)
                .await?
        {
            return Err(PromotionError::Held {
                image: dest.image.clone(),
                tag: request.live_tag.clone(),
                promotion_id: hold.promotion_id,
            });
        }
        super::lock(
            store,
            &request.org_id,
            &dest.image,
            &request.step_key,
            &request.run_id,
        )
        .await?;
        let mut source_digest = request.source_digest.clone();
        if source_digest.is_empty() {
            source_digest = source
                .client
                .resolve_digest(&source.path, &request.source_tag)
                .await?;
        }
        let row = store
            .begin_promotion(PromotionRow {
                id: request.promotion_id,
                org_id: request.org_id,
                app_id: request.app_id,
                step_key: request.step_key,
                run_id: request.run_id,
                job_id: request.job_id,
                step_index: request.step_index,
                action: "promote".into(),
                source_image: source.image.clone(),
                source_tag: request.source_tag,
                source_digest,
                dest_image: dest.image.clone(),
                live_tag: request.live_tag,
                approvals: request.approvals,
                created_by: request.created_by,
                created_at: now,
                status: "planned".into(),
                ..PromotionRow::default()
            })
            .await?;
        let journal = Journal::load(store, &row.id).await?;
        Ok(Promotion {
            store,
            source,
            dest,
            row,
            journal,
        })
    }

    async fn run_stages(&mut self, hold: Option<&HoldPoint>) -> Result<(), PromotionError> {
        self.renew_lock().await?;
        self.copy().await?;
        self.renew_lock().await?;
        if self.plan().await? {
            return Ok(());
        }
        self.renew_lock().await?;
        self.archive().await?;
        if !self.row.archive_tag.is_empty() {
            let detail = format!("{} {}", self.row.id, self.row.archive_tag);
            test_hold::reached(hold, "promote.archived", &detail).await;
        }
        self.renew_lock().await?;
        self.move_live().await
    }

    /// Extends the destination's lock before the next stage (a copy may take long).
    pub async fn renew_lock(&self) -> Result<(), PromotionError> {
        super::lock(
            self.store,
            &self.row.org_id,
            &self.dest.image,
            &self.row.step_key,
            &self.row.run_id,
        )
        .await
    }

    /// Records the outcome, gives the lock back, and returns the record or the error.
    pub async fn end(
        mut self,
        outcome: Result<(), PromotionError>,
    ) -> Result<PromotionRow, PromotionError> {
        match &outcome {
            Ok(()) => {
                self.row.status = "applied".into();
                self.row.finished_at = now_millis();
                self.store.update_promotion(self.row.clone()).await?;
            }
            // Worth retrying: the record stays `planned` and the step resumes from the journal.
            Err(PromotionError::Unavailable(_) | PromotionError::Locked { .. }) => {}
            Err(error) => {
                self.row.status = "failed".into();
                self.row.status_message = error.to_string();
                self.row.finished_at = now_millis();
                self.store.update_promotion(self.row.clone()).await?;
            }
        }
        self.store
            .unlock_repository(&self.row.org_id, &self.dest.image, &self.row.step_key)
            .await?;
        outcome.map(|()| self.row)
    }

    /// Stage 1: the blobs and the manifest, stored by digest (no tag yet).
    pub async fn copy(&mut self) -> Result<(), PromotionError> {
        if self.journal.done(COPY) {
            return Ok(());
        }
        let digest = self.row.source_digest.clone();
        let write = Write {
            seq: COPY,
            op: "put_manifest",
            repository: &self.dest.path,
            tag: &digest,
            digest_before: "",
            digest_after: &digest,
        };
        self.journal
            .record(self.store, &write, "planned", now_millis())
            .await?;
        let report = self
            .dest
            .client
            .copy_by_digest(
                &self.source.client,
                &self.source.path,
                &digest,
                &self.dest.path,
            )
            .await?;
        if report.digest != digest {
            return Err(PromotionError::Refused(format!(
                "the copy of {digest} arrived as {}",
                report.digest
            )));
        }
        self.row.bytes_moved = i64::try_from(report.bytes_moved).unwrap_or(i64::MAX);
        self.row.blobs_mounted = i64::try_from(report.mounted).unwrap_or(i64::MAX);
        self.row.blobs_skipped = i64::try_from(report.skipped).unwrap_or(i64::MAX);
        self.store.update_promotion(self.row.clone()).await?;
        self.journal
            .record(self.store, &write, "done", now_millis())
            .await
    }

    /// Stage 2: decides (once) what the promotion does and records it before any tag write.
    /// True when there is nothing to do (the source is live already).
    pub async fn plan(&mut self) -> Result<bool, PromotionError> {
        if !self.row.version_after.is_empty() {
            return Ok(self.row.new_live_digest.is_empty());
        }
        let tags = self.dest.client.all_tags(&self.dest.path).await?;
        let live = self
            .dest
            .client
            .tag_digest(&self.dest.path, &self.row.live_tag)
            .await?;
        let plan = plan_promotion(&PromotionInput {
            source_digest: &self.row.source_digest,
            tags: &tags,
            live_digest: live.as_deref(),
        });
        let new = self
            .dest
            .client
            .get_manifest(&self.dest.path, &self.row.source_digest)
            .await?;
        match plan {
            PromotionPlan::AlreadyLive => {
                let version = Version::next_after(&tags);
                self.row.version_before = version.clone();
                self.row.version_after = version;
                self.row.status_message = format!(
                    "{}:{} already is {}",
                    self.dest.image, self.row.live_tag, self.row.source_digest
                );
                self.store.update_promotion(self.row.clone()).await?;
                Ok(true)
            }
            PromotionPlan::Promote {
                archive,
                version_before,
                version_after,
            } => {
                self.row.version_before = version_before.unwrap_or_default();
                self.row.version_after = version_after;
                if let Some(archive) = &archive {
                    let previous = self
                        .dest
                        .client
                        .get_manifest(&self.dest.path, &archive.digest)
                        .await?;
                    self.row.previous_live_digest = archive.digest.clone();
                    self.row.previous_live_media_type = previous.media_type;
                    self.row.previous_live_manifest = manifest_text(&previous.bytes)?;
                    match self.numbered_already(&tags, &archive.digest).await? {
                        // A promotion that ended (cancelled, timed out) between its archive
                        // tag and its live move left the live image numbered: it keeps that
                        // one number, none is added (no version doubled).
                        Some(version) => {
                            self.row.version_before = version.tag.clone();
                            self.row.version_after = version.next();
                        }
                        None => self.row.archive_tag = archive.tag.clone(),
                    }
                }
                self.row.new_live_digest = new.digest;
                self.row.new_live_media_type = new.media_type;
                self.store.update_promotion(self.row.clone()).await?;
                Ok(false)
            }
        }
    }

    /// Stage 3: the image live now gets its version, if the plan has one; refused when the
    /// live tag moved since the plan.
    pub async fn archive(&mut self) -> Result<(), PromotionError> {
        if self.row.archive_tag.is_empty() || self.journal.done(ARCHIVE) {
            return Ok(());
        }
        let (tag, previous) = (
            self.row.archive_tag.clone(),
            self.row.previous_live_digest.clone(),
        );
        let write = Write {
            seq: ARCHIVE,
            op: "put_tag",
            repository: &self.dest.path,
            tag: &tag,
            digest_before: "",
            digest_after: &previous,
        };
        let archived = self.dest.client.tag_digest(&self.dest.path, &tag).await?;
        if archived.as_deref() == Some(previous.as_str()) {
            // Written before a crash, journalled as planned only.
            return self
                .journal
                .record(self.store, &write, "done", now_millis())
                .await;
        }
        if let Some(other) = archived {
            return Err(PromotionError::Refused(format!(
                "version {tag} of {} already names {other}",
                self.dest.image
            )));
        }
        self.check_live(&previous).await?;
        // Registered (by a registry notification), the archive tag must start no pipeline.
        if self.journal.get(ARCHIVE).is_none() {
            self.expect_write(ARCHIVE, &tag, &previous).await?;
        }
        self.journal
            .record(self.store, &write, "planned", now_millis())
            .await?;
        let manifest = Manifest {
            media_type: self.row.previous_live_media_type.clone(),
            bytes: self.row.previous_live_manifest.clone().into_bytes(),
            digest: previous.clone(),
        };
        self.dest
            .client
            .put_manifest(&self.dest.path, &tag, &manifest)
            .await?;
        self.journal
            .record(self.store, &write, "done", now_millis())
            .await
    }

    /// Stage 4: the live tag moves to the promoted digest, after checking it still is what the
    /// plan saw; the write is recorded as expected first, so it triggers no pipeline.
    pub async fn move_live(&mut self) -> Result<(), PromotionError> {
        if self.journal.done(LIVE) {
            return Ok(());
        }
        let tag = self.row.live_tag.clone();
        let new = self.row.new_live_digest.clone();
        let previous = self.row.previous_live_digest.clone();
        let write = Write {
            seq: LIVE,
            op: "put_tag",
            repository: &self.dest.path,
            tag: &tag,
            digest_before: &previous,
            digest_after: &new,
        };
        let live = self.dest.client.tag_digest(&self.dest.path, &tag).await?;
        if live.as_deref() == Some(new.as_str()) {
            return self
                .journal
                .record(self.store, &write, "done", now_millis())
                .await;
        }
        self.check_live(&previous).await?;
        if self.journal.get(LIVE).is_none() {
            self.expect_write(LIVE, &tag, &new).await?;
        }
        self.journal
            .record(self.store, &write, "planned", now_millis())
            .await?;
        let manifest = self.dest.client.get_manifest(&self.dest.path, &new).await?;
        self.dest
            .client
            .put_manifest(&self.dest.path, &tag, &manifest)
            .await?;
        let stored = self.dest.client.tag_digest(&self.dest.path, &tag).await?;
        if stored.as_deref() != Some(new.as_str()) {
            return Err(PromotionError::Drift {
                tag,
                expected: new,
                found: stored.unwrap_or_else(|| "nothing".into()),
            });
        }
        self.journal
            .record(self.store, &write, "done", now_millis())
            .await
    }

    /// The highest version tag, when it names `live` already.
    async fn numbered_already(
        &self,
        tags: &[String],
        live: &str,
    ) -> Result<Option<Version>, PromotionError> {
        let Some(highest) = Version::highest(tags) else {
            return Ok(None);
        };
        let digest = self
            .dest
            .client
            .tag_digest(&self.dest.path, &highest.tag)
            .await?;
        Ok((digest.as_deref() == Some(live)).then_some(highest))
    }

    /// Records that journal entry `seq` writes `tag` = `digest` into the destination, so its
    /// registration is known as Gangplank's own (idempotent per entry).
    async fn expect_write(&self, seq: i64, tag: &str, digest: &str) -> Result<(), PromotionError> {
        let now = now_millis();
        self.store
            .expect_registry_write(
                ExpectedWrite {
                    id: format!("{}-{seq}", self.row.id),
                    org_id: self.row.org_id.clone(),
                    image_name: self.dest.image.clone(),
                    tag: tag.to_owned(),
                    digest: digest.to_owned(),
                    expires_at: now + EXPECTED_WRITE_TTL_MS,
                },
                now,
            )
            .await?;
        Ok(())
    }

    /// Refuses unless the live tag points at `expected` (empty: no live tag).
    async fn check_live(&self, expected: &str) -> Result<(), PromotionError> {
        let tag = &self.row.live_tag;
        let live = self.dest.client.tag_digest(&self.dest.path, tag).await?;
        if live.as_deref().unwrap_or_default() != expected {
            return Err(PromotionError::Drift {
                tag: format!("{}:{tag}", self.dest.image),
                expected: if expected.is_empty() {
                    "no tag".into()
                } else {
                    expected.to_owned()
                },
                found: live.unwrap_or_else(|| "no tag".into()),
            });
        }
        Ok(())
    }
}

/// A manifest's bytes as the text the record keeps (manifests are JSON, so UTF-8).
pub fn manifest_text(bytes: &[u8]) -> Result<String, PromotionError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| PromotionError::Refused("the live manifest is not UTF-8 JSON".into()))
}
