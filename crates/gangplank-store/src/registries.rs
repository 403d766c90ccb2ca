//! Registries (prefix, type, sealed credentials) and the audit of credentials fetches.

use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, after_descending, into_page};
use crate::sql::{query, row_struct};
use crate::{Store, StoreError};

/// A stored registry; `creds_sealed` is ciphertext (or empty), `secrets` JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRow {
    pub id: String,
    pub registry: String,
    pub kind: String,
    pub enable_ci: bool,
    pub insecure: bool,
    pub creds_sealed: String,
    pub secrets: String,
    pub created_at: i64,
    pub created_by: String,
}
row_struct!(RegistryRow {
    id,
    registry,
    kind,
    enable_ci,
    insecure,
    creds_sealed,
    secrets,
    created_at,
    created_by
});

/// One credentials fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredsFetchRow {
    pub user_id: String,
    pub fetched_at: i64,
}
row_struct!(CredsFetchRow {
    user_id,
    fetched_at
});

const COLUMNS: &str = "SELECT id, registry, kind, enable_ci, insecure, creds_sealed, secrets, \
     created_at, created_by FROM registries";

/// What a registry write that breaks the id or prefix uniqueness clashed with.
fn clash(row: &RegistryRow) -> String {
    format!(
        "a registry with id {} or prefix {} already exists",
        row.id, row.registry
    )
}

impl Store {
    /// Creates a registry; 409 on the same id or the same prefix.
    pub async fn create_registry(
        &self,
        org_id: &str,
        row: RegistryRow,
    ) -> Result<RegistryRow, StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "INSERT INTO registries (org_id, id, registry, kind, enable_ci, insecure, \
                     creds_sealed, secrets, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&org_id)
                .bind(&row.id)
                .bind(&row.registry)
                .bind(&row.kind)
                .bind(row.enable_ci)
                .bind(row.insecure)
                .bind(&row.creds_sealed)
                .bind(&row.secrets)
                .bind(row.created_at)
                .bind(&row.created_by)
                .execute(conn)
                .await
                .map_err(|e| e.conflict_as(|| clash(&row)))?;
                Ok(row)
            })
        }))
        .await
    }

    /// The organization's registries, by id.
    pub async fn list_registries(&self, org_id: &str) -> Result<Vec<RegistryRow>, StoreError> {
        let org_id = org_id.to_owned();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!("{COLUMNS} WHERE org_id = $1 ORDER BY id");
                query(sql)
                    .bind(&org_id)
                    .fetch_all::<RegistryRow>(conn)
                    .await
            })
        }))
        .await
    }

    /// A page of the organization's registries, by id.
    pub async fn list_registries_page(
        &self,
        org_id: &str,
        page: &PageRequest,
    ) -> Result<Page<RegistryRow>, StoreError> {
        let org_id = org_id.to_owned();
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (_, after) = after_ascending(&page);
                let sql = format!(
                    "SELECT CAST(0 AS BIGINT) AS page_n, id AS page_s, {} WHERE org_id = $1 \
                     AND id > $2 ORDER BY id LIMIT $3",
                    COLUMNS.trim_start_matches("SELECT ")
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(after)
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<RegistryRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One registry.
    pub async fn get_registry(&self, org_id: &str, id: &str) -> Result<RegistryRow, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { registry_by_id(conn, &org_id, &id).await })
        }))
        .await
    }

    /// Replaces a registry's changeable fields; 409 when the new prefix is taken.
    pub async fn update_registry(
        &self,
        org_id: &str,
        row: RegistryRow,
    ) -> Result<RegistryRow, StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let changed = query(
                    "UPDATE registries SET registry = $3, kind = $4, enable_ci = $5, insecure = $6, \
                     creds_sealed = $7, secrets = $8 WHERE org_id = $1 AND id = $2"
                )
                .bind(&org_id)
                .bind(&row.id)
                .bind(&row.registry)
                .bind(&row.kind)
                .bind(row.enable_ci)
                .bind(row.insecure)
                .bind(&row.creds_sealed)
                .bind(&row.secrets)
                .execute(conn)
                .await
                .map_err(|e| e.conflict_as(|| clash(&row)))?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("no registry {}", row.id)));
                }
                registry_by_id(conn, &org_id, &row.id).await
            })
        }))
        .await
    }

    /// Deletes a registry and its stored credentials.
    pub async fn delete_registry(&self, org_id: &str, id: &str) -> Result<(), StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let removed = query("DELETE FROM registries WHERE org_id = $1 AND id = $2")
                    .bind(&org_id)
                    .bind(&id)
                    .execute(conn)
                    .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!("no registry {id}")));
                }
                Ok(())
            })
        }))
        .await
    }

    /// Records that `user_id` fetched a registry's credentials (never the credentials).
    pub async fn audit_creds_fetch(
        &self,
        org_id: &str,
        registry_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let (org_id, registry_id, user_id) = (
            org_id.to_owned(),
            registry_id.to_owned(),
            user_id.to_owned(),
        );
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "INSERT INTO registry_creds_audit (org_id, registry_id, user_id, fetched_at) VALUES ($1, $2, $3, $4)"
                )
                .bind(&org_id)
                .bind(&registry_id)
                .bind(&user_id)
                .bind(now)
                .execute(conn)
                .await?;
                Ok(())
            })
        }))
        .await
    }

    /// A page of who fetched a registry's credentials, newest first.
    pub async fn creds_audit(
        &self,
        org_id: &str,
        registry_id: &str,
        page: &PageRequest,
    ) -> Result<Page<CredsFetchRow>, StoreError> {
        let (org_id, registry_id) = (org_id.to_owned(), registry_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let rows = query(
                    "SELECT seq AS page_n, '' AS page_s, user_id, fetched_at FROM registry_creds_audit \
                     WHERE org_id = $1 AND registry_id = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4",
                )
                .bind(&org_id)
                .bind(&registry_id)
                .bind(after_descending(&page))
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<CredsFetchRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }
}

