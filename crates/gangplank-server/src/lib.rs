//! Gangplank's API server as a library: `run(settings, listener, shutdown)`.
//!
//! The binary's `serve` verb loads [`Settings`], binds the listener and calls [`run`]; tests do
//! the same on port 0. Handlers live in `routes`, one module per resource; they check access
//! through `auth`, validate through `gangplank-core`, persist through `gangplank-store`, and
//! answer with `gangplank-api` shapes. Only this crate chooses HTTP status codes.

mod auth;
mod bootstrap;
mod deploying;
mod error;
mod extract;
mod metrics;
mod routes;
mod secrets;
mod settings;
mod state;
mod worker;

use std::future::Future;

use anyhow::Context;
use tokio::net::TcpListener;

pub use settings::{LogFormat, Settings};

/// Opens the store, bootstraps an empty database, and serves the API on `listener` until
/// `shutdown` completes; then finishes in-flight requests and closes the store.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let store = gangplank_store::Store::connect(&settings.database_url())
        .await
        .context("opening the database")?;
    bootstrap::ensure(&store, &settings)
        .await
        .context("bootstrapping the first organization")?;
    let secrets = secrets::SecretBox::load(settings.secret_key.as_ref(), &settings.data_dir)
        .context("loading the secret key")?;
    store
        .recover_after_restart()
        .await
        .context("recovering work interrupted by the last stop")?;
    let metrics = metrics::install();
    let state = state::AppState::new(store.clone(), &settings, metrics, secrets);
    let workers = worker::Workers::start(&state);
    let app = routes::router(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    workers.stop();
    store.close().await;
    served.context("serving HTTP")
}
