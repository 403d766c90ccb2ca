//! Applications, their environments, app roles, and environment types.

use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, into_page};
use crate::sql::{query, row_struct};
use crate::webhooks::{Event, enqueue_event};
use crate::{Store, StoreError};

/// An application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRow {
    pub org_id: String,
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub created_by: String,
}
row_struct!(AppRow {
    org_id,
    id,
    name,
    created_at,
    created_by
});

/// An environment of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRow {
    pub app_id: String,
    pub id: String,
    pub name: String,
    pub env_type: String,
    pub created_at: i64,
    pub created_by: String,
    /// Empty before the first deployment.
    pub from_deploy_id: String,
    pub last_deploy_id: String,
    /// 0 unless automation is held.
    pub automation_held_at: i64,
    pub automation_held_by: String,
}
row_struct!(EnvRow {
    app_id,
    id,
    name,
    env_type,
    created_at,
    created_by,
    from_deploy_id,
    last_deploy_id,
    automation_held_at,
    automation_held_by
});

/// An environment type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvTypeRow {
    pub id: String,
    pub description: String,
}
row_struct!(EnvTypeRow { id, description });

/// An application to create, with its first environment unless `env` is `None`.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub org_id: String,
    pub id: String,
    pub name: String,
    pub created_by: String,
    pub env: Option<NewEnv>,
}

/// An environment to create.
#[derive(Debug, Clone)]
pub struct NewEnv {
    pub id: String,
    pub name: String,
    /// The deployment whose set the environment's first deployment starts from, or empty.
    pub from_deploy_id: String,
    pub env_type: String,
}

const APP_COLUMNS: &str =
    "SELECT created_at AS page_n, id AS page_s, org_id, id, name, created_at, created_by FROM apps";
const ENV_COLUMNS: &str = "SELECT created_at AS page_n, id AS page_s, app_id, id, name, \
     env_type, created_at, created_by, from_deploy_id, last_deploy_id, automation_held_at, \
     automation_held_by FROM envs";

