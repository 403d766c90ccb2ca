//! Users, roles and API tokens (Humanitec reference §6).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /orgs/{org}/users`: create a service user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateServiceUser {
    /// Display name: 1 to 200 characters, not only whitespace.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Organization role, e.g. `artefactContributor`.
    #[schema(value_type = crate::vocabulary::OrgRoleName)]
    pub role: String,
    /// Optional contact address.
    #[serde(default)]
    pub email: Option<String>,
}

/// A user's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserProfile {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time, UTC.
    pub created_at: String,
    /// `service`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Contact address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A user together with a role on an org or app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserRole {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// When the role was granted (org: when the user was created).
    pub created_at: String,
    /// `service`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The role.
    pub role: String,
    /// Contact address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `POST /orgs/{org}/apps/{app}/users`: grant an app role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantRole {
    /// User id.
    pub id: String,
    /// Role name.
    #[schema(value_type = crate::vocabulary::AppRoleName)]
    pub role: String,
}

/// `PATCH /orgs/{org}/users/{user}`: change an organization role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeRole {
    /// Role name.
    #[schema(value_type = crate::vocabulary::OrgRoleName)]
    pub role: String,
}

/// `PATCH /orgs/{org}/apps/{app}/users/{user}`: change an application role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeAppRole {
    /// Role name.
    #[schema(value_type = crate::vocabulary::AppRoleName)]
    pub role: String,
}

/// `POST /users/{user}/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateToken {
    /// Token id, unique per user.
    #[schema(pattern = r"^[a-z0-9](?:-?[a-z0-9]+)+$", max_length = 50)]
    pub id: String,
    /// `static`, the only supported type.
    #[serde(rename = "type", default = "static_type")]
    #[schema(value_type = crate::vocabulary::TokenType)]
    pub kind: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Expiry, RFC 3339; never when absent.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

fn static_type() -> String {
    "static".to_owned()
}

/// The secret of a new token: shown once, never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    /// The bearer token.
    pub token: String,
    /// `static`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Token metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// Token id.
    pub id: String,
    /// `static`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Creation time, UTC.
    pub created_at: String,
    /// Creating user's id.
    pub created_by: String,
    /// Expiry, UTC; absent when it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `GET /current-user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CurrentUser {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Contact address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Creation time, UTC.
    pub created_at: String,
    /// `service`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Free-form properties (empty).
    pub properties: BTreeMap<String, String>,
    /// Object (`/orgs/<id>`) → role.
    pub roles: BTreeMap<String, String>,
}
