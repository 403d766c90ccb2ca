//! Webhook delivery: claims due outbox rows, signs and POSTs them, and records each attempt
//! with the retry decision from `gangplank_core::webhook::RetryPolicy`.
//!
//! The SSRF guard lives in the HTTP client's resolver, so the address checked is the address
//! connected to (no re-resolution gap); IP-literal URLs are checked before sending, and
//! redirects are never followed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gangplank_core::net::is_public;
use gangplank_core::webhook::{AttemptResult, Next, RetryPolicy, SigningKey};
use gangplank_store::{Attempt, AttemptOutcome, DueDelivery};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::Semaphore;

use crate::state::AppState;

/// Deliveries in flight at once.
const CONCURRENCY: usize = 256;

/// The AAD a webhook's sealed secret is bound to.
pub fn secret_context(org_id: &str, webhook_id: &str) -> String {
    crate::secrets::context("webhook", org_id, webhook_id)
}

/// The HTTP client for deliveries.
pub fn client(timeout: Duration, allow_private: bool) -> reqwest::Client {
    guarded_builder(allow_private)
        .timeout(timeout)
        .user_agent(concat!("Gangplank-Webhook/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook HTTP client builds")
}

/// A client builder with the SSRF policy of deliveries (shared by the pipelines' `http`
/// action): redirects are never followed, and unless private targets are allowed, names
/// resolve to public addresses only. No proxy from the environment (`HTTPS_PROXY`…) is used:
/// through a proxy the proxy resolves the name, and the public-only check would be skipped.
pub fn guarded_builder(allow_private: bool) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    }
}

/// Resolves names, keeping only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// What a refused private target's message adds: the setting that allows it, so the caller
/// knows what to change (on a development server) rather than only what was wrong.
const ALLOW_PRIVATE_HINT: &str =
    " (http:// and private addresses need GANGPLANK_WEBHOOK_ALLOW_PRIVATE=true on the server)";

/// Checks a webhook URL: https with a host, or (with `allow_private`) also http; IP literals
/// must be public unless private targets are allowed. The message is for the API caller.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(format!("must be an https:// URL{ALLOW_PRIVATE_HINT}")),
        _ => return Err("must be an https:// URL".to_owned()),
    }
    let host = parsed.host_str().ok_or("must have a host")?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>()
        && !allow_private
        && !is_public(ip)
    {
        return Err(format!("{ip} is not a public address{ALLOW_PRIVATE_HINT}"));
    }
    if !allow_private && (host == "localhost" || host.ends_with(".localhost")) {
        return Err(format!(
            "localhost is not a public address{ALLOW_PRIVATE_HINT}"
        ));
    }
    Ok(parsed)
}

pub async fn run(state: AppState) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let free = permits.available_permits();
        if free == 0 {
            // Wait for one delivery to finish before claiming more.
            drop(permits.clone().acquire_owned().await);
            continue;
        }
        let now = gangplank_store::now_millis();
        // A read first: claiming is a write, too dear to spend on finding nothing.
        let next = state.store.next_delivery_due().await.ok().flatten();
        if next.is_none_or(|at| at > now) {
            super::idle(&state.wake.delivery, next).await;
            continue;
        }
        let lease = state.webhook.timeout.as_millis() as i64 + 30_000;
        let due = match state.store.claim_deliveries(now, free as i64, lease).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "claiming webhook deliveries failed");
                super::idle(&state.wake.delivery, None).await;
                continue;
            }
        };
        if due.is_empty() {
            continue;
        }
        tracing::debug!(claimed = due.len(), "deliveries claimed");
        for delivery in due {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let id = delivery.id.clone();
                let attempt = attempt(&state, delivery).await;
                let outcome = match attempt.outcome {
                    AttemptOutcome::Delivered => "delivered",
                    AttemptOutcome::RetryAt(_) => "retrying",
                    AttemptOutcome::Failed(_) => "failed",
                };
                let elapsed =
                    Duration::from_millis(u64::try_from(attempt.duration_ms).unwrap_or(0));
                crate::metrics::webhook_attempt(outcome, elapsed);
                if let Err(error) = state.store.record_attempt(&id, attempt).await {
                    // The lease lapses and the delivery is tried again: at least once.
                    tracing::error!(%error, delivery = %id, "recording a delivery attempt failed");
                }
                drop(permit);
            });
        }
    }
}