impl Store {
    /// Creates an app, makes its creator the app's owner, and creates its first environment.
    pub async fn create_app(&self, app: NewApp) -> Result<(AppRow, Vec<EnvRow>), StoreError> {
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "INSERT INTO apps (org_id, id, name, created_at, created_by) VALUES ($1, $2, $3, $4, $5)"
                )
                .bind(&app.org_id)
                .bind(&app.id)
                .bind(&app.name)
                .bind(now)
                .bind(&app.created_by)
                .execute(conn)
                .await
                .map_err(|error| error.conflict_as(|| format!("app {} already exists", app.id)))?;
                upsert_app_member(conn, &app.org_id, &app.id, &app.created_by, "owner", now).await?;
                let mut envs = Vec::new();
                if let Some(env) = &app.env {
                    envs.push(insert_env(conn, &app.org_id, &app.id, env, &app.created_by, now).await?);
                }
                let row = AppRow { org_id: app.org_id, id: app.id, name: app.name, created_at: now, created_by: app.created_by };
                Ok((row, envs))
            })
        }))
        .await
    }

    /// A page of the apps of `org_id` (or only those `visible_to` holds a role on), oldest
    /// first.
    pub async fn list_apps(
        &self,
        org_id: &str,
        visible_to: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AppRow>, StoreError> {
        let (org_id, visible_to) = (org_id.to_owned(), visible_to.map(str::to_owned));
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                let sql = format!(
                    "{APP_COLUMNS} WHERE org_id = $1 AND ($2 IS NULL OR EXISTS (SELECT 1 FROM app_members m \
                     WHERE m.org_id = apps.org_id AND m.app_id = apps.id AND m.user_id = $2)) \
                     AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $5"
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&visible_to)
                    .bind(after_n)
                    .bind(after_s)
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<AppRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One app.
    pub async fn get_app(&self, org_id: &str, app_id: &str) -> Result<Option<AppRow>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!("{APP_COLUMNS} WHERE org_id = $1 AND id = $2");
                query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .fetch_optional::<AppRow>(conn)
                    .await
            })
        }))
        .await
    }

    /// Renames an app.
    pub async fn rename_app(
        &self,
        org_id: &str,
        app_id: &str,
        name: &str,
    ) -> Result<AppRow, StoreError> {
        let (org_id, app_id, name) = (org_id.to_owned(), app_id.to_owned(), name.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let sql = "UPDATE apps SET name = $3 WHERE org_id = $1 AND id = $2 \
                           RETURNING org_id, id, name, created_at, created_by";
                query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(&name)
                    .fetch_optional::<AppRow>(conn)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no app {app_id}")))
            })
        }))
        .await
    }

    /// Deletes an app with its environments and role bindings.
    pub async fn delete_app(&self, org_id: &str, app_id: &str) -> Result<(), StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let removed = query("DELETE FROM apps WHERE org_id = $1 AND id = $2")
                    .bind(&org_id)
                    .bind(&app_id)
                    .execute(conn)
                    .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!("no app {app_id}")));
                }
                Ok(())
            })
        }))
        .await
    }

    /// The role `user_id` holds on an app, if any.
    pub async fn app_role(
        &self,
        org_id: &str,
        app_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let (org_id, app_id, user_id) = (org_id.to_owned(), app_id.to_owned(), user_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "SELECT role FROM app_members WHERE org_id = $1 AND app_id = $2 AND user_id = $3"
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&user_id)
                .fetch_optional::<String>(conn)
                .await
            })
        }))
        .await
    }

    /// A page of everyone holding a role on an app, as (user id, user name, role, since),
    /// by the time they got it.
    pub async fn list_app_members(
        &self,
        org_id: &str,
        app_id: &str,
        page: &PageRequest,
    ) -> Result<Page<(String, String, String, i64)>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                let rows = query(
                    "SELECT u.id, u.name, m.role, m.created_at, m.created_at AS page_n, u.id AS page_s \
                     FROM app_members m JOIN users u ON u.id = m.user_id \
                     WHERE m.org_id = $1 AND m.app_id = $2 AND (m.created_at, u.id) > ($3, $4) \
                     ORDER BY m.created_at, u.id LIMIT $5"
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(after_n)
                .bind(after_s)
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<(String, String, String, i64)>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Grants (or changes) a user's role on an app; the user must be in the org.
    pub async fn set_app_role(
        &self,
        org_id: &str,
        app_id: &str,
        user_id: &str,
        role: &str,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, user_id, role) = (
            org_id.to_owned(),
            app_id.to_owned(),
            user_id.to_owned(),
            role.to_owned(),
        );
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let in_org =
                    query("SELECT user_id FROM org_members WHERE org_id = $1 AND user_id = $2")
                        .bind(&org_id)
                        .bind(&user_id)
                        .fetch_optional::<String>(conn)
                        .await?;
                if in_org.is_none() {
                    return Err(StoreError::NotFound(format!(
                        "user {user_id} is not in org {org_id}"
                    )));
                }
                upsert_app_member(conn, &org_id, &app_id, &user_id, &role, now).await
            })
        }))
        .await
    }

    /// Revokes a user's role on an app.
    pub async fn remove_app_role(
        &self,
        org_id: &str,
        app_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, user_id) = (org_id.to_owned(), app_id.to_owned(), user_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let removed = query(
                    "DELETE FROM app_members WHERE org_id = $1 AND app_id = $2 AND user_id = $3",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&user_id)
                .execute(conn)
                .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!(
                        "user {user_id} holds no role on app {app_id}"
                    )));
                }
                Ok(())
            })
        }))
        .await
    }

    /// The environments of one app, oldest first.
    pub async fn list_envs(&self, org_id: &str, app_id: &str) -> Result<Vec<EnvRow>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "{ENV_COLUMNS} WHERE org_id = $1 AND app_id = $2 ORDER BY created_at, id"
                );
                query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .fetch_all::<EnvRow>(conn)
                    .await
            })
        }))
        .await
    }

    /// The environments of each of `app_ids` (a page of apps), oldest first, in one read.
    pub async fn list_envs_of_apps(
        &self,
        org_id: &str,
        app_ids: Vec<String>,
    ) -> Result<Vec<EnvRow>, StoreError> {
        let org_id = org_id.to_owned();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "{ENV_COLUMNS} WHERE org_id = $1 AND app_id = $2 ORDER BY created_at, id"
                );
                let mut all = Vec::new();
                for app_id in &app_ids {
                    let envs = query(sql.clone())
                        .bind(&org_id)
                        .bind(app_id)
                        .fetch_all::<EnvRow>(conn)
                        .await?;
                    all.extend(envs);
                }
                Ok(all)
            })
        }))
        .await
    }

    /// A page of the environments of one app, oldest first.
    pub async fn list_envs_page(
        &self,
        org_id: &str,
        app_id: &str,
        page: &PageRequest,
    ) -> Result<Page<EnvRow>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                let sql = format!(
                    "{ENV_COLUMNS} WHERE org_id = $1 AND app_id = $2 \
                     AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $5"
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(after_n)
                    .bind(after_s)
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<EnvRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One environment.
    pub async fn get_env(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
    ) -> Result<Option<EnvRow>, StoreError> {
        let (org_id, app_id, env_id) = (org_id.to_owned(), app_id.to_owned(), env_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!("{ENV_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND id = $3");
                query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(&env_id)
                    .fetch_optional::<EnvRow>(conn)
                    .await
            })
        }))
        .await
    }

    /// Creates an environment in an existing app.
    pub async fn create_env(
        &self,
        org_id: &str,
        app_id: &str,
        env: NewEnv,
        created_by: &str,
    ) -> Result<EnvRow, StoreError> {
        let (org_id, app_id, created_by) =
            (org_id.to_owned(), app_id.to_owned(), created_by.to_owned());
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(
                async move { insert_env(conn, &org_id, &app_id, &env, &created_by, now).await },
            )
        }))
        .await
    }

    /// Renames an environment.
    pub async fn rename_env(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        name: &str,
    ) -> Result<EnvRow, StoreError> {
        let (org_id, app_id, env_id, name) = (
            org_id.to_owned(),
            app_id.to_owned(),
            env_id.to_owned(),
            name.to_owned(),
        );
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let sql = "UPDATE envs SET name = $4 WHERE org_id = $1 AND app_id = $2 AND id = $3 \
                           RETURNING app_id, id, name, env_type, created_at, created_by, \
                           from_deploy_id, last_deploy_id, automation_held_at, automation_held_by";
                query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(&env_id)
                    .bind(&name)
                    .fetch_optional::<EnvRow>(conn)
                    .await?
                    .ok_or_else(|| {
                        StoreError::NotFound(format!("no environment {env_id} in app {app_id}"))
                    })
            })
        }))
        .await
    }

    /// Deletes an environment, refusing to delete an app's last one.
    pub async fn delete_env(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        deleted_by: &str,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, env_id, deleted_by) = (
            org_id.to_owned(),
            app_id.to_owned(),
            env_id.to_owned(),
            deleted_by.to_owned(),
        );
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!("{ENV_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND id = $3");
                let row = query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(&env_id)
                    .fetch_optional::<EnvRow>(conn)
                    .await?;
                let removed =
                    query("DELETE FROM envs WHERE org_id = $1 AND app_id = $2 AND id = $3")
                        .bind(&org_id)
                        .bind(&app_id)
                        .bind(&env_id)
                        .execute(conn)
                        .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!(
                        "no environment {env_id} in app {app_id}"
                    )));
                }
                let left = query("SELECT COUNT(*) FROM envs WHERE org_id = $1 AND app_id = $2")
                    .bind(&org_id)
                    .bind(&app_id)
                    .fetch_one::<i64>(conn)
                    .await?;
                if left == 0 {
                    return Err(StoreError::Refused(format!(
                        "{env_id} is the last environment of app {app_id}"
                    )));
                }
                if let Some(row) = row {
                    let event = env_event(&org_id, &app_id, &row, "deleted", &deleted_by, now);
                    enqueue_event(conn, &event, now).await?;
                }
                Ok(())
            })
        }))
        .await
    }

    /// A page of the environment types of an organization, by id.
    pub async fn list_env_types(
        &self,
        org_id: &str,
        page: &PageRequest,
    ) -> Result<Page<EnvTypeRow>, StoreError> {
        let org_id = org_id.to_owned();
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (_, after) = after_ascending(&page);
                let rows = query(
                    "SELECT CAST(0 AS BIGINT) AS page_n, id AS page_s, id, description FROM env_types \
                     WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(&org_id)
                .bind(after)
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<EnvTypeRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One environment type.
    pub async fn get_env_type(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<EnvTypeRow>, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query("SELECT id, description FROM env_types WHERE org_id = $1 AND id = $2")
                    .bind(&org_id)
                    .bind(&id)
                    .fetch_optional::<EnvTypeRow>(conn)
                    .await
            })
        }))
        .await
    }

    /// Creates an environment type.
    pub async fn create_env_type(
        &self,
        org_id: &str,
        id: &str,
        description: &str,
    ) -> Result<EnvTypeRow, StoreError> {
        let (org_id, id, description) = (org_id.to_owned(), id.to_owned(), description.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query("INSERT INTO env_types (org_id, id, description) VALUES ($1, $2, $3)")
                    .bind(&org_id)
                    .bind(&id)
                    .bind(&description)
                    .execute(conn)
                    .await
                    .map_err(|error| {
                        error.conflict_as(|| format!("environment type {id} already exists"))
                    })?;
                Ok(EnvTypeRow { id, description })
            })
        }))
        .await
    }

    /// Changes an environment type's description.
    pub async fn update_env_type(
        &self,
        org_id: &str,
        id: &str,
        description: &str,
    ) -> Result<EnvTypeRow, StoreError> {
        let (org_id, id, description) = (org_id.to_owned(), id.to_owned(), description.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "UPDATE env_types SET description = $3 WHERE org_id = $1 AND id = $2 RETURNING id, description"
                )
                .bind(&org_id)
                .bind(&id)
                .bind(&description)
                .fetch_optional::<EnvTypeRow>(conn)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no environment type {id}")))
            })
        }))
        .await
    }

    /// Deletes an environment type. While environments use it, fails with the list of them as
    /// `app/env` pairs.
    pub async fn delete_env_type(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Result<(), Vec<(String, String)>>, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let users = query(
                    "SELECT app_id, id FROM envs WHERE org_id = $1 AND env_type = $2 ORDER BY app_id, id"
                )
                .bind(&org_id)
                .bind(&id)
                .fetch_all::<(String, String)>(conn)
                .await?;
                if !users.is_empty() {
                    return Ok(Err(users));
                }
                let removed = query("DELETE FROM env_types WHERE org_id = $1 AND id = $2")
                    .bind(&org_id)
                    .bind(&id)
                    .execute(conn)
                    .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!("no environment type {id}")));
                }
                Ok(Ok(()))
            })
        }))
        .await
    }
}

