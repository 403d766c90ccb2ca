//! The web dashboard under `/ui`: server-rendered pages (askama templates compiled into the
//! binary, auto-escaped), one embedded stylesheet and script, sign-in sessions, CSRF tokens on
//! every form, the API's role checks, security headers, HTML error pages and a server-sent
//! event stream for live refresh.

mod error;
mod pages;
mod session;
mod view;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::state::AppState;
use crate::ui::error::UiError;

/// No inline script or style, nothing from another origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes, each behind the security-header layer.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(pages::overview::show))
        .route(
            "/ui/sign-in",
            get(pages::sign_in::form).post(pages::sign_in::submit),
        )
        .route("/ui/sign-out", post(pages::sign_in::sign_out))
        .route("/ui/apps/{app}/envs/{env}", get(pages::env::show))
        .route(
            "/ui/apps/{app}/envs/{env}/history",
            get(pages::env::history),
        )
        .route(
            "/ui/apps/{app}/envs/{env}/rollback",
            post(pages::env::rollback),
        )
        .route(
            "/ui/apps/{app}/envs/{env}/redeploy",
            post(pages::env::redeploy),
        )
        .route("/ui/events", get(pages::events::stream))
        .route("/ui/static/app.css", get(stylesheet))
        .route("/ui/static/app.js", get(script))
        .route("/ui/{*rest}", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(security_headers))
}

async fn not_found() -> UiError {
    UiError::Page(StatusCode::NOT_FOUND, "There is no such page.".to_owned())
}

async fn method_not_allowed() -> UiError {
    UiError::Page(
        StatusCode::METHOD_NOT_ALLOWED,
        "This page does not take that method.".to_owned(),
    )
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/app.css"))
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Adds the security headers to every dashboard response; pages (everything but the two
/// assets, which set their own) are not stored by caches.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
