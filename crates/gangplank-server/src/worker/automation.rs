//! Automation: starts the pipelines each registered artefact version triggers, judges each
//! container version against the rules of the environments it may concern, logs every
//! decision, and deploys each environment's batch once its debounce window has closed and no
//! deployment is active there.

use gangplank_core::automation::{
    Candidate, CompiledRule, Decision, EnvFacts, PendingVersion, RESUMED, Reevaluated, Rule, Skip,
    UpdateTo, VersionPolicy, after_resume, automated_comment, decide, image_update_delta,
    resumed_reason,
};
use gangplank_core::image::{ImageReference, RepositoryName};
use gangplank_core::pipeline::trigger::ArtefactEvent;
use gangplank_store::{
    ArtefactVersionRow, DeltaRow, InboxItem, LoggedDecision, ResumedEnv, RuleRow, StoreError,
};

use crate::deploying::{DeployPlan, new_delta_id, parse_set};
use crate::state::AppState;

const INBOX_BATCH: i64 = 64;

pub async fn run(state: AppState) {
    loop {
        match step(&state).await {
            Ok(true) => {}
            Ok(false) => {
                let debounce = state.debounce_ms;
                let due = state.store.next_batch_due(debounce).await.ok().flatten();
                super::idle(&state.wake.automation, due).await;
            }
            Err(error) => {
                tracing::error!(%error, "automation step failed");
                super::idle(&state.wake.automation, None).await;
            }
        }
    }
}

/// Does one round; `true` if it did anything (so the caller loops without waiting).
async fn step(state: &AppState) -> Result<bool, StoreError> {
    let inbox = state.store.take_inbox(INBOX_BATCH).await?;
    tracing::debug!(versions = inbox.len(), "automation step");
    let mut worked = !inbox.is_empty();
    let mut judged = Vec::with_capacity(inbox.len());
    for item in inbox {
        let decisions = match &item.resumed {
            Some(resumed) => reevaluate(state, &item.org_id, resumed).await?,
            None => {
                // Before the row is drained (`record_decisions`): a crash in between starts
                // the same runs again, which their idempotency keys make no-ops.
                artefact_pipelines(state, &item).await?;
                // Rules deploy images: a workload version only starts pipelines.
                if item.version.kind == "container" {
                    judge(state, &item).await?
                } else {
                    Vec::new()
                }
            }
        };
        judged.push((item, decisions));
    }
    if !judged.is_empty() {
        // One write for the whole batch: the group-commit writer gives it one fsync.
        state.store.record_decisions(judged).await?;
        tracing::debug!("versions judged");
    }
    let now = gangplank_store::now_millis();
    let due = state.store.due_batches(now, state.debounce_ms).await?;
    // Concurrently, so that the group-commit writer puts them in one transaction.
    let results = futures::future::join_all(
        due.iter()
            .map(|(org_id, app_id, env_id)| deploy_batch(state, org_id, app_id, env_id)),
    )
    .await;
    for result in results {
        match result {
            Ok(()) => worked = true,
            // Another deployment started meanwhile: the batch waits for it to finish.
            Err(StoreError::Conflict(_)) => {}
            Err(error) => return Err(error),
        }
    }
    if worked {
        state.wake.deploy.notify_one();
        state.wake.delivery.notify_one();
    }
    Ok(worked)
}

/// Starts the pipelines whose artefact trigger the registered version matches, unless the
/// version is a registry write Gangplank made itself (a promotion's or rollback's own tag
/// move, recorded as expected by exact image, tag and digest).
async fn artefact_pipelines(state: &AppState, item: &InboxItem) -> Result<(), StoreError> {
    let version = &item.version;
    if item.version_seq < 0 || version.id.is_empty() {
        return Ok(());
    }
    let now = gangplank_store::now_millis();
    if version.kind == "container"
        && !version.digest.is_empty()
        && state
            .store
            .consume_expected_write(
                &item.org_id,
                &version.name,
                &version.version,
                &version.digest,
                &version.id,
                now,
            )
            .await?
    {
        tracing::info!(version = %version.id, name = %version.name, tag = %version.version, "registry write made by Gangplank: no pipeline starts");
        return Ok(());
    }
    let event = ArtefactEvent {
        version_id: &version.id,
        kind: &version.kind,
        name: &version.name,
        version: &version.version,
        digest: &version.digest,
        registrant: &version.created_by,
    };
    crate::pipeline_start::for_artefact(state, &item.org_id, &event).await?;
    Ok(())
}

