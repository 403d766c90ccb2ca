-- Which registered version consumed an expected registry write: the automation worker's inbox
-- may evaluate the same version again after a crash, and must find it suppressed again.
ALTER TABLE expected_registry_writes ADD COLUMN consumed_by TEXT NOT NULL DEFAULT '';
