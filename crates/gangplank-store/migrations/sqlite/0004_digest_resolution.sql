-- Container versions registered without a digest, for a known registry, get their tag
-- resolved. The resolved digest is kept apart from the given one, so a version's identity
-- (and an identical re-post) does not change when it is resolved.
ALTER TABLE artefact_versions ADD COLUMN resolved_digest TEXT NOT NULL DEFAULT '';
-- '' (nothing to resolve), 'pending', 'retrying' (the last attempt failed) or 'resolved'.
ALTER TABLE artefact_versions ADD COLUMN digest_status TEXT NOT NULL DEFAULT '';
ALTER TABLE artefact_versions ADD COLUMN digest_error TEXT NOT NULL DEFAULT '';
ALTER TABLE artefact_versions ADD COLUMN digest_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE artefact_versions ADD COLUMN digest_next_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX artefact_versions_to_resolve ON artefact_versions (digest_status, digest_next_at);