/// Turns a stored rule back into the core's rule.
pub fn rule_from_row(row: &RuleRow) -> Option<Rule> {
    Some(Rule {
        active: row.active,
        artefacts_filter: serde_json::from_str(&row.artefacts_filter).ok()?,
        exclude_artefacts_filter: row.exclude_artefacts_filter,
        match_ref: row.match_ref.clone(),
        legacy_match: row.legacy_match.clone(),
        update_to: match row.update_to.as_str() {
            "branch" => Some(UpdateTo::Branch),
            "tag" => Some(UpdateTo::Tag),
            _ => None,
        },
        version_policy: policy_from_text(&row.version_policy),
    })
}

/// The stored form of a version policy is the API's JSON.
pub fn policy_from_text(text: &str) -> Option<VersionPolicy> {
    match serde_json::from_str::<gangplank_api::rules::VersionPolicy>(text).ok()? {
        gangplank_api::rules::VersionPolicy::Semver {
            constraint,
            include_prerelease,
        } => Some(VersionPolicy::Semver {
            constraint,
            include_prerelease,
        }),
        gangplank_api::rules::VersionPolicy::Regex { pattern } => {
            Some(VersionPolicy::Regex { pattern })
        }
    }
}

/// The decisions about one version, one per environment it may concern.
async fn judge(state: &AppState, item: &InboxItem) -> Result<Vec<LoggedDecision>, StoreError> {
    let decided = decide_in(state, &item.org_id, &item.version, item.version_seq, None).await?;
    Ok(decided
        .into_iter()
        .map(|(app_id, env_id, decision)| match decision {
            Decision::Deploy { rule_id } => LoggedDecision {
                app_id,
                env_id,
                rule_id,
                queued: true,
                code: "queued".to_owned(),
                reason: waiting(state),
                version: None,
            },
            Decision::Skip { rule_id, reason } => skipped(app_id, env_id, rule_id, &reason, None),
        })
        .collect())
}

fn waiting(state: &AppState) -> String {
    format!(
        "waiting {} ms for more versions before deploying",
        state.debounce_ms
    )
}

fn skipped(
    app_id: String,
    env_id: String,
    rule_id: Option<String>,
    reason: &Skip,
    version: Option<ArtefactVersionRow>,
) -> LoggedDecision {
    let resumed = version.is_some();
    LoggedDecision {
        app_id,
        env_id,
        rule_id: rule_id.unwrap_or_default(),
        queued: false,
        code: reason.code().to_owned(),
        reason: if resumed {
            resumed_reason(&reason.to_string())
        } else {
            reason.to_string()
        },
        version,
    }
}

/// After `resume`: the versions the environment skipped as held, judged again by the same
/// rules, filters and no-downgrade facts as any new version (`decide_in`), of which core's
/// `after_resume` queues the newest accepted one per repository. Every one gets a log line
/// saying it was re-evaluated.
async fn reevaluate(
    state: &AppState,
    org_id: &str,
    resumed: &ResumedEnv,
) -> Result<Vec<LoggedDecision>, StoreError> {
    let versions = state.store.held_versions(org_id, resumed).await?;
    let mut judged = Vec::with_capacity(versions.len());
    for (seq, version) in versions {
        let Ok(repository) = RepositoryName::parse(&version.name) else {
            continue;
        };
        let only = Some((resumed.app_id.as_str(), resumed.env_id.as_str()));
        // At most one: the resumed environment, if it still has rules.
        for (_, _, decision) in decide_in(state, org_id, &version, seq, only).await? {
            let reevaluated = Reevaluated {
                repository: repository.to_string(),
                seq,
                label: format!("{}:{}", version.name, version.version),
                decision,
            };
            judged.push((version.clone(), reevaluated));
        }
    }
    let items: Vec<Reevaluated> = judged.iter().map(|(_, r)| r.clone()).collect();
    let decisions = after_resume(&items);
    tracing::info!(app = %resumed.app_id, env = %resumed.env_id, versions = items.len(), "re-evaluating versions skipped while automation was held");
    Ok(judged
        .into_iter()
        .zip(decisions)
        .map(|((version, _), decision)| {
            let (app_id, env_id) = (resumed.app_id.clone(), resumed.env_id.clone());
            match decision {
                Decision::Deploy { rule_id } => LoggedDecision {
                    app_id,
                    env_id,
                    rule_id,
                    queued: true,
                    code: RESUMED.to_owned(),
                    reason: resumed_reason(&waiting(state)),
                    version: Some(version),
                },
                Decision::Skip { rule_id, reason } => {
                    skipped(app_id, env_id, rule_id, &reason, Some(version))
                }
            }
        })
        .collect())
}

