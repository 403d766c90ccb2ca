//! Organizations, users, org memberships and API tokens (stored as hashes only).

use gangplank_core::page::{Page, PageRequest};

use crate::page::{Keyed, after_ascending, into_page};
use crate::sql::{query, row_struct};
use crate::{Store, StoreError};

/// A user (today: always a service user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub kind: String,
    pub created_at: i64,
}
row_struct!(UserRow {
    id,
    name,
    email,
    kind,
    created_at
});

/// A user together with their role in one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub kind: String,
    pub created_at: i64,
    pub role: String,
}
row_struct!(MemberRow {
    id,
    name,
    email,
    kind,
    created_at,
    role
});

/// Token metadata; the secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub user_id: String,
    pub id: String,
    pub description: String,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
}
row_struct!(TokenRow {
    user_id,
    id,
    description,
    created_at,
    created_by,
    expires_at
});

/// Who a presented token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub user_name: String,
    pub token_hash: String,
    pub expires_at: Option<i64>,
}
row_struct!(Principal {
    user_id,
    user_name,
    token_hash,
    expires_at
});

/// A token to store: only its hash.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: String,
    pub id: String,
    pub token_hash: String,
    pub description: String,
    pub created_by: String,
    pub expires_at: Option<i64>,
}

/// What first start creates in an empty database.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub org_id: String,
    pub admin_user_id: String,
    pub admin_name: String,
    pub token_hash: String,
    /// Environment types every new organization starts with.
    pub env_types: Vec<(String, String)>,
}

const MEMBER_COLUMNS: &str = "SELECT u.id, u.name, u.email, u.kind, u.created_at, m.role \
     FROM users u JOIN org_members m ON m.user_id = u.id";

