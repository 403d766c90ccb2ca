//! Pipelines, their versions (the YAML text as sent), and the criteria that route deployment
//! requests to them. The store keeps text; the core parses and validates it before it gets here.

use std::collections::BTreeMap;

use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, after_descending, into_page};
use crate::sql::{Query, query, row_struct};
use crate::{Store, StoreError};

/// A pipeline with its current version. `trigger_types` and `metadata` are JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRow {
    pub org_id: String,
    pub app_id: String,
    pub id: String,
    pub name: String,
    pub status: String,
    pub version_id: String,
    pub etag: String,
    pub trigger_types: String,
    pub metadata: String,
    pub created_at: i64,
    pub created_by: String,
}
row_struct!(PipelineRow {
    org_id,
    app_id,
    id,
    name,
    status,
    version_id,
    etag,
    trigger_types,
    metadata,
    created_at,
    created_by
});

/// One version of a pipeline: the definition's YAML text, as its author sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineVersionRow {
    pub org_id: String,
    pub app_id: String,
    pub pipeline_id: String,
    pub id: String,
    pub seq: i64,
    pub definition: String,
    pub created_at: i64,
    pub created_by: String,
}
row_struct!(PipelineVersionRow {
    org_id,
    app_id,
    pipeline_id,
    id,
    seq,
    definition,
    created_at,
    created_by
});

/// A new pipeline, or a new version of one: what the server read from a valid definition.
#[derive(Debug, Clone)]
pub struct NewPipelineVersion {
    pub app_id: String,
    pub pipeline_id: String,
    pub name: String,
    pub trigger_types: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub definition: String,
    pub created_by: String,
}

/// A deployment-request criteria. Unset match attributes are empty strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriteriaRow {
    pub org_id: String,
    pub app_id: String,
    pub pipeline_id: String,
    pub pipeline_name: String,
    pub id: String,
    pub trigger_type: String,
    pub env_type: String,
    pub match_app_id: String,
    pub env_id: String,
    pub deployment_type: String,
    pub created_at: i64,
}
row_struct!(CriteriaRow {
    org_id,
    app_id,
    pipeline_id,
    pipeline_name,
    id,
    trigger_type,
    env_type,
    match_app_id,
    env_id,
    deployment_type,
    created_at
});

/// Filters of a pipeline list.
#[derive(Debug, Clone, Default)]
pub struct PipelineFilter {
    /// Only these apps (empty: all of the organization's, or the one app of the path).
    pub apps: Vec<String>,
    /// Only pipelines with this trigger kind in `on`.
    pub trigger: Option<String>,
    /// Only pipelines whose metadata has every one of these pairs.
    pub metadata: BTreeMap<String, String>,
    /// Only the apps this user holds a role on (for callers who do not see every app).
    pub visible_to: Option<String>,
}

const PIPELINE_COLUMNS: &str = "org_id, app_id, id, name, status, version_id, etag, \
     trigger_types, metadata, created_at, created_by";
const VERSION_COLUMNS: &str = "org_id, app_id, pipeline_id, id, seq, definition, created_at, \
     created_by";
const CRITERIA_SELECT: &str = "SELECT c.org_id, c.app_id, c.pipeline_id, p.name AS pipeline_name, \
     c.id, c.trigger_type, c.env_type, c.match_app_id, c.env_id, c.deployment_type, c.created_at \
     FROM pipeline_criteria c JOIN pipelines p ON p.org_id = c.org_id AND p.app_id = c.app_id \
     AND p.id = c.pipeline_id";