/// Makes one attempt and decides what follows.
async fn attempt(state: &AppState, delivery: DueDelivery) -> Attempt {
    let started_at = gangplank_store::now_millis();
    let clock = Instant::now();
    let (status_code, error, result) = match send(state, &delivery, started_at).await {
        Ok((code, retry_after_ms)) => (
            i64::from(code),
            String::new(),
            AttemptResult::Status {
                code,
                retry_after_ms,
            },
        ),
        Err(SendError::Final(message)) => {
            return Attempt {
                started_at,
                duration_ms: clock.elapsed().as_millis() as i64,
                status_code: 0,
                error: message.clone(),
                outcome: AttemptOutcome::Failed(message),
            };
        }
        Err(SendError::Transient(message)) => (0, message, AttemptResult::Failed),
    };
    let duration_ms = clock.elapsed().as_millis() as i64;
    let policy = RetryPolicy {
        max_age_ms: state.webhook.max_age.as_millis() as i64,
        ..RetryPolicy::default()
    };
    let attempt_number = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
    let age = started_at - delivery.created_at;
    let jitter = f64::from(crate::secrets::random_bytes(1)[0]) / 256.0;
    let outcome = match policy.next(attempt_number, age, result, jitter) {
        Next::Delivered => AttemptOutcome::Delivered,
        Next::RetryIn(ms) => AttemptOutcome::RetryAt(started_at + duration_ms + ms),
        Next::GiveUp(reason) => AttemptOutcome::Failed(reason),
    };
    let error = if error.is_empty() && status_code >= 300 {
        format!("the receiver answered {status_code}")
    } else {
        error
    };
    Attempt {
        started_at,
        duration_ms,
        status_code,
        error,
        outcome,
    }
}

enum SendError {
    /// Retrying cannot help (bad URL, undecryptable secret).
    Final(String),
    /// Network trouble or timeout: retry.
    Transient(String),
}

/// POSTs the delivery; the status code and any `Retry-After` (in ms) on an answer.
async fn send(
    state: &AppState,
    delivery: &DueDelivery,
    now_ms: i64,
) -> Result<(u16, Option<i64>), SendError> {
    let allow_private = state.webhook.allow_private;
    let url = check_url(&delivery.url, allow_private).map_err(SendError::Final)?;
    let key = state
        .secrets
        .open(
            &secret_context(&delivery.org_id, &delivery.webhook_id),
            &delivery.secret_sealed,
        )
        .map_err(|e| SendError::Final(e.to_string()))?;
    let key = SigningKey::from_bytes(key);
    let body = delivery.body.as_bytes();
    let timestamp = now_ms / 1000;
    let headers = crate::webhook_headers::open(
        &state.secrets,
        &delivery.org_id,
        &delivery.webhook_id,
        &delivery.headers,
    )
    .map_err(|e| SendError::Final(e.to_string()))?;
    let vars: BTreeMap<String, String> = serde_json::from_str(&delivery.vars).unwrap_or_default();
    let mut request = state.webhook_client().post(url);
    for (name, value) in &headers {
        request = request.header(name, gangplank_core::webhook::substitute(value, &vars));
    }
    let response = request
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            key.standard_signature(&delivery.id, timestamp, body),
        )
        .header("x-hub-signature-256", key.github_signature(body))
        .header("x-gangplank-event", &delivery.event)
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(|e| SendError::Transient(describe(&e)))?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|seconds| seconds.saturating_mul(1000));
    Ok((response.status().as_u16(), retry_after))
}

/// A transport error with its causes, without the URL's query (which may carry tokens).
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
