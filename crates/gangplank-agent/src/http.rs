//! The agent's HTTP API: deployer-service's endpoints with its texts and status codes
//! (wire-formats §7.3), plus Gangplank's own JSON requests: `GET /deploys/{id}`, `GET /state`,
//! and the level-triggered `POST /apply` with `GET /applies/{id}` (a long poll) and
//! `POST /applies/{id}/cancel`, and one-off containers: `POST /runs`, `GET /runs/{id}` (a long
//! poll) and `POST /runs/{id}/cancel`, and image builds (with `[builder]`): `POST /builds`,
//! `GET /builds/{id}?from=N&wait=S` (a long poll) and `POST /builds/{id}/cancel`. Requests that declare JSON get JSON errors
//! `{"error","message"}` (a refused token says why); the seed's get its text.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use gangplank_api::agent::{AgentApplyRequest, AgentDeployStatus, AgentRunRequest};
use gangplank_api::builds::AgentBuildRequest;
use gangplank_core::agent::{decode_deploy_body, wait_seconds};
use serde_json::json;

use crate::auth::Verifier;
use crate::build::{Builder, StartError as BuildStartError};
use crate::deploy::{ApplyError, Deployer, SubmitError, Submitted};
use crate::run::{Runner, StartError};

pub struct Agent {
    pub verifier: Verifier,
    pub deployer: Arc<Deployer>,
    pub runner: Arc<Runner>,
    /// With `[builder]` only.
    pub builder: Option<Arc<Builder>>,
    pub debug: bool,
    pub max_body_bytes: usize,
    /// What `GET /config` shows: no secrets.
    pub public_config: serde_json::Value,
}

pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/health", get(health).fallback(method_not_allowed))
        .route("/version", get(version).fallback(method_not_allowed))
        .route("/config", get(config).fallback(method_not_allowed))
        .route("/deploy", any(deploy))
        .route("/logout", post(logout).fallback(method_not_allowed))
        .route("/deploys/{id}", get(status).fallback(method_not_allowed))
        .route("/state", get(state).fallback(method_not_allowed))
        .route("/apply", post(apply).fallback(method_not_allowed))
        .route("/applies/{id}", get(applied).fallback(method_not_allowed))
        .route(
            "/applies/{id}/cancel",
            post(cancel).fallback(method_not_allowed),
        )
        .route("/runs", post(start_run).fallback(method_not_allowed))
        .route("/runs/{id}", get(get_run).fallback(method_not_allowed))
        .route(
            "/runs/{id}/cancel",
            post(cancel_run).fallback(method_not_allowed),
        )
        .route("/builds", post(start_build).fallback(method_not_allowed))
        .route("/builds/{id}", get(get_build).fallback(method_not_allowed))
        .route(
            "/builds/{id}/cancel",
            post(cancel_build).fallback(method_not_allowed),
        )
        .fallback(not_found)
        .with_state(agent)
}

/// A plain-text answer the way Go's `http.Error` and `fmt.Fprintln` write it.
fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        format!("{message}\n"),
    )
        .into_response()
}

