-- Pipelines (Humanitec-compatible): a pipeline is a name over a list of versions, each the
-- YAML text its author sent (the definition is parsed again from it when a run starts, so the
-- text stays the single source). Criteria route deployment requests to a pipeline.
CREATE TABLE pipelines (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    -- The current version's id; the etag changes with every version.
    version_id TEXT NOT NULL,
    etag TEXT NOT NULL,
    -- JSON array of the trigger kinds in `on`, as serde_json writes it.
    trigger_types TEXT NOT NULL,
    -- JSON object of string metadata, as serde_json writes it (sorted keys).
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (org_id, app_id, id),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id) ON DELETE CASCADE
);
CREATE INDEX pipelines_by_created ON pipelines (org_id, app_id, created_at, id);
CREATE INDEX pipelines_by_org ON pipelines (org_id, created_at, app_id, id);

CREATE TABLE pipeline_versions (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    id TEXT NOT NULL,
    -- 1, 2, 3… per pipeline: the list order (newest first) and its page key.
    seq INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (org_id, app_id, pipeline_id, id),
    UNIQUE (org_id, app_id, pipeline_id, seq),
    FOREIGN KEY (org_id, app_id, pipeline_id) REFERENCES pipelines (org_id, app_id, id)
        ON DELETE CASCADE
);

-- Unset match attributes are '' (not NULL), so the uniqueness below covers them: two criteria
-- of one app may not match the same deployment requests.
CREATE TABLE pipeline_criteria (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    id TEXT NOT NULL,
    trigger_type TEXT NOT NULL,
    env_type TEXT NOT NULL,
    match_app_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    deployment_type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, app_id, id),
    FOREIGN KEY (org_id, app_id, pipeline_id) REFERENCES pipelines (org_id, app_id, id)
        ON DELETE CASCADE
);
CREATE UNIQUE INDEX pipeline_criteria_distinct ON pipeline_criteria
    (org_id, app_id, trigger_type, env_type, match_app_id, env_id, deployment_type);
CREATE INDEX pipeline_criteria_by_pipeline ON pipeline_criteria (org_id, app_id, pipeline_id);
