//! The server's own secrets (today: the key tokens are hashed with), sealed with the master
//! key like every other secret and shared by every replica on one database.

use crate::sql::query;
use crate::{Store, StoreError};

impl Store {
    /// The sealed server secret `id`, if one was stored.
    pub async fn server_secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        let id = id.to_owned();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query("SELECT sealed FROM server_secrets WHERE id = $1")
                    .bind(&id)
                    .fetch_optional::<String>(conn)
                    .await
            })
        }))
        .await
    }

    /// Stores server secret `id` unless one exists, and returns the stored one: of replicas
    /// starting at once on an empty database, the first to commit wins and all use its secret.
    pub async fn add_server_secret(&self, id: &str, sealed: &str) -> Result<String, StoreError> {
        let (id, sealed) = (id.to_owned(), sealed.to_owned());
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "INSERT INTO server_secrets (id, sealed, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(&sealed)
                .bind(now)
                .execute(conn)
                .await?;
                query("SELECT sealed FROM server_secrets WHERE id = $1")
                    .bind(&id)
                    .fetch_one::<String>(conn)
                    .await
            })
        }))
        .await
    }

    /// How many stored token hashes still have the unkeyed form of before migration 0006
    /// (hex SHA-256); they are rewritten as their tokens are next used.
    pub async fn legacy_token_hashes(&self) -> Result<i64, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                query("SELECT COUNT(*) FROM tokens WHERE token_hash NOT LIKE 'h1:%'")
                    .fetch_one::<i64>(conn)
                    .await
            })
        }))
        .await
    }

    /// Replaces a token's legacy hash with its keyed one.
    pub async fn upgrade_token_hash(&self, legacy: &str, keyed: &str) -> Result<(), StoreError> {
        let (legacy, keyed) = (legacy.to_owned(), keyed.to_owned());
        let result = self
            .write(Box::new(move |conn| {
                Box::pin(async move {
                    query("UPDATE tokens SET token_hash = $2 WHERE token_hash = $1")
                        .bind(&legacy)
                        .bind(&keyed)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            }))
            .await;
        // The cache may hold the principal under the old hash.
        if let Some(cache) = &self.auth_cache {
            cache.invalidate();
        }
        result
    }
}
