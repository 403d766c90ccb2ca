//! `gangplank agent`: applies deployments on one host with docker compose, on JWT-signed
//! requests from CI (deployer-service's contract) or from a Gangplank server's compose target.
//!
//! The pieces: `config` (file and environment), `auth` (keys, claims, replay), `http` (the
//! endpoints), `deploy` (the per-project queue and the pull → up → health → rollback steps),
//! `project` (the user's compose files and the agent's override file), `observe` (what the
//! engine runs), `run` (one-off containers for pipeline steps), `build` (image builds, with
//! `[builder]`), `docker` (running the CLIs) and `credentials` (logging in again when a pull is
//! refused, and a build's push).

mod auth;
mod build;
pub mod config;
mod credentials;
mod deploy;
mod docker;
mod http;
mod observe;
mod project;
mod run;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::json;

pub use config::AgentConfig;

/// How long one compose or docker command may run.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The agent's HTTP client (JWKS and credentials), built on first use: an agent with only PEM
/// keys and no credentials server never loads TLS roots. Timeouts are set per request.
fn http_client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .build()
            .expect("the HTTP client builds")
    })
}

/// Runs the agent on `listener` until `shutdown` completes.
pub async fn run(
    config: AgentConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating the state dir {}", config.state_dir.display()))?;
    let docker = docker::Docker::new(
        config.compose_command.as_deref(),
        &config.docker_command,
        config.docker_config.clone(),
        COMMAND_TIMEOUT,
    )
    .await;
    let projects = config
        .projects
        .iter()
        .map(|p| project::Project::load(p, &config.state_dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let builder = match &config.builder {
        Some(builder) => Some(
            build::Builder::new(
                builder,
                &config.state_dir,
                &config.docker_command,
                config.credentials.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let port = listener
        .local_addr()
        .map(|a| a.port().to_string())
        .unwrap_or_default();
    let public_config = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "port": port,
        "debug_mode": config.debug,
        "aws_region": config.credentials.aws_region.clone().unwrap_or_default(),
        "ecr_domain": config.credentials.ecr_domain.clone().unwrap_or_default(),
        "docker_compose_file": projects.first().and_then(|p| p.files.first()).map(|f| f.display().to_string()).unwrap_or_default(),
        "jwt_public_key_path": config.auth.public_keys.first().map(|f| f.display().to_string()).unwrap_or_default(),
        "compose_command": docker.compose_command(),
        "jwks_url": config.auth.jwks_url,
        "credentials_server": config.credentials.server,
        "registries": config.credentials.registries,
        "builder": config.builder.as_ref().map(|b| json!({
            "concurrency": b.concurrency,
            "work_dir": b.work_dir.as_ref().map(|d| d.display().to_string()),
            "engine": builder.as_ref().map(|b| b.engine_name()),
        })),
        "projects": projects.iter().map(|p| json!({
            "name": p.name,
            "files": p.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "services": p.services,
            "health_timeout_seconds": p.health_timeout.as_secs(),
        })).collect::<Vec<_>>(),
    });
    tracing::info!(
        compose = %docker.compose_command(),
        projects = projects.len(),
        "gangplank agent starting"
    );
    let deployer = deploy::Deployer::start(
        projects,
        docker,
        credentials::Credentials::new(config.credentials.clone()),
    );
    let runner = run::Runner::new(deployer.clone());
    let agent = Arc::new(http::Agent {
        verifier: auth::Verifier::new(&config.auth),
        deployer,
        runner,
        builder,
        debug: config.debug,
        max_body_bytes: config.max_body_bytes,
        public_config,
    });
    serve(listener, http::router(agent), shutdown).await;
    Ok(())
}

/// How long a request's headers may take to arrive. hyper starts the same timer when a
/// keep-alive connection goes idle after a response, so it is the idle timeout too: a client
/// that connects (or stays connected) and sends nothing holds no task past it.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The accept loop: the router on hyper's HTTP/1 connections with the header-read (and idle)
/// timeout `axum::serve` lacks. On `shutdown` it stops accepting, lets each connection finish
/// its request in flight (a long poll answers within 30 s), and returns when all have closed.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use tower::ServiceExt;
    // `stop` tells connections to shut down; each holds a `done` receiver until it ends, so
    // `done_tx.closed()` completes when the last one has.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, done_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    // Out of descriptors, usually: give connections a moment to close.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = async { drop(stop.wait_for(|stop| *stop).await) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(done);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
}
