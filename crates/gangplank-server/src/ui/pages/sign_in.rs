//! `/ui/sign-in` (paste an API token once; it opens a session) and `/ui/sign-out`.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use gangplank_store::NewUiSession;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::state::AppState;
use crate::ui::error::UiError;
use crate::ui::session::{self, SESSION_SECONDS, SIGN_IN_COOKIE, UiUser};

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    next: &'a str,
    csrf: &'a str,
    error: &'a str,
}

#[derive(Debug, Default, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Only a dashboard path, never another site (`//host`, `/\host`) or the API.
fn safe_next(next: &str) -> &str {
    let inside = next == "/ui" || next.starts_with("/ui/") || next.starts_with("/ui?");
    if inside && !next.contains("//") && !next.contains('\\') {
        next
    } else {
        "/ui"
    }
}

/// The sign-in form, with a fresh double-submit CSRF value in a cookie and the form.
pub async fn form(headers: HeaderMap, Query(param): Query<NextParam>) -> Result<Response, UiError> {
    let next = safe_next(param.next.as_deref().unwrap_or("/ui")).to_owned();
    page(&headers, &next, "", StatusCode::OK)
}

fn page(
    headers: &HeaderMap,
    next: &str,
    error: &str,
    status: StatusCode,
) -> Result<Response, UiError> {
    let csrf = session::random_id();
    let body = SignInPage {
        next,
        csrf: &csrf,
        error,
    }
    .render()?;
    let cookie = session::set_cookie(SIGN_IN_COOKIE, &csrf, 3600, headers);
    Ok((status, [(header::SET_COOKIE, cookie)], Html(body)).into_response())
}

/// Checks the token and opens a session: the cookie carries a random id, the database only
/// its keyed hash. 303 to `next`; the form again with 401 for a token that does not work.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Result<Response, UiError> {
    let Form(form) = form.map_err(|e| UiError::Page(StatusCode::BAD_REQUEST, e.body_text()))?;
    let expected = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    if expected.is_empty() || !bool::from(form.csrf.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(session::csrf_refused());
    }
    let next = safe_next(&form.next).to_owned();
    let token = form.token.trim();
    let caller = match crate::auth::authenticate(&state.store, &state.tokens, token).await {
        Ok(caller) if !token.is_empty() => caller,
        Ok(_) | Err(crate::error::ApiError::Unauthorized(_)) => {
            return page(
                &headers,
                &next,
                "That token is not valid (or has expired).",
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(other) => return Err(other.into()),
    };
    let session_id = session::random_id();
    state
        .store
        .create_ui_session(NewUiSession {
            id_hash: session::session_hash(&state, &session_id),
            user_id: caller.user_id.clone(),
            token_hash: state.tokens.hash(token),
            expires_at: gangplank_store::now_millis() + SESSION_SECONDS * 1000,
        })
        .await?;
    tracing::info!(user = %caller.user_id, "dashboard session opened");
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        session::set_cookie(session::COOKIE, &session_id, SESSION_SECONDS, &headers),
    );
    cookies.append(
        header::SET_COOKIE,
        session::set_cookie(SIGN_IN_COOKIE, "", 0, &headers),
    );
    Ok(response)
}

/// Revokes the session (server-side: the cookie is worthless from now on) and clears the
/// cookie; 303 to the sign-in page.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: UiUser,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, UiError> {
    let Form(form) = form.map_err(|_| session::csrf_refused())?;
    user.check_csrf(&form.csrf)?;
    state.store.revoke_ui_session(&user.id_hash).await?;
    tracing::info!(user = %user.user_id, "dashboard session closed");
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/ui/sign-in".to_owned()),
            (
                header::SET_COOKIE,
                session::set_cookie(session::COOKIE, "", 0, &headers)
                    .to_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
        ],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_the_dashboard() {
        assert_eq!(
            safe_next("/ui/apps/a/envs/b?org=x"),
            "/ui/apps/a/envs/b?org=x"
        );
        assert_eq!(safe_next("/ui"), "/ui");
        for bad in [
            "//evil.example",
            "/ui//evil",
            "https://evil.example",
            "/orgs",
            "/ui\\x",
            "/uix",
        ] {
            assert_eq!(safe_next(bad), "/ui", "{bad}");
        }
    }
}
