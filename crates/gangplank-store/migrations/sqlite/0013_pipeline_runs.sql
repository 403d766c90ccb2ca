-- One durable work queue for everything a worker claims with a lease: deployments (kind
-- 'deploy', subject = the deployment id) and pipeline runs (kind 'pipeline_run', subject = the
-- run id). It replaces deploy_jobs, whose rows it takes over in their order. A row is claimed
-- by setting lease_until; attempts counts claims and fences a lapsed claim's writes. A parked
-- row (a run waiting on people) keeps lease_until at its next recheck; 0 means due now.
CREATE TABLE work_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_until INTEGER NOT NULL,
    -- parked: released until lease_until (a run waiting on people); woken: a wake-up arrived
    -- while a worker held the row, so its park ends at once instead of sleeping through it.
    parked BOOLEAN NOT NULL DEFAULT FALSE,
    woken BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (kind, org_id, app_id, subject_id)
);
INSERT INTO work_queue (kind, org_id, app_id, subject_id, attempts, lease_until)
SELECT 'deploy', org_id, app_id, deploy_id, attempts, lease_until FROM deploy_jobs ORDER BY seq;
DROP TABLE deploy_jobs;
CREATE INDEX work_queue_due ON work_queue (kind, lease_until);

-- A pipeline run. Its definition (the version's YAML) and inputs are frozen when it is created;
-- the image digest is pinned into `inputs` when it starts. Timestamps are Unix ms, 0 = not yet.
CREATE TABLE pipeline_runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    id TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    pipeline_version TEXT NOT NULL,
    definition TEXT NOT NULL,
    etag TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    executing_at INTEGER NOT NULL,
    cancellation_requested_at INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    trigger_type TEXT NOT NULL,
    inputs TEXT NOT NULL,
    run_as TEXT NOT NULL,
    registrant TEXT NOT NULL,
    concurrency_group TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    env_ids TEXT NOT NULL,
    waiting_for TEXT NOT NULL,
    UNIQUE (org_id, app_id, id),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX pipeline_runs_idempotency
    ON pipeline_runs (org_id, app_id, pipeline_id, idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX pipeline_runs_group ON pipeline_runs (org_id, app_id, concurrency_group, seq)
    WHERE concurrency_group <> '';
CREATE INDEX pipeline_runs_pipeline ON pipeline_runs (org_id, app_id, pipeline_id, seq);

-- A run's jobs, created with the run in definition order (n).
CREATE TABLE pipeline_jobs (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    id TEXT NOT NULL,
    n INTEGER NOT NULL,
    name TEXT NOT NULL,
    etag TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    waiting_for TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    PRIMARY KEY (org_id, app_id, run_id, id),
    FOREIGN KEY (org_id, app_id, run_id) REFERENCES pipeline_runs (org_id, app_id, id) ON DELETE CASCADE
);

-- A job's steps, a row from the moment a step starts (or is skipped). outputs and
-- related_entities are JSON objects.
CREATE TABLE pipeline_steps (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    step_id TEXT NOT NULL,
    name TEXT NOT NULL,
    uses TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    outputs TEXT NOT NULL,
    related_entities TEXT NOT NULL,
    PRIMARY KEY (org_id, app_id, run_id, job_id, idx),
    FOREIGN KEY (org_id, app_id, run_id) REFERENCES pipeline_runs (org_id, app_id, id) ON DELETE CASCADE
);

CREATE TABLE pipeline_step_logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    at INTEGER NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    FOREIGN KEY (org_id, app_id, run_id) REFERENCES pipeline_runs (org_id, app_id, id) ON DELETE CASCADE
);
CREATE INDEX pipeline_step_logs_step ON pipeline_step_logs (org_id, app_id, run_id, job_id, idx, seq);

-- An approval request, one per approve step (run, job, step index); policy is the core
-- approval::Policy as JSON; expires_at 0 = never (the run's timeout still bounds it).
CREATE TABLE pipeline_approvals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    id TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    step_index INTEGER NOT NULL,
    env_id TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at INTEGER NOT NULL,
    policy TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (org_id, app_id, id),
    UNIQUE (org_id, app_id, run_id, job_id, step_index),
    FOREIGN KEY (org_id, app_id, run_id) REFERENCES pipeline_runs (org_id, app_id, id) ON DELETE CASCADE
);
CREATE INDEX pipeline_approvals_status ON pipeline_approvals (status, expires_at);

-- Every response to an approval request: one per user (distinct approvers).
CREATE TABLE pipeline_approval_responses (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    action TEXT NOT NULL,
    comment TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (org_id, app_id, approval_id, user_id),
    FOREIGN KEY (org_id, app_id, approval_id) REFERENCES pipeline_approvals (org_id, app_id, id) ON DELETE CASCADE
);
