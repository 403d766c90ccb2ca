//! Artefacts and artefact versions.
//!
//! An artefact is created by its first version. A version is identified by its artefact and
//! its (version, digest, ref, commit, content hash): posting the same again returns the stored
//! record, while a moved tag (same version, new digest) is a new, newer record.

use gangplank_core::page::{Page, PageRequest};

use crate::conn::Conn;
use crate::page::{Keyed, after_ascending, after_descending, into_page};
use crate::sql::{query, row_struct};
use crate::webhooks::{Event, enqueue_event};
use crate::{Store, StoreError};

/// An artefact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtefactRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
}
row_struct!(ArtefactRow {
    id,
    name,
    kind,
    created_at,
    created_by,
    updated_at,
    updated_by
});

/// An artefact version, with its artefact's name and type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtefactVersionRow {
    pub id: String,
    pub artefact_id: String,
    pub name: String,
    pub kind: String,
    pub version: String,
    pub git_ref: String,
    pub commit_sha: String,
    pub digest: String,
    pub archived: bool,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
    /// Digest resolution: '' (nothing to resolve), 'pending', 'retrying' or 'resolved'.
    pub digest_status: String,
    /// Why the last resolution attempt failed.
    pub digest_error: String,
}
row_struct!(ArtefactVersionRow {
    id,
    artefact_id,
    name,
    kind,
    version,
    git_ref,
    commit_sha,
    digest,
    archived,
    created_at,
    created_by,
    updated_at,
    updated_by,
    digest_status,
    digest_error
});

/// A version to record. `new_artefact_id` is used only if the artefact does not exist yet.
#[derive(Debug, Clone)]
pub struct NewArtefactVersion {
    pub org_id: String,
    pub id: String,
    pub new_artefact_id: String,
    pub name: String,
    pub kind: String,
    pub version: String,
    pub git_ref: String,
    pub commit_sha: String,
    pub digest: String,
    /// A hash of the workload spec and options; empty for containers.
    pub content_hash: String,
    /// The workload document (JSON text) served by `/workload-spec`.
    pub spec: Option<String>,
    pub created_by: String,
}

/// Background work a newly recorded version queued, so the caller wakes only what has work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FollowUp {
    /// Automation has a version to judge.
    pub automation: bool,
    /// Webhook deliveries were queued.
    pub deliveries: bool,
    /// The version's digest is to be resolved from its registry.
    pub resolve_digest: bool,
}

/// Whether a version was recorded now or already existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionOutcome {
    Created(ArtefactVersionRow, FollowUp),
    Existing(ArtefactVersionRow),
}

/// Filters for listing versions; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct VersionFilter {
    pub artefact_id: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub version: Option<String>,
    pub digest: Option<String>,
    /// Include archived versions too.
    pub include_archived: bool,
}

const VERSION_COLUMNS: &str = "SELECT v.seq AS page_n, '' AS page_s, v.id, v.artefact_id, a.name, a.kind, v.version, v.git_ref, \
     v.commit_sha, CASE WHEN v.digest = '' THEN v.resolved_digest ELSE v.digest END AS digest, \
     v.archived, v.created_at, v.created_by, v.updated_at, v.updated_by, v.digest_status, \
     v.digest_error FROM artefact_versions v JOIN artefacts a ON a.id = v.artefact_id";

const ARTEFACT_FIELDS: &str = "id, name, kind, created_at, created_by, updated_at, updated_by";

