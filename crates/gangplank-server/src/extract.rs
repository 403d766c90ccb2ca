//! Extractors whose failures are API errors: JSON bodies, query strings, and the fallback
//! middleware that gives every other error response (405, unknown routes, panics) a JSON body.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::bounds::Bounded;
use crate::error::{ApiError, error_response};
use crate::state::AppState;
pub use strict::Strict;

mod strict;

/// A JSON request body: 415 without a JSON content type, 413 when over the limit, 422 when
/// not JSON or not of the expected shape (the message gives the path of the bad field), 400
/// naming the field when a value is over its bound ([`Bounded`]).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Bounded> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".to_owned(),
            ));
        }
        let bytes = body_bytes(request, state).await?;
        let value: T = parse_json(&bytes)?;
        value.check_bounds()?;
        Ok(ApiJson(value))
    }
}

/// Whether a content type is JSON (`application/json` or `application/*+json`).
pub fn is_json(value: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads the whole body, mapping an overflow of the body limit to 413.
pub async fn body_bytes(request: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(_)
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::PayloadTooLarge(state.max_body_bytes)
            }
            other => ApiError::Invalid(format!(
                "could not read the request body: {}",
                other.body_text()
            )),
        })
}

/// Parses JSON into `T`: 422 with the failing path on shape errors, including an array
/// where an object is expected ([`strict::Strict`]). serde_json's recursion limit (128)
/// bounds nesting.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(Strict(&mut deserializer)).map_err(shape_error);
    let value = match value {
        Err(ApiError::Unprocessable(message))
            if message.contains("invalid type: floating point") =>
        {
            return with_integral_floats(bytes).unwrap_or(Err(ApiError::Unprocessable(message)));
        }
        other => other?,
    };
    deserializer
        .end()
        .map_err(|error| ApiError::Unprocessable(format!("malformed JSON: {error}")))?;
    Ok(value)
}

fn shape_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        ApiError::Unprocessable(format!("malformed JSON: {inner}"))
    } else if path == "." {
        ApiError::Unprocessable(format!("unexpected JSON: {inner}"))
    } else {
        ApiError::Unprocessable(format!("{path}: {inner}"))
    }
}

/// JSON Schema counts `1.0` as an integer (the OpenAPI document's `type: integer` admits it,
/// and generated clients and fuzzers send it); serde does not. When a float stood where an
/// integer belongs, the body is read again with integral floats as integers. Only this error
/// path pays for the second reading.
fn with_integral_floats<T: DeserializeOwned>(bytes: &[u8]) -> Option<Result<T, ApiError>> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    integral_floats_as_integers(&mut value);
    Some(serde_path_to_error::deserialize(Strict(value)).map_err(shape_error))
}

fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            // Within these bounds the conversions are exact for integral values.
            if float.fract() == 0.0 && (0.0..9.0e15).contains(&float.abs()) {
                *value = if float < 0.0 {
                    Value::from(float as i64)
                } else {
                    Value::from(float as u64)
                };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// A query string: 400 naming the bad parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                ApiError::Invalid(format!(
                    "query parameter {}: {}",
                    error.path(),
                    error.inner()
                ))
            })
    }
}

/// Whether a response is an HTML page (the dashboard's error pages keep their own body).
fn is_html(value: Option<&header::HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// Gives every error response without a JSON or HTML body (the router's 404 and 405, body-limit and
/// panic responses) the JSON error shape, keeping its status and headers.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_json(response.headers().get(header::CONTENT_TYPE))
        || is_html(response.headers().get(header::CONTENT_TYPE))
    {
        return response;
    }
    let message = match status {
        StatusCode::NOT_FOUND => "no such route".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_owned(),
        other => other.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    let replacement = error_response(status, message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let (_, body) = replacement.into_parts();
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests;