async fn registry_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    id: &str,
) -> Result<RegistryRow, StoreError> {
    let sql = format!("{COLUMNS} WHERE org_id = $1 AND id = $2");
    query(sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional::<RegistryRow>(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no registry {id}")))
}

impl Store {
    /// The distinct leading 12 characters of every sealed value (webhook secrets and headers,
    /// registry credentials, the server's keys): enough for the server to read which keys
    /// sealed them.
    pub async fn sealed_prefixes(&self) -> Result<Vec<String>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                query(
                    "SELECT DISTINCT substr(secret_sealed, 1, 12) FROM webhooks WHERE secret_sealed <> '' \
                     UNION SELECT DISTINCT substr(creds_sealed, 1, 12) FROM registries WHERE creds_sealed <> '' \
                     UNION SELECT DISTINCT substr(private_sealed, 1, 12) FROM signing_keys \
                     UNION SELECT DISTINCT substr(headers, 1, 12) FROM webhooks WHERE headers LIKE 'k1:%' \
                     UNION SELECT DISTINCT substr(sealed, 1, 12) FROM server_secrets \
                     UNION SELECT DISTINCT substr(secret_sealed, 1, 12) FROM inbound_hooks \
                     UNION SELECT DISTINCT substr(clone_token_sealed, 1, 12) FROM build_definitions \
                     WHERE clone_token_sealed <> ''"
                )
                .fetch_all::<String>(conn)
                .await
            })
        }))
        .await
    }
}

/// A sealed value and the row it belongs to, for re-sealing under a new master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// `webhook`, `webhook-headers`, `registry`, `signing-key`, `server-secret`, `inbound-hook`
    /// or `build-definition` (whose `id` is the app's): which table
    /// and column, and the prefix of the sealing context.
    pub kind: &'static str,
    pub org_id: String,
    pub id: String,
    pub sealed: String,
}

