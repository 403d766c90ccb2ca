//! Gangplank's API server as a library: `run(settings, listener, shutdown)`.
//!
//! The binary's `serve` verb loads [`Settings`], binds the listener and calls [`run`]; tests do
//! the same on port 0. Handlers live in `routes`, one module per resource; they check access
//! through `auth`, validate through `gangplank-core`, persist through `gangplank-store`, and
//! answer with `gangplank-api` shapes. Only this crate chooses HTTP status codes.

mod auth;
mod bootstrap;
mod bounds;
mod deploying;
mod ecr;
mod error;
mod events;
mod extract;
mod metrics;
mod metrics_listener;
mod openapi;
mod page;
mod pipeline_start;
pub mod promotion;
mod registry_clients;
mod registry_login;
mod routes;
mod secrets;
mod serve;
mod settings;
mod signing;
mod state;
pub mod test_hold;
mod ui;
pub mod verified_versions;
mod webhook_headers;
mod worker;
mod yaml;

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
    secrets::create_private_dir(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let store = gangplank_store::Store::connect(&settings.database_url())
        .await
        .context("opening the database")?;
    let secrets = secrets::SecretBox::load(settings.master_key.as_ref(), &settings.data_dir)
        .context("loading the secret key")?;
    check_master_key(&store, &secrets).await?;
    let tokens = auth::TokenHasher::load(&store, &secrets)
        .await
        .context("loading the token key")?;
    bootstrap::ensure(&store, &settings, &tokens)
        .await
        .context("bootstrapping the first organization")?;
    webhook_headers::seal_legacy(&store, &secrets)
        .await
        .context("sealing webhook headers stored in plain text")?;
    store
        .recover_after_restart()
        .await
        .context("recovering work interrupted by the last stop")?;
    let keys = signing::ServerKeys::load(&store, &secrets).await?;
    let metrics = metrics::install();
    let state = state::AppState::new(store.clone(), &settings, metrics, secrets, keys, tokens);
    let _metrics_listener = metrics_listener::start(
        settings.metrics.listen.as_deref(),
        settings.http.limits(),
        state.clone(),
    )
    .await?;
    let workers = worker::Workers::start(&state);
    let app = routes::router(state);
    let served = serve::serve(listener, app, settings.http.limits(), shutdown).await;
    workers.stop();
    store.close().await;
    served.context("serving HTTP")
}

/// Refuses to start when stored secrets were sealed with another master key: serving would
/// only fail later, one delivery or credentials fetch at a time.
async fn check_master_key(
    store: &gangplank_store::Store,
    secrets: &secrets::SecretBox,
) -> anyhow::Result<()> {
    let prefixes = store
        .sealed_prefixes()
        .await
        .context("reading sealed secrets")?;
    let foreign: Vec<&str> = prefixes
        .iter()
        .filter_map(|p| secrets::SecretBox::sealed_key_id(p).or(Some(p.as_str())))
        .filter(|id| *id != secrets.key_id())
        .collect();
    if !foreign.is_empty() {
        anyhow::bail!(
            "stored secrets were sealed with master key {} but this server's master key is {}: \
             start with the key they were sealed with (GANGPLANK_MASTER_KEY or <data dir>/master-key; \
             after an interrupted `gangplank admin rotate-key` the new key is in <data dir>/master-key.new)",
            foreign.join(", "),
            secrets.key_id()
        );
    }
    Ok(())
}

/// `gangplank admin rotate-key`: re-seals every stored secret under a new master key, in one
/// transaction. Run it with the server stopped. With a key file, the new key is written to
/// `master-key.new` first and swapped in after the commit (the old one kept as
/// `master-key.old`); with `GANGPLANK_MASTER_KEY`, the new key is returned for the operator
/// to set. Returns (new key id, the new key when it must be shown).
pub async fn rotate_master_key(settings: Settings) -> anyhow::Result<(String, Option<String>)> {
    use base64::Engine;
    let store = gangplank_store::Store::connect(&settings.database_url())
        .await
        .context("opening the database")?;
    let old = secrets::SecretBox::load(settings.master_key.as_ref(), &settings.data_dir)
        .context("loading the current master key")?;
    check_master_key(&store, &old).await?;
    let key = secrets::random_bytes(32);
    let new = secrets::SecretBox::from_key(&key)?;
    let mut values = store
        .sealed_values()
        .await
        .context("reading sealed secrets")?;
    for value in &mut values {
        let context = secrets::context(value.kind, &value.org_id, &value.id);
        let plain = old
            .open(&context, &value.sealed)
            .with_context(|| format!("opening {context}"))?;
        value.sealed = new.seal(&context, &plain);
    }
    let file = settings.data_dir.join("master-key");
    let staged = settings.data_dir.join("master-key.new");
    let shown = if settings.master_key.is_some() {
        Some(base64::engine::general_purpose::STANDARD.encode(&key))
    } else {
        let _ = std::fs::remove_file(&staged);
        secrets::write_key_file(&staged, &key)?;
        None
    };
    store.reseal(values).await.context("re-sealing secrets")?;
    store.close().await;
    if shown.is_none() {
        std::fs::rename(&file, settings.data_dir.join("master-key.old"))
            .context("keeping the old key as master-key.old")?;
        std::fs::rename(&staged, &file).context("installing the new key")?;
    }
    Ok((new.key_id().to_owned(), shown))
}
