//! `promote-image`: copy what `source@digest` references into the destination repository,
//! give the image live there the next version (`gangplank_core::promotion::plan_promotion`),
//! then move the live tag, storing the source's manifest bytes under it (so the digest is the
//! same). The stages run in order and each is resumable: the plan is recorded before any
//! tag write, and every tag write is journalled, so a step that crashed between the archive
//! tag and the live move finishes the move and never numbers the old image twice.
//!
//! Journal sequence numbers: 1 the copy (the blobs; the manifest is stored with the live tag),
//! 2 the archive tag, 3 the live tag.

use gangplank_core::promotion::{PromotionInput, PromotionPlan, Version, plan_promotion};
use gangplank_oci::{CopyReport, Manifest, referenced_blobs};
use gangplank_store::{
    ExpectedWrite, PromotionRow, PromotionWrites, RepositoryLock, Store, TagOpRow, now_millis,
};

use super::journal::{Journal, Write};
use super::registry::Repo;
use super::{EXPECTED_WRITE_TTL_MS, LOCK_LEASE_MS, PromotionError};
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
    /// Journal entries done but not yet written: they go with the next write (a crash before
    /// it leaves them `planned`, and a resumed step checks the registry for them).
    pending: Vec<TagOpRow>,
    /// When the destination's lock was last taken or renewed (Unix ms).
    locked_at: i64,
    /// The promoted manifest, once copied or read (the live tag is written with these bytes).
    new_manifest: Option<Manifest>,
    /// The plan was made by this call: its tag writes cannot have happened yet, so they need
    /// no look at the registry first (a resumed step's do).
    fresh_plan: bool,
}

/// What the plan reads from the destination.
struct PlanReads {
    tags: Vec<String>,
    live: Option<String>,
    /// The source's manifest (the bytes the live tag will carry).
    new: Manifest,
    /// The live image's manifest, when one other than the source is live.
    previous: Option<Manifest>,
    /// The highest version, when it names the live image already.
    numbered: Option<Version>,
}

/// The destination's tags and its highest version, with the digest that names.
struct Versions {
    tags: Vec<String>,
    highest: Option<(Version, Option<String>)>,
}

