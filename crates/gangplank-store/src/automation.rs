//! Automation: rules, the inbox of registered container versions, the per-environment batches
//! waiting for their debounce window, and the decision log that explains every outcome.

use std::collections::BTreeMap;

use gangplank_core::automation::{RESUMED, deployed_reason, resumed_reason, same_artefact};
use gangplank_core::page::{Page, PageRequest};

use crate::ArtefactVersionRow;
use crate::conn::Conn;
use crate::deploys::{NewDeploy, insert_deploy, set_by_id};
use crate::page::{Keyed, after_ascending, after_descending, into_page};
use crate::sql::{query, row_struct};
use crate::webhooks::{Event, enqueue_event};
use crate::{Store, StoreError};

/// A stored rule. `artefacts_filter` is a JSON array; `version_policy` JSON or empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub id: String,
    pub env_id: String,
    pub active: bool,
    pub artefacts_filter: String,
    pub exclude_artefacts_filter: bool,
    pub match_ref: String,
    pub legacy_match: String,
    pub update_to: String,
    pub version_policy: String,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}
row_struct!(RuleRow {
    id,
    env_id,
    active,
    artefacts_filter,
    exclude_artefacts_filter,
    match_ref,
    legacy_match,
    update_to,
    version_policy,
    created_at,
    created_by,
    updated_at
});

/// A registered container version waiting to be judged, or an environment's held versions
/// to re-evaluate after `resume`.
#[derive(Debug, Clone)]
pub struct InboxItem {
    pub seq: i64,
    pub org_id: String,
    /// Registration order of the version.
    pub version_seq: i64,
    pub version: ArtefactVersionRow,
    /// Set on the row `resume` wrote: no version of its own, see [`Store::held_versions`].
    pub resumed: Option<ResumedEnv>,
}

struct InboxRow {
    seq: i64,
    org_id: String,
    version_id: String,
    app_id: String,
    env_id: String,
    log_after: i64,
    log_until: i64,
}
row_struct!(InboxRow {
    seq,
    org_id,
    version_id,
    app_id,
    env_id,
    log_after,
    log_until
});

/// The environment `resume` re-evaluates, and the span (`log_after`, `log_until`] of its
/// automation log whose held skips it re-evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumedEnv {
    pub app_id: String,
    pub env_id: String,
    pub log_after: i64,
    pub log_until: i64,
}

/// An environment a version may concern, with what judging needs.
#[derive(Debug, Clone)]
pub struct EnvContext {
    pub app_id: String,
    pub env_id: String,
    pub held: bool,
    /// The current set runs an image of the version's repository.
    pub uses_image: bool,
    /// The set the next deployment starts from (JSON), empty before the first deployment.
    pub set_content: String,
    pub rules: Vec<RuleRow>,
}

/// One decision to log.
#[derive(Debug, Clone)]
pub struct LoggedDecision {
    pub app_id: String,
    pub env_id: String,
    pub rule_id: String,
    /// `queued` (waiting for the debounce window) or `skipped`.
    pub queued: bool,
    pub code: String,
    pub reason: String,
    /// The version decided about, when it is not the inbox item's own (after `resume`).
    pub version: Option<ArtefactVersionRow>,
}

/// A version waiting in an environment's batch.
#[derive(Debug, Clone)]
pub struct PendingItem {
    pub seq: i64,
    pub log_seq: i64,
    pub rule_id: String,
    pub name: String,
    pub version: String,
    pub digest: String,
    /// The code its log line was queued with (`queued`, or `resumed` after a resume).
    pub log_code: String,
}
row_struct!(PendingItem {
    seq,
    log_seq,
    rule_id,
    name,
    version,
    digest,
    log_code
});

/// An environment's batch with what deploying it needs.
#[derive(Debug, Clone)]
pub struct Batch {
    pub items: Vec<PendingItem>,
    pub held: bool,
    pub from_deploy_id: String,
    pub set_content: String,
}

/// One line of an environment's automation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub version_id: String,
    pub artefact_name: String,
    pub version: String,
    pub rule_id: String,
    pub outcome: String,
    pub code: String,
    pub reason: String,
    pub deploy_id: String,
    pub created_at: i64,
    /// The status of deployment `deploy_id` now; empty without one (or once it is gone).
    pub deploy_status: String,
    /// Its first error's code and summary, empty when it reported none.
    pub error_code: String,
    pub error_summary: String,
}
row_struct!(LogRow {
    version_id,
    artefact_name,
    version,
    rule_id,
    outcome,
    code,
    reason,
    deploy_id,
    created_at,
    deploy_status,
    error_code,
    error_summary
});

