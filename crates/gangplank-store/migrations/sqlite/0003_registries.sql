-- Registries with sealed credentials, and the audit of every credentials fetch.
CREATE TABLE registries (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    registry TEXT NOT NULL,
    kind TEXT NOT NULL,
    enable_ci BOOLEAN NOT NULL,
    insecure BOOLEAN NOT NULL,
    -- Sealed JSON {username, password, expires}; empty when there are none.
    creds_sealed TEXT NOT NULL,
    secrets TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, registry)
);

CREATE TABLE registry_creds_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    registry_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    fetched_at INTEGER NOT NULL
);
CREATE INDEX registry_creds_audit_by_registry ON registry_creds_audit (org_id, registry_id, seq);