impl Store {
    /// Creates a pipeline with its first version. Conflict when the id is taken in the app.
    pub async fn create_pipeline(
        &self,
        org_id: &str,
        new: NewPipelineVersion,
        now: i64,
    ) -> Result<(PipelineRow, PipelineVersionRow), StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let version_id = new_version_id();
                query(format!(
                    "INSERT INTO pipelines ({PIPELINE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, 'active', $5, $5, $6, $7, $8, $9)"
                ))
                .bind(&org_id)
                .bind(&new.app_id)
                .bind(&new.pipeline_id)
                .bind(&new.name)
                .bind(&version_id)
                .bind(json(&new.trigger_types))
                .bind(json(&new.metadata))
                .bind(now)
                .bind(&new.created_by)
                .execute(conn)
                .await
                .map_err(|e| {
                    e.conflict_as(|| {
                        format!("a pipeline {} exists in the application", new.pipeline_id)
                    })
                })?;
                insert_version(conn, &org_id, &new, &version_id, 1, now).await?;
                pair(conn, &org_id, &new.app_id, &new.pipeline_id, None).await
            })
        }))
        .await
    }

    /// Adds a version to a pipeline and makes it current, if the pipeline's etag still is
    /// `if_match` (when given). `Refused` when it is not (the caller answers 412).
    pub async fn update_pipeline(
        &self,
        org_id: &str,
        new: NewPipelineVersion,
        if_match: Option<String>,
        now: i64,
    ) -> Result<(PipelineRow, PipelineVersionRow), StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let current = pipeline_by_id(conn, &org_id, &new.app_id, &new.pipeline_id).await?;
                check_etag(&current, if_match.as_deref())?;
                let seq: i64 = query(
                    "SELECT MAX(seq) FROM pipeline_versions WHERE org_id = $1 AND app_id = $2 \
                     AND pipeline_id = $3",
                )
                .bind(&org_id)
                .bind(&new.app_id)
                .bind(&new.pipeline_id)
                .fetch_one::<Option<i64>>(conn)
                .await?
                .unwrap_or(0);
                let version_id = new_version_id();
                insert_version(conn, &org_id, &new, &version_id, seq + 1, now).await?;
                query(
                    "UPDATE pipelines SET name = $4, version_id = $5, etag = $5, \
                     trigger_types = $6, metadata = $7 \
                     WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&new.app_id)
                .bind(&new.pipeline_id)
                .bind(&new.name)
                .bind(&version_id)
                .bind(json(&new.trigger_types))
                .bind(json(&new.metadata))
                .execute(conn)
                .await?;
                pair(conn, &org_id, &new.app_id, &new.pipeline_id, None).await
            })
        }))
        .await
    }

    /// Deletes a pipeline with its versions and criteria, if its etag still is `if_match`
    /// (when given; `Refused` otherwise) and none of its runs is queued or executing
    /// (`Conflict` otherwise).
    pub async fn delete_pipeline(
        &self,
        org_id: &str,
        app_id: &str,
        pipeline_id: &str,
        if_match: Option<String>,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, pipeline_id) =
            (org_id.to_owned(), app_id.to_owned(), pipeline_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                // Locked first, as run creation does: a run being created now is committed
                // before the count below reads, and one created later finds no pipeline.
                lock_pipeline(conn, &org_id, &app_id, &pipeline_id).await?;
                let current = pipeline_by_id(conn, &org_id, &app_id, &pipeline_id).await?;
                check_etag(&current, if_match.as_deref())?;
                // Checked in the delete's own transaction: a run that is not finished keeps
                // its pipeline (its definition is frozen in the run, but its approvals and
                // links name the pipeline).
                let active = query(
                    "SELECT COUNT(*) FROM pipeline_runs WHERE org_id = $1 AND app_id = $2 \
                     AND pipeline_id = $3 AND status IN ('queued', 'executing')",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&pipeline_id)
                .fetch_one::<i64>(conn)
                .await?;
                if active > 0 {
                    return Err(StoreError::Conflict(format!(
                        "pipeline {pipeline_id} has {active} unfinished run(s): cancel them or \
                         wait for them to finish"
                    )));
                }
                query("DELETE FROM pipelines WHERE org_id = $1 AND app_id = $2 AND id = $3")
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(&pipeline_id)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        }))
        .await
    }

    /// A pipeline and one of its versions (the current one when `version` is `None`).
    pub async fn get_pipeline(
        &self,
        org_id: &str,
        app_id: &str,
        pipeline_id: &str,
        version: Option<&str>,
    ) -> Result<(PipelineRow, PipelineVersionRow), StoreError> {
        let (org_id, app_id, pipeline_id) =
            (org_id.to_owned(), app_id.to_owned(), pipeline_id.to_owned());
        let version = version.map(str::to_owned);
        self.read(Box::new(move |conn| {
            Box::pin(
                async move { pair(conn, &org_id, &app_id, &pipeline_id, version.as_deref()).await },
            )
        }))
        .await
    }

    /// A page of pipelines, oldest first: of one app (`app_id`), or of the organization.
    pub async fn list_pipelines(
        &self,
        org_id: &str,
        app_id: Option<&str>,
        filter: &PipelineFilter,
        page: &PageRequest,
    ) -> Result<Page<PipelineRow>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.map(str::to_owned));
        let (filter, page) = (filter.clone(), page.clone());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                // The page key is (created_at, app_id ' ' id), ordered by that same expression
                // so that resuming and sorting always agree.
                let mut sql = format!(
                    "SELECT created_at AS page_n, app_id || ' ' || id AS page_s, \
                     {PIPELINE_COLUMNS} FROM pipelines WHERE org_id = $1 \
                     AND (created_at > $2 OR (created_at = $2 AND app_id || ' ' || id > $3))"
                );
                let mut args: Vec<String> = Vec::new();
                let mut next = 4;
                let mut clause = |sql: &mut String, text: &str, value: String| {
                    sql.push_str(&text.replace("$N", &format!("${next}")));
                    args.push(value);
                    next += 1;
                };
                if let Some(app_id) = &app_id {
                    clause(&mut sql, " AND app_id = $N", app_id.clone());
                }
                if let Some(user) = &filter.visible_to {
                    clause(
                        &mut sql,
                        " AND EXISTS (SELECT 1 FROM app_members m WHERE m.org_id = pipelines.org_id \
                         AND m.app_id = pipelines.app_id AND m.user_id = $N)",
                        user.clone(),
                    );
                }
                if !filter.apps.is_empty() {
                    sql.push_str(" AND (1 = 0");
                    for app in &filter.apps {
                        clause(&mut sql, " OR app_id = $N", app.clone());
                    }
                    sql.push(')');
                }
                // JSON text written by serde_json: a member's exact text narrows correctly.
                // `!` escapes LIKE's wildcards in the caller's text on both engines.
                if let Some(trigger) = &filter.trigger {
                    clause(
                        &mut sql,
                        " AND trigger_types LIKE $N ESCAPE '!'",
                        format!("%{}%", like_escape(&json(trigger))),
                    );
                }
                for (key, value) in &filter.metadata {
                    let member = format!("{}:{}", json(key), json(value));
                    clause(
                        &mut sql,
                        " AND metadata LIKE $N ESCAPE '!'",
                        format!("%{}%", like_escape(&member)),
                    );
                }
                sql.push_str(&format!(
                    " ORDER BY created_at, app_id || ' ' || id LIMIT ${next}"
                ));
                let mut q: Query = query(sql).bind(&org_id).bind(after_n).bind(after_s);
                for arg in args {
                    q = q.bind(arg);
                }
                let rows = q
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<PipelineRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// A page of a pipeline's versions, newest first.
    pub async fn list_pipeline_versions(
        &self,
        org_id: &str,
        app_id: &str,
        pipeline_id: &str,
        page: &PageRequest,
    ) -> Result<Page<PipelineVersionRow>, StoreError> {
        let (org_id, app_id, pipeline_id) =
            (org_id.to_owned(), app_id.to_owned(), pipeline_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                pipeline_by_id(conn, &org_id, &app_id, &pipeline_id).await?;
                let rows = query(format!(
                    "SELECT seq AS page_n, '' AS page_s, {VERSION_COLUMNS} FROM pipeline_versions \
                     WHERE org_id = $1 AND app_id = $2 AND pipeline_id = $3 AND seq < $4 \
                     ORDER BY seq DESC LIMIT $5"
                ))
                .bind(&org_id)
                .bind(&app_id)
                .bind(&pipeline_id)
                .bind(after_descending(&page))
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<PipelineVersionRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Every pipeline of the organization (all apps) with `trigger` in `on`, each with its
    /// current version: what the artefact trigger matches a new version against.
    pub async fn pipelines_with_trigger(
        &self,
        org_id: &str,
        trigger: &str,
    ) -> Result<Vec<(PipelineRow, PipelineVersionRow)>, StoreError> {
        let org_id = org_id.to_owned();
        let member = format!("%{}%", like_escape(&json(trigger)));
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let rows = query(format!(
                    "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE org_id = $1 \
                     AND trigger_types LIKE $2 ESCAPE '!' ORDER BY created_at, app_id, id"
                ))
                .bind(&org_id)
                .bind(&member)
                .fetch_all::<PipelineRow>(conn)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let version =
                        version_by_id(conn, &org_id, &row.app_id, &row.id, &row.version_id).await?;
                    out.push((row, version));
                }
                Ok(out)
            })
        }))
        .await
    }

    /// Adds a criteria to a pipeline. Conflict when another criteria of the app matches the
    /// same requests.
    pub async fn create_pipeline_criteria(
        &self,
        org_id: &str,
        row: CriteriaRow,
    ) -> Result<CriteriaRow, StoreError> {
        let org_id = org_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                pipeline_by_id(conn, &org_id, &row.app_id, &row.pipeline_id).await?;
                query(
                    "INSERT INTO pipeline_criteria (org_id, app_id, pipeline_id, id, trigger_type, \
                     env_type, match_app_id, env_id, deployment_type, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&org_id)
                .bind(&row.app_id)
                .bind(&row.pipeline_id)
                .bind(&row.id)
                .bind(&row.trigger_type)
                .bind(&row.env_type)
                .bind(&row.match_app_id)
                .bind(&row.env_id)
                .bind(&row.deployment_type)
                .bind(row.created_at)
                .execute(conn)
                .await
                .map_err(|e| {
                    e.conflict_as(|| {
                        "the criteria conflicts with an existing criteria for the same trigger"
                            .to_owned()
                    })
                })?;
                criteria_by_id(conn, &org_id, &row.app_id, Some(&row.pipeline_id), &row.id).await
            })
        }))
        .await
    }

    /// One criteria of a pipeline.
    pub async fn get_pipeline_criteria(
        &self,
        org_id: &str,
        app_id: &str,
        pipeline_id: &str,
        id: &str,
    ) -> Result<CriteriaRow, StoreError> {
        let (org_id, app_id, pipeline_id, id) = (
            org_id.to_owned(),
            app_id.to_owned(),
            pipeline_id.to_owned(),
            id.to_owned(),
        );
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                criteria_by_id(conn, &org_id, &app_id, Some(&pipeline_id), &id).await
            })
        }))
        .await
    }

    /// Deletes one criteria of a pipeline.
    pub async fn delete_pipeline_criteria(
        &self,
        org_id: &str,
        app_id: &str,
        pipeline_id: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, pipeline_id, id) = (
            org_id.to_owned(),
            app_id.to_owned(),
            pipeline_id.to_owned(),
            id.to_owned(),
        );
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let removed = query(
                    "DELETE FROM pipeline_criteria WHERE org_id = $1 AND app_id = $2 \
                     AND pipeline_id = $3 AND id = $4",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&pipeline_id)
                .bind(&id)
                .execute(conn)
                .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!("no pipeline criteria {id}")));
                }
                Ok(())
            })
        }))
        .await
    }

    /// A page of an app's criteria, oldest first, optionally of one pipeline and matching
    /// the given attributes (`env_type`, `app_id`, `env_id`, `deployment_type`).
    pub async fn list_pipeline_criteria(
        &self,
        org_id: &str,
        app_id: &str,
        pipeline_id: Option<&str>,
        matching: &BTreeMap<String, String>,
        page: &PageRequest,
    ) -> Result<Page<CriteriaRow>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        let pipeline_id = pipeline_id.map(str::to_owned);
        let get = |k: &str| matching.get(k).cloned();
        let (env_type, match_app, env_id, deployment_type) = (
            get("env_type"),
            get("app_id"),
            get("env_id"),
            get("deployment_type"),
        );
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                let rows = query(format!(
                    "SELECT c.created_at AS page_n, c.id AS page_s, {} \
                     WHERE c.org_id = $1 AND c.app_id = $2 \
                     AND ($3 IS NULL OR c.pipeline_id = $3) \
                     AND ($4 IS NULL OR c.env_type = $4) AND ($5 IS NULL OR c.match_app_id = $5) \
                     AND ($6 IS NULL OR c.env_id = $6) AND ($7 IS NULL OR c.deployment_type = $7) \
                     AND (c.created_at > $8 OR (c.created_at = $8 AND c.id > $9)) \
                     ORDER BY c.created_at, c.id LIMIT $10",
                    CRITERIA_SELECT.trim_start_matches("SELECT ")
                ))
                .bind(&org_id)
                .bind(&app_id)
                .bind(&pipeline_id)
                .bind(&env_type)
                .bind(&match_app)
                .bind(&env_id)
                .bind(&deployment_type)
                .bind(after_n)
                .bind(after_s)
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<CriteriaRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Every `deployment_request` criteria of an app, oldest first: the caller picks the one
    /// that matches a request (core decides; the store only lists).
    pub async fn deployment_request_criteria(
        &self,
        org_id: &str,
        app_id: &str,
    ) -> Result<Vec<CriteriaRow>, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(format!(
                    "{CRITERIA_SELECT} WHERE c.org_id = $1 AND c.app_id = $2 \
                     AND c.trigger_type = 'deployment_request' ORDER BY c.created_at, c.id"
                ))
                .bind(&org_id)
                .bind(&app_id)
                .fetch_all::<CriteriaRow>(conn)
                .await
            })
        }))
        .await
    }
}