const RULE_COLUMNS: &str = "SELECT created_at AS page_n, id AS page_s, id, env_id, active, artefacts_filter, exclude_artefacts_filter, \
     match_ref, legacy_match, update_to, version_policy, created_at, created_by, updated_at FROM rules";

impl Store {
    /// Creates a rule; `row.id` is fresh.
    pub async fn create_rule(
        &self,
        org_id: &str,
        app_id: &str,
        row: RuleRow,
    ) -> Result<RuleRow, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "INSERT INTO rules (org_id, app_id, env_id, id, active, artefacts_filter, \
                     exclude_artefacts_filter, match_ref, legacy_match, update_to, version_policy, \
                     created_at, created_by, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&row.env_id)
                .bind(&row.id)
                .bind(row.active)
                .bind(&row.artefacts_filter)
                .bind(row.exclude_artefacts_filter)
                .bind(&row.match_ref)
                .bind(&row.legacy_match)
                .bind(&row.update_to)
                .bind(&row.version_policy)
                .bind(row.created_at)
                .bind(&row.created_by)
                .bind(row.updated_at)
                .execute(conn)
                .await?;
                Ok(row)
            })
        }))
        .await
    }

    /// The rules of an environment, oldest first (the order they are tried in).
    pub async fn list_rules(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
    ) -> Result<Vec<RuleRow>, StoreError> {
        let (org_id, app_id, env_id) = (org_id.to_owned(), app_id.to_owned(), env_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move { rules_of(conn, &org_id, &app_id, &env_id).await })
        }))
        .await
    }

    /// A page of the rules of an environment, oldest first (the order they are tried in).
    pub async fn list_rules_page(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        page: &PageRequest,
    ) -> Result<Page<RuleRow>, StoreError> {
        let (org_id, app_id, env_id) = (org_id.to_owned(), app_id.to_owned(), env_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let (after_n, after_s) = after_ascending(&page);
                let sql = format!(
                    "{RULE_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND env_id = $3 \
                     AND (created_at, id) > ($4, $5) ORDER BY created_at, id LIMIT $6"
                );
                let rows = query(sql)
                    .bind(&org_id)
                    .bind(&app_id)
                    .bind(&env_id)
                    .bind(after_n)
                    .bind(after_s)
                    .bind(page.fetch_limit())
                    .fetch_all::<Keyed<RuleRow>>(conn)
                    .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }

    /// Replaces a rule's fields (not its ID or creation).
    pub async fn replace_rule(
        &self,
        org_id: &str,
        app_id: &str,
        row: RuleRow,
    ) -> Result<RuleRow, StoreError> {
        let (org_id, app_id) = (org_id.to_owned(), app_id.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let changed = query(
                    "UPDATE rules SET active = $5, artefacts_filter = $6, exclude_artefacts_filter = $7, \
                     match_ref = $8, legacy_match = $9, update_to = $10, version_policy = $11, updated_at = $12 \
                     WHERE org_id = $1 AND app_id = $2 AND env_id = $3 AND id = $4"
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&row.env_id)
                .bind(&row.id)
                .bind(row.active)
                .bind(&row.artefacts_filter)
                .bind(row.exclude_artefacts_filter)
                .bind(&row.match_ref)
                .bind(&row.legacy_match)
                .bind(&row.update_to)
                .bind(&row.version_policy)
                .bind(row.updated_at)
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("no rule {}", row.id)));
                }
                let rules = rules_of(conn, &org_id, &app_id, &row.env_id).await?;
                rules
                    .into_iter()
                    .find(|r| r.id == row.id)
                    .ok_or_else(|| StoreError::NotFound(format!("no rule {}", row.id)))
            })
        }))
        .await
    }

    /// Deletes a rule.
    pub async fn delete_rule(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let (org_id, app_id, env_id, id) = (
            org_id.to_owned(),
            app_id.to_owned(),
            env_id.to_owned(),
            id.to_owned(),
        );
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let removed = query(
                    "DELETE FROM rules WHERE org_id = $1 AND app_id = $2 AND env_id = $3 AND id = $4"
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&env_id)
                .bind(&id)
                .execute(conn)
                .await?;
                if removed == 0 {
                    return Err(StoreError::NotFound(format!("no rule {id}")));
                }
                Ok(())
            })
        }))
        .await
    }

    /// The oldest registered versions not yet judged.
    pub async fn take_inbox(&self, limit: i64) -> Result<Vec<InboxItem>, StoreError> {
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let rows = query(
                    "SELECT seq, org_id, version_id, app_id, env_id, log_after, log_until \
                     FROM automation_inbox ORDER BY seq LIMIT $1",
                )
                .bind(limit)
                .fetch_all::<InboxRow>(conn)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let InboxRow {
                        seq,
                        org_id,
                        version_id,
                        app_id,
                        env_id,
                        log_after,
                        log_until,
                    } = row;
                    if !env_id.is_empty() {
                        out.push(InboxItem {
                            seq,
                            org_id,
                            version_seq: -1,
                            version: ArtefactVersionRow::default(),
                            resumed: Some(ResumedEnv {
                                app_id,
                                env_id,
                                log_after,
                                log_until,
                            }),
                        });
                        continue;
                    }
                    let version =
                        crate::artefacts::version_by_id(conn, &org_id, &version_id).await?;
                    let version_seq = query("SELECT seq FROM artefact_versions WHERE id = $1")
                        .bind(&version_id)
                        .fetch_optional::<i64>(conn)
                        .await?;
                    if let (Some(version), Some(version_seq)) = (version, version_seq) {
                        out.push(InboxItem {
                            seq,
                            org_id,
                            version_seq,
                            version,
                            resumed: None,
                        });
                    } else {
                        // The artefact was deleted meanwhile: judge nothing, but still drain.
                        out.push(InboxItem {
                            seq,
                            org_id,
                            version_seq: -1,
                            version: ArtefactVersionRow::default(),
                            resumed: None,
                        });
                    }
                }
                Ok(out)
            })
        }))
        .await
    }

    /// The environments a version of `name` (normalised `repository`) may concern: those whose
    /// set runs the repository, and those with a rule whose include filter names it.
    pub async fn automation_context(
        &self,
        org_id: &str,
        repository: &str,
        name: &str,
    ) -> Result<Vec<EnvContext>, StoreError> {
        let (org_id, repository, name) =
            (org_id.to_owned(), repository.to_owned(), name.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let mut envs: BTreeMap<(String, String), bool> = BTreeMap::new();
                let using = query(
                    "SELECT app_id, env_id FROM env_images WHERE org_id = $1 AND repository = $2",
                )
                .bind(&org_id)
                .bind(&repository)
                .fetch_all::<(String, String)>(conn)
                .await?;
                for key in using {
                    envs.insert(key, true);
                }
                let filtered = query(
                    "SELECT app_id, env_id, artefacts_filter FROM rules WHERE org_id = $1 \
                     AND NOT exclude_artefacts_filter AND artefacts_filter <> '[]'",
                )
                .bind(&org_id)
                .fetch_all::<(String, String, String)>(conn)
                .await?;
                for (app_id, env_id, filter) in filtered {
                    let names: Vec<String> = serde_json::from_str(&filter).unwrap_or_default();
                    if names.iter().any(|n| same_artefact(n, &name)) {
                        envs.entry((app_id, env_id)).or_insert(false);
                    }
                }
                let mut out = Vec::with_capacity(envs.len());
                for ((app_id, env_id), uses_image) in envs {
                    let rules = rules_of(conn, &org_id, &app_id, &env_id).await?;
                    if rules.is_empty() {
                        continue;
                    }
                    let (held, set_content) = env_base(conn, &org_id, &app_id, &env_id).await?;
                    out.push(EnvContext {
                        app_id,
                        env_id,
                        held,
                        uses_image,
                        set_content,
                        rules,
                    });
                }
                Ok(out)
            })
        }))
        .await
    }

    /// The versions an environment's log skipped as `held` in the span (`log_after`,
    /// `log_until`], each once, with their registration order, oldest first. Versions deleted
    /// since are left out.
    pub async fn held_versions(
        &self,
        org_id: &str,
        resumed: &ResumedEnv,
    ) -> Result<Vec<(i64, ArtefactVersionRow)>, StoreError> {
        let (org_id, resumed) = (org_id.to_owned(), resumed.clone());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let ids = query(
                    "SELECT v.seq, v.id FROM artefact_versions v WHERE v.id IN \
                     (SELECT l.version_id FROM automation_log l WHERE l.org_id = $1 AND l.app_id = $2 \
                      AND l.env_id = $3 AND l.code = 'held' AND l.seq > $4 AND l.seq <= $5) \
                     ORDER BY v.seq",
                )
                .bind(&org_id)
                .bind(&resumed.app_id)
                .bind(&resumed.env_id)
                .bind(resumed.log_after)
                .bind(resumed.log_until)
                .fetch_all::<(i64, String)>(conn)
                .await?;
                let mut out = Vec::with_capacity(ids.len());
                for (seq, id) in ids {
                    if let Some(version) =
                        crate::artefacts::version_by_id(conn, &org_id, &id).await?
                    {
                        out.push((seq, version));
                    }
                }
                Ok(out)
            })
        }))
        .await
    }

    /// The newest registered version of artefact `name` among `images` (tag, digest) that an
    /// environment runs, as (registration order, version).
    pub async fn running_version(
        &self,
        org_id: &str,
        name: &str,
        images: Vec<(String, String)>,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let (org_id, name) = (org_id.to_owned(), name.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let mut best: Option<(i64, String)> = None;
                for (tag, digest) in images {
                    let found = query(
                        "SELECT v.seq, v.version FROM artefact_versions v JOIN artefacts a ON a.id = v.artefact_id \
                         WHERE a.org_id = $1 AND a.name = $2 AND (($3 <> '' AND (v.digest = $3 OR v.resolved_digest = $3)) OR ($3 = '' AND v.version = $4)) \
                         ORDER BY v.seq DESC LIMIT 1"
                    )
                    .bind(&org_id)
                    .bind(&name)
                    .bind(&digest)
                    .bind(&tag)
                    .fetch_optional::<(i64, String)>(conn)
                    .await?;
                    if let Some(found) = found
                        && best.as_ref().is_none_or(|b| found.0 > b.0)
                    {
                        best = Some(found);
                    }
                }
                Ok(best)
            })
        }))
        .await
    }

    /// Logs the decisions for one inbox item, queues the accepted versions in their
    /// environments' batches, queues `automation.skipped` deliveries, and drains the item.
    pub async fn record_decisions(
        &self,
        judged: Vec<(InboxItem, Vec<LoggedDecision>)>,
    ) -> Result<(), StoreError> {
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                for (item, decisions) in judged {
                    record_one(conn, item, decisions, now).await?;
                }
                Ok(())
            })
        }))
        .await
    }

    /// Environments whose batch is due at `now` and that have no active deployment.
    pub async fn due_batches(
        &self,
        now: i64,
        debounce_ms: i64,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                query(
                    "SELECT p.org_id, p.app_id, p.env_id FROM automation_pending p \
                     GROUP BY p.org_id, p.app_id, p.env_id HAVING MIN(p.arrived_at) <= $1 \
                     AND NOT EXISTS (SELECT 1 FROM deploys d WHERE d.org_id = p.org_id AND d.app_id = p.app_id \
                       AND d.env_id = p.env_id AND d.status IN ('pending', 'in progress'))"
                )
                .bind(now - debounce_ms)
                .fetch_all::<(String, String, String)>(conn)
                .await
            })
        }))
        .await
    }

    /// When the next batch's window closes, if any batch waits.
    pub async fn next_batch_due(&self, debounce_ms: i64) -> Result<Option<i64>, StoreError> {
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                // Batches behind an active deployment are not due: the deployment's end wakes
                // automation, so waiting on them here would only spin.
                let first = query(
                    "SELECT MIN(p.arrived_at) FROM automation_pending p WHERE NOT EXISTS \
                     (SELECT 1 FROM deploys d WHERE d.org_id = p.org_id AND d.app_id = p.app_id \
                      AND d.env_id = p.env_id AND d.status IN ('pending', 'in progress'))",
                )
                .fetch_one::<Option<i64>>(conn)
                .await?;
                Ok(first.map(|at| at + debounce_ms))
            })
        }))
        .await
    }

    /// An environment's batch, in order of arrival.
    pub async fn pending_batch(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
    ) -> Result<Batch, StoreError> {
        let (org_id, app_id, env_id) = (org_id.to_owned(), app_id.to_owned(), env_id.to_owned());
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                let items = query(
                    "SELECT p.seq, p.log_seq, p.rule_id, a.name, v.version, \
                     CASE WHEN v.digest = '' THEN v.resolved_digest ELSE v.digest END AS digest, \
                     COALESCE((SELECT l.code FROM automation_log l WHERE l.seq = p.log_seq), '') AS log_code \
                     FROM automation_pending p JOIN artefact_versions v ON v.id = p.version_id \
                     JOIN artefacts a ON a.id = v.artefact_id \
                     WHERE p.org_id = $1 AND p.app_id = $2 AND p.env_id = $3 ORDER BY p.seq",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&env_id)
                .fetch_all::<PendingItem>(conn)
                .await?;
                let from_deploy_id = query(
                    "SELECT from_deploy_id FROM envs WHERE org_id = $1 AND app_id = $2 AND id = $3",
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&env_id)
                .fetch_optional::<String>(conn)
                .await?
                .unwrap_or_default();
                let (held, set_content) = env_base(conn, &org_id, &app_id, &env_id).await?;
                Ok(Batch {
                    items,
                    held,
                    from_deploy_id,
                    set_content,
                })
            })
        }))
        .await
    }

    /// Deploys a batch: creates the deployment, drains the batch, and marks its log lines.
    pub async fn deploy_batch(
        &self,
        new: NewDeploy,
        items: Vec<PendingItem>,
    ) -> Result<(), StoreError> {
        let now = crate::now_millis();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let deploy = insert_deploy(conn, &new, now).await?;
                let reason = deployed_reason(&deploy.id, items.len());
                settle(conn, &items, "deployed", "deployed", &reason, &deploy.id).await
            })
        }))
        .await
    }

    /// Drops a batch that will not deploy, logging why.
    pub async fn discard_batch(
        &self,
        items: Vec<PendingItem>,
        code: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let (code, reason) = (code.to_owned(), reason.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move { settle(conn, &items, "skipped", &code, &reason, "").await })
        }))
        .await
    }

    /// A page of an environment's automation log, newest first.
    pub async fn automation_log(
        &self,
        org_id: &str,
        app_id: &str,
        env_id: &str,
        page: &PageRequest,
    ) -> Result<Page<LogRow>, StoreError> {
        let (org_id, app_id, env_id) = (org_id.to_owned(), app_id.to_owned(), env_id.to_owned());
        let page = page.clone();
        self.read(Box::new(move |conn| {
            Box::pin(async move {
                // With the status and first error of the deployment each version went into,
                // so that the log can say how it ended.
                let rows = query(
                    "SELECT l.seq AS page_n, '' AS page_s, l.version_id, l.artefact_name, l.version, \
                     l.rule_id, l.outcome, l.code, l.reason, l.deploy_id, l.created_at, \
                     COALESCE(d.status, '') AS deploy_status, COALESCE(e.code, '') AS error_code, \
                     COALESCE(e.summary, '') AS error_summary FROM automation_log l \
                     LEFT JOIN deploys d ON l.deploy_id <> '' AND d.org_id = l.org_id \
                       AND d.app_id = l.app_id AND d.id = l.deploy_id \
                     LEFT JOIN deploy_errors e ON e.org_id = d.org_id AND e.app_id = d.app_id \
                       AND e.deploy_id = d.id AND e.n = (SELECT MIN(f.n) FROM deploy_errors f \
                         WHERE f.org_id = d.org_id AND f.app_id = d.app_id AND f.deploy_id = d.id) \
                     WHERE l.org_id = $1 AND l.app_id = $2 AND l.env_id = $3 AND l.seq < $4 \
                     ORDER BY l.seq DESC LIMIT $5"
                )
                .bind(&org_id)
                .bind(&app_id)
                .bind(&env_id)
                .bind(after_descending(&page))
                .bind(page.fetch_limit())
                .fetch_all::<Keyed<LogRow>>(conn)
                .await?;
                Ok(into_page(rows, &page))
            })
        }))
        .await
    }
}

