-- Image promotions and rollbacks (promotion.md §5.7): what was copied where, by which run,
-- the destination's versions before and after, and what rollback needs to restore the previous
-- live image. `step_key` makes a step's promotion idempotent: a resumed step finds its row.
-- `status`: planned | applied | failed | rolled_back.
CREATE TABLE image_promotions (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    step_index BIGINT NOT NULL,
    action TEXT NOT NULL,
    source_image TEXT NOT NULL,
    source_tag TEXT NOT NULL,
    source_digest TEXT NOT NULL,
    dest_image TEXT NOT NULL,
    live_tag TEXT NOT NULL,
    previous_live_digest TEXT NOT NULL,
    previous_live_media_type TEXT NOT NULL,
    previous_live_manifest TEXT NOT NULL,
    archive_tag TEXT NOT NULL,
    dropped_tag TEXT NOT NULL,
    new_live_digest TEXT NOT NULL,
    new_live_media_type TEXT NOT NULL,
    version_before TEXT NOT NULL,
    version_after TEXT NOT NULL,
    bytes_moved BIGINT NOT NULL,
    blobs_mounted BIGINT NOT NULL,
    blobs_skipped BIGINT NOT NULL,
    approvals TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    rolled_back_by TEXT NOT NULL,
    UNIQUE (org_id, step_key)
);
CREATE INDEX image_promotions_by_app ON image_promotions (org_id, app_id, created_at, id);
CREATE INDEX image_promotions_by_dest ON image_promotions (org_id, dest_image, live_tag, created_at);
-- The journal of a promotion's registry writes, each written `planned` before the write and
-- `done` (or `failed`) after it, so a resumed step knows what already happened.
-- `op`: put_manifest | put_tag | delete_tag.
CREATE TABLE image_tag_ops (
    promotion_id TEXT NOT NULL REFERENCES image_promotions (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    op TEXT NOT NULL,
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest_before TEXT NOT NULL,
    digest_after TEXT NOT NULL,
    state TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (promotion_id, seq)
);
-- Registry writes Gangplank makes itself, recorded before it makes them: a container version
-- registered for exactly (image, tag, digest) while one is unconsumed and unexpired starts no
-- pipeline (identity, not a time window: wire-formats §8.7 #6). Each is consumed once.
CREATE TABLE expected_registry_writes (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL,
    image_name TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NOT NULL
);
CREATE INDEX expected_registry_writes_lookup
    ON expected_registry_writes (org_id, image_name, tag, digest, consumed_at);
-- One writer per destination repository: a promotion (or a rollback) holds its row while it
-- writes tags there; the lease lets a crashed holder's lock lapse.
CREATE TABLE repository_locks (
    org_id TEXT NOT NULL,
    image_name TEXT NOT NULL,
    holder TEXT NOT NULL,
    run_id TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, image_name)
);
-- After a manual rollback, automatic (triggered) promotion into the repository's live tag is
-- held until someone resumes it (Kargo's lesson, kargo#3016).
CREATE TABLE promotion_holds (
    org_id TEXT NOT NULL,
    image_name TEXT NOT NULL,
    live_tag TEXT NOT NULL,
    app_id TEXT NOT NULL,
    promotion_id TEXT NOT NULL,
    held_by TEXT NOT NULL,
    held_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, image_name, live_tag)
);