/// An error in the caller's dialect.
fn refuse(as_json: bool, status: StatusCode, code: &str, message: &str) -> Response {
    if as_json {
        (
            status,
            axum::Json(json!({ "error": code, "message": message })),
        )
            .into_response()
    } else {
        text(status, message)
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// Verifies the request's token; the refusal says why to JSON callers (never quoting the
/// token), and only `unauthorized` to the seed's text callers.
async fn authorize(
    agent: &Agent,
    headers: &HeaderMap,
    consume: bool,
    as_json: bool,
    what: &str,
) -> Result<(), Response> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match agent.verifier.verify(authorization, consume).await {
        Ok(_) => Ok(()),
        Err(reason) => {
            tracing::warn!(%reason, request = what, "request refused");
            let message = if as_json {
                reason.public_reason()
            } else {
                "unauthorized".to_owned()
            };
            Err(refuse(
                as_json,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &message,
            ))
        }
    }
}

/// The body, up to the agent's limit. A declared length over the limit is refused before any
/// of the body is read: a client that sent `Expect: 100-continue` (curl does for large bodies)
/// then never sends it, and none is cut off mid-upload, where a reset could lose the answer.
async fn read_body(
    agent: &Agent,
    headers: &HeaderMap,
    body: Body,
    as_json: bool,
) -> Result<axum::body::Bytes, Response> {
    let too_large = || {
        refuse(
            as_json,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!(
                "request body too large (limit {} bytes)",
                agent.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > agent.max_body_bytes) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, agent.max_body_bytes)
        .await
        .map_err(|_| too_large())
}

async fn health() -> Response {
    text(StatusCode::OK, "deployer healthy")
}

async fn version() -> Response {
    text(StatusCode::OK, env!("CARGO_PKG_VERSION"))
}

async fn config(State(agent): State<Arc<Agent>>) -> Response {
    let mut body = agent.public_config.to_string();
    body.push('\n');
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found")
}

async fn deploy(State(agent): State<Arc<Agent>>, headers: HeaderMap, body: Body) -> Response {
    let as_json = wants_json(&headers);
    // The token first, before a byte of the body is read (as the seed does).
    if let Err(refused) = authorize(&agent, &headers, true, as_json, "deploy").await {
        return refused;
    }
    let bytes = match read_body(&agent, &headers, body, as_json).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let request = match decode_deploy_body(&bytes, as_json) {
        Ok(request) => request,
        Err(error) => {
            return refuse(
                as_json,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &error.to_string(),
            );
        }
    };
    let service = request.service.clone();
    tracing::info!(%service, image = request.image.as_deref().unwrap_or("-"), id = request.id.as_deref().unwrap_or("-"), "deploy request accepted");
    let submitted = match agent.deployer.submit(request) {
        Ok(submitted) => submitted,
        Err(error @ (SubmitError::NotAllowed(_) | SubmitError::Ambiguous(_))) => {
            return refuse(
                as_json,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &error.to_string(),
            );
        }
    };
    match (submitted, as_json) {
        (Submitted::Known(record), true) => (StatusCode::OK, axum::Json(record)).into_response(),
        (Submitted::Queued(record, _), true) => {
            let location = format!("/deploys/{}", record.id);
            (
                StatusCode::ACCEPTED,
                [(header::LOCATION, location)],
                axum::Json(record),
            )
                .into_response()
        }
        // The seed's requests are synchronous: answer when the deployment is done.
        (submitted, false) => {
            let record = match submitted {
                Submitted::Known(record) => Some(record),
                Submitted::Queued(_, done) => done.await.ok(),
            };
            match record.map(|r| r.status) {
                Some(AgentDeployStatus::Succeeded | AgentDeployStatus::Unchanged) => text(
                    StatusCode::OK,
                    &format!("deploy request successful for service {service}"),
                ),
                Some(AgentDeployStatus::Queued | AgentDeployStatus::Running) => {
                    text(StatusCode::ACCEPTED, "deploy request in progress")
                }
                Some(AgentDeployStatus::Failed | AgentDeployStatus::Cancelled) | None => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "unable to update service",
                ),
            }
        }
    }
}

async fn status(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = authorize(&agent, &headers, false, true, "status").await {
        return refused;
    }
    match agent.deployer.record(&id) {
        Some(record) => axum::Json(record).into_response(),
        None => refuse(
            true,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no deployment {id} on this agent"),
        ),
    }
}

/// What every project runs now, observed from the engine (signed like `GET /deploys/{id}`).
async fn state(State(agent): State<Arc<Agent>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&agent, &headers, false, true, "state").await {
        return refused;
    }
    match agent.deployer.observe_all().await {
        Ok(state) => axum::Json(state).into_response(),
        Err(error) => refuse(
            true,
            StatusCode::SERVICE_UNAVAILABLE,
            "engine_unavailable",
            &error.to_string(),
        ),
    }
}

