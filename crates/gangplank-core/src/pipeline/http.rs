//! The `http` action's inputs and verdicts: what a step's `with` may say (method, url, headers,
//! body, `expect_status`, `expect_body`, retries, their interval, the timeout), whether an
//! answer is the one expected, and whether another attempt follows. The server sends.

use regex::Regex;
use serde_json::{Map, Value};

use super::with::scalar_text;

/// Bounds on an `http` step's inputs.
pub const MAX_HTTP_RETRIES: u32 = 100;
pub const MAX_HTTP_TIMEOUT_SECONDS: u64 = 60 * 60;
pub const DEFAULT_HTTP_TIMEOUT_SECONDS: u64 = 30;
pub const MAX_HTTP_RETRY_INTERVAL_SECONDS: u64 = 60 * 60;
pub const DEFAULT_HTTP_RETRY_INTERVAL_SECONDS: u64 = 5;
pub const MAX_HTTP_HEADERS: usize = 64;
/// The most of an answer's body read (and matched against `expect_body`).
pub const MAX_HTTP_RESPONSE_BYTES: usize = 1024 * 1024;
/// How much of a body a log line quotes.
pub const HTTP_LOG_EXCERPT: usize = 512;

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// An `http` step, checked. `Debug` shows no header values, body or URL query (they may
/// carry tokens).
#[derive(Clone)]
pub struct HttpSpec {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<HttpBody>,
    /// Accepted status codes; empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub expect_body: Option<BodyExpect>,
    /// Attempts after the first.
    pub retries: u32,
    pub retry_interval_ms: i64,
    /// One attempt's timeout.
    pub timeout_ms: i64,
}

impl std::fmt::Debug for HttpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.split(['?', '#']).next().unwrap_or_default();
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("HttpSpec")
            .field("method", &self.method)
            .field("url", &url)
            .field("headers", &headers)
            .field("body", &self.body.as_ref().map(|_| "<redacted>"))
            .field("expect_status", &self.expect_status)
            .field("expect_body", &self.expect_body)
            .field("retries", &self.retries)
            .field("retry_interval_ms", &self.retry_interval_ms)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum HttpBody {
    /// Sent as given.
    Text(String),
    /// An object or array: sent as JSON (`content-type: application/json` unless set).
    Json(Value),
}

/// What the answer's body must hold.
#[derive(Debug, Clone)]
pub enum BodyExpect {
    /// `expect_body: "text"`: a substring.
    Contains(String),
    /// `expect_body: {regex: "…"}`: a match anywhere in the body.
    Matches(Regex),
}

/// Whether an answer is the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Why not, for the log and the step's message.
    Fail(String),
}