impl Store {
    /// Records a version (creating its artefact on first use), or returns the identical one.
    pub async fn record_artefact_version(
        &self,
        new: NewArtefactVersion,
    ) -> Result<VersionOutcome, StoreError> {
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move { record_version(conn, new, now).await })
        }))
        .await
    }

    /// A page of the versions in `org_id` matching `filter`, newest first.
    pub async fn list_artefact_versions(
        &self,
        org_id: &str,
        filter: VersionFilter,
        page: &PageRequest,
    ) -> Result<Page<ArtefactVersionRow>, StoreError> {
        let org_id = org_id.to_owned();
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                // The optional filters stay `$n IS NULL OR …`, so the planner walks
                // `artefact_versions_by_org` in `seq` order from the cursor and stops after a
                // page; a walk over all pages reads each version once.
                let sql = format!(
                    "{VERSION_COLUMNS} WHERE v.org_id = $1 AND ($2 IS NULL OR v.artefact_id = $2) \
                     AND ($3 IS NULL OR a.name = $3) AND ($4 IS NULL OR a.kind = $4) \
                     AND ($5 IS NULL OR v.version = $5) AND ($6 IS NULL OR v.digest = $6) \
                     AND ($7 OR NOT v.archived) AND v.seq < $8 ORDER BY v.seq DESC LIMIT $9"
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&filter.artefact_id)
                    .bind(&filter.name)
                    .bind(&filter.kind)
                    .bind(&filter.version)
                    .bind(&filter.digest)
                    .bind(filter.include_archived)
                    .bind(after_descending(&page))
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<ArtefactVersionRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One version.
    pub async fn get_artefact_version(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<ArtefactVersionRow>, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { version_by_id(conn, &org_id, &id).await })
        }))
        .await
    }

    /// The stored workload document of a version (JSON text), if it has one.
    pub async fn get_workload_spec(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let spec =
                    query("SELECT spec FROM artefact_versions WHERE org_id = $1 AND id = $2")
                        .bind(&org_id)
                        .bind(&id)
                        .fetch_optional::<Option<String>>(conn)
                        .await?;
                Ok(spec.flatten())
            })
        }))
        .await
    }

    /// Archives or unarchives a version of artefact `artefact_id`.
    pub async fn set_version_archived(
        &self,
        org_id: &str,
        artefact_id: &str,
        version_id: &str,
        archived: bool,
        updated_by: &str,
    ) -> Result<ArtefactVersionRow, StoreError> {
        let (org_id, artefact_id, version_id, updated_by) = (
            org_id.to_owned(),
            artefact_id.to_owned(),
            version_id.to_owned(),
            updated_by.to_owned(),
        );
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let changed = query(
                    "UPDATE artefact_versions SET archived = $4, updated_at = $5, updated_by = $6 \
                     WHERE org_id = $1 AND artefact_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&artefact_id)
                .bind(&version_id)
                .bind(archived)
                .bind(now)
                .bind(&updated_by)
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!(
                        "no version {version_id} of artefact {artefact_id}"
                    )));
                }
                version_by_id(conn, &org_id, &version_id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no version {version_id}")))
            })
        }))
        .await
    }

    /// A page of the artefacts in `org_id`, optionally filtered by type and name, oldest
    /// first.
    pub async fn list_artefacts(
        &self,
        org_id: &str,
        kind: Option<&str>,
        name: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ArtefactRow>, StoreError> {
        let (org_id, kind, name) = (
            org_id.to_owned(),
            kind.map(str::to_owned),
            name.map(str::to_owned),
        );
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                let sql = format!(
                    "SELECT created_at AS page_n, name AS page_s, {ARTEFACT_FIELDS} FROM artefacts \
                     WHERE org_id = $1 AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR name = $3) \
                     AND (created_at, name) > ($4, $5) ORDER BY created_at, name LIMIT $6"
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&kind)
                    .bind(&name)
                    .bind(after_n)
                    .bind(after_s)
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<ArtefactRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// One artefact.
    pub async fn get_artefact(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<ArtefactRow>, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {ARTEFACT_FIELDS} FROM artefacts WHERE org_id = $1 AND id = $2"
                );
                query(sql)
                    .bind(&org_id)
                    .bind(&id)
                    .fetch_optional::<ArtefactRow>(conn)
                    .await
            })
        }))
        .await
    }

    /// Deletes an artefact and all its versions.
    pub async fn delete_artefact(&self, org_id: &str, id: &str) -> Result<(), StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let removed = query("DELETE FROM artefacts WHERE org_id = $1 AND id = $2")
                    .bind(&org_id)
                    .bind(&id)
                    .execute(conn)
                    .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!("no artefact {id}")));
                }
                Ok(())
            })
        }))
        .await
    }
}

