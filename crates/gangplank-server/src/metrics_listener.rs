//! The optional separate listener for `/metrics` (`[metrics] listen`), so the metrics can be
//! scraped on an internal address without exposing them with the API. When it is configured
//! the API listener does not route `/metrics` at all.

use anyhow::Context;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::serve::{ConnectionLimits, serve};
use crate::state::AppState;

/// The running metrics listener; dropping it stops it.
pub struct MetricsListener(Option<JoinHandle<()>>);

impl Drop for MetricsListener {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Binds `listen` (when set) and serves `/metrics` there until the returned value is dropped.
/// Binding happens before returning, so a bad address stops the server from starting.
/// It runs through the same accept loop as the API, so the same timeouts and cap apply.
pub async fn start(
    listen: Option<&str>,
    limits: ConnectionLimits,
    state: AppState,
) -> anyhow::Result<MetricsListener> {
    let Some(listen) = listen else {
        return Ok(MetricsListener(None));
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metrics listener {listen}"))?;
    let address = listener
        .local_addr()
        .context("reading the metrics listener's address")?;
    tracing::info!(%address, "serving /metrics on http://{address}/metrics");
    let app = Router::new()
        .route("/metrics", get(crate::routes::metrics))
        .fallback(|| async {
            crate::error::error_response(
                StatusCode::NOT_FOUND,
                "this listener serves only /metrics",
            )
        })
        .with_state(state);
    let task = tokio::spawn(async move {
        let forever = std::future::pending::<()>();
        if let Err(error) = serve(listener, app, limits, forever).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    Ok(MetricsListener(Some(task)))
}
