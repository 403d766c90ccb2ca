//! One query API over both engines: SQL text with `$1…` placeholders, bound values, and rows
//! decoded by column name, run on SQLite through rusqlite (synchronously, on the thread that
//! owns the connection) or on PostgreSQL through sqlx.
//!
//! Why not sqlx for SQLite too: sqlx runs every SQLite statement on a worker thread of its own,
//! so each statement costs two thread wake-ups. The group-commit writer runs statements back to
//! back, and on small virtual machines those wake-ups, not SQLite, were its whole cost.

use std::borrow::Cow;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Postgres, Row as _};

use crate::StoreError;
use crate::conn::Conn;

/// A bound value. Nulls keep their type, because PostgreSQL must know every parameter's type.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
}

/// A Rust value that can be bound to a placeholder.
pub(crate) trait Bind {
    fn value(self) -> Value;
    /// The typed null, for `None` of this type.
    fn null() -> Value;
}

macro_rules! bind_as {
    ($($ty:ty => $variant:ident),*) => {$(
        impl Bind for $ty {
            fn value(self) -> Value {
                Value::$variant(Some(self.into()))
            }
            fn null() -> Value {
                Value::$variant(None)
            }
        }
    )*};
}
bind_as!(&str => Text, String => Text, i64 => Int, bool => Bool);

impl<T: Bind> Bind for Option<T> {
    fn value(self) -> Value {
        match self {
            Some(value) => value.value(),
            None => T::null(),
        }
    }
    fn null() -> Value {
        T::null()
    }
}

impl<T: Bind + Clone> Bind for &T {
    fn value(self) -> Value {
        self.clone().value()
    }
    fn null() -> Value {
        T::null()
    }
}

/// A column type both engines decode.
pub(crate) trait Column: Sized {
    fn sqlite(row: &rusqlite::Row<'_>, index: Index<'_>) -> rusqlite::Result<Self>;
    fn pg(row: &PgRow, index: Index<'_>) -> Result<Self, sqlx::Error>;
}

/// A column by position (tuples, scalars) or by name (row structs).
#[derive(Clone, Copy)]
pub(crate) enum Index<'a> {
    At(usize),
    Named(&'a str),
}

macro_rules! column {
    ($($ty:ty),*) => {$(
        impl Column for $ty {
            fn sqlite(row: &rusqlite::Row<'_>, index: Index<'_>) -> rusqlite::Result<Self> {
                match index {
                    Index::At(at) => row.get(at),
                    Index::Named(name) => row.get(name),
                }
            }
            fn pg(row: &PgRow, index: Index<'_>) -> Result<Self, sqlx::Error> {
                match index {
                    Index::At(at) => row.try_get(at),
                    Index::Named(name) => row.try_get(name),
                }
            }
        }
    )*};
}
column!(String, i64, bool, Option<String>, Option<i64>);

/// A row decoded from either engine.
pub(crate) trait FromRow: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
    fn from_pg(row: &PgRow) -> Result<Self, sqlx::Error>;
}

/// A single column is a row of one value (`SELECT COUNT(*) …`).
impl<T: Column> FromRow for T {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        T::sqlite(row, Index::At(0))
    }
    fn from_pg(row: &PgRow) -> Result<Self, sqlx::Error> {
        T::pg(row, Index::At(0))
    }
}

macro_rules! tuple_row {
    ($(($($name:ident $at:tt),+)),*) => {$(
        impl<$($name: Column),+> FromRow for ($($name,)+) {
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($($name::sqlite(row, Index::At($at))?,)+))
            }
            fn from_pg(row: &PgRow) -> Result<Self, sqlx::Error> {
                Ok(($($name::pg(row, Index::At($at))?,)+))
            }
        }
    )*};
}
tuple_row!((A 0, B 1), (A 0, B 1, C 2), (A 0, B 1, C 2, D 3));

/// Implements [`FromRow`] for a struct whose fields are named like the query's columns.
macro_rules! row_struct {
    ($ty:ident { $($field:ident),+ $(,)? }) => {
        impl $crate::sql::FromRow for $ty {
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                use $crate::sql::{Column, Index};
                Ok($ty { $($field: Column::sqlite(row, Index::Named(stringify!($field)))?),+ })
            }
            fn from_pg(row: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use $crate::sql::{Column, Index};
                Ok($ty { $($field: Column::pg(row, Index::Named(stringify!($field)))?),+ })
            }
        }
    };
}
pub(crate) use row_struct;

/// A statement and its bound values.
#[must_use = "a query does nothing until it is executed or fetched"]
pub(crate) struct Query {
    sql: Cow<'static, str>,
    args: Vec<Value>,
}

