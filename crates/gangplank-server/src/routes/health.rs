//! Unauthenticated endpoints: liveness, readiness, Prometheus metrics, the server's JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::error::error_response;
use crate::state::AppState;

/// The unauthenticated routes; `/metrics` only when no separate metrics listener serves it.
pub fn routes(with_metrics: bool) -> axum::Router<AppState> {
    let router = axum::Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/.well-known/jwks.json", get(super::targets::jwks));
    if with_metrics {
        router.route("/metrics", get(metrics))
    } else {
        router
    }
}

/// The process is up.
async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers.
async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

/// The Prometheus exposition, here or on the separate metrics listener.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&state).await,
    )
        .into_response()
}
