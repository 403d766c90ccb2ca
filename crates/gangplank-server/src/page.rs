//! Paged lists over HTTP: the one extractor for `per_page` and `page`, and the one response
//! that sends a page as a bare JSON array with a `Link: <…>; rel="next"` header (RFC 8288)
//! when more items exist.
//!
//! The next link is path-absolute (`</orgs/…?…&page=…&per_page=…>`): it keeps the request's
//! path and every other query parameter (the filters), so a client follows it as is, and it
//! needs no knowledge of the host name a proxy may have rewritten.

use axum::Json;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gangplank_core::page::{Page, PageRequest, Position, cap, encode_cursor};
use serde::Serialize;

use crate::error::ApiError;

/// The page parameters of a list request, as documented in the OpenAPI document.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub per_page: Option<String>,
    /// Where to continue: the opaque token from the previous page's `Link` header.
    #[param(min_length = 1)]
    pub page: Option<String>,
}

/// A list request's page: its size and cursor, and what the next page's link is built from.
#[derive(Debug)]
pub struct Paging {
    request: PageRequest,
    /// The route template: a cursor is valid only on the list that issued it.
    list: String,
    path: String,
    query: Vec<(String, String)>,
    /// The legacy `limit` parameter: at most this many more items in all.
    limit: Option<usize>,
}

/// A page of `T`: a bare JSON array and, when more items exist, the `Link` header.
#[derive(Debug)]
pub struct Paged<T> {
    items: Vec<T>,
    link: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let list = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |m| m.as_str().to_owned());
        let query: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let mut params = PageParams::default();
        for (key, value) in &query {
            let slot = match key.as_str() {
                "per_page" => &mut params.per_page,
                "page" => &mut params.page,
                _ => continue,
            };
            if slot.replace(value.clone()).is_some() {
                return Err(ApiError::invalid(key, "is given more than once"));
            }
        }
        let request =
            PageRequest::parse(&list, params.per_page.as_deref(), params.page.as_deref())?;
        Ok(Paging {
            request,
            list,
            path: parts.uri.path().to_owned(),
            query,
            limit: None,
        })
    }
}

impl Paging {
    /// What to ask the store for.
    pub fn request(&self) -> &PageRequest {
        &self.request
    }

    /// Caps the whole listing at `limit` items (an endpoint's legacy `limit` parameter,
    /// already checked to be at least 1): pages shrink to what remains, and the next link
    /// carries the remainder.
    pub fn limit(mut self, limit: Option<i64>) -> Self {
        if let Some(limit) = limit {
            let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
            self.request = cap(&self.request, limit);
            self.limit = Some(limit);
        }
        self
    }

    /// The response for `page`.
    pub fn reply<T: Serialize>(&self, page: Page<T>) -> Paged<T> {
        let remaining = self.limit.map(|l| l.saturating_sub(page.items.len()));
        let link = match (page.next, remaining) {
            (Some(_), Some(0)) | (None, _) => None,
            (Some(next), remaining) => self.next_link(&next, remaining),
        };
        Paged {
            items: page.items,
            link,
        }
    }

    /// `<path?filters&page=…&per_page=…>; rel="next"`.
    fn next_link(&self, next: &Position, remaining: Option<usize>) -> Option<HeaderValue> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &self.query {
            // The cursor and page size are set below, and so is a capped listing's `limit`.
            let replaced = match key.as_str() {
                "page" | "per_page" => true,
                "limit" => remaining.is_some(),
                _ => false,
            };
            if !replaced {
                query.append_pair(key, value);
            }
        }
        if let Some(remaining) = remaining {
            query.append_pair("limit", &remaining.to_string());
        }
        query.append_pair("page", &encode_cursor(&self.list, next));
        query.append_pair("per_page", &self.request.per_page.to_string());
        let link = format!(
            "<{}?{}>; rel=\"next\"",
            uri_path(&self.path),
            query.finish()
        );
        HeaderValue::from_str(&link).ok()
    }
}

/// The path with every byte a URI reference may not hold (and `<`, `>`, which end it in a
/// `Link` header) percent-encoded; what the client sent encoded stays as it was.
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.items).into_response();
        if let Some(link) = self.link {
            response.headers_mut().insert(header::LINK, link);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_keeps_filters_and_replaces_the_cursor() {
        let paging = Paging {
            request: PageRequest {
                per_page: 2,
                after: None,
            },
            list: "/orgs/{org}/artefact-versions".to_owned(),
            path: "/orgs/default/artefact-versions".to_owned(),
            query: vec![
                ("name".to_owned(), "reg.example/a b".to_owned()),
                ("page".to_owned(), "old".to_owned()),
                ("per_page".to_owned(), "2".to_owned()),
            ],
            limit: None,
        };
        let next = Position {
            number: 7,
            text: String::new(),
        };
        let link = paging.next_link(&next, None).unwrap();
        let token = encode_cursor("/orgs/{org}/artefact-versions", &next);
        assert_eq!(
            link.to_str().unwrap(),
            format!(
                "</orgs/default/artefact-versions?name=reg.example%2Fa+b&page={token}&per_page=2>; rel=\"next\""
            )
        );
        assert_eq!(uri_path("/a<b>/c d"), "/a%3Cb%3E/c%20d");
    }

    #[test]
    fn a_limit_ends_the_listing_and_travels_in_the_link() {
        let paging = Paging {
            request: PageRequest::default(),
            list: "/l".to_owned(),
            path: "/l".to_owned(),
            query: vec![("limit".to_owned(), "3".to_owned())],
            limit: None,
        }
        .limit(Some(3));
        assert_eq!(paging.request().per_page, 3);
        let next = Some(Position::default());
        let full = paging.reply(Page {
            items: vec![1, 2, 3],
            next: next.clone(),
        });
        assert!(full.link.is_none(), "the cap is reached");
        let paging = Paging {
            limit: None,
            ..paging
        }
        .limit(Some(5));
        let partial = paging.reply(Page {
            items: vec![1, 2, 3],
            next,
        });
        let link = partial.link.unwrap();
        assert!(
            link.to_str().unwrap().starts_with("</l?limit=2&page="),
            "{link:?}"
        );
    }
}
