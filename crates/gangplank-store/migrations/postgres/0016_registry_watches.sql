-- Registry watches: a repository whose tags are listed on an interval, for registries that
-- cannot send Gangplank an event. next_poll_at is durable, so a restart continues the schedule.
CREATE TABLE registry_watches (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    image TEXT NOT NULL,
    filter_kind TEXT NOT NULL,
    filter_pattern TEXT NOT NULL,
    interval_seconds BIGINT NOT NULL DEFAULT 300,
    next_poll_at BIGINT NOT NULL,
    last_polled_at BIGINT NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX registry_watches_due ON registry_watches (next_poll_at);

-- The tags a watch has seen (registered, or found on its first poll), so a restart does not
-- register everything again. The digest is the one registered; empty for a baseline tag.
CREATE TABLE registry_watch_tags (
    org_id TEXT NOT NULL,
    watch_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, watch_id, tag),
    FOREIGN KEY (org_id, watch_id) REFERENCES registry_watches (org_id, id) ON DELETE CASCADE
);
