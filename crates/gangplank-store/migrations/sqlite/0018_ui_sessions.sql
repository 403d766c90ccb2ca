-- Dashboard sessions: a browser that signed in with an API token holds a random session id in
-- an HTTP-only cookie; only its keyed hash is stored. A session lasts no longer than the token
-- it was opened with: lookups join the token by hash, so deleting the token ends its sessions.
-- The CSRF token is derived from the session id (an HMAC under the server's token key), so it
-- is not stored.
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ui_sessions_user ON ui_sessions (user_id);
CREATE INDEX ui_sessions_expiry ON ui_sessions (expires_at);