pub(crate) async fn version_by_id(
    conn: &mut Conn<'_>,
    org_id: &str,
    id: &str,
) -> Result<Option<ArtefactVersionRow>, StoreError> {
    let sql = format!("{VERSION_COLUMNS} WHERE v.org_id = $1 AND v.id = $2");
    query(sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional::<ArtefactVersionRow>(conn)
        .await
}

async fn record_version(
    conn: &mut Conn<'_>,
    new: NewArtefactVersion,
    now: i64,
) -> Result<VersionOutcome, StoreError> {
    let existing = query("SELECT id, kind FROM artefacts WHERE org_id = $1 AND name = $2")
        .bind(&new.org_id)
        .bind(&new.name)
        .fetch_optional::<(String, String)>(conn)
        .await?;
    let artefact_id = match existing {
        Some((_, kind)) if kind != new.kind => {
            return Err(StoreError::Conflict(format!(
                "artefact {} exists with type {kind}",
                new.name
            )));
        }
        Some((id, _)) => id,
        None => {
            query(
                "INSERT INTO artefacts (id, org_id, name, kind, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $5, $6)"
            )
            .bind(&new.new_artefact_id)
            .bind(&new.org_id)
            .bind(&new.name)
            .bind(&new.kind)
            .bind(now)
            .bind(&new.created_by)
            .execute(conn)
            .await?;
            new.new_artefact_id.clone()
        }
    };
    let inserted = query(
        "INSERT INTO artefact_versions (id, org_id, artefact_id, version, git_ref, commit_sha, digest, \
         content_hash, archived, spec, created_at, created_by, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9, $10, $11, $10, $11) \
         ON CONFLICT (artefact_id, version, digest, git_ref, commit_sha, content_hash) DO NOTHING RETURNING id"
    )
    .bind(&new.id)
    .bind(&new.org_id)
    .bind(&artefact_id)
    .bind(&new.version)
    .bind(&new.git_ref)
    .bind(&new.commit_sha)
    .bind(&new.digest)
    .bind(&new.content_hash)
    .bind(&new.spec)
    .bind(now)
    .bind(&new.created_by)
    .fetch_optional::<String>(conn)
    .await?;
    match inserted {
        Some(id) => {
            query("UPDATE artefacts SET updated_at = $2, updated_by = $3 WHERE id = $1")
                .bind(&artefact_id)
                .bind(now)
                .bind(&new.created_by)
                .execute(conn)
                .await?;
            let mut follow_up = FollowUp::default();
            // Durable hand-off to automation, committed with the version itself; only when
            // the organization has a rule (containers only: rules deploy images) or a pipeline
            // with an artefact trigger, since both judge only versions that arrive after them.
            let rules = if new.kind == "container" {
                "EXISTS (SELECT 1 FROM rules WHERE org_id = $1) OR "
            } else {
                ""
            };
            let queued = query(format!(
                "INSERT INTO automation_inbox (org_id, version_id, created_at) \
                 SELECT $1, $2, $3 WHERE {rules}EXISTS (SELECT 1 FROM pipelines \
                 WHERE org_id = $1 AND trigger_types LIKE '%\"artefact\"%')",
            ))
            .bind(&new.org_id)
            .bind(&id)
            .bind(now)
            .execute(conn)
            .await?;
            follow_up.automation = queued > 0;
            // A container version without a digest, for a registry Gangplank knows, gets its
            // tag resolved in the background (and by automation before it judges).
            if new.kind == "container" && new.digest.is_empty() && !new.version.is_empty() {
                let prefixes = query("SELECT registry FROM registries WHERE org_id = $1")
                    .bind(&new.org_id)
                    .fetch_all::<String>(conn)
                    .await?;
                let image = format!("{}:{}", new.name, new.version);
                if gangplank_core::registry::longest_prefix_match(&image, &prefixes).is_some() {
                    query("UPDATE artefact_versions SET digest_status = 'pending' WHERE id = $1")
                        .bind(&id)
                        .execute(conn)
                        .await?;
                    follow_up.resolve_digest = true;
                }
            }
            // Every column is known here; reading the row back would cost the single writer a
            // statement per version.
            let row = ArtefactVersionRow {
                id,
                artefact_id,
                name: new.name,
                kind: new.kind,
                version: new.version,
                git_ref: new.git_ref,
                commit_sha: new.commit_sha,
                digest: new.digest,
                archived: false,
                created_at: now,
                created_by: new.created_by.clone(),
                updated_at: now,
                updated_by: new.created_by,
                digest_status: if follow_up.resolve_digest {
                    "pending"
                } else {
                    ""
                }
                .to_owned(),
                digest_error: String::new(),
            };
            let queued = enqueue_event(conn, &version_event(&new.org_id, &row, now), now).await?;
            follow_up.deliveries = queued > 0;
            Ok(VersionOutcome::Created(row, follow_up))
        }
        None => {
            let sql = format!(
                "{VERSION_COLUMNS} WHERE v.artefact_id = $1 AND v.version = $2 AND v.digest = $3 \
                 AND v.git_ref = $4 AND v.commit_sha = $5 AND v.content_hash = $6"
            );
            let row = query(sql)
                .bind(&artefact_id)
                .bind(&new.version)
                .bind(&new.digest)
                .bind(&new.git_ref)
                .bind(&new.commit_sha)
                .bind(&new.content_hash)
                .fetch_one::<ArtefactVersionRow>(conn)
                .await?;
            Ok(VersionOutcome::Existing(row))
        }
    }
}

/// The `artefact-version.created` event, heard by every app's webhooks that subscribe to it.
fn version_event(org_id: &str, row: &ArtefactVersionRow, now: i64) -> Event {
    Event::new(
        org_id,
        None,
        ("artefact-version", "created"),
        &row.created_by,
        now,
        &[
            ("artefact_id", row.artefact_id.as_str()),
            ("artefact_version_id", row.id.as_str()),
            ("name", row.name.as_str()),
            ("version", row.version.as_str()),
            ("ref", row.git_ref.as_str()),
            ("commit", row.commit_sha.as_str()),
            ("digest", row.digest.as_str()),
            ("type", row.kind.as_str()),
        ],
    )
}
