//! One module per dashboard page, and what every page's frame needs.

pub mod env;
pub mod events;
pub mod overview;
pub mod sign_in;

use axum::http::StatusCode;
use serde::Deserialize;

use crate::state::AppState;
use crate::ui::error::UiError;
use crate::ui::session::UiUser;

/// The organization a page is about: `?org=`, or the user's first.
#[derive(Debug, Default, Deserialize)]
pub struct OrgParam {
    pub org: Option<String>,
}

/// What the frame around every signed-in page shows: who is signed in, the sign-out form
/// (with its CSRF token) and the organization.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub user_name: String,
    pub csrf: String,
    pub org: String,
    /// `?org=…`, kept on every link.
    pub org_query: String,
}

impl Chrome {
    /// The frame for `user` in the organization `param` names, or their first one; 403 when
    /// they are not a member of the named one (whether or not it exists), 403 when they are
    /// in none.
    pub async fn new(state: &AppState, user: &UiUser, param: &OrgParam) -> Result<Chrome, UiError> {
        let orgs = state.store.memberships(&user.user_id).await?;
        let org = match param.org.as_deref().filter(|o| !o.is_empty()) {
            Some(named) => orgs
                .iter()
                .find(|(id, _)| id == named)
                .map(|(id, _)| id.clone())
                .ok_or_else(|| {
                    UiError::Page(
                        StatusCode::FORBIDDEN,
                        format!("You have no access to organization {named}."),
                    )
                })?,
            None => orgs.first().map(|(id, _)| id.clone()).ok_or_else(|| {
                UiError::Page(
                    StatusCode::FORBIDDEN,
                    "You are not a member of any organization.".to_owned(),
                )
            })?,
        };
        Ok(Chrome {
            user_name: user.user_name.clone(),
            csrf: user.csrf.clone(),
            org_query: crate::ui::view::org_query(&org),
            org,
        })
    }
}
