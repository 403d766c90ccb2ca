-- A deployment's lifecycle: the deploy target it was created with (TargetConfig's tagged JSON,
-- captured from its environment in the creating transaction; empty for deployments created
-- before this migration, which fall back to the environment's current target), its deadline
-- (Unix ms, set on its first claim, kept when it is resumed; 0 before), and, for a failed one,
-- whether the target said no ('failed') or gave no answer in time ('errored').
ALTER TABLE deploys ADD COLUMN target TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN deadline_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deploys ADD COLUMN failure TEXT NOT NULL DEFAULT '';
-- A database may already hold more than one active deployment in an environment (two
-- replicas on PostgreSQL could create them at once before): the index below would abort
-- startup. The newest stays; each older one is failed (errored) with a reason and leaves
-- the queue. No `deployment.finished` delivery is queued for them.
INSERT INTO deploy_errors (org_id, app_id, deploy_id, n, scope, object_id, code, summary, message)
SELECT org_id, app_id, id, 0, 'deployment', id, 'GP-SUPERSEDED',
    'superseded by a newer active deployment in its environment',
    'more than one deployment was active in this environment; the newest was kept and this one was failed on upgrade'
FROM deploys WHERE status IN ('pending', 'in progress') AND EXISTS (SELECT 1 FROM deploys newer
    WHERE newer.org_id = deploys.org_id AND newer.app_id = deploys.app_id
    AND newer.env_id = deploys.env_id AND newer.status IN ('pending', 'in progress')
    AND newer.seq > deploys.seq)
ON CONFLICT (org_id, app_id, deploy_id, n) DO NOTHING;
DELETE FROM deploy_jobs WHERE EXISTS (SELECT 1 FROM deploys WHERE deploys.org_id = deploy_jobs.org_id
    AND deploys.app_id = deploy_jobs.app_id AND deploys.id = deploy_jobs.deploy_id
    AND status IN ('pending', 'in progress') AND EXISTS (SELECT 1 FROM deploys newer
        WHERE newer.org_id = deploys.org_id AND newer.app_id = deploys.app_id
        AND newer.env_id = deploys.env_id AND newer.status IN ('pending', 'in progress')
        AND newer.seq > deploys.seq));
UPDATE deploys SET status = 'failed', failure = 'errored',
    status_changed_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
WHERE status IN ('pending', 'in progress') AND EXISTS (SELECT 1 FROM deploys newer
    WHERE newer.org_id = deploys.org_id AND newer.app_id = deploys.app_id
    AND newer.env_id = deploys.env_id AND newer.status IN ('pending', 'in progress')
    AND newer.seq > deploys.seq);
-- One active deployment per environment, also when two replicas create one at once (the
-- store checks first, with gangplank_core::deploy::admit_deploy, for a clear message).
CREATE UNIQUE INDEX deploys_one_active ON deploys (org_id, app_id, env_id)
    WHERE status IN ('pending', 'in progress');