impl PlanReads {
    fn new(live: Option<Manifest>, new: Manifest, versions: Versions) -> PlanReads {
        let live_digest = live.as_ref().map(|m| m.digest.clone());
        let previous = live.filter(|m| m.digest != new.digest);
        let numbered = match (&previous, versions.highest) {
            (Some(previous), Some((version, Some(digest)))) if digest == previous.digest => {
                Some(version)
            }
            _ => None,
        };
        PlanReads {
            tags: versions.tags,
            live: live_digest,
            new,
            previous,
            numbered,
        }
    }
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
    /// Checks the hold (for automatic runs), then takes the destination's lock and records the
    /// promotion (or finds the step's record and journal) in one write.
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
        let mut source_digest = request.source_digest.clone();
        if source_digest.is_empty() {
            // Resolved before the record exists; a resumed step keeps its record's digest.
            source_digest = source
                .client
                .resolve_digest(&source.path, &request.source_tag)
                .await?;
        }
        let lock = RepositoryLock {
            image_name: dest.image.clone(),
            holder: request.step_key.clone(),
            run_id: request.run_id.clone(),
            expires_at: now + LOCK_LEASE_MS,
        };
        let org_id = request.org_id.clone();
        let row = PromotionRow {
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
        };
        let Some((row, ops)) = store.begin_promotion_locked(row, lock, now).await? else {
            return Err(super::locked(store, &org_id, &dest.image, now).await);
        };
        Ok(Promotion {
            store,
            source,
            dest,
            journal: Journal::new(&row.id, ops),
            row,
            pending: Vec::new(),
            locked_at: now,
            new_manifest: None,
            fresh_plan: false,
        })
    }

    async fn run_stages(&mut self, hold: Option<&HoldPoint>) -> Result<(), PromotionError> {
        let fresh = self.row.version_after.is_empty() && !self.journal.done(COPY);
        let already_live = if fresh {
            self.plan_copy_and_archive().await?
        } else {
            self.resume_to_live().await?
        };
        if already_live {
            return Ok(());
        }
        self.move_live_holding(hold).await
    }

    /// A new promotion up to the live move: read, then copy the blobs the live image does not
    /// share while the plan is recorded (every tag write journalled `planned`) and the live
    /// image gets its version (the archive tag needs only the plan, and is written before
    /// `latest` moves). True when the source is live already.
    async fn plan_copy_and_archive(&mut self) -> Result<bool, PromotionError> {
        let (images, versions) = tokio::join!(self.images(), self.versions());
        let (live, new) = images?;
        let reads = PlanReads::new(live, new, versions?);
        let present = reads
            .previous
            .as_ref()
            .map(referenced_blobs)
            .unwrap_or_default();
        // `plan_promotion`'s own test for "nothing to do": then there is nothing to copy.
        let already_live = reads.live.as_deref() == Some(self.row.source_digest.as_str());
        let new = reads.new.clone();
        // The copy writes no tag (nothing to journal before it; copying a blob again is
        // harmless), so it need not wait for the plan's commit. The live tag, which needs the
        // blobs, is written after both.
        let (source, dest) = (self.source, self.dest);
        let copy = async move {
            if already_live {
                return Ok(None);
            }
            dest.client
                .copy_content_of(&source.client, &source.path, new, &dest.path, &present)
                .await
                .map(Some)
        };
        let plan_and_archive = async {
            if self.decide(reads).await? {
                return Ok(None);
            }
            if self.row.archive_tag.is_empty() {
                return Ok(Some(false));
            }
            self.put_archive().await.map(|()| Some(true))
        };
        let (copied, planned) = tokio::join!(copy, plan_and_archive);
        // Either may have happened without the other: a resumed step checks the registry for
        // every write left `planned`.
        let Some(archived) = planned? else {
            return Ok(true);
        };
        if archived {
            self.archived();
        }
        match copied? {
            Some(report) => self.copied(report),
            None => {
                return Err(PromotionError::Unavailable(
                    "the plan moves the live tag, but nothing was copied".into(),
                ));
            }
        }
        Ok(false)
    }

    /// A promotion resumed after its plan was recorded (or begun by an older version of this
    /// code): each stage looks at the registry for what already happened.
    async fn resume_to_live(&mut self) -> Result<bool, PromotionError> {
        self.copy().await?;
        if self.plan().await? {
            return Ok(true);
        }
        self.archive().await?;
        Ok(false)
    }

    /// Writes `writes` with the pending journal entries, renewing the destination's lock
    /// first when a third of its lease has passed (a copy may take long); `Locked` when
    /// another writer took it over meanwhile (nothing is written then).
    async fn flush(&mut self, writes: PromotionWrites) -> Result<(), PromotionError> {
        let (writes, now) = self.prepare(writes);
        self.commit(writes, now).await
    }

    /// Renews the destination's lock now, with the pending journal entries (the stages renew
    /// it by themselves once a third of its lease has passed).
    pub async fn renew_lock(&mut self) -> Result<(), PromotionError> {
        self.locked_at = i64::MIN / 2;
        self.flush(PromotionWrites::default()).await
    }

    /// Makes the lock look taken `ms` earlier than it was (tests of the renewal).
    #[cfg(test)]
    pub fn backdate_lock(&mut self, ms: i64) {
        self.locked_at -= ms;
    }

    /// `writes` with the pending journal entries and, when due, the lock's renewal.
    fn prepare(&mut self, mut writes: PromotionWrites) -> (PromotionWrites, i64) {
        let now = now_millis();
        if now - self.locked_at > LOCK_LEASE_MS / 3 {
            writes.lock = Some(RepositoryLock {
                image_name: self.dest.image.clone(),
                holder: self.row.step_key.clone(),
                run_id: self.row.run_id.clone(),
                expires_at: now + LOCK_LEASE_MS,
            });
            // A failed renewal ends the promotion (`Locked`), so this is only read on success.
            self.locked_at = now;
        }
        let mut journal = std::mem::take(&mut self.pending);
        journal.append(&mut writes.journal);
        writes.journal = journal;
        (writes, now)
    }

    async fn commit(&self, writes: PromotionWrites, now: i64) -> Result<(), PromotionError> {
        if writes.is_empty()
            || self
                .store
                .record_promotion(&self.row.org_id, &self.row.id, writes, now)
                .await?
        {
            return Ok(());
        }
        Err(super::locked(self.store, &self.row.org_id, &self.dest.image, now).await)
    }

    /// Records the outcome, gives the lock back, and returns the record or the error: one
    /// write, with the journal entries still pending.
    pub async fn end(
        mut self,
        outcome: Result<(), PromotionError>,
    ) -> Result<PromotionRow, PromotionError> {
        let mut writes = PromotionWrites {
            unlock: Some(RepositoryLock {
                image_name: self.dest.image.clone(),
                holder: self.row.step_key.clone(),
                run_id: self.row.run_id.clone(),
                expires_at: 0,
            }),
            ..PromotionWrites::default()
        };
        match &outcome {
            Ok(()) => {
                self.row.status = "applied".into();
                self.row.finished_at = now_millis();
                writes.row = Some(self.row.clone());
            }
            // Worth retrying: the record stays `planned` and the step resumes from the journal.
            Err(PromotionError::Unavailable(_) | PromotionError::Locked { .. }) => {}
            Err(error) => {
                self.row.status = "failed".into();
                self.row.status_message = error.to_string();
                self.row.finished_at = now_millis();
                writes.row = Some(self.row.clone());
            }
        }
        writes.journal = std::mem::take(&mut self.pending);
        self.store
            .record_promotion(&self.row.org_id, &self.row.id, writes, now_millis())
            .await?;
        outcome.map(|()| self.row)
    }

    /// Stage 1: the blobs (no tag yet, so nothing to journal before: copying a blob again is
    /// harmless; done is journalled with the next write).
    pub async fn copy(&mut self) -> Result<(), PromotionError> {
        if self.journal.done(COPY) {
            return Ok(());
        }
        let report = self.copy_to_destination().await?;
        self.copied(report);
        Ok(())
    }

    async fn copy_to_destination(&self) -> Result<CopyReport, PromotionError> {
        let digest = &self.row.source_digest;
        let report = self
            .dest
            .client
            .copy_content(
                &self.source.client,
                &self.source.path,
                digest,
                &self.dest.path,
            )
            .await?;
        if report.digest != *digest {
            return Err(PromotionError::Refused(format!(
                "the copy of {digest} arrived as {}",
                report.digest
            )));
        }
        Ok(report)
    }

    fn copied(&mut self, report: CopyReport) {
        let digest = self.row.source_digest.clone();
        self.row.bytes_moved = i64::try_from(report.bytes_moved).unwrap_or(i64::MAX);
        self.row.blobs_mounted = i64::try_from(report.mounted).unwrap_or(i64::MAX);
        self.row.blobs_skipped = i64::try_from(report.skipped).unwrap_or(i64::MAX);
        self.new_manifest = Some(report.manifest);
        let write = Write {
            seq: COPY,
            op: "copy_blobs",
            repository: &self.dest.path,
            tag: &digest,
            digest_before: "",
            digest_after: &digest,
        };
        self.pending
            .push(self.journal.note(&write, "done", now_millis()));
    }

    /// Stage 2: decides (once) what the promotion does and records it, with every tag write
    /// it plans, before any tag write. True when there is nothing to do (the source is live
    /// already).
    pub async fn plan(&mut self) -> Result<bool, PromotionError> {
        if !self.row.version_after.is_empty() {
            return Ok(self.row.new_live_digest.is_empty());
        }
        let (images, versions) = tokio::join!(self.images(), self.versions());
        let (live, new) = images?;
        self.decide(PlanReads::new(live, new, versions?)).await
    }

    /// The image live in the destination (its manifest, so its blobs are known), if any, and
    /// the source's manifest.
    async fn images(&self) -> Result<(Option<Manifest>, Manifest), PromotionError> {
        let (live, new) = tokio::join!(
            self.dest
                .client
                .find_manifest(&self.dest.path, &self.row.live_tag),
            self.source
                .client
                .get_manifest(&self.source.path, &self.row.source_digest)
        );
        Ok((live?, new?))
    }

    /// The destination's tags, and its highest version with the digest it names: the one the
    /// store's records say when they explain it (`named_by_record`), else the registry's
    /// answer to a look at that tag.
    async fn versions(&self) -> Result<Versions, PromotionError> {
        let (tags, newest) = tokio::join!(
            self.dest.client.all_tags(&self.dest.path),
            self.store.newest_applied_promotion(
                &self.row.org_id,
                &self.dest.image,
                &self.row.live_tag
            )
        );
        let tags = tags?;
        let Some(version) = Version::highest(&tags) else {
            return Ok(Versions {
                tags,
                highest: None,
            });
        };
        let digest = match newest? {
            Some(record) if named_by_record(&record, &version) => Some(record.previous_live_digest),
            _ => {
                self.dest
                    .client
                    .tag_digest(&self.dest.path, &version.tag)
                    .await?
            }
        };
        Ok(Versions {
            tags,
            highest: Some((version, digest)),
        })
    }

    /// Decides the plan from `reads` and records it with every tag write it plans, journalled
    /// `planned` and expected (so their registrations start no pipeline): one write before
    /// either tag write, made while the live tag is checked once more.
    async fn decide(&mut self, reads: PlanReads) -> Result<bool, PromotionError> {
        let PlanReads {
            tags,
            live,
            new,
            previous,
            numbered,
        } = reads;
        self.new_manifest = Some(new);
        let plan = plan_promotion(&PromotionInput {
            source_digest: &self.row.source_digest,
            tags: &tags,
            live_digest: live.as_deref(),
        });
        let mut writes = PromotionWrites::default();
        let PromotionPlan::Promote {
            archive,
            version_before,
            version_after,
        } = plan
        else {
            let version = Version::next_after(&tags);
            self.row.version_before = version.clone();
            self.row.version_after = version;
            self.row.status_message = format!(
                "{}:{} already is {}",
                self.dest.image, self.row.live_tag, self.row.source_digest
            );
            writes.row = Some(self.row.clone());
            self.flush(writes).await?;
            return Ok(true);
        };
        self.row.version_before = version_before.unwrap_or_default();
        self.row.version_after = version_after;
        let new = self.new_manifest().await?;
        if let Some(archive) = &archive {
            let previous = previous.ok_or_else(|| {
                PromotionError::Unavailable("the live manifest was not read".into())
            })?;
            self.row.previous_live_digest = archive.digest.clone();
            self.row.previous_live_media_type = previous.media_type;
            self.row.previous_live_manifest = manifest_text(&previous.bytes)?;
            match numbered {
                // A promotion that ended (cancelled, timed out) between its archive tag and
                // its live move left the live image numbered: it keeps that one number, none
                // is added (no version doubled).
                Some(version) => {
                    self.row.version_before = version.tag.clone();
                    self.row.version_after = version.next();
                }
                None => self.row.archive_tag = archive.tag.clone(),
            }
        }
        self.row.new_live_digest = new.digest;
        self.row.new_live_media_type = new.media_type;
        writes.row = Some(self.row.clone());
        if !self.row.archive_tag.is_empty() {
            let (tag, previous) = (
                self.row.archive_tag.clone(),
                self.row.previous_live_digest.clone(),
            );
            self.plan_write(&mut writes, ARCHIVE, &tag, "", &previous);
        }
        let (tag, previous, new) = (
            self.row.live_tag.clone(),
            self.row.previous_live_digest.clone(),
            self.row.new_live_digest.clone(),
        );
        self.plan_write(&mut writes, LIVE, &tag, &previous, &new);
        self.flush(writes).await?;
        self.fresh_plan = true;
        Ok(false)
    }

    /// Adds tag write `seq` to `writes`, journalled `planned` and expected.
    fn plan_write(
        &mut self,
        writes: &mut PromotionWrites,
        seq: i64,
        tag: &str,
        before: &str,
        after: &str,
    ) {
        let write = Write {
            seq,
            op: "put_tag",
            repository: &self.dest.path,
            tag,
            digest_before: before,
            digest_after: after,
        };
        writes
            .journal
            .push(self.journal.note(&write, "planned", now_millis()));
        writes.expected.push(self.expected_write(seq, tag, after));
    }

    /// The promoted manifest: as read by the copy, or read again from the source (a resumed
    /// step).
    async fn new_manifest(&mut self) -> Result<Manifest, PromotionError> {
        if let Some(manifest) = &self.new_manifest {
            return Ok(manifest.clone());
        }
        let manifest = self
            .source
            .client
            .get_manifest(&self.source.path, &self.row.source_digest)
            .await?;
        self.new_manifest = Some(manifest.clone());
        Ok(manifest)
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
        if !self.fresh_plan {
            let archived = self.dest.client.tag_digest(&self.dest.path, &tag).await?;
            if archived.as_deref() == Some(previous.as_str()) {
                // Written before a crash, journalled as planned only.
                self.archived();
                return Ok(());
            }
            if let Some(other) = archived {
                return Err(PromotionError::Refused(format!(
                    "version {tag} of {} already names {other}",
                    self.dest.image
                )));
            }
            // Not archived yet: the live tag must still be what the recorded plan saw (a plan
            // made by this call read it a moment ago).
            self.check_live(&previous).await?;
        }
        let row = self.row.clone();
        self.ensure_planned(&archive_write(&row, &self.dest.path))
            .await?;
        self.put_archive().await?;
        self.archived();
        Ok(())
    }

    /// Writes the archive tag: the version on the image live when the plan was made.
    async fn put_archive(&self) -> Result<(), PromotionError> {
        let manifest = Manifest {
            media_type: self.row.previous_live_media_type.clone(),
            bytes: self.row.previous_live_manifest.clone().into_bytes(),
            digest: self.row.previous_live_digest.clone(),
        };
        self.dest
            .client
            .put_manifest(&self.dest.path, &self.row.archive_tag, &manifest)
            .await?;
        Ok(())
    }

    /// Notes the archive tag written (journalled `done` with the next write).
    fn archived(&mut self) {
        let row = self.row.clone();
        let done = self
            .journal
            .note(&archive_write(&row, &self.dest.path), "done", now_millis());
        self.pending.push(done);
    }

    /// Stage 4: the live tag moves to the promoted digest, right after checking it still is
    /// what the plan saw; the write was recorded as expected, so it triggers no pipeline.
    pub async fn move_live(&mut self) -> Result<(), PromotionError> {
        self.move_live_holding(None).await
    }

    /// [`Promotion::move_live`], stopping at the test hold point `promote.archived` once the
    /// archive tag's `done` is written.
    async fn move_live_holding(&mut self, hold: Option<&HoldPoint>) -> Result<(), PromotionError> {
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
        if !self.fresh_plan {
            let live = self.dest.client.tag_digest(&self.dest.path, &tag).await?;
            if live.as_deref() == Some(new.as_str()) {
                self.pending
                    .push(self.journal.note(&write, "done", now_millis()));
                return Ok(());
            }
        }
        // The archive tag's `done` is written while the live tag is checked: logged before
        // the next tag write, at no cost in time.
        let (writes, now) = self.prepare(PromotionWrites::default());
        let (written, checked) = tokio::join!(self.commit(writes, now), self.check_live(&previous));
        written?;
        if !self.row.archive_tag.is_empty() {
            let detail = format!("{} {}", self.row.id, self.row.archive_tag);
            test_hold::reached(hold, "promote.archived", &detail).await;
        }
        checked?;
        self.ensure_planned(&write).await?;
        let manifest = self.new_manifest().await?;
        let confirmed = self
            .dest
            .client
            .put_manifest_confirmed(&self.dest.path, &tag, &manifest)
            .await?;
        if !confirmed {
            // The registry did not say what it stored (no `Docker-Content-Digest`): look.
            let stored = self.dest.client.tag_digest(&self.dest.path, &tag).await?;
            if stored.as_deref() != Some(new.as_str()) {
                return Err(PromotionError::Drift {
                    tag,
                    expected: new,
                    found: stored.unwrap_or_else(|| "nothing".into()),
                });
            }
        }
        self.pending
            .push(self.journal.note(&write, "done", now_millis()));
        Ok(())
    }

    /// Journals `write` as planned, and expected, unless it is already (a plan recorded by an
    /// earlier version of this code journalled no tag write ahead).
    async fn ensure_planned(&mut self, write: &Write<'_>) -> Result<(), PromotionError> {
        if self.journal.get(write.seq).is_some() {
            return Ok(());
        }
        let writes = PromotionWrites {
            journal: vec![self.journal.note(write, "planned", now_millis())],
            expected: vec![self.expected_write(write.seq, write.tag, write.digest_after)],
            ..PromotionWrites::default()
        };
        self.flush(writes).await
    }

    /// That journal entry `seq` writes `tag` = `digest` into the destination, so its
    /// registration is known as Gangplank's own (idempotent per entry).
    fn expected_write(&self, seq: i64, tag: &str, digest: &str) -> ExpectedWrite {
        ExpectedWrite {
            id: format!("{}-{seq}", self.row.id),
            org_id: self.row.org_id.clone(),
            image_name: self.dest.image.clone(),
            tag: tag.to_owned(),
            digest: digest.to_owned(),
            expires_at: now_millis() + EXPECTED_WRITE_TTL_MS,
        }
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

/// Whether `record`, the newest applied one into the live tag, names the digest of version
/// `highest` without asking the registry: a promotion whose `version_before` it is gave that
/// version to the image it replaced (archive tag, or the number a cancelled promotion had
/// given it). Any version written since (a promotion that archived the live image and then
/// ended before its live move) is above it, so the highest would be another tag; a rollback
/// since is a newer applied record. A version tag rewritten by hand outside Gangplank is what
/// this cannot see.
fn named_by_record(record: &PromotionRow, highest: &Version) -> bool {
    record.action == "promote"
        && !record.previous_live_digest.is_empty()
        && record.version_before == highest.tag
}

/// The archive tag's write: version `archive_tag` on the image live when the plan was made.
fn archive_write<'w>(row: &'w PromotionRow, repository: &'w str) -> Write<'w> {
    Write {
        seq: ARCHIVE,
        op: "put_tag",
        repository,
        tag: &row.archive_tag,
        digest_before: "",
        digest_after: &row.previous_live_digest,
    }
}

/// A manifest's bytes as the text the record keeps (manifests are JSON, so UTF-8).
pub fn manifest_text(bytes: &[u8]) -> Result<String, PromotionError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| PromotionError::Refused("the live manifest is not UTF-8 JSON".into()))
}
