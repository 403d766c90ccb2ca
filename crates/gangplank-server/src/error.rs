//! `ApiError`: the one place that turns failures into HTTP statuses and JSON error bodies.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gangplank_api::ErrorBody;
use gangplank_core::ValidationError;
use gangplank_store::StoreError;

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// 400: a value breaks a rule; the message names the field.
    Invalid(String),
    /// 401: no valid credentials.
    Unauthorized(String),
    /// 403: valid credentials, not enough rights.
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// 409.
    Conflict(String),
    /// 409 with a custom JSON body (Humanitec's env-type delete lists the users).
    ConflictWith(serde_json::Value),
    /// 412: an `If-Match` precondition does not hold.
    PreconditionFailed(String),
    /// 413.
    PayloadTooLarge(usize),
    /// 415.
    UnsupportedMediaType(String),
    /// 422: the body is not JSON, or not of the expected shape.
    Unprocessable(String),
    /// 500: logged with its detail; the caller sees a generic message.
    Internal(String),
    /// 502: a service Gangplank called on the caller's behalf failed; the text says which.
    BadGateway(String),
    /// 503: a service Gangplank needs is unreachable for now; the caller should retry.
    Unavailable(String),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        ApiError::Invalid(format!("{field}: {message}"))
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        ApiError::Invalid(error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(message) => ApiError::NotFound(message),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Refused(message) => ApiError::Invalid(message),
            StoreError::Database(message) => ApiError::Internal(message),
        }
    }
}

/// The error code used for a status when nothing more specific is known.
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_value",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        412 => "precondition_failed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "malformed_request",
        429 => "rate_limited",
        502 => "upstream_error",
        _ if status.is_server_error() => "internal",
        _ => "error",
    }
}

/// A JSON error response with `status`.
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: code_for(status).to_owned(),
        message: message.into(),
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Invalid(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized(m) => {
                let mut response = error_response(StatusCode::UNAUTHORIZED, m);
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::ConflictWith(body) => {
                return (StatusCode::CONFLICT, Json(body)).into_response();
            }
            ApiError::PreconditionFailed(m) => (StatusCode::PRECONDITION_FAILED, m),
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {limit} bytes"),
            ),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            ApiError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            ApiError::BadGateway(m) => (StatusCode::BAD_GATEWAY, m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".to_owned(),
                )
            }
        };
        error_response(status, message)
    }
}
