//! The backend seam: connecting, migrating, and running one operation on either engine.
//!
//! An operation is a closure over [`Conn`], written once with the `on_conn!` macro, which
//! type-checks the same SQL text against the SQLite and the PostgreSQL driver.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, PgConnection, PgPool, SqliteConnection, SqlitePool};

use crate::StoreError;
use crate::auth_cache::AuthCache;
use crate::group_commit::GroupCommit;

/// One connection of the active backend, lent to an operation.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Pg(&'c mut PgConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection of either backend. Both arms must
/// produce the same type, so map driver-specific results (`rows_affected()`) inside the body.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::conn::Conn::Sqlite($c) => {
                let $c: &mut sqlx::SqliteConnection = &mut **$c;
                $body
            }
            $crate::conn::Conn::Pg($c) => {
                let $c: &mut sqlx::PgConnection = &mut **$c;
                $body
            }
        }
    };
}
pub(crate) use on_conn;

/// An operation over one connection; the store decides which connection and transaction.
pub(crate) type Op<T> =
    Box<dyn for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, StoreError>> + Send>;

enum Backend {
    Sqlite {
        read: SqlitePool,
        writer: GroupCommit,
    },
    Pg(PgPool),
}

/// The handle to Gangplank's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    /// Present on SQLite only: there this process sees every write (see `auth_cache`).
    pub(crate) auth_cache: Option<Arc<AuthCache>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &*self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Pg(_) => "postgres",
        };
        f.debug_struct("Store").field("backend", &kind).finish()
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            connect_sqlite(url).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            connect_pg(url).await?
        } else {
            return Err(StoreError::Database(
                "database url must start with sqlite: or postgres:".to_owned(),
            ));
        };
        let auth_cache = matches!(backend, Backend::Sqlite { .. }).then(Arc::default);
        Ok(Store {
            backend: Arc::new(backend),
            auth_cache,
        })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(Box::new(|conn| {
            Box::pin(async move {
                on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
                    "SELECT CAST(1 AS BIGINT)"
                )
                .fetch_one(c)
                .await)?;
                Ok(())
            })
        }))
        .await
    }

    /// Makes work claimed by a previous run of this process claimable again at once. Only on
    /// SQLite, where this process is the database's only user, so every lease is a dead
    /// process's; with PostgreSQL other replicas may hold live leases, which then lapse.
    pub async fn recover_after_restart(&self) -> Result<(), StoreError> {
        if !matches!(&*self.backend, Backend::Sqlite { .. }) {
            return Ok(());
        }
        self.write(Box::new(|conn| {
            Box::pin(async move {
                on_conn!(conn, |c| sqlx::query(
                    "UPDATE deploy_jobs SET lease_until = 0"
                )
                .execute(c)
                .await
                .map(|_| ()))?;
                on_conn!(conn, |c| sqlx::query(
                    "UPDATE webhook_deliveries SET lease_until = 0 WHERE state = 'pending'"
                )
                .execute(c)
                .await
                .map(|_| ()))?;
                Ok(())
            })
        }))
        .await
    }

    /// Runs a read-only operation on a pooled connection.
    pub(crate) async fn read<T: Send + 'static>(&self, op: Op<T>) -> Result<T, StoreError> {
        match &*self.backend {
            Backend::Sqlite { read, .. } => {
                let mut pooled = read.acquire().await?;
                op(&mut Conn::Sqlite(&mut pooled)).await
            }
            Backend::Pg(pool) => {
                let mut pooled = pool.acquire().await?;
                op(&mut Conn::Pg(&mut pooled)).await
            }
        }
    }

    /// Runs an operation in a transaction and returns once it is durably committed. A failed
    /// operation leaves no trace.
    pub(crate) async fn write<T: Send + 'static>(&self, op: Op<T>) -> Result<T, StoreError> {
        match &*self.backend {
            Backend::Sqlite { writer, .. } => writer.submit(op).await,
            Backend::Pg(pool) => {
                let mut tx = pool.begin().await?;
                let value = op(&mut Conn::Pg(&mut tx)).await?;
                tx.commit().await?;
                Ok(value)
            }
        }
    }

    /// Waits for queued writes to commit and stops the writer; later writes fail.
    pub async fn close(&self) {
        match &*self.backend {
            Backend::Sqlite { read, writer } => {
                writer.close().await;
                read.close().await;
            }
            Backend::Pg(pool) => pool.close().await,
        }
    }
}

async fn connect_sqlite(url: &str) -> Result<Backend, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a commit is on disk before the API answers, even across power loss.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .disable_statement_logging();
    let mut writer_conn = options.connect().await?;
    SQLITE_MIGRATIONS
        .run(&mut writer_conn)
        .await
        .map_err(|e| StoreError::Database(format!("migrating: {e}")))?;
    let read = SqlitePoolOptions::new()
        .min_connections(0)
        .max_connections(4)
        .idle_timeout(Duration::from_secs(60))
        .connect_with(options.read_only(true))
        .await?;
    Ok(Backend::Sqlite {
        read,
        writer: GroupCommit::start(writer_conn),
    })
}

async fn connect_pg(url: &str) -> Result<Backend, StoreError> {
    let options = PgConnectOptions::from_str(url)?.disable_statement_logging();
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await?;
    PG_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|e| StoreError::Database(format!("migrating: {e}")))?;
    Ok(Backend::Pg(pool))
}

/// The current time as Unix milliseconds, the store's timestamp unit.
pub fn now_millis() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    /// Both engines must carry the same migration versions, or one backend silently lags.
    #[test]
    fn migration_versions_match() {
        let versions = |m: &sqlx::migrate::Migrator| {
            m.iter()
                .map(|migration| migration.version)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            versions(&super::SQLITE_MIGRATIONS),
            versions(&super::PG_MIGRATIONS)
        );
    }
}
