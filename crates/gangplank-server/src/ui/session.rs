//! Dashboard sessions: the cookie that carries a session id, the user it stands for, and the
//! CSRF token every form carries (an HMAC of the session id under the server's token key, so
//! it is not stored). Session ids and tokens are compared in constant time and never logged.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::state::AppState;
use crate::ui::error::UiError;

/// The session cookie.
pub const COOKIE: &str = "gp_session";
/// The sign-in form's own CSRF cookie (a double-submit value; there is no session yet).
pub const SIGN_IN_COOKIE: &str = "gp_sign_in";
/// How long a session lasts (and never longer than its token).
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// Labels that keep the keyed hashes of each use apart.
const SESSION_LABEL: &str = "ui-session";
const CSRF_LABEL: &str = "ui-csrf";

/// The signed-in user behind a dashboard request.
#[derive(Clone)]
pub struct UiUser {
    pub user_id: String,
    pub user_name: String,
    /// The CSRF token this session's forms carry.
    pub csrf: String,
    /// The stored hash of the session id (for sign-out and re-checks).
    pub id_hash: String,
}

impl std::fmt::Debug for UiUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiUser")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl FromRequestParts<AppState> for UiUser {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let next = if parts.method == Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or("/ui".to_owned(), |p| p.as_str().to_owned())
        } else {
            "/ui".to_owned()
        };
        let session_id =
            cookie(&parts.headers, COOKIE).ok_or(UiError::SignIn { next: next.clone() })?;
        let id_hash = session_hash(state, session_id);
        let row = state
            .store
            .find_ui_session(&id_hash)
            .await?
            .filter(|row| bool::from(row.id_hash.as_bytes().ct_eq(id_hash.as_bytes())))
            .ok_or(UiError::SignIn { next })?;
        Ok(UiUser {
            user_id: row.user_id,
            user_name: row.user_name,
            csrf: state.tokens.derive(CSRF_LABEL, session_id),
            id_hash,
        })
    }
}

impl UiUser {
    /// 403 unless `presented` is this session's CSRF token.
    pub fn check_csrf(&self, presented: &str) -> Result<(), UiError> {
        if bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes())) && !presented.is_empty() {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }
}

/// The refusal of a form without the right CSRF token.
pub fn csrf_refused() -> UiError {
    UiError::Page(
        axum::http::StatusCode::FORBIDDEN,
        "The form's security token is missing or stale; reload the page and try again.".to_owned(),
    )
}

/// The stored form of a session id.
pub fn session_hash(state: &AppState, session_id: &str) -> String {
    state.tokens.derive(SESSION_LABEL, session_id)
}

/// A new random id: 256 bits, URL-safe.
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(crate::secrets::random_bytes(32))
}

/// The value of cookie `name` (the first one), from every `Cookie` header.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: HTTP-only, `SameSite=Strict`, for `/ui`, `Secure` when the request
/// came over TLS (a proxy in front says so with `X-Forwarded-Proto: https`). `max_age` 0
/// deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: i64, headers: &HeaderMap) -> HeaderValue {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether the browser reached the server over TLS (Gangplank itself serves plain HTTP; TLS
/// ends at a proxy, which sets `X-Forwarded-Proto`).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; gp_session=xyz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, "gp_session"), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "gp_sessio"), None);
    }

    #[test]
    fn cookies_are_secure_only_behind_tls() {
        let mut headers = HeaderMap::new();
        let plain = set_cookie("gp_session", "v", 60, &headers);
        assert_eq!(
            plain.to_str().unwrap(),
            "gp_session=v; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(
            set_cookie("gp_session", "v", 60, &headers)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }
}
