//! The store's error: variants callers match on, never a foreign database error.

/// Why a store operation did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The addressed record does not exist; the text says which.
    #[error("{0}")]
    NotFound(String),
    /// The write would break uniqueness or another invariant; the text says which.
    #[error("{0}")]
    Conflict(String),
    /// The write is not allowed in the current state (for example deleting an app's last
    /// environment); the text says why.
    #[error("{0}")]
    Refused(String),
    /// The database could not be reached or failed; details are logged, not returned.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// Replaces the generic "already exists" of a uniqueness violation with a message that
    /// names the record; other errors pass through.
    pub(crate) fn conflict_as(self, message: impl FnOnce() -> String) -> StoreError {
        match self {
            StoreError::Conflict(_) => StoreError::Conflict(message()),
            other => other,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("the record already exists".to_owned())
            }
            sqlx::Error::RowNotFound => StoreError::NotFound("no such record".to_owned()),
            _ => StoreError::Database(error.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        const UNIQUE: i32 = 2067; // SQLITE_CONSTRAINT_UNIQUE
        const PRIMARY_KEY: i32 = 1555; // SQLITE_CONSTRAINT_PRIMARYKEY
        match &error {
            rusqlite::Error::SqliteFailure(failure, _)
                if matches!(failure.extended_code, UNIQUE | PRIMARY_KEY) =>
            {
                StoreError::Conflict("the record already exists".to_owned())
            }
            rusqlite::Error::QueryReturnedNoRows => {
                StoreError::NotFound("no such record".to_owned())
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}
