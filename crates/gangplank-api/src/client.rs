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
        let url = format!("{}{}", self.base_url, path);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::Empty => request,
            Body::Json(value) => request.json(&value),
            Body::Form(form) => request.multipart(form),
        };
        let unreachable = |error: reqwest::Error| ClientError::Unreachable {
            url: url.clone(),
            reason: innermost_cause(&error),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(if text.is_empty() {
                Value::Null
            } else {
                Value::String(text)
            }));
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
