-- Build definitions (one per application: what to clone, build and push; the clone token
-- sealed, '' when none) and builds: each queued by a GitHub push or a person, the definition
-- frozen into it when queued (`spec`, JSON without the token), driven by the work queue.
CREATE TABLE build_definitions (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    clone_url TEXT NOT NULL,
    clone_token_sealed TEXT NOT NULL DEFAULT '',
    -- JSON: {branches, dockerfile, context, build_args, image, tags, builder, timeout_seconds}
    spec TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (org_id, app_id),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id) ON DELETE CASCADE
);

CREATE TABLE builds (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    commit_sha TEXT NOT NULL DEFAULT '',
    git_ref TEXT NOT NULL,
    trigger_type TEXT NOT NULL,
    delivery_id TEXT NOT NULL DEFAULT '',
    clone_url TEXT NOT NULL,
    spec TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    digest TEXT NOT NULL DEFAULT '',
    version_id TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    -- Lines logged so far (numbered from 0), stored or not (past the cap they are counted).
    log_lines BIGINT NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT NOT NULL DEFAULT 0,
    finished_at BIGINT NOT NULL DEFAULT 0,
    UNIQUE (org_id, app_id, id),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id) ON DELETE CASCADE
);
CREATE INDEX builds_open_by_ref ON builds (org_id, app_id, git_ref, status);

CREATE TABLE build_logs (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    build_id TEXT NOT NULL,
    n BIGINT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (org_id, app_id, build_id, n),
    FOREIGN KEY (org_id, app_id, build_id) REFERENCES builds (org_id, app_id, id) ON DELETE CASCADE
);
