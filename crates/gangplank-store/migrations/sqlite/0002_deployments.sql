-- Deltas, sets, deployments and their job queue; automation rules, their inbox, pending
-- batches and decision log; webhooks and their delivery outbox.
ALTER TABLE envs ADD COLUMN from_deploy_id TEXT NOT NULL DEFAULT '';
ALTER TABLE envs ADD COLUMN last_deploy_id TEXT NOT NULL DEFAULT '';
-- 0 when automation runs; otherwise when it was held (by a rollback).
ALTER TABLE envs ADD COLUMN automation_held_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE envs ADD COLUMN automation_held_by TEXT NOT NULL DEFAULT '';
ALTER TABLE envs ADD COLUMN deploy_target TEXT NOT NULL DEFAULT 'none';

CREATE TABLE sets (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    id TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, app_id, id),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id) ON DELETE CASCADE
);

CREATE TABLE deltas (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    name TEXT NOT NULL,
    archived BOOLEAN NOT NULL,
    content TEXT NOT NULL,
    contributers TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_modified_at INTEGER NOT NULL,
    UNIQUE (org_id, app_id, id),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id) ON DELETE CASCADE
);

CREATE TABLE deploys (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    id TEXT NOT NULL,
    from_id TEXT NOT NULL,
    delta_id TEXT NOT NULL,
    set_id TEXT NOT NULL,
    comment TEXT NOT NULL,
    status TEXT NOT NULL,
    status_changed_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    triggered_by TEXT NOT NULL,
    UNIQUE (org_id, app_id, id),
    FOREIGN KEY (org_id, app_id, env_id) REFERENCES envs (org_id, app_id, id) ON DELETE CASCADE
);
CREATE INDEX deploys_by_env ON deploys (org_id, app_id, env_id, seq);

CREATE TABLE deploy_errors (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    deploy_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    scope TEXT NOT NULL,
    object_id TEXT NOT NULL,
    code TEXT NOT NULL,
    summary TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (org_id, app_id, deploy_id, n),
    FOREIGN KEY (org_id, app_id, deploy_id) REFERENCES deploys (org_id, app_id, id) ON DELETE CASCADE
);

-- The durable queue of deployments to run. A row is claimed by setting lease_until; a worker
-- that dies loses its lease and the row is claimed again.
CREATE TABLE deploy_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    deploy_id TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_until INTEGER NOT NULL,
    UNIQUE (org_id, app_id, deploy_id),
    FOREIGN KEY (org_id, app_id, deploy_id) REFERENCES deploys (org_id, app_id, id) ON DELETE CASCADE
);

-- The normalised image repositories each environment's current set runs: which environments
-- a new version can concern, without reading every set.
CREATE TABLE env_images (
    org_id TEXT NOT NULL,
    repository TEXT NOT NULL,
    app_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    PRIMARY KEY (org_id, repository, app_id, env_id),
    FOREIGN KEY (org_id, app_id, env_id) REFERENCES envs (org_id, app_id, id) ON DELETE CASCADE
);

CREATE TABLE rules (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    id TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    artefacts_filter TEXT NOT NULL,
    exclude_artefacts_filter BOOLEAN NOT NULL,
    match_ref TEXT NOT NULL,
    legacy_match TEXT NOT NULL,
    update_to TEXT NOT NULL,
    version_policy TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, app_id, env_id, id),
    FOREIGN KEY (org_id, app_id, env_id) REFERENCES envs (org_id, app_id, id) ON DELETE CASCADE
);
CREATE INDEX rules_by_org ON rules (org_id);

-- Container versions registered and not yet judged by automation.
CREATE TABLE automation_inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    version_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Versions a rule accepted, waiting for their environment's debounce window to close.
CREATE TABLE automation_pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    version_id TEXT NOT NULL,
    log_seq INTEGER NOT NULL,
    arrived_at INTEGER NOT NULL,
    FOREIGN KEY (org_id, app_id, env_id) REFERENCES envs (org_id, app_id, id) ON DELETE CASCADE
);

CREATE TABLE automation_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    version_id TEXT NOT NULL,
    artefact_name TEXT NOT NULL,
    version TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    deploy_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (org_id, app_id, env_id) REFERENCES envs (org_id, app_id, id) ON DELETE CASCADE
);
CREATE INDEX automation_log_by_env ON automation_log (org_id, app_id, env_id, seq);

CREATE TABLE webhooks (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    url TEXT NOT NULL,
    disabled BOOLEAN NOT NULL,
    headers TEXT NOT NULL,
    payload TEXT NOT NULL,
    triggers TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id) ON DELETE CASCADE
);
CREATE INDEX webhooks_by_app ON webhooks (org_id, app_id);

-- The outbox: one row per (event, webhook), written in the transaction that caused the event.
CREATE TABLE webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL,
    last_status INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    FOREIGN KEY (org_id, webhook_id) REFERENCES webhooks (org_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (org_id, webhook_id, seq);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
