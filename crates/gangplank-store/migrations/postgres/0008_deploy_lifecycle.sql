-- A deployment's lifecycle: the deploy target it was created with (TargetConfig's tagged JSON,
-- captured from its environment in the creating transaction; empty for deployments created
-- before this migration, which fall back to the environment's current target), its deadline
-- (Unix ms, set on its first claim, kept when it is resumed; 0 before), and, for a failed one,
-- whether the target said no ('failed') or gave no answer in time ('errored').
ALTER TABLE deploys ADD COLUMN target TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN deadline_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deploys ADD COLUMN failure TEXT NOT NULL DEFAULT '';
-- One active deployment per environment, also when two replicas create one at once (the
-- store checks first, with gangplank_core::deploy::admit_deploy, for a clear message).
CREATE UNIQUE INDEX deploys_one_active ON deploys (org_id, app_id, env_id)
    WHERE status IN ('pending', 'in progress');
