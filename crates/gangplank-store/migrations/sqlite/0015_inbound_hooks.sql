-- Inbound hooks: endpoints senders (GitHub, registries) POST events to, each with its own
-- sealed secret; and every delivery they received, whatever its verdict.
CREATE TABLE inbound_hooks (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    -- JSON list of repository name prefixes; [] watches every repository.
    watches TEXT NOT NULL DEFAULT '[]',
    -- The registry prefix that names the images of payloads that name no host (Docker Hub,
    -- ECR); '' uses the host the payload implies.
    registry TEXT NOT NULL DEFAULT '',
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE inbound_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    hook_id TEXT NOT NULL,
    id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    -- The sender's delivery id (X-GitHub-Delivery, an event id); '' when it sends none.
    delivery_id TEXT NOT NULL DEFAULT '',
    headers TEXT NOT NULL DEFAULT '{}',
    body_sha256 TEXT NOT NULL,
    verdict TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    caused TEXT NOT NULL DEFAULT '{}',
    UNIQUE (org_id, hook_id, id)
);
-- A redelivery (same sender id) is recorded once.
CREATE UNIQUE INDEX inbound_deliveries_sender_id ON inbound_deliveries (org_id, hook_id, delivery_id)
    WHERE delivery_id <> '';
CREATE INDEX inbound_deliveries_by_hook ON inbound_deliveries (org_id, hook_id, seq);