/// A new version id: time-ordered, so ids also sort by creation.
fn new_version_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// JSON text of what the store keeps as JSON, as serde_json writes it (objects sorted by key).
fn json(value: impl Into<JsonText>) -> String {
    value.into().0
}

struct JsonText(String);

impl From<&String> for JsonText {
    fn from(text: &String) -> JsonText {
        JsonText(serde_json::Value::from(text.as_str()).to_string())
    }
}

impl From<&str> for JsonText {
    fn from(text: &str) -> JsonText {
        JsonText(serde_json::Value::from(text).to_string())
    }
}

impl From<&Vec<String>> for JsonText {
    fn from(list: &Vec<String>) -> JsonText {
        JsonText(serde_json::Value::from(list.clone()).to_string())
    }
}

impl From<&BTreeMap<String, String>> for JsonText {
    fn from(map: &BTreeMap<String, String>) -> JsonText {
        let object: serde_json::Map<String, serde_json::Value> = map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().into()))
            .collect();
        JsonText(serde_json::Value::Object(object).to_string())
    }
}

/// Escapes LIKE's wildcards (and the escape character `!`) for `ESCAPE '!'`.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

fn check_etag(current: &PipelineRow, if_match: Option<&str>) -> Result<(), StoreError> {
    match if_match {
        Some(expected) if expected != current.etag => Err(StoreError::Refused(format!(
            "the pipeline's etag is {}, not {expected}",
            current.etag
        ))),
        _ => Ok(()),
    }
}

