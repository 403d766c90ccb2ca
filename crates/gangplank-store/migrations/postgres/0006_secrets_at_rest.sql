-- The server's own secrets, sealed with the master key: today the key API tokens are hashed
-- with (HMAC-SHA256), so a copied database does not reveal a guessable token.
CREATE TABLE server_secrets (
    id TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Webhook header values are sealed (they may hold credentials), so deliveries no longer keep
-- rendered headers: the delivery worker renders the webhook's headers when it sends, with the
-- event's variables kept here. Rendered headers of earlier deliveries are dropped.
ALTER TABLE webhook_deliveries ADD COLUMN vars TEXT NOT NULL DEFAULT '{}';
UPDATE webhook_deliveries SET headers = '{}';