impl Store {
    /// Every sealed value in the database.
    pub async fn sealed_values(&self) -> Result<Vec<SealedValue>, StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                let webhooks = query(
                    "SELECT org_id, id, secret_sealed FROM webhooks WHERE secret_sealed <> ''",
                )
                .fetch_all::<(String, String, String)>(conn)
                .await?;
                let registries = query(
                    "SELECT org_id, id, creds_sealed FROM registries WHERE creds_sealed <> ''",
                )
                .fetch_all::<(String, String, String)>(conn)
                .await?;
                let signing_keys = query("SELECT '', id, private_sealed FROM signing_keys")
                    .fetch_all::<(String, String, String)>(conn)
                    .await?;
                let headers =
                    query("SELECT org_id, id, headers FROM webhooks WHERE headers LIKE 'k1:%'")
                        .fetch_all::<(String, String, String)>(conn)
                        .await?;
                let server_secrets = query("SELECT '', id, sealed FROM server_secrets")
                    .fetch_all::<(String, String, String)>(conn)
                    .await?;
                let inbound_hooks = query("SELECT org_id, id, secret_sealed FROM inbound_hooks")
                    .fetch_all::<(String, String, String)>(conn)
                    .await?;
                let build_definitions = query(
                    "SELECT org_id, app_id, clone_token_sealed FROM build_definitions \
                     WHERE clone_token_sealed <> ''",
                )
                .fetch_all::<(String, String, String)>(conn)
                .await?;
                let tag = |kind: &'static str| {
                    move |(org_id, id, sealed): (String, String, String)| SealedValue {
                        kind,
                        org_id,
                        id,
                        sealed,
                    }
                };
                Ok(webhooks
                    .into_iter()
                    .map(tag("webhook"))
                    .chain(registries.into_iter().map(tag("registry")))
                    .chain(signing_keys.into_iter().map(tag("signing-key")))
                    .chain(headers.into_iter().map(tag("webhook-headers")))
                    .chain(server_secrets.into_iter().map(tag("server-secret")))
                    .chain(inbound_hooks.into_iter().map(tag("inbound-hook")))
                    .chain(build_definitions.into_iter().map(tag("build-definition")))
                    .collect())
            })
        }))
        .await
    }

    /// Replaces sealed values, all in one transaction.
    pub async fn reseal(&self, values: Vec<SealedValue>) -> Result<(), StoreError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                for value in values {
                    let sql = match value.kind {
                        "webhook" => {
                            "UPDATE webhooks SET secret_sealed = $3 WHERE org_id = $1 AND id = $2"
                        }
                        "webhook-headers" => {
                            "UPDATE webhooks SET headers = $3 WHERE org_id = $1 AND id = $2"
                        }
                        "signing-key" => {
                            "UPDATE signing_keys SET private_sealed = $3 WHERE $1 = '' AND id = $2"
                        }
                        "server-secret" => {
                            "UPDATE server_secrets SET sealed = $3 WHERE $1 = '' AND id = $2"
                        }
                        "registry" => {
                            "UPDATE registries SET creds_sealed = $3 WHERE org_id = $1 AND id = $2"
                        }
                        "inbound-hook" => {
                            "UPDATE inbound_hooks SET secret_sealed = $3 WHERE org_id = $1 AND id = $2"
                        }
                        "build-definition" => {
                            "UPDATE build_definitions SET clone_token_sealed = $3 \
                             WHERE org_id = $1 AND app_id = $2"
                        }
                        other => {
                            return Err(StoreError::Database(format!(
                                "no table holds sealed values of kind {other}"
                            )));
                        }
                    };
                    query(sql)
                        .bind(&value.org_id)
                        .bind(&value.id)
                        .bind(&value.sealed)
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
        }))
        .await
    }
}