/// Decides about one version (registered as number `version_seq`) in each environment it
/// may concern, or only in `only` (app, env).
async fn decide_in(
    state: &AppState,
    org_id: &str,
    version: &ArtefactVersionRow,
    version_seq: i64,
    only: Option<(&str, &str)>,
) -> Result<Vec<(String, String, Decision)>, StoreError> {
    if version.digest.is_empty() && version.digest_status == "pending" {
        // Resolve before judging, so a deployment pins the digest (the batch reads it back).
        let pending = gangplank_store::ToResolve {
            org_id: org_id.to_owned(),
            id: version.id.clone(),
            name: version.name.clone(),
            version: version.version.clone(),
            attempts: 0,
        };
        super::resolver::attempt(state, &pending).await;
    }
    let Ok(repository) = RepositoryName::parse(&version.name) else {
        return Ok(Vec::new());
    };
    if version_seq < 0 {
        return Ok(Vec::new());
    }
    let contexts = state
        .store
        .automation_context(org_id, &repository.to_string(), &version.name)
        .await?;
    let candidate = Candidate {
        name: &version.name,
        version: &version.version,
        git_ref: &version.git_ref,
    };
    let mut decisions = Vec::with_capacity(contexts.len());
    for context in contexts {
        if only.is_some_and(|(app, env)| (app, env) != (&context.app_id, &context.env_id)) {
            continue;
        }
        let rules: Vec<(String, CompiledRule)> = context
            .rules
            .iter()
            .filter_map(|row| Some((row.id.clone(), rule_from_row(row)?.compile().ok()?)))
            .collect();
        let mut facts = EnvFacts {
            uses_image: context.uses_image,
            held: context.held,
            running: None,
        };
        if context.uses_image {
            let set = parse_set(&context.set_content).unwrap_or_default();
            let images: Vec<(String, String)> = set
                .container_images()
                .iter()
                .filter_map(|c| ImageReference::parse(&c.image).ok())
                .filter(|r| r.repository == repository)
                .map(|r| (r.tag.unwrap_or_default(), r.digest.unwrap_or_default()))
                .collect();
            facts.running = state
                .store
                .running_version(org_id, &version.name, images)
                .await?
                .map(|(seq, running)| (seq, format!("{}:{running}", version.name)));
        }
        let decision = decide(&rules, &candidate, version_seq, &facts);
        crate::metrics::automation_decision(match &decision {
            Decision::Deploy { .. } => "queued",
            Decision::Skip { reason, .. } => reason.code(),
        });
        decisions.push((context.app_id, context.env_id, decision));
    }
    Ok(decisions)
}

async fn deploy_batch(
    state: &AppState,
    org_id: &str,
    app_id: &str,
    env_id: &str,
) -> Result<(), StoreError> {
    let batch = state.store.pending_batch(org_id, app_id, env_id).await?;
    if batch.items.is_empty() {
        return Ok(());
    }
    if batch.held {
        let reason = Skip::Held;
        state
            .store
            .discard_batch(batch.items, reason.code(), &reason.to_string())
            .await?;
        crate::metrics::automation_batch(reason.code());
        return Ok(());
    }
    let base = parse_set(&batch.set_content).map_err(|e| StoreError::Database(format!("{e:?}")))?;
    let versions: Vec<PendingVersion> = batch
        .items
        .iter()
        .map(|item| PendingVersion {
            name: item.name.clone(),
            version: item.version.clone(),
            digest: item.digest.clone(),
        })
        .collect();
    let delta = image_update_delta(&base, &versions);
    if delta.is_empty() {
        state
            .store
            .discard_batch(
                batch.items,
                Skip::NoWorkload.code(),
                "every workload already runs these versions, or none uses them",
            )
            .await?;
        crate::metrics::automation_batch(Skip::NoWorkload.code());
        return Ok(());
    }
    let set = delta
        .apply_to(&base)
        .map_err(|e| StoreError::Database(format!("an automated delta did not apply: {e}")))?;
    let comment = automated_comment(&versions);
    let now = gangplank_store::now_millis();
    let delta_row = DeltaRow {
        id: new_delta_id(),
        env_id: env_id.to_owned(),
        name: comment.clone(),
        archived: false,
        content: serde_json::to_string(&delta).unwrap_or_default(),
        contributers: "[]".to_owned(),
        created_at: now,
        created_by: AUTOMATION_USER.to_owned(),
        last_modified_at: now,
    };
    let plan = DeployPlan {
        org_id,
        app_id,
        env_id,
        from_deploy_id: batch.from_deploy_id,
        base_repositories: base.repositories(),
        delta_id: delta_row.id.clone(),
        set,
        comment,
        created_by: AUTOMATION_USER.to_owned(),
        triggered_by: format!("rule/{}", batch.items[0].rule_id),
        new_delta: Some(delta_row),
    };
    state
        .store
        .deploy_batch(plan.into_new_deploy(), batch.items)
        .await?;
    crate::metrics::automation_batch("deployed");
    Ok(())
}

/// The `created_by` of what automation creates.
pub const AUTOMATION_USER: &str = "automation";
