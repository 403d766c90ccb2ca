//! Pages of a list: how many items a request asks for (`per_page`), and the opaque cursor
//! (`page`) that says where the next page starts.
//!
//! Lists page by keyset, never by offset: a cursor holds the sort key of the last item served
//! (a [`Position`]), so a page costs the same however deep it is and rows inserted meanwhile
//! neither repeat nor vanish. The token is unpadded base64url of a versioned binary record
//! with a checksum over the list it belongs to, so a truncated, hand-edited or foreign token
//! is refused rather than silently starting somewhere else. The checksum is not a secret: a
//! cursor only positions a read the caller is already allowed to make.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::ValidationError;

/// Items per page when the request does not say (Humanitec's default).
pub const DEFAULT_PER_PAGE: usize = 50;
/// The largest page a request may ask for (Humanitec's bound).
pub const MAX_PER_PAGE: usize = 100;

/// The current cursor format; a new format gets a new number and the old one is refused.
const VERSION: u8 = 1;
const CHECKSUM_LEN: usize = 8;
const HEADER_LEN: usize = 1 + 8 + CHECKSUM_LEN;
/// Longer tokens are refused before decoding: sort keys are IDs, names and numbers.
const MAX_TOKEN_LEN: usize = 1024;

/// The sort key of an item in a list. What `number` and `text` hold is the list's business
/// (a sequence number; a creation time and an ID; an ID alone with `number` 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Position {
    pub number: i64,
    pub text: String,
}

/// What a list request asks for: a page size and where to resume (`None`: the beginning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub per_page: usize,
    pub after: Option<Position>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            per_page: DEFAULT_PER_PAGE,
            after: None,
        }
    }
}

impl PageRequest {
    /// Parses the `per_page` and `page` query parameters of a request to list `list` (any
    /// stable name of the list, such as its route).
    pub fn parse(
        list: &str,
        per_page: Option<&str>,
        page: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let per_page = match per_page {
            None => DEFAULT_PER_PAGE,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PER_PAGE).contains(n))
                .ok_or_else(|| {
                    ValidationError::new(
                        "per_page",
                        format!("must be an integer from 1 to {MAX_PER_PAGE}"),
                    )
                })?,
        };
        let after = page.map(|token| decode_cursor(list, token)).transpose()?;
        Ok(PageRequest { per_page, after })
    }

    /// How many rows to fetch: one more than a page, which tells whether another page exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::try_from(self.per_page).unwrap_or(i64::MAX - 1) + 1
    }
}

/// One page of a list, and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Position>,
}

impl<T> Page<T> {
    /// The page from rows fetched in list order with [`PageRequest::fetch_limit`]: the extra
    /// row, if it came, is dropped and the last kept row's position is the next cursor.
    pub fn from_rows(rows: Vec<(Position, T)>, per_page: usize) -> Page<T> {
        let more = rows.len() > per_page;
        let mut items = Vec::with_capacity(rows.len().min(per_page));
        let mut last = None;
        for (position, item) in rows.into_iter().take(per_page) {
            items.push(item);
            last = Some(position);
        }
        Page {
            items,
            next: if more { last } else { None },
        }
    }

    /// The same page with every item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }

    /// The same page with every item converted by a fallible function.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            next: self.next,
        })
    }
}

/// A page of a list held in memory (a fixed table): positions are indexes.
pub fn page_of_slice<T: Clone>(all: &[T], request: &PageRequest) -> Page<T> {
    let start = request.after.as_ref().map_or(0, |p| {
        usize::try_from(p.number).map_or(all.len(), |n| n + 1)
    });
    let rows = all
        .iter()
        .enumerate()
        .skip(start)
        .take(request.per_page + 1)
        .map(|(index, item)| {
            let position = Position {
                number: i64::try_from(index).unwrap_or(i64::MAX),
                text: String::new(),
            };
            (position, item.clone())
        })
        .collect();
    Page::from_rows(rows, request.per_page)
}

/// The request for a listing that may return only `limit` more items in all (the legacy
/// `limit` parameter): the page shrinks to what remains.
pub fn cap(request: &PageRequest, limit: usize) -> PageRequest {
    PageRequest {
        per_page: request.per_page.min(limit.max(1)),
        after: request.after.clone(),
    }
}

/// The `page` token for resuming list `list` after `position`.
pub fn encode_cursor(list: &str, position: &Position) -> String {
    let mut bytes = Vec::with_capacity(HEADER_LEN + position.text.len());
    bytes.push(VERSION);
    bytes.extend_from_slice(&position.number.to_be_bytes());
    bytes.extend_from_slice(&checksum(list, position));
    bytes.extend_from_slice(position.text.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a `page` token of list `list` names; any token this server did not issue
/// for this list is an error naming `page`.
pub fn decode_cursor(list: &str, token: &str) -> Result<Position, ValidationError> {
    let invalid = |why: &str| ValidationError::new("page", why.to_owned());
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(invalid("is not a page token of this list"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid("is not a page token (unpadded base64url expected)"))?;
    if bytes.len() < HEADER_LEN || bytes[0] != VERSION {
        return Err(invalid("is not a page token of this server version"));
    }
    let mut number = [0u8; 8];
    number.copy_from_slice(&bytes[1..9]);
    let text = std::str::from_utf8(&bytes[HEADER_LEN..])
        .map_err(|_| invalid("is not a page token of this list"))?;
    let position = Position {
        number: i64::from_be_bytes(number),
        text: text.to_owned(),
    };
    if checksum(list, &position)[..] != bytes[9..HEADER_LEN] {
        return Err(invalid("is not a page token of this list"));
    }
    Ok(position)
}

fn checksum(list: &str, position: &Position) -> [u8; CHECKSUM_LEN] {
    let mut hash = Sha256::new();
    hash.update(b"gangplank page cursor\0");
    hash.update([VERSION]);
    // Lengths first, so no two (list, text) pairs hash the same bytes.
    hash.update((list.len() as u64).to_be_bytes());
    hash.update(list.as_bytes());
    hash.update(position.number.to_be_bytes());
    hash.update(position.text.as_bytes());
    let digest = hash.finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

#[cfg(test)]
mod tests;
