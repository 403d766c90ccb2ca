-- `resume` re-evaluates the versions skipped while automation was held. Its inbox row names
-- the environment and the span of that environment's automation log (seq after, until] whose
-- held skips it re-evaluates; ordinary rows (a version just registered) leave these empty.
ALTER TABLE automation_inbox ADD COLUMN app_id TEXT NOT NULL DEFAULT '';
ALTER TABLE automation_inbox ADD COLUMN env_id TEXT NOT NULL DEFAULT '';
ALTER TABLE automation_inbox ADD COLUMN log_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE automation_inbox ADD COLUMN log_until INTEGER NOT NULL DEFAULT 0;
-- The automation log seq up to which the environment's held skips were re-evaluated, so a
-- later resume never re-evaluates them again (that would undo a later rollback).
ALTER TABLE envs ADD COLUMN automation_reevaluated_seq INTEGER NOT NULL DEFAULT 0;
