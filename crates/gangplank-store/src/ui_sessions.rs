//! Dashboard sign-in sessions: stored by the keyed hash of their random id, tied to the API
//! token they were opened with, revocable, and swept once expired.

use crate::sql::{query, row_struct};
use crate::{Store, StoreError};

/// A live session: who it stands for and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSessionRow {
    pub user_id: String,
    pub user_name: String,
    pub id_hash: String,
    pub expires_at: i64,
}
row_struct!(UiSessionRow {
    user_id,
    user_name,
    id_hash,
    expires_at
});

/// A session to store: only the hash of its id.
#[derive(Debug, Clone)]
pub struct NewUiSession {
    pub id_hash: String,
    pub user_id: String,
    /// The stored hash of the token the user signed in with.
    pub token_hash: String,
    pub expires_at: i64,
}

impl Store {
    /// Stores a new session, and deletes the sessions that ended (expired or revoked) more
    /// than a day ago, so the table stays as small as the sessions in use.
    pub async fn create_ui_session(&self, new: NewUiSession) -> Result<(), StoreError> {
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let day_ago = now - 86_400_000;
                query(
                    "DELETE FROM ui_sessions WHERE expires_at < $1 \
                     OR (revoked_at > 0 AND revoked_at < $1)",
                )
                .bind(day_ago)
                .execute(conn)
                .await?;
                query(
                    "INSERT INTO ui_sessions (id_hash, user_id, token_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&new.id_hash)
                .bind(&new.user_id)
                .bind(&new.token_hash)
                .bind(now)
                .bind(new.expires_at)
                .execute(conn)
                .await?;
                Ok(())
            })
        }))
        .await
    }

    /// The live session with id hash `id_hash`: not revoked, not expired, and its token still
    /// exists and has not expired.
    pub async fn find_ui_session(&self, id_hash: &str) -> Result<Option<UiSessionRow>, StoreError> {
        let id_hash = id_hash.to_owned();
        let now = crate::now_millis();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "SELECT s.user_id, u.name AS user_name, s.id_hash, s.expires_at \
                     FROM ui_sessions s JOIN users u ON u.id = s.user_id \
                     JOIN tokens t ON t.token_hash = s.token_hash AND t.user_id = s.user_id \
                     WHERE s.id_hash = $1 AND s.revoked_at = 0 AND s.expires_at > $2 \
                     AND (t.expires_at IS NULL OR t.expires_at > $2)",
                )
                .bind(&id_hash)
                .bind(now)
                .fetch_optional::<UiSessionRow>(conn)
                .await
            })
        }))
        .await
    }

    /// Revokes the session with id hash `id_hash` (sign-out); `false` when no live one had it.
    pub async fn revoke_ui_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let id_hash = id_hash.to_owned();
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let changed = query(
                    "UPDATE ui_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at = 0",
                )
                .bind(&id_hash)
                .bind(now)
                .execute(conn)
                .await?;
                Ok(changed > 0)
            })
        }))
        .await
    }

    /// Revokes every live session of `user_id`; returns how many.
    pub async fn revoke_user_ui_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        let user_id = user_id.to_owned();
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "UPDATE ui_sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at = 0",
                )
                .bind(&user_id)
                .bind(now)
                .execute(conn)
                .await
            })
        }))
        .await
    }
}
