//! `actions/gangplank/http`: one HTTP request with an expected status and body, retried at an
//! interval, each attempt bounded by its timeout and all by the step's deadline (the seed's
//! test stage as a smoke test). The webhooks' SSRF policy applies: no redirects followed, and
//! only public addresses unless `GANGPLANK_WEBHOOK_ALLOW_PRIVATE` is set. Each attempt is a log
//! line; the URL's query and the headers never are (they may carry tokens).
//!
//! Idempotent per step only as far as the request is: a resumed step sends it again, which
//! is what a check wants (a `POST` with side effects should be safe to repeat).

use std::sync::OnceLock;
use std::time::Duration;

use gangplank_core::pipeline::http::{
    HTTP_LOG_EXCERPT, HttpBody, HttpSpec, MAX_HTTP_RESPONSE_BYTES, Verdict, excerpt,
};
use serde_json::{Map, Value, json};

use crate::worker::delivery::{check_url, describe, guarded_builder};
use crate::worker::pipeline::step::{LogLevel, StepCtx, StepOutcome, StepResult};

/// The most of the answer's body kept in the step's `outputs.body`.
const MAX_OUTPUT_BODY: usize = 16 * 1024;

/// One client per SSRF setting, built on first use (tests run servers with either).
fn client(allow_private: bool) -> &'static reqwest::Client {
    static PUBLIC: OnceLock<reqwest::Client> = OnceLock::new();
    static PRIVATE: OnceLock<reqwest::Client> = OnceLock::new();
    let cell = if allow_private { &PRIVATE } else { &PUBLIC };
    cell.get_or_init(|| {
        guarded_builder(allow_private)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("Gangplank-Pipeline/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the pipeline HTTP client builds")
    })
}

pub async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    let spec = match HttpSpec::parse(with) {
        Ok(spec) => spec,
        Err(message) => return failed(ctx.now, message),
    };
    let url = match check_url(&spec.url, ctx.state.webhook.allow_private) {
        Ok(url) => url,
        Err(message) => return failed(ctx.now, format!("with.url: {message}")),
    };
    let shown = shown_url(&url);
    let client = client(ctx.state.webhook.allow_private);
    let mut logs = Vec::new();
    let mut attempt: u32 = 1;
    loop {
        let now = gangplank_store::now_millis();
        let left = ctx.deadline - now;
        if left <= 0 {
            let mut result = failed(now, "the step's deadline passed before the check passed");
            result.logs.splice(0..0, logs);
            return result;
        }
        let timeout = Duration::from_millis(u64::try_from(spec.timeout_ms.min(left)).unwrap_or(0));
        let sent = tokio::select! {
            sent = send(client, &spec, url.clone(), timeout) => sent,
            () = ctx.cancel.cancelled() => {
                return StepResult {
                    outcome: StepOutcome::Errored { message: "cancelled".to_owned() },
                    logs,
                };
            }
        };
        let took = gangplank_store::now_millis() - now;
        let problem = match sent {
            Ok((status, body)) => {
                match spec.judge(status, &body) {
                    Verdict::Pass => {
                        logs.push(line(
                        LogLevel::Info,
                        format!("attempt {attempt}: {} {shown} → {status} in {took} ms: as expected", spec.method),
                    ));
                        let mut outputs = Map::new();
                        outputs.insert("status".to_owned(), json!(status));
                        outputs.insert("body".to_owned(), json!(excerpt(&body, MAX_OUTPUT_BODY)));
                        outputs.insert("attempts".to_owned(), json!(attempt));
                        return StepResult {
                            outcome: StepOutcome::Succeeded {
                                outputs,
                                related: Default::default(),
                                message: format!("{} {shown} answered {status}", spec.method),
                            },
                            logs,
                        };
                    }
                    Verdict::Fail(reason) => {
                        logs.push(line(
                        LogLevel::Warn,
                        format!(
                            "attempt {attempt}: {} {shown} → {status} in {took} ms: {reason}; body: {}",
                            spec.method,
                            excerpt(&body, HTTP_LOG_EXCERPT)
                        ),
                    ));
                        reason
                    }
                }
            }
            Err(problem) => {
                logs.push(line(
                    LogLevel::Warn,
                    format!("attempt {attempt}: {} {shown}: {problem}", spec.method),
                ));
                problem
            }
        };
        let Some(next) = spec.next_attempt(attempt, gangplank_store::now_millis(), ctx.deadline)
        else {
            // The check did not pass: a business failure (the service is not what it should
            // be), also when it could not be reached at all.
            let message = format!(
                "{} {shown}: {problem} (after {attempt} attempt{})",
                spec.method,
                if attempt == 1 { "" } else { "s" }
            );
            logs.push(line(LogLevel::Error, message.clone()));
            return StepResult {
                outcome: StepOutcome::Failed { message },
                logs,
            };
        };
        let pause =
            Duration::from_millis(u64::try_from(next - gangplank_store::now_millis()).unwrap_or(0));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = ctx.cancel.cancelled() => {
                return StepResult {
                    outcome: StepOutcome::Errored { message: "cancelled".to_owned() },
                    logs,
                };
            }
        }
        attempt += 1;
    }
}

/// Sends the request; the status and the start of the body (at most
/// `MAX_HTTP_RESPONSE_BYTES`), or what went wrong.
async fn send(
    client: &reqwest::Client,
    spec: &HttpSpec,
    url: reqwest::Url,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let method = reqwest::Method::from_bytes(spec.method.as_bytes())
        .map_err(|_| format!("{} is not a method", spec.method))?;
    let mut request = client.request(method, url).timeout(timeout);
    let has = |name: &str| {
        spec.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    for (name, value) in &spec.headers {
        request = request.header(name, value);
    }
    match &spec.body {
        None => {}
        Some(HttpBody::Text(text)) => request = request.body(text.clone()),
        Some(HttpBody::Json(value)) => {
            if !has("content-type") {
                request = request.header("content-type", "application/json");
            }
            request = request.body(value.to_string());
        }
    }
    let reading = async {
        let mut response = request.send().await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
            let room = MAX_HTTP_RESPONSE_BYTES - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() == MAX_HTTP_RESPONSE_BYTES {
                break;
            }
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    // The request's own timeout covers the headers; this one the body too.
    tokio::time::timeout(timeout, reading)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no complete answer within {} ms",
                timeout.as_millis()
            ))
        })
}

/// The URL without its query, fragment or credentials, for the log.
fn shown_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

fn line(level: LogLevel, message: String) -> crate::worker::pipeline::step::LogLine {
    crate::worker::pipeline::step::LogLine {
        at: gangplank_store::now_millis(),
        level,
        message,
    }
}

fn failed(at: i64, message: impl Into<String>) -> StepResult {
    let message = message.into();
    StepResult::new(StepOutcome::Failed {
        message: message.clone(),
    })
    .log(at, LogLevel::Error, message)
}

#[cfg(test)]
mod tests;
