-- The compose deploy target: an environment's agents and workload → service mapping, as JSON
-- (gangplank_api::agent::EnvTarget without its `type`, which is `envs.deploy_target`).
ALTER TABLE envs ADD COLUMN target_config TEXT NOT NULL DEFAULT '{}';
-- The server's own signing keys (ES256), sealed like every other secret; the public half is
-- served as a JWKS. Every replica signs with the oldest.
CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