async fn rules_of(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    env_id: &str,
) -> Result<Vec<RuleRow>, StoreError> {
    let sql = format!(
        "{RULE_COLUMNS} WHERE org_id = $1 AND app_id = $2 AND env_id = $3 ORDER BY created_at, id"
    );
    query(sql)
        .bind(org_id)
        .bind(app_id)
        .bind(env_id)
        .fetch_all::<RuleRow>(conn)
        .await
}

/// Whether automation is held in an environment, and the set its next deployment starts from.
async fn env_base(
    conn: &mut Conn<'_>,
    org_id: &str,
    app_id: &str,
    env_id: &str,
) -> Result<(bool, String), StoreError> {
    let row = query(
        "SELECT e.automation_held_at, COALESCE(d.set_id, '') FROM envs e \
         LEFT JOIN deploys d ON d.org_id = e.org_id AND d.app_id = e.app_id AND d.id = e.from_deploy_id \
         WHERE e.org_id = $1 AND e.app_id = $2 AND e.id = $3"
    )
    .bind(org_id)
    .bind(app_id)
    .bind(env_id)
    .fetch_optional::<(i64, String)>(conn)
    .await?;
    let Some((held_at, set_id)) = row else {
        return Ok((false, String::new()));
    };
    let content = if set_id.is_empty() {
        String::new()
    } else {
        set_by_id(conn, org_id, app_id, &set_id)
            .await?
            .unwrap_or_default()
    };
    Ok((held_at != 0, content))
}