async fn upsert_app_member(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO app_members (org_id, app_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (org_id, app_id, user_id) DO UPDATE SET role = excluded.role"
    )
    .bind(org_id)
    .bind(app_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_env(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    env: &NewEnv,
    created_by: &str,
    now: i64,
) -> Result<EnvRow, StoreError> {
    let env_type_known = query("SELECT id FROM env_types WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(&env.env_type)
        .fetch_optional::<String>(conn)
        .await?;
    if env_type_known.is_none() {
        return Err(StoreError::Refused(format!(
            "environment type {} does not exist",
            env.env_type
        )));
    }
    query(
        "INSERT INTO envs (org_id, app_id, id, name, env_type, created_at, created_by, from_deploy_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(org_id)
    .bind(app_id)
    .bind(&env.id)
    .bind(&env.name)
    .bind(&env.env_type)
    .bind(now)
    .bind(created_by)
    .bind(&env.from_deploy_id)
    .execute(conn)
    .await
    .map_err(|error| error.conflict_as(|| format!("environment {} already exists in app {app_id}", env.id)))?;
    let row = EnvRow {
        app_id: app_id.to_owned(),
        id: env.id.clone(),
        name: env.name.clone(),
        env_type: env.env_type.clone(),
        created_at: now,
        created_by: created_by.to_owned(),
        from_deploy_id: env.from_deploy_id.clone(),
        last_deploy_id: String::new(),
        automation_held_at: 0,
        automation_held_by: String::new(),
    };
    enqueue_event(
        conn,
        &env_event(org_id, app_id, &row, "created", created_by, now),
        now,
    )
    .await?;
    Ok(row)
}

/// An `environment.created` or `environment.deleted` event.
fn env_event(
    org_id: &str,
    app_id: &str,
    env: &EnvRow,
    kind: &'static str,
    by: &str,
    now: i64,
) -> Event {
    Event::new(
        org_id,
        Some(app_id),
        ("environment", kind),
        by,
        now,
        &[
            ("env_id", env.id.as_str()),
            ("name", env.name.as_str()),
            ("type", env.env_type.as_str()),
        ],
    )
}
