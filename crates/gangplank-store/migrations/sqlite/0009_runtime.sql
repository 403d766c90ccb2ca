-- What each workload of a compose environment runs, as the server last observed it from the
-- environment's agents (`GET /state`): replaced whole per observation. `in_sync` is 1, 0, or
-- NULL when it was not judged (agent unreachable, nothing desired).
CREATE TABLE env_runtime (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    workload TEXT NOT NULL,
    agent_url TEXT NOT NULL,
    project TEXT NOT NULL,
    service TEXT NOT NULL,
    desired_image TEXT NOT NULL,
    running_image TEXT NOT NULL,
    running_digests TEXT NOT NULL,
    state TEXT NOT NULL,
    health TEXT NOT NULL,
    in_sync BIGINT,
    reason TEXT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    reachable BOOLEAN NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (org_id, app_id, env_id, agent_url, workload),
    FOREIGN KEY (org_id, app_id, env_id) REFERENCES envs (org_id, app_id, id) ON DELETE CASCADE
);
-- An environment's drift state (`unknown`, `in_sync`, `drifted` since `since`), when it was
-- last checked, and when auto-heal last redeployed it. Transitions are compare-and-set on
-- (`state`, `since`), so two replicas never announce the same one twice.
CREATE TABLE env_drift (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    state TEXT NOT NULL,
    since BIGINT NOT NULL,
    checked_at BIGINT NOT NULL,
    last_heal_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, app_id, env_id),
    FOREIGN KEY (org_id, app_id, env_id) REFERENCES envs (org_id, app_id, id) ON DELETE CASCADE
);