async fn settle(
    conn: &mut Conn<'_>,
    items: &[PendingItem],
    outcome: &str,
    code: &str,
    reason: &str,
    deploy_id: &str,
) -> Result<(), StoreError> {
    for item in items {
        query("DELETE FROM automation_pending WHERE seq = $1")
            .bind(item.seq)
            .execute(conn)
            .await?;
        // A version `resume` queued keeps saying so once it is deployed or dropped.
        let reason = if item.log_code == RESUMED {
            resumed_reason(reason)
        } else {
            reason.to_owned()
        };
        query(
            "UPDATE automation_log SET outcome = $2, code = $3, reason = $4, deploy_id = $5 WHERE seq = $1"
        )
        .bind(item.log_seq)
        .bind(outcome)
        .bind(code)
        .bind(&reason)
        .bind(deploy_id)
        .execute(conn)
        .await?;
    }
    Ok(())
}

async fn record_one(
    conn: &mut Conn<'_>,
    item: InboxItem,
    decisions: Vec<LoggedDecision>,
    now: i64,
) -> Result<(), StoreError> {
    let org_id = item.org_id;
    for d in decisions {
        let version = match &d.version {
            Some(version) => version,
            None => &item.version,
        };
        let outcome = if d.queued { "queued" } else { "skipped" };
        let log_seq = query(
            "INSERT INTO automation_log (org_id, app_id, env_id, version_id, artefact_name, \
                 version, rule_id, outcome, code, reason, deploy_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', $11) RETURNING seq",
        )
        .bind(&org_id)
        .bind(&d.app_id)
        .bind(&d.env_id)
        .bind(&version.id)
        .bind(&version.name)
        .bind(&version.version)
        .bind(&d.rule_id)
        .bind(outcome)
        .bind(&d.code)
        .bind(&d.reason)
        .bind(now)
        .fetch_one::<i64>(conn)
        .await?;
        if d.queued {
            query(
                    "INSERT INTO automation_pending (org_id, app_id, env_id, rule_id, version_id, log_seq, arrived_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)"
                )
                .bind(&org_id)
                .bind(&d.app_id)
                .bind(&d.env_id)
                .bind(&d.rule_id)
                .bind(&version.id)
                .bind(log_seq)
                .bind(now)
                .execute(conn)
                .await?;
        } else {
            let event = Event::new(
                &org_id,
                Some(&d.app_id),
                ("automation", "skipped"),
                "automation",
                now,
                &[
                    ("env_id", d.env_id.as_str()),
                    ("rule_id", d.rule_id.as_str()),
                    ("name", version.name.as_str()),
                    ("version", version.version.as_str()),
                    ("reason", d.reason.as_str()),
                ],
            );
            enqueue_event(conn, &event, now).await?;
        }
    }
    query("DELETE FROM automation_inbox WHERE seq = $1")
        .bind(item.seq)
        .execute(conn)
        .await?;
    Ok(())
}
