-- Keyset pagination: lists resume after the sort key of the last item served, so each list
-- whose rows can grow without bound has an index in its sort order (versions already walk
-- artefact_versions_by_org; deploys, the automation log, deliveries and the credentials audit
-- have theirs).
CREATE INDEX apps_by_created ON apps (org_id, created_at, id);
CREATE INDEX artefacts_by_created ON artefacts (org_id, created_at, name);
CREATE INDEX deltas_by_app ON deltas (org_id, app_id, seq);
CREATE INDEX sets_by_created ON sets (org_id, app_id, created_at, id);