impl Store {
    /// Creates the first organization, its administrator and token, unless any organization
    /// exists. Returns whether it did.
    pub async fn bootstrap(&self, boot: Bootstrap) -> Result<bool, StoreError> {
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let orgs = query("SELECT COUNT(*) FROM orgs")
                    .fetch_one::<i64>(conn)
                    .await?;
                if orgs > 0 {
                    return Ok(false);
                }
                query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $1, $2)")
                    .bind(&boot.org_id)
                    .bind(now)
                    .execute(conn)
                    .await?;
                for (id, description) in &boot.env_types {
                    query("INSERT INTO env_types (org_id, id, description) VALUES ($1, $2, $3)")
                        .bind(&boot.org_id)
                        .bind(id)
                        .bind(description)
                        .execute(conn)
                        .await?;
                }
                insert_user(conn, &boot.admin_user_id, &boot.admin_name, "", now).await?;
                insert_member(
                    conn,
                    &boot.org_id,
                    &boot.admin_user_id,
                    "administrator",
                    now,
                )
                .await?;
                let token = NewToken {
                    user_id: boot.admin_user_id.clone(),
                    id: "bootstrap".to_owned(),
                    token_hash: boot.token_hash,
                    description: "created at first start".to_owned(),
                    created_by: boot.admin_user_id.clone(),
                    expires_at: None,
                };
                insert_token(conn, &token, now).await?;
                Ok(true)
            })
        }))
        .await
    }

    /// Whether organization `org_id` exists.
    pub async fn org_exists(&self, org_id: &str) -> Result<bool, StoreError> {
        let org_id = org_id.to_owned();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let found = query("SELECT id FROM orgs WHERE id = $1")
                    .bind(&org_id)
                    .fetch_optional::<String>(conn)
                    .await?;
                Ok(found.is_some())
            })
        }))
        .await
    }

    /// Finds the owner of a token by the token's hash.
    pub async fn find_principal(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        let cache = self.auth_cache.clone();
        if let Some(hit) = cache.as_ref().and_then(|c| c.principal(token_hash)) {
            return Ok(Some(hit));
        }
        let epoch = cache.as_ref().map(|c| c.epoch());
        let token_hash = token_hash.to_owned();
        let found = self
            .read(Box::new(move |conn| {
                Box::pin(async move {
                    query(
                        "SELECT t.user_id, u.name AS user_name, t.token_hash, t.expires_at \
                     FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
                    )
                    .bind(&token_hash)
                    .fetch_optional::<Principal>(conn)
                    .await
                })
            }))
            .await?;
        if let (Some(cache), Some(epoch), Some(principal)) = (cache, epoch, &found) {
            cache.put_principal(epoch, principal);
        }
        Ok(found)
    }

    /// Creates a service user with `role` in `org_id`.
    pub async fn create_service_user(
        &self,
        org_id: &str,
        user_id: &str,
        name: &str,
        email: &str,
        role: &str,
    ) -> Result<MemberRow, StoreError> {
        let (org_id, user_id, name, email, role) = (
            org_id.to_owned(),
            user_id.to_owned(),
            name.to_owned(),
            email.to_owned(),
            role.to_owned(),
        );
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                insert_user(conn, &user_id, &name, &email, now).await?;
                insert_member(conn, &org_id, &user_id, &role, now).await?;
                Ok(MemberRow {
                    id: user_id,
                    name,
                    email,
                    kind: "service".to_owned(),
                    created_at: now,
                    role,
                })
            })
        }))
        .await
    }

    /// A user by id, in no particular organization.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<UserRow>, StoreError> {
        let user_id = user_id.to_owned();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query("SELECT id, name, email, kind, created_at FROM users WHERE id = $1")
                    .bind(&user_id)
                    .fetch_optional::<UserRow>(conn)
                    .await
            })
        }))
        .await
    }

    /// Every organization role `user_id` holds, as (org, role).
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let user_id = user_id.to_owned();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query("SELECT org_id, role FROM org_members WHERE user_id = $1 ORDER BY org_id")
                    .bind(&user_id)
                    .fetch_all::<(String, String)>(conn)
                    .await
            })
        }))
        .await
    }

    /// A member of `org_id`, with their role.
    pub async fn get_member(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> Result<Option<MemberRow>, StoreError> {
        let cache = self.auth_cache.clone();
        if let Some(hit) = cache.as_ref().and_then(|c| c.member(org_id, user_id)) {
            return Ok(Some(hit));
        }
        let epoch = cache.as_ref().map(|c| c.epoch());
        let (org_id, user_id) = (org_id.to_owned(), user_id.to_owned());
        let key = org_id.clone();
        let found = self
            .read(Box::new(move |conn| {
                Box::pin(async move {
                    let sql = format!("{MEMBER_COLUMNS} WHERE m.org_id = $1 AND m.user_id = $2");
                    query(sql)
                        .bind(&org_id)
                        .bind(&user_id)
                        .fetch_optional::<MemberRow>(conn)
                        .await
                })
            }))
            .await?;
        if let (Some(cache), Some(epoch), Some(member)) = (cache, epoch, &found) {
            cache.put_member(epoch, &key, member);
        }
        Ok(found)
    }

    /// A page of the members of `org_id`, oldest first.
    pub async fn list_members(
        &self,
        org_id: &str,
        page: &PageRequest,
    ) -> Result<Page<MemberRow>, StoreError> {
        let org_id = org_id.to_owned();
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                let sql = format!(
                    "SELECT u.created_at AS page_n, u.id AS page_s, {} WHERE m.org_id = $1 \
                     AND (u.created_at, u.id) > ($2, $3) ORDER BY u.created_at, u.id LIMIT $4",
                    MEMBER_COLUMNS.trim_start_matches("SELECT ")
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(after_n)
                    .bind(after_s)
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<MemberRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Changes a member's role, refusing to leave the organization without an administrator
    /// who can sign in.
    pub async fn set_org_role(
        &self,
        org_id: &str,
        user_id: &str,
        role: &str,
    ) -> Result<(), StoreError> {
        let (org_id, user_id, role) = (org_id.to_owned(), user_id.to_owned(), role.to_owned());
        let result = self
            .write(Box::new(move |conn| {
                Box::pin(async move {
                    lock_org(conn, &org_id).await?;
                    // Read under the org lock, so the role cannot change before the update.
                    let previous =
                        query("SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2")
                            .bind(&org_id)
                            .bind(&user_id)
                            .fetch_optional::<String>(conn)
                            .await?;
                    let Some(previous) = previous else {
                        return Err(StoreError::NotFound(format!(
                            "user {user_id} is not in org {org_id}"
                        )));
                    };
                    query("UPDATE org_members SET role = $3 WHERE org_id = $1 AND user_id = $2")
                        .bind(&org_id)
                        .bind(&user_id)
                        .bind(&role)
                        .execute(conn)
                        .await?;
                    if previous == ADMINISTRATOR && role != ADMINISTRATOR {
                        ensure_an_admin_remains(conn, &org_id).await?;
                    }
                    Ok(())
                })
            }))
            .await;
        self.invalidate_auth();
        result
    }

    /// Removes a user from an organization (and deletes the user, who belongs nowhere else
    /// today), refusing to remove the last administrator who can sign in.
    pub async fn remove_member(&self, org_id: &str, user_id: &str) -> Result<(), StoreError> {
        let (org_id, user_id) = (org_id.to_owned(), user_id.to_owned());
        let result = self
            .write(Box::new(move |conn| {
                Box::pin(async move {
                    lock_org(conn, &org_id).await?;
                    let removed = query(
                        "DELETE FROM org_members WHERE org_id = $1 AND user_id = $2 RETURNING role",
                    )
                    .bind(&org_id)
                    .bind(&user_id)
                    .fetch_optional::<String>(conn)
                    .await?;
                    let Some(removed) = removed else {
                        return Err(StoreError::NotFound(format!(
                            "user {user_id} is not in org {org_id}"
                        )));
                    };
                    if removed == ADMINISTRATOR {
                        ensure_an_admin_remains(conn, &org_id).await?;
                    }
                    query(
                        "DELETE FROM users WHERE id = $1 \
                     AND NOT EXISTS (SELECT 1 FROM org_members WHERE user_id = $1)",
                    )
                    .bind(&user_id)
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            }))
            .await;
        self.invalidate_auth();
        result
    }

    /// Stores a token hash; a token id is unique per user.
    pub async fn create_token(&self, token: NewToken) -> Result<TokenRow, StoreError> {
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                insert_token(conn, &token, now)
                    .await
                    .map_err(|error| match error {
                        StoreError::Conflict(_) => {
                            StoreError::Conflict(format!("token {} already exists", token.id))
                        }
                        other => other,
                    })?;
                Ok(TokenRow {
                    user_id: token.user_id,
                    id: token.id,
                    description: token.description,
                    created_at: now,
                    created_by: token.created_by,
                    expires_at: token.expires_at,
                })
            })
        }))
        .await
    }

    /// One of a user's tokens.
    pub async fn get_token(
        &self,
        user_id: &str,
        token_id: &str,
    ) -> Result<Option<TokenRow>, StoreError> {
        let (user_id, token_id) = (user_id.to_owned(), token_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "SELECT user_id, id, description, created_at, created_by, expires_at \
                     FROM tokens WHERE user_id = $1 AND id = $2",
                )
                .bind(&user_id)
                .bind(&token_id)
                .fetch_optional::<TokenRow>(conn)
                .await
            })
        }))
        .await
    }

    /// The organizations in which `user_id` holds a role on an app that `caller_id` does not
    /// own: there the caller could not grant the user's app roles.
    pub async fn orgs_with_app_roles_not_owned_by(
        &self,
        user_id: &str,
        caller_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let (user_id, caller_id) = (user_id.to_owned(), caller_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "SELECT DISTINCT m.org_id FROM app_members m WHERE m.user_id = $1 \
                     AND NOT EXISTS (SELECT 1 FROM app_members c WHERE c.org_id = m.org_id \
                     AND c.app_id = m.app_id AND c.user_id = $2 AND c.role = 'owner') \
                     ORDER BY m.org_id",
                )
                .bind(&user_id)
                .bind(&caller_id)
                .fetch_all::<String>(conn)
                .await
            })
        }))
        .await
    }

    /// A page of a user's tokens, oldest first.
    pub async fn list_tokens_page(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<Page<TokenRow>, StoreError> {
        let user_id = user_id.to_owned();
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                let rows = query(
                    "SELECT created_at AS page_n, id AS page_s, user_id, id, description, created_at, \
                     created_by, expires_at FROM tokens WHERE user_id = $1 \
                     AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4",
                )
                .bind(&user_id)
                .bind(after_n)
                .bind(after_s)
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<TokenRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Deletes one token, refusing when the delete would leave one of the user's
    /// organizations without an administrator holding a usable token. The organizations the
    /// user administers are locked first, so on PostgreSQL concurrent deletes of their
    /// administrators' tokens run one after the other and cannot both pass the check.
    pub async fn delete_token(&self, user_id: &str, token_id: &str) -> Result<(), StoreError> {
        let (user_id, token_id) = (user_id.to_owned(), token_id.to_owned());
        let now = crate::now_millis();
        let result = self
            .write(Box::new(move |conn| {
                Box::pin(async move {
                    // One row at a time, in id order: two transactions locking the same
                    // organizations take them in the same order, so they cannot deadlock.
                    let administered = query(
                        "SELECT org_id FROM org_members WHERE user_id = $1 \
                         AND role = 'administrator' ORDER BY org_id",
                    )
                    .bind(&user_id)
                    .fetch_all::<String>(conn)
                    .await?;
                    for org_id in &administered {
                        lock_org(conn, org_id).await?;
                    }
                    let removed = query(
                        "DELETE FROM tokens WHERE user_id = $1 AND id = $2 RETURNING expires_at",
                    )
                    .bind(&user_id)
                    .bind(&token_id)
                    .fetch_optional::<Option<i64>>(conn)
                    .await?;
                    let Some(expires_at) = removed else {
                        return Err(StoreError::NotFound(format!("no token {token_id}")));
                    };
                    let was_usable = expires_at.is_none_or(|at| at > now);
                    if was_usable {
                        let sql = format!(
                            "SELECT COUNT(*) FROM org_members m WHERE m.user_id = $1 \
                             AND m.role = 'administrator' AND NOT EXISTS (SELECT 1 \
                             FROM org_members o WHERE o.org_id = m.org_id AND {ADMIN_CAN_SIGN_IN})"
                        );
                        let locked_out = query(sql)
                            .bind(&user_id)
                            .bind(now)
                            .fetch_one::<i64>(conn)
                            .await?;
                        if locked_out > 0 {
                            return Err(StoreError::Refused(format!(
                                "token {token_id} is the last usable token of the organization's \
                                 last administrator who can sign in; create another token first, \
                                 or make another user an administrator"
                            )));
                        }
                    }
                    Ok(())
                })
            }))
            .await;
        self.invalidate_auth();
        result
    }
}

const ADMINISTRATOR: &str = "administrator";

/// The one definition of "an administrator who can sign in", for member `o` at time `$2`:
/// both the token delete and the role change or removal check it, so they cannot disagree.
const ADMIN_CAN_SIGN_IN: &str = "o.role = 'administrator' AND EXISTS (SELECT 1 FROM tokens t \
     WHERE t.user_id = o.user_id AND (t.expires_at IS NULL OR t.expires_at > $2))";

/// Locks an organization's row for the rest of the transaction (PostgreSQL; SQLite writes
/// run one at a time anyway), so checks that an administrator remains cannot interleave.
async fn lock_org(conn: &mut crate::conn::Conn<'_>, org_id: &str) -> Result<(), StoreError> {
    query("UPDATE orgs SET name = name WHERE id = $1")
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An organization keeps an administrator who can sign in: one holding a usable token.
async fn ensure_an_admin_remains(
    conn: &mut crate::conn::Conn<'_>,
    org_id: &str,
) -> Result<(), StoreError> {
    let sql =
        format!("SELECT COUNT(*) FROM org_members o WHERE o.org_id = $1 AND {ADMIN_CAN_SIGN_IN}");
    let admins = query(sql)
        .bind(org_id)
        .bind(crate::now_millis())
        .fetch_one::<i64>(conn)
        .await?;
    if admins == 0 {
        return Err(StoreError::Refused(
            "an organization must keep at least one administrator who holds a usable token"
                .to_owned(),
        ));
    }
    Ok(())
}

async fn insert_user(
    conn: &mut crate::conn::Conn<'_>,
    id: &str,
    name: &str,
    email: &str,
    now: i64,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO users (id, name, email, kind, created_at) VALUES ($1, $2, $3, 'service', $4)",
    )
    .bind(id)
    .bind(name)
    .bind(email)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_member(
    conn: &mut crate::conn::Conn<'_>,
    org_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<(), StoreError> {
    query("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

async fn insert_token(
    conn: &mut crate::conn::Conn<'_>,
    token: &NewToken,
    now: i64,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO tokens (user_id, id, token_hash, description, created_at, created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(&token.user_id)
    .bind(&token.id)
    .bind(&token.token_hash)
    .bind(&token.description)
    .bind(now)
    .bind(&token.created_by)
    .bind(token.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Clears the authentication cache after a write that can revoke access.
    fn invalidate_auth(&self) {
        if let Some(cache) = &self.auth_cache {
            cache.invalidate();
        }
    }
}
