//! Deploy targets of environments (`none`, `compose` and its agents) and the server's signing
//! keys for requests to agents.

use crate::conn::Store;
use crate::error::StoreError;
use crate::sql::{query, row_struct};

/// One of the server's signing keys; the private half is sealed.
#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    pub id: String,
    pub alg: String,
    pub private_sealed: String,
    pub public_jwk: String,
    pub created_at: i64,
}
row_struct!(SigningKeyRow {
    id,
    alg,
    private_sealed,
    public_jwk,
    created_at
});

impl Store {
    /// Sets an environment's deploy target and its configuration (JSON).
    pub async fn set_env_target(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        target: &str,
        config: &str,
    ) -> Result<(), StoreError> {
        let args = [org_id, app_id, env_id, target, config].map(str::to_owned);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, env_id, target, config] = &args;
                let updated = query(
                    "UPDATE envs SET deploy_target = $4, target_config = $5 \
                     WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(env_id)
                .bind(target)
                .bind(config)
                .execute(conn)
                .await?;
                if updated == 0 {
                    return Err(StoreError::NotFound(format!(
                        "environment {env_id} does not exist in app {app_id}"
                    )));
                }
                Ok(())
            })
        }))
        .await
    }

    /// An environment's deploy target and its configuration (JSON).
    pub async fn env_target(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
    ) -> Result<(String, String), StoreError> {
        let args = [org_id, app_id, env_id].map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let [org_id, app_id, env_id] = &args;
                query(
                    "SELECT deploy_target, target_config FROM envs \
                     WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(org_id)
                .bind(app_id)
                .bind(env_id)
                .fetch_optional::<(String, String)>(conn)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "environment {env_id} does not exist in app {app_id}"
                    ))
                })
            })
        }))
        .await
    }

    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                query(
                    "SELECT id, alg, private_sealed, public_jwk, created_at FROM signing_keys \
                     ORDER BY created_at, id",
                )
                .fetch_all::<SigningKeyRow>(conn)
                .await
            })
        }))
        .await
    }

    /// Adds a signing key.
    pub async fn add_signing_key(&self, row: SigningKeyRow) -> Result<(), StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "INSERT INTO signing_keys (id, alg, private_sealed, public_jwk, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&row.id)
                .bind(&row.alg)
                .bind(&row.private_sealed)
                .bind(&row.public_jwk)
                .bind(row.created_at)
                .execute(conn)
                .await
                .map(|_| ())
            })
        }))
        .await
    }
}
