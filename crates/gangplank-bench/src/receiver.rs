//! A webhook receiver on 127.0.0.1 that records what arrived and when.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One delivery as it arrived.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: SystemTime,
    pub webhook_id: String,
    pub body: serde_json::Value,
}

/// The receiver's record, shared with the benchmark.
#[derive(Clone, Default)]
pub struct Arrivals(Arc<Mutex<Vec<Arrival>>>);

impl Arrivals {
    pub fn len(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }

    /// When the newest arrival `matches` arrived, if one did (scanned in place: callers poll).
    pub fn newest_matching(&self, matches: impl Fn(&Arrival) -> bool) -> Option<SystemTime> {
        let arrivals = self.0.lock().expect("not poisoned");
        arrivals.iter().rev().find(|a| matches(a)).map(|a| a.at)
    }

    pub fn snapshot(&self) -> Vec<Arrival> {
        self.0.lock().expect("not poisoned").clone()
    }
}

async fn receive(State(arrivals): State<Arrivals>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = SystemTime::now();
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    arrivals.0.lock().expect("not poisoned").push(Arrival {
        at,
        webhook_id,
        body,
    });
    StatusCode::NO_CONTENT
}

/// Starts the receiver; returns its URL and its record.
pub async fn start() -> anyhow::Result<(String, Arrivals)> {
    let arrivals = Arrivals::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, arrivals))
}
