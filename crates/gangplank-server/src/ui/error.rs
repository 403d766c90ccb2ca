//! What a dashboard handler fails with, and the HTML pages it turns into: sign-in (a redirect)
//! for a missing or ended session, and a page with the status for everything else.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;

/// A dashboard failure.
#[derive(Debug)]
pub enum UiError {
    /// No live session: to the sign-in page, then back to `next`.
    SignIn { next: String },
    /// An error page with this status and sentence.
    Page(StatusCode, String),
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        let (status, message) = match error {
            ApiError::Unauthorized(_) => {
                return UiError::SignIn {
                    next: "/ui".to_owned(),
                };
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Invalid(m) => (StatusCode::BAD_REQUEST, m),
            other => {
                // The API's response logs internal errors with their detail.
                let status = other.into_response().status();
                (
                    status,
                    "Something went wrong; see the server log.".to_owned(),
                )
            }
        };
        UiError::Page(status, message)
    }
}

impl From<gangplank_store::StoreError> for UiError {
    fn from(error: gangplank_store::StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<askama::Error> for UiError {
    fn from(error: askama::Error) -> Self {
        ApiError::Internal(format!("rendering a dashboard page: {error}")).into()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    code: u16,
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn { next } => {
                let location = format!(
                    "/ui/sign-in?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
            }
            UiError::Page(status, message) => {
                let page = ErrorPage {
                    code: status.as_u16(),
                    title: status.canonical_reason().unwrap_or("Error"),
                    message: &message,
                };
                match page.render() {
                    Ok(body) => (status, Html(body)).into_response(),
                    Err(_) => (
                        status,
                        Html(String::from("<!doctype html><title>Error</title>")),
                    )
                        .into_response(),
                }
            }
        }
    }
}

/// Renders a page template.
pub fn render(page: &impl Template) -> Result<Response, UiError> {
    Ok(Html(page.render()?).into_response())
}