impl HttpSpec {
    /// Reads a step's `with` (expressions already rendered). The error names the input.
    pub fn parse(with: &Map<String, Value>) -> Result<HttpSpec, String> {
        for key in with.keys() {
            if !matches!(
                key.as_str(),
                "method"
                    | "url"
                    | "headers"
                    | "body"
                    | "expect_status"
                    | "expect_body"
                    | "retries"
                    | "retry_interval"
                    | "timeout_seconds"
                    | "timeout_minutes"
            ) {
                return Err(format!("with.{key}: not an input of the http action"));
            }
        }
        let text = |key: &str| super::with::text(with, key);
        let method = match text("method")? {
            None => "GET".to_owned(),
            Some(m) if METHODS.contains(&m.to_ascii_uppercase().as_str()) => m.to_ascii_uppercase(),
            Some(_) => {
                return Err(format!(
                    "with.method: must be one of {}",
                    METHODS.join(", ")
                ));
            }
        };
        let url = match text("url")? {
            Some(u) if u.len() <= crate::limits::MAX_URL_LEN => u.to_owned(),
            Some(_) => {
                return Err(format!(
                    "with.url: must be 1 to {} bytes",
                    crate::limits::MAX_URL_LEN
                ));
            }
            None => return Err("with.url: required, a URL".to_owned()),
        };
        let headers = match with.get("headers") {
            None => Vec::new(),
            Some(Value::Object(map)) if map.len() <= MAX_HTTP_HEADERS => {
                let mut headers = Vec::new();
                for (name, value) in map {
                    let value = scalar_text(value).ok_or_else(|| {
                        format!("with.headers.{name}: must be a string, number or boolean")
                    })?;
                    let name_ok = !name.is_empty()
                        && name.len() <= crate::limits::MAX_HEADER_NAME_LEN
                        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                    if !name_ok {
                        return Err(format!("with.headers: {name:?} is not a header name"));
                    }
                    if value.len() > crate::limits::MAX_HEADER_VALUE_LEN
                        || value.chars().any(|c| c.is_control() && c != '\t')
                    {
                        return Err(format!(
                            "with.headers.{name}: at most {} bytes, no control characters",
                            crate::limits::MAX_HEADER_VALUE_LEN
                        ));
                    }
                    headers.push((name.clone(), value));
                }
                headers
            }
            Some(_) => {
                return Err(format!(
                    "with.headers: a map of at most {MAX_HTTP_HEADERS} names to values"
                ));
            }
        };
        let body = match with.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(HttpBody::Text(text.clone())),
            Some(value @ (Value::Object(_) | Value::Array(_))) => {
                Some(HttpBody::Json(value.clone()))
            }
            Some(other) => Some(HttpBody::Text(other.to_string())),
        };
        let expect_status = match with.get("expect_status") {
            None => Vec::new(),
            Some(Value::Array(list)) if !list.is_empty() && list.len() <= 100 => list
                .iter()
                .map(status_code)
                .collect::<Option<Vec<u16>>>()
                .ok_or("with.expect_status: status codes are numbers from 100 to 599")?,
            Some(one) => vec![
                status_code(one)
                    .ok_or("with.expect_status: a status code (100 to 599) or a list of them")?,
            ],
        };
        let expect_body = match with.get("expect_body") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(BodyExpect::Contains(text.clone())),
            Some(Value::Object(map)) if map.len() == 1 && map.contains_key("regex") => {
                let pattern = map["regex"]
                    .as_str()
                    .filter(|p| p.len() <= crate::limits::MAX_PATTERN_LEN)
                    .ok_or("with.expect_body.regex: a regular expression")?;
                let regex = regex::RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("with.expect_body.regex: {e}"))?;
                Some(BodyExpect::Matches(regex))
            }
            Some(_) => {
                return Err(
                    "with.expect_body: a substring, or {regex: PATTERN} for a regular expression"
                        .to_owned(),
                );
            }
        };
        let retries = match with.get("retries") {
            None => 0,
            Some(v) => v
                .as_u64()
                .filter(|n| *n <= u64::from(MAX_HTTP_RETRIES))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(format!("with.retries: 0 to {MAX_HTTP_RETRIES}"))?,
        };
        let retry_interval_ms = match with.get("retry_interval") {
            None => secs_to_ms(DEFAULT_HTTP_RETRY_INTERVAL_SECONDS),
            Some(v) => duration_ms(v)
                .filter(|ms| *ms <= secs_to_ms(MAX_HTTP_RETRY_INTERVAL_SECONDS))
                .ok_or(format!(
                    "with.retry_interval: seconds (a number, or text like \"500ms\", \"5s\", \"2m\"), at most {MAX_HTTP_RETRY_INTERVAL_SECONDS} s"
                ))?,
        };
        let timeout_ms = match (with.get("timeout_seconds"), with.get("timeout_minutes")) {
            (Some(_), Some(_)) => {
                return Err("with: give timeout_seconds or timeout_minutes, not both".to_owned());
            }
            (None, None) => Some(secs_to_ms(DEFAULT_HTTP_TIMEOUT_SECONDS)),
            (Some(s), None) => s.as_u64().map(secs_to_ms),
            (None, Some(m)) => m.as_u64().map(|m| secs_to_ms(m.saturating_mul(60))),
        };
        let timeout_ms = timeout_ms
            .filter(|ms| *ms >= 1000 && *ms <= secs_to_ms(MAX_HTTP_TIMEOUT_SECONDS))
            .ok_or(format!(
                "with.timeout_seconds: 1 to {MAX_HTTP_TIMEOUT_SECONDS} (or timeout_minutes: 1 to {})",
                MAX_HTTP_TIMEOUT_SECONDS / 60
            ))?;
        Ok(HttpSpec {
            method,
            url,
            headers,
            body,
            expect_status,
            expect_body,
            retries,
            retry_interval_ms,
            timeout_ms,
        })
    }

    /// Judges one answer: its status, then its body (what was read of it: at most
    /// [`MAX_HTTP_RESPONSE_BYTES`]).
    pub fn judge(&self, status: u16, body: &str) -> Verdict {
        let status_ok = if self.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect_status.contains(&status)
        };
        if !status_ok {
            let wanted = if self.expect_status.is_empty() {
                "2xx".to_owned()
            } else {
                self.expect_status
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            };
            return Verdict::Fail(format!("status {status}, expected {wanted}"));
        }
        match &self.expect_body {
            None => Verdict::Pass,
            Some(BodyExpect::Contains(text)) if body.contains(text.as_str()) => Verdict::Pass,
            Some(BodyExpect::Contains(text)) => Verdict::Fail(format!(
                "the body does not contain {:?}",
                excerpt(text, 100)
            )),
            Some(BodyExpect::Matches(regex)) if regex.is_match(body) => Verdict::Pass,
            Some(BodyExpect::Matches(regex)) => Verdict::Fail(format!(
                "the body does not match /{}/",
                excerpt(regex.as_str(), 100)
            )),
        }
    }

    /// When attempt `attempt` (1 is the first) failed at `now`: when the next one starts, or
    /// `None` when none may (retries spent, or it could not begin before `deadline`).
    pub fn next_attempt(&self, attempt: u32, now: i64, deadline: i64) -> Option<i64> {
        if attempt > self.retries {
            return None;
        }
        let at = now.saturating_add(self.retry_interval_ms);
        (at < deadline).then_some(at)
    }
}

/// At most `max` bytes of `text`, cut at a character boundary, with "…" when cut.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let cut = (0..=max)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}…", &text[..cut])
}

fn status_code(value: &Value) -> Option<u16> {
    let n = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    u16::try_from(n).ok().filter(|n| (100..600).contains(n))
}

fn secs_to_ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// Seconds as a number, or text with a unit: `500ms`, `5s`, `2m`.
fn duration_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => {
            let seconds = n.as_f64()?;
            (0.0..=1e9)
                .contains(&seconds)
                .then(|| (seconds * 1000.0).round() as i64)
        }
        Value::String(text) => {
            let text = text.trim();
            let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
                (n, 1)
            } else if let Some(n) = text.strip_suffix('s') {
                (n, 1000)
            } else if let Some(n) = text.strip_suffix('m') {
                (n, 60_000)
            } else {
                (text, 1000)
            };
            number
                .trim()
                .parse::<u32>()
                .ok()
                .map(|n| i64::from(n) * scale)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
