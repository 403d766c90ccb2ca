//! The agent's HTTP API: deployer-service's endpoints with its texts and status codes
//! (wire-formats §7.3), plus `GET /deploys/{id}` and JSON bodies for Gangplank's own requests.
//! Requests that declare JSON get JSON errors `{"error","message"}`; the seed's get its text.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use gangplank_api::agent::AgentDeployStatus;
use gangplank_core::agent::decode_deploy_body;
use serde_json::json;

use crate::auth::Verifier;
use crate::deploy::{Deployer, SubmitError, Submitted};

pub struct Agent {
    pub verifier: Verifier,
    pub deployer: Arc<Deployer>,
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
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(reason) = agent.verifier.verify(authorization, true).await {
        tracing::warn!(%reason, "deploy request refused");
        return refuse(
            as_json,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unauthorized",
        );
    }
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
    // A declared length over the limit is refused before any of the body is read: a client
    // that sent `Expect: 100-continue` (curl does for large bodies) then never sends it, and
    // none is cut off mid-upload, where a reset could lose the answer.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > agent.max_body_bytes) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(body, agent.max_body_bytes).await else {
        return too_large();
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
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(reason) = agent.verifier.verify(authorization, false).await {
        tracing::warn!(%reason, "status request refused");
        return refuse(
            true,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unauthorized",
        );
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
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(reason) = agent.verifier.verify(authorization, false).await {
        tracing::warn!(%reason, "state request refused");
        return refuse(
            true,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unauthorized",
        );
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
