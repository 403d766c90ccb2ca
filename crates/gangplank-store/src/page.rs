//! Keyset pagination: every list query selects its sort key as `page_n` (a number) and
//! `page_s` (text), resumes strictly after the request's position, and fetches one row more
//! than a page so the caller learns whether another page exists. Never `OFFSET`: a deep page
//! costs what the first one does.
//!
//! The first page resumes after a sentinel that sorts before every row (`i64::MIN`, `''` for
//! ascending keys; `i64::MAX` for descending sequence numbers), so each list is one SQL text
//! with no `$n IS NULL OR …` branch that would keep the planner off the index.

use gangplank_core::page::{Page, PageRequest, Position};

use crate::sql::{Column, FromRow, Index};

/// A row with its sort key.
pub(crate) struct Keyed<T> {
    position: Position,
    row: T,
}

impl<T: FromRow> FromRow for Keyed<T> {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Keyed {
            position: Position {
                number: i64::sqlite(row, Index::Named("page_n"))?,
                text: String::sqlite(row, Index::Named("page_s"))?,
            },
            row: T::from_sqlite(row)?,
        })
    }
    fn from_pg(row: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(Keyed {
            position: Position {
                number: i64::pg(row, Index::Named("page_n"))?,
                text: String::pg(row, Index::Named("page_s"))?,
            },
            row: T::from_pg(row)?,
        })
    }
}

/// The page from rows fetched with [`PageRequest::fetch_limit`].
pub(crate) fn into_page<T>(rows: Vec<Keyed<T>>, request: &PageRequest) -> Page<T> {
    Page::from_rows(
        rows.into_iter().map(|k| (k.position, k.row)).collect(),
        request.per_page,
    )
}

/// Where an ascending `(number, text)` list resumes.
pub(crate) fn after_ascending(request: &PageRequest) -> (i64, String) {
    match &request.after {
        Some(p) => (p.number, p.text.clone()),
        None => (i64::MIN, String::new()),
    }
}

/// Where a list by descending sequence number resumes.
pub(crate) fn after_descending(request: &PageRequest) -> i64 {
    request.after.as_ref().map_or(i64::MAX, |p| p.number)
}
