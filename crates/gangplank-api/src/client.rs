//! A small HTTP client for the API, used by the CLI verbs.
//!
//! It speaks JSON values rather than typed bodies so that `gangplank api` can pass anything
//! through, and so that a newer server's extra fields are never lost by an older client.

use reqwest::Method;
use serde_json::Value;

use crate::ErrorBody;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or did not answer.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error's innermost cause, e.g. `Connection refused (os error 111)`:
        /// reqwest's outer layers only repeat the URL ("error sending request for url …").
        reason: String,
    },
    /// A list page linked its next page to another origin: following it would send the
    /// token there.
    #[error(
        "the list at {from} links its next page to another origin ({to}); not following it, \
         so the token is not sent there"
    )]
    ForeignLink {
        /// The page that held the link.
        from: String,
        /// The link's target.
        to: String,
    },
    /// The server answered with an error status.
    #[error("{status}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// The error code from the body, or the status text.
        code: String,
        /// The message from the body, or the raw body.
        message: String,
    },
}

/// A configured API client.
#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// A request body.
#[derive(Debug)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON document.
    Json(Value),
    /// A multipart form.
    Form(reqwest::multipart::Form),
    /// A YAML document sent as is (`application/x-yaml`): a pipeline definition.
    Yaml(String),
}

impl Client {
    /// A client for the server at `base_url`, authenticating with `token` when given.
    pub fn new(base_url: &str, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("gangplank-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Client {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            http,
        }
    }

    /// Sends a request to `path` (starting with `/`) and returns the decoded JSON answer
    /// (`Value::Null` for an empty one).
    pub async fn send(&self, method: Method, path: &str, body: Body) -> Result<Value, ClientError> {
        self.send_with_headers(method, path, body, &[]).await
    }

    /// As [`Client::send`], with request headers of the caller's (`Idempotency-Key`,
    /// `If-Match`).
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        let url = format!("{}{}", self.base_url, path);
        Ok(self.exchange(method, url, body, headers).await?.0)
    }

    /// GETs a list at `path` and follows its `Link: <…>; rel="next"` headers until the last
    /// page, answering every item in one array. An answer that is not an array (a single
    /// record) is returned as it is.
    pub async fn list_all(&self, path: &str) -> Result<Value, ClientError> {
        let mut url = format!("{}{}", self.base_url, path);
        let mut items = Vec::new();
        loop {
            let (answer, link) = self
                .exchange(Method::GET, url.clone(), Body::Empty, &[])
                .await?;
            match answer {
                Value::Array(page) => items.extend(page),
                other if items.is_empty() => return Ok(other),
                _ => break,
            }
            let next = link
                .as_deref()
                .and_then(next_link)
                .and_then(|next| reqwest::Url::parse(&url).ok()?.join(&next).ok());
            match next {
                Some(next) if !same_origin(&url, &next) => {
                    return Err(ClientError::ForeignLink {
                        from: url,
                        to: next.into(),
                    });
                }
                // A server that links a page to itself would otherwise be followed forever.
                Some(next) if next.as_str() != url => url = next.into(),
                _ => break,
            }
        }
        Ok(Value::Array(items))
    }

    /// One request: the decoded answer and the `Link` header, if any.
    async fn exchange(
        &self,
        method: Method,
        url: String,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<(Value, Option<String>), ClientError> {
        let mut request = self.http.request(method, &url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::Empty => request,
            Body::Json(value) => request.json(&value),
            Body::Form(form) => request.multipart(form),
            Body::Yaml(text) => request
                .header(reqwest::header::CONTENT_TYPE, "application/x-yaml")
                .body(text),
        };
        let unreachable = |error: reqwest::Error| ClientError::Unreachable {
            url: url.clone(),
            reason: innermost_cause(&error),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let link = response
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let text = response.text().await.map_err(unreachable)?;
        if status.is_success() {
            let answer = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
                Value::Null
            } else {
                Value::String(text)
            });
            return Ok((answer, (!link.is_empty()).then_some(link)));
        }
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => (body.error, body.message),
            Err(_) => (
                status.canonical_reason().unwrap_or("error").to_owned(),
                text,
            ),
        };
        Err(ClientError::Api {
            status: status.as_u16(),
            code,
            message,
        })
    }
}

/// The deepest error in `error`'s source chain: the one that says what went wrong.
fn innermost_cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Whether `next` has the origin (scheme, host and port, a default port spelled or not) of
/// `page`: the bearer token goes only where the user pointed the client.
fn same_origin(page: &str, next: &reqwest::Url) -> bool {
    reqwest::Url::parse(page).is_ok_and(|page| {
        page.scheme() == next.scheme()
            && page.host() == next.host()
            && page.port_or_known_default() == next.port_or_known_default()
    })
}

/// The target of the `rel="next"` link in a `Link` header value (RFC 8288), if there is one.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        params
            .split(';')
            .filter_map(|param| param.trim().split_once('='))
            .any(|(key, value)| {
                key.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
            .then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::{next_link, same_origin};

    #[test]
    fn only_links_on_the_same_origin_are_followed() {
        let page = "http://127.0.0.1:8080/orgs/default/apps?per_page=2";
        let next = |link: &str| reqwest::Url::parse(page).unwrap().join(link).unwrap();
        for link in [
            "/orgs/default/apps?page=x",
            "apps?page=x",
            "http://127.0.0.1:8080/orgs/default/apps?page=x",
        ] {
            assert!(same_origin(page, &next(link)), "{link}");
        }
        for link in [
            "https://127.0.0.1:8080/orgs/default/apps?page=x",
            "http://127.0.0.1:8081/orgs/default/apps?page=x",
            "http://localhost:8080/orgs/default/apps?page=x",
            "http://evil.example/orgs/default/apps?page=x",
            "//evil.example/orgs/default/apps?page=x",
            "http://127.0.0.1:8080@evil.example/",
        ] {
            assert!(!same_origin(page, &next(link)), "{link}");
        }
        // A default port spelled out is the same origin.
        let https = "https://gp.example.com/orgs/default/apps";
        let spelled = reqwest::Url::parse("https://gp.example.com:443/x").unwrap();
        assert!(same_origin(https, &spelled));
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        assert_eq!(
            next_link("</a?page=x&per_page=2>; rel=\"next\"").as_deref(),
            Some("/a?page=x&per_page=2")
        );
        assert_eq!(
            next_link("<https://h/p?1>; rel=prev, <https://h/p?3>; rel=\"next last\"").as_deref(),
            Some("https://h/p?3")
        );
        assert_eq!(next_link("</a>; rel=\"prev\""), None);
        assert_eq!(next_link("garbage"), None);
    }
}