async fn insert_version(
    conn: &mut Conn<'_>,
    org_id: &str,
    new: &NewPipelineVersion,
    version_id: &str,
    seq: i64,
    now: i64,
) -> Result<(), StoreError> {
    query(format!(
        "INSERT INTO pipeline_versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(org_id)
    .bind(&new.app_id)
    .bind(&new.pipeline_id)
    .bind(version_id)
    .bind(seq)
    .bind(&new.definition)
    .bind(now)
    .bind(&new.created_by)
    .execute(conn)
    .await?;
    Ok(())
}

async fn pair(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    pipeline_id: &str,
    version: Option<&str>,
) -> Result<(PipelineRow, PipelineVersionRow), StoreError> {
    let pipeline = pipeline_by_id(conn, org_id, app_id, pipeline_id).await?;
    let version_id = version.unwrap_or(&pipeline.version_id).to_owned();
    let version = version_by_id(conn, org_id, app_id, pipeline_id, &version_id).await?;
    Ok((pipeline, version))
}

/// Locks a pipeline's row for the rest of the transaction, `NotFound` when it is gone. Run
/// creation and `delete_pipeline` both take it first, so on PostgreSQL they cannot interleave:
/// a run created while a delete is uncommitted waits for it and finds the pipeline gone, and a
/// delete that starts while a run is being created waits for that run and then counts it as
/// unfinished. A no-op on SQLite, whose writes are serial.
pub(crate) async fn lock_pipeline(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    pipeline_id: &str,
) -> Result<(), StoreError> {
    let locked =
        query("UPDATE pipelines SET status = status WHERE org_id = $1 AND app_id = $2 AND id = $3")
            .bind(org_id)
            .bind(app_id)
            .bind(pipeline_id)
            .execute(conn)
            .await?;
    if locked == 0 {
        return Err(StoreError::NotFound(format!("no pipeline {pipeline_id}")));
    }
    Ok(())
}

async fn pipeline_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    pipeline_id: &str,
) -> Result<PipelineRow, StoreError> {
    query(format!(
        "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE org_id = $1 AND app_id = $2 AND id = $3"
    ))
    .bind(org_id)
    .bind(app_id)
    .bind(pipeline_id)
    .fetch_optional::<PipelineRow>(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("no pipeline {pipeline_id}")))
}

async fn version_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    pipeline_id: &str,
    version_id: &str,
) -> Result<PipelineVersionRow, StoreError> {
    query(format!(
        "SELECT {VERSION_COLUMNS} FROM pipeline_versions WHERE org_id = $1 AND app_id = $2 \
         AND pipeline_id = $3 AND id = $4"
    ))
    .bind(org_id)
    .bind(app_id)
    .bind(pipeline_id)
    .bind(version_id)
    .fetch_optional::<PipelineVersionRow>(conn)
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!("no version {version_id} of pipeline {pipeline_id}"))
    })
}

async fn criteria_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    pipeline_id: Option<&str>,
    id: &str,
) -> Result<CriteriaRow, StoreError> {
    query(format!(
        "{CRITERIA_SELECT} WHERE c.org_id = $1 AND c.app_id = $2 \
         AND ($3 IS NULL OR c.pipeline_id = $3) AND c.id = $4"
    ))
    .bind(org_id)
    .bind(app_id)
    .bind(pipeline_id)
    .bind(id)
    .fetch_optional::<CriteriaRow>(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("no pipeline criteria {id}")))
}