/// Starts a query; bind values with [`Query::bind`] in placeholder order (`$1`, `$2`, …).
pub(crate) fn query(sql: impl Into<Cow<'static, str>>) -> Query {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl Query {
    pub(crate) fn bind(mut self, value: impl Bind) -> Self {
        self.args.push(value.value());
        self
    }

    /// Binds an already converted value (lists whose placeholders are built at run time).
    pub(crate) fn bind_value(mut self, value: Value) -> Self {
        self.args.push(value);
        self
    }

    /// Runs a statement and returns how many rows it changed.
    pub(crate) async fn execute(self, conn: &mut Conn<'_>) -> Result<u64, StoreError> {
        match conn {
            Conn::Sqlite(c) => {
                let mut statement = self.prepare(c)?;
                let mut rows = statement.raw_query();
                while rows.next()?.is_some() {}
                Ok(c.changes())
            }
            Conn::Pg(c) => Ok(self.pg().execute(&mut **c).await?.rows_affected()),
        }
    }

    /// Every row.
    pub(crate) async fn fetch_all<T: FromRow>(
        self,
        conn: &mut Conn<'_>,
    ) -> Result<Vec<T>, StoreError> {
        match conn {
            Conn::Sqlite(c) => {
                let mut statement = self.prepare(c)?;
                let mut rows = statement.raw_query();
                let mut all = Vec::new();
                while let Some(row) = rows.next()? {
                    all.push(T::from_sqlite(row)?);
                }
                Ok(all)
            }
            Conn::Pg(c) => Ok(self
                .pg()
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(T::from_pg)
                .collect::<Result<_, _>>()?),
        }
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional<T: FromRow>(
        self,
        conn: &mut Conn<'_>,
    ) -> Result<Option<T>, StoreError> {
        match conn {
            Conn::Sqlite(c) => {
                let mut statement = self.prepare(c)?;
                let mut rows = statement.raw_query();
                // SQLite makes every change of an `… RETURNING` statement on its first step, so
                // stopping after one row is safe for writes too.
                match rows.next()? {
                    Some(row) => Ok(Some(T::from_sqlite(row)?)),
                    None => Ok(None),
                }
            }
            Conn::Pg(c) => Ok(self
                .pg()
                .fetch_optional(&mut **c)
                .await?
                .as_ref()
                .map(T::from_pg)
                .transpose()?),
        }
    }

    /// The first row; none is [`StoreError::NotFound`].
    pub(crate) async fn fetch_one<T: FromRow>(self, conn: &mut Conn<'_>) -> Result<T, StoreError> {
        self.fetch_optional(conn)
            .await?
            .ok_or_else(|| StoreError::NotFound("no such record".to_owned()))
    }

    fn prepare<'c>(
        &self,
        conn: &'c rusqlite::Connection,
    ) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
        let mut statement = conn.prepare_cached(&self.sql)?;
        // SQLite numbers `$1` like any named parameter, in order of first appearance; read the
        // number from the name, as sqlx does, so `$2 … $1` binds the right values.
        for index in 1..=statement.parameter_count() {
            let position = statement
                .parameter_name(index)
                .and_then(|name| name.strip_prefix('$').or_else(|| name.strip_prefix('?')))
                .and_then(|number| number.parse::<usize>().ok())
                .unwrap_or(index);
            let value = self.args.get(position - 1).ok_or_else(|| {
                StoreError::Database(format!("no value bound for parameter ${position}"))
            })?;
            match value {
                Value::Text(text) => statement.raw_bind_parameter(index, text.as_deref())?,
                Value::Int(int) => statement.raw_bind_parameter(index, *int)?,
                Value::Bool(flag) => statement.raw_bind_parameter(index, *flag)?,
            }
        }
        Ok(statement)
    }

    fn pg(self) -> sqlx::query::Query<'static, Postgres, PgArguments> {
        let sql = match self.sql {
            Cow::Borrowed(text) => sqlx::query(text),
            Cow::Owned(text) => sqlx::query(sqlx::AssertSqlSafe(text)),
        };
        self.args.into_iter().fold(sql, |sql, value| match value {
            Value::Text(text) => sql.bind(text),
            Value::Int(int) => sql.bind(int),
            Value::Bool(flag) => sql.bind(flag),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(
        op: impl for<'c, 'd> FnOnce(&'c mut Conn<'d>) -> BoxedResult<'c, T>,
    ) -> Result<T, StoreError> {
        let mut sqlite = rusqlite::Connection::open_in_memory().unwrap();
        futures::executor::block_on(op(&mut Conn::Sqlite(&mut sqlite)))
    }

    type BoxedResult<'a, T> = futures::future::BoxFuture<'a, Result<T, StoreError>>;

    /// SQLite numbers `$2` first when it appears first; the value bound second must land there.
    #[test]
    fn placeholders_bind_by_their_number_not_their_order() {
        let joined = run(|conn| {
            Box::pin(
                query("SELECT $2 || '-' || $1 || '-' || $2")
                    .bind("first")
                    .bind("second")
                    .fetch_one::<String>(conn),
            )
        });
        assert_eq!(joined.unwrap(), "second-first-second");
    }

    #[test]
    fn typed_nulls_rows_and_tuples_decode() {
        let row = run(|conn| {
            Box::pin(
                query("SELECT $1 AS a, $2 AS b, $3 AS c, $1 IS NULL AS d")
                    .bind(None::<String>)
                    .bind(Some(7i64))
                    .bind(true)
                    .fetch_one::<(Option<String>, i64, bool, bool)>(conn),
            )
        });
        assert_eq!(row.unwrap(), (None, 7, true, true));
        let missing = run(|conn| Box::pin(query("SELECT 1 WHERE 0").fetch_one::<i64>(conn)));
        assert!(matches!(missing, Err(StoreError::NotFound(_))));
    }

    #[test]
    fn a_missing_value_is_an_error_not_a_null() {
        let result = run(|conn| Box::pin(query("SELECT $1, $2").bind(1i64).execute(conn)));
        assert!(matches!(result, Err(StoreError::Database(m)) if m.contains("$2")));
    }

    #[test]
    fn unique_violations_are_conflicts() {
        let result = run(|conn| {
            Box::pin(async move {
                query("CREATE TABLE t (id TEXT PRIMARY KEY)")
                    .execute(conn)
                    .await?;
                query("INSERT INTO t VALUES ($1)")
                    .bind("a")
                    .execute(conn)
                    .await?;
                query("INSERT INTO t VALUES ($1)")
                    .bind("a")
                    .execute(conn)
                    .await
            })
        });
        assert!(matches!(result, Err(StoreError::Conflict(_))));
    }
}
