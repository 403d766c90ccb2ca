//! The backend seam: connecting, migrating, and running one operation on either engine.
//!
//! An operation is an async closure over [`Conn`] whose queries go through `sql::query`, which
//! runs the same SQL text on SQLite (rusqlite) or PostgreSQL (sqlx).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use rusqlite::OpenFlags;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::Semaphore;

use crate::StoreError;
use crate::auth_cache::AuthCache;
use crate::group_commit::GroupCommit;
use crate::sql::query;

/// One connection of the active backend, lent to an operation.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut rusqlite::Connection),
    Pg(&'c mut PgConnection),
}

/// An operation over one connection; the store decides which connection and transaction.
pub(crate) type Op<T> =
    Box<dyn for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, StoreError>> + Send>;

enum Backend {
    Sqlite { read: ReadPool, writer: GroupCommit },
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
                query("SELECT CAST(1 AS BIGINT)")
                    .fetch_one::<i64>(conn)
                    .await?;
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
                query("UPDATE work_queue SET lease_until = 0, parked = FALSE")
                    .execute(conn)
                    .await?;
                query("UPDATE webhook_deliveries SET lease_until = 0 WHERE state = 'pending'")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        }))
        .await
    }

    /// Runs a read-only operation on a pooled connection.
    pub(crate) async fn read<T: Send + 'static>(&self, op: Op<T>) -> Result<T, StoreError> {
        match &*self.backend {
            Backend::Sqlite { read, .. } => read.run(op).await,
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
                read.close();
            }
            Backend::Pg(pool) => pool.close().await,
        }
    }
}

async fn connect_sqlite(url: &str) -> Result<Backend, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .disable_statement_logging();
    let path = options.get_filename().to_owned();
    if url.contains(":memory:") || url.contains("mode=memory") {
        // Every connection would open a database of its own, so writes would not be seen.
        return Err(StoreError::Database(
            "an in-memory SQLite database is not supported; give a file path".to_owned(),
        ));
    }
    create_private_file(&path)?;
    // sqlx applies the embedded migrations (and keeps its bookkeeping table); the connection
    // is closed before Gangplank's own connections open.
    let mut migrating = options.connect().await?;
    SQLITE_MIGRATIONS
        .run(&mut migrating)
        .await
        .map_err(|e| StoreError::Database(format!("migrating: {e}")))?;
    migrating.close().await?;
    let writer = open_sqlite(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    Ok(Backend::Sqlite {
        read: ReadPool::new(path),
        writer: GroupCommit::start(writer)?,
    })
}

/// Creates the database file, empty, readable only by its owner, unless it exists. SQLite gives
/// the `-wal` and `-shm` files it creates beside it the database file's permissions.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::Database(format!(
            "creating {}: {error}",
            path.display()
        ))),
    }
}

/// Opens a connection with the settings every Gangplank connection needs.
fn open_sqlite(path: &Path, access: OpenFlags) -> Result<rusqlite::Connection, StoreError> {
    let conn =
        rusqlite::Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // FULL: a commit is on disk before the API answers, even across power loss.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Read-only SQLite connections. rusqlite calls block, so reads run on tokio's blocking
/// threads; at most `READERS` at once, and connections are kept for the next read.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    permits: Semaphore,
}

const READERS: usize = 4;

impl ReadPool {
    fn new(path: PathBuf) -> Self {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(READERS),
        }
    }

    async fn run<T: Send + 'static>(&self, op: Op<T>) -> Result<T, StoreError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Database("the database is closed".to_owned()))?;
        // A kept connection, or the path to open one with (on the blocking thread).
        let kept = self.idle().pop().ok_or_else(|| self.path.clone());
        let (result, conn) = tokio::task::spawn_blocking(move || {
            let mut conn = match kept {
                Ok(conn) => conn,
                Err(path) => match open_sqlite(&path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
                    Ok(conn) => conn,
                    Err(error) => return (Err(error), None),
                },
            };
            let result = futures::executor::block_on(op(&mut Conn::Sqlite(&mut conn)));
            (result, Some(conn))
        })
        .await
        .map_err(|e| StoreError::Database(format!("a read failed: {e}")))?;
        if let Some(conn) = conn {
            self.idle().push(conn);
        }
        result
    }

    /// The kept connections; a panic elsewhere cannot leave this list half-changed.
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<rusqlite::Connection>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses further reads and drops the idle connections.
    fn close(&self) {
        self.permits.close();
        self.idle().clear();
    }
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