async fn logout(State(agent): State<Arc<Agent>>) -> Response {
    if !agent.debug {
        return text(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let deployer = &agent.deployer;
    match deployer.credentials().logout(deployer.docker()).await {
        Ok(()) => text(StatusCode::OK, "docker logout successful"),
        Err(error) => {
            tracing::error!(%error, "logout failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "logout failed")
        }
    }
}

/// `POST /apply`: a project's whole desired state (JSON only). 200 when every service's record
/// is final at once (all unchanged, or a repeat of a finished apply), else 202 with `Location`.
async fn apply(State(agent): State<Arc<Agent>>, headers: HeaderMap, body: Body) -> Response {
    if !wants_json(&headers) {
        return refuse(
            true,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "POST /apply takes application/json",
        );
    }
    if let Err(refused) = authorize(&agent, &headers, true, true, "apply").await {
        return refused;
    }
    let bytes = match read_body(&agent, &headers, body, true).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let request: AgentApplyRequest = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(error) => {
            return refuse(
                true,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the body is not an apply request: {error}"),
            );
        }
    };
    tracing::info!(id = %request.id, services = request.services.len(), "apply request accepted");
    match agent.deployer.apply(&request).await {
        Ok(applied) => {
            let status = if applied.is_final() {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            let location = format!("/applies/{}", applied.id);
            (status, [(header::LOCATION, location)], axum::Json(applied)).into_response()
        }
        Err(error @ (ApplyError::Invalid(_) | ApplyError::Project(_))) => refuse(
            true,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &error.to_string(),
        ),
        Err(error @ ApplyError::Engine(_)) => refuse(
            true,
            StatusCode::SERVICE_UNAVAILABLE,
            "engine_unavailable",
            &error.to_string(),
        ),
    }
}

#[derive(serde::Deserialize)]
struct WaitQuery {
    wait_seconds: Option<u64>,
}

/// How long a status request (`GET /applies/{id}`, `GET /runs/{id}`) may wait, or its refusal.
// A refusal is a whole response, as from `authorize` and `read_body`; it is built once per bad
// request, so its size costs nothing.
#[allow(clippy::result_large_err)]
fn long_poll(
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<std::time::Duration, Response> {
    let Ok(Query(query)) = query else {
        return Err(refuse(
            true,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "wait_seconds must be a whole number of seconds",
        ));
    };
    Ok(std::time::Duration::from_secs(wait_seconds(
        query.wait_seconds,
    )))
}

/// `GET /applies/{id}[?wait_seconds=N]`: the apply's records, once all are final or when the
/// wait (at most 30 s) has passed, whichever is first.
async fn applied(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(refused) = authorize(&agent, &headers, false, true, "apply status").await {
        return refused;
    }
    let wait = match long_poll(query) {
        Ok(wait) => wait,
        Err(refused) => return refused,
    };
    match agent.deployer.wait_applied(&id, wait).await {
        Some(applied) => axum::Json(applied).into_response(),
        None => unknown_apply(&id),
    }
}

/// `POST /applies/{id}/cancel`: the apply's runs not yet begun are dropped (`cancelled`); a
/// running one finishes and is recorded as it ends.
async fn cancel(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = authorize(&agent, &headers, true, true, "cancel").await {
        return refused;
    }
    match agent.deployer.cancel_apply(&id) {
        Some(applied) => axum::Json(applied).into_response(),
        None => unknown_apply(&id),
    }
}

fn unknown_apply(id: &str) -> Response {
    refuse(
        true,
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no apply {id} on this agent"),
    )
}

/// `POST /runs`: a one-off container (JSON only). 202 with `Location` when started (or still
/// running from an earlier request with the same id), 200 when that earlier run is final.
async fn start_run(State(agent): State<Arc<Agent>>, headers: HeaderMap, body: Body) -> Response {
    if !wants_json(&headers) {
        return refuse(
            true,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "POST /runs takes application/json",
        );
    }
    if let Err(refused) = authorize(&agent, &headers, true, true, "run").await {
        return refused;
    }
    let bytes = match read_body(&agent, &headers, body, true).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let request: AgentRunRequest = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(error) => {
            return refuse(
                true,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the body is not a run request: {error}"),
            );
        }
    };
    match agent.runner.start(request) {
        Ok((run, _)) => {
            let status = if run.status.is_final() {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            let location = format!("/runs/{}", run.id);
            (status, [(header::LOCATION, location)], axum::Json(run)).into_response()
        }
        Err(error @ StartError::Invalid(_)) => refuse(
            true,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &error.to_string(),
        ),
        Err(error @ StartError::Conflict(_)) => {
            refuse(true, StatusCode::CONFLICT, "conflict", &error.to_string())
        }
    }
}

/// `GET /runs/{id}[?wait_seconds=N]`: the run, once final or when the wait (at most 30 s) has
/// passed, whichever is first.
async fn get_run(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(refused) = authorize(&agent, &headers, false, true, "run status").await {
        return refused;
    }
    let wait = match long_poll(query) {
        Ok(wait) => wait,
        Err(refused) => return refused,
    };
    match agent.runner.wait(&id, wait).await {
        Some(run) => axum::Json(run).into_response(),
        None => unknown_run(&id),
    }
}

/// `POST /runs/{id}/cancel`: a pending run ends at once; a running container is killed. The
/// answer is the run as it is now (poll it to see `cancelled`).
async fn cancel_run(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = authorize(&agent, &headers, true, true, "run cancel").await {
        return refused;
    }
    match agent.runner.cancel(&id) {
        Some(run) => {
            tracing::info!(run = %id, "run cancel requested");
            axum::Json(run).into_response()
        }
        None => unknown_run(&id),
    }
}

fn unknown_run(id: &str) -> Response {
    refuse(
        true,
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no run {id} on this agent"),
    )
}

/// The builder, or the refusal of an agent without `[builder]`.
// A refusal is a whole response, as from `authorize`.
#[allow(clippy::result_large_err)]
fn builder(agent: &Agent) -> Result<&Arc<Builder>, Response> {
    agent.builder.as_ref().ok_or_else(|| {
        refuse(
            true,
            StatusCode::NOT_FOUND,
            "not_a_builder",
            "this agent does not build images (its configuration has no [builder])",
        )
    })
}

/// `POST /builds`: clone, build and push one commit (JSON only). 201 with `Location` when
/// started, 200 when a build with the same id and request exists, 409 when that id was asked
/// with another request.
async fn start_build(State(agent): State<Arc<Agent>>, headers: HeaderMap, body: Body) -> Response {
    if !wants_json(&headers) {
        return refuse(
            true,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "POST /builds takes application/json",
        );
    }
    if let Err(refused) = authorize(&agent, &headers, true, true, "build").await {
        return refused;
    }
    let builder = match builder(&agent) {
        Ok(builder) => builder,
        Err(refused) => return refused,
    };
    let bytes = match read_body(&agent, &headers, body, true).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let request: AgentBuildRequest = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(error) => {
            return refuse(
                true,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the body is not a build request: {error}"),
            );
        }
    };
    match builder.start(request) {
        Ok((build, started)) => {
            let status = if started {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let location = format!("/builds/{}", build.id);
            (status, [(header::LOCATION, location)], axum::Json(build)).into_response()
        }
        Err(error @ BuildStartError::Invalid(_)) => refuse(
            true,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &error.to_string(),
        ),
        Err(error @ BuildStartError::Conflict(_)) => {
            refuse(true, StatusCode::CONFLICT, "conflict", &error.to_string())
        }
    }
}

#[derive(serde::Deserialize)]
struct BuildQuery {
    from: Option<u64>,
    wait: Option<u64>,
}

/// `GET /builds/{id}[?from=N][&wait=S]`: the build with its log lines from `N`; answered at
/// once when there are lines after `N` or the build is final, else when one comes or the wait
/// (at most 30 s) has passed.
async fn get_build(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<BuildQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(refused) = authorize(&agent, &headers, false, true, "build status").await {
        return refused;
    }
    let builder = match builder(&agent) {
        Ok(builder) => builder,
        Err(refused) => return refused,
    };
    let Ok(Query(query)) = query else {
        return refuse(
            true,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "from and wait must be whole numbers",
        );
    };
    let wait = std::time::Duration::from_secs(wait_seconds(query.wait));
    match builder.wait(&id, query.from.unwrap_or(0), wait).await {
        Some(build) => axum::Json(build).into_response(),
        None => unknown_build(&id),
    }
}

/// `POST /builds/{id}/cancel`: a pending build ends at once; a running one's command (its
/// whole process group) is killed. The answer is the build as it is now.
async fn cancel_build(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = authorize(&agent, &headers, true, true, "build cancel").await {
        return refused;
    }
    let builder = match builder(&agent) {
        Ok(builder) => builder,
        Err(refused) => return refused,
    };
    match builder.cancel(&id) {
        Some(build) => {
            tracing::info!(build = %id, "build cancel requested");
            axum::Json(build).into_response()
        }
        None => unknown_build(&id),
    }
}

fn unknown_build(id: &str) -> Response {
    refuse(
        true,
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no build {id} on this agent"),
    )
}
