//! `gangplank get artefacts|artefact-versions|apps|envs|… [ID]`: lists follow the server's
//! `Link` pages to the end, so they show every item. `get runs ID` shows a run with its jobs
//! and steps (`commands::pipeline_runs::show`).

use crate::UsageError;
use crate::cli::{GetArgs, Global};
use crate::client_config::Resolved;
use crate::output::{self, Columns};

pub const VERSION_COLUMNS: Columns = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("TYPE", "type"),
    ("VERSION", "version"),
    ("REF", "ref"),
    ("COMMIT", "commit"),
    ("ARCHIVED", "archived"),
    ("CREATED", "created_at"),
];
pub const ARTEFACT_COLUMNS: Columns = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("TYPE", "type"),
    ("UPDATED", "updated_at"),
];
pub const APP_COLUMNS: Columns = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("ENVS", "envs"),
    ("CREATED", "created_at"),
];
pub const ENV_COLUMNS: Columns = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("TYPE", "type"),
    ("CREATED", "created_at"),
];

pub const DEPLOY_COLUMNS: Columns = &[
    ("ID", "id"),
    ("STATUS", "status"),
    ("SET", "set_id"),
    ("TRIGGERED BY", "triggered_by"),
    ("COMMENT", "comment"),
    ("CREATED", "created_at"),
];
const SET_COLUMNS: Columns = &[("ID", "id"), ("VERSION", "version")];
const DELTA_COLUMNS: Columns = &[("ID", "id")];
pub const RULE_COLUMNS: Columns = &[
    ("ID", "id"),
    ("ACTIVE", "active"),
    ("MATCH REF", "match_ref"),
    ("ARTEFACTS", "artefacts_filter"),
    ("CREATED", "created_at"),
];
pub const INBOUND_HOOK_COLUMNS: Columns = &[
    ("ID", "id"),
    ("KIND", "kind"),
    ("WATCHES", "watches"),
    ("REGISTRY", "registry"),
    ("DISABLED", "disabled"),
    ("PATH", "path"),
    ("SECRET (shown once)", "secret"),
];
const INBOUND_DELIVERY_COLUMNS: Columns = &[
    ("ID", "id"),
    ("RECEIVED", "received_at"),
    ("SENDER ID", "delivery_id"),
    ("VERDICT", "verdict"),
    ("MESSAGE", "message"),
];
pub const WEBHOOK_COLUMNS: Columns = &[
    ("ID", "id"),
    ("URL", "url"),
    ("DISABLED", "disabled"),
    ("SECRET (shown once)", "secret"),
];
pub const REGISTRY_COLUMNS: Columns = &[
    ("ID", "id"),
    ("REGISTRY", "registry"),
    ("TYPE", "type"),
    ("CI", "enable_ci"),
    ("CREDS", "has_creds"),
];
pub const WATCH_COLUMNS: Columns = &[
    ("ID", "id"),
    ("IMAGE", "image"),
    ("FILTER", "filter"),
    ("PATTERN", "pattern"),
    ("INTERVAL", "interval_seconds"),
    ("LAST POLLED", "last_polled_at"),
    ("LAST ERROR", "last_error"),
];
pub const BUILD_COLUMNS: Columns = &[
    ("ID", "id"),
    ("STATUS", "status"),
    ("REF", "ref"),
    ("COMMIT", "commit"),
    ("TRIGGER", "trigger"),
    ("DIGEST", "digest"),
    ("VERSION", "version_id"),
    ("CREATED", "created_at"),
    ("MESSAGE", "message"),
];
pub const BUILD_DEFINITION_COLUMNS: Columns = &[
    ("APP", "app_id"),
    ("CLONE URL", "clone_url"),
    ("BRANCHES", "branches"),
    ("IMAGE", "image"),
    ("TAGS", "tags"),
    ("BUILDER", "builder"),
    ("TOKEN", "has_clone_token"),
];
pub const PROMOTION_COLUMNS: Columns = &[
    ("ID", "id"),
    ("ACTION", "action"),
    ("STATUS", "status"),
    ("DESTINATION", "destination"),
    ("BEFORE", "version_before"),
    ("AFTER", "version_after"),
    ("DIGEST", "new_live_digest"),
    ("RUN", "run_id"),
    ("BYTES MOVED", "bytes_moved"),
    ("CREATED", "created_at"),
];
pub const PIPELINE_COLUMNS: Columns = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("TRIGGERS", "trigger_types"),
    ("VERSION", "version"),
    ("CREATED", "created_at"),
];
const DELIVERY_COLUMNS: Columns = &[
    ("ID", "id"),
    ("EVENT", "event"),
    ("STATE", "state"),
    ("LAST ERROR", "last_error"),
    ("CREATED", "created_at"),
];

pub async fn run(global: &Global, args: GetArgs) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let org = resolved.org()?;
    let id = args.id.as_deref();
    let (path, columns) = match (args.kind.as_str(), id) {
        ("artefact-versions" | "artefact-version", None) => {
            (format!("/orgs/{org}/artefact-versions"), VERSION_COLUMNS)
        }
        ("artefact-versions" | "artefact-version", Some(id)) => (
            format!("/orgs/{org}/artefact-versions/{id}"),
            VERSION_COLUMNS,
        ),
        ("artefacts" | "artefact", None) => (format!("/orgs/{org}/artefacts"), ARTEFACT_COLUMNS),
        // There is no single-artefact GET in the API; an id lists that artefact's versions.
        ("artefacts" | "artefact", Some(id)) => (
            format!("/orgs/{org}/artefacts/{id}/versions"),
            VERSION_COLUMNS,
        ),
        ("apps" | "app", None) => (format!("/orgs/{org}/apps"), APP_COLUMNS),
        ("apps" | "app", Some(id)) => (format!("/orgs/{org}/apps/{id}"), APP_COLUMNS),
        ("envs" | "env", None) => (
            format!("/orgs/{org}/apps/{}/envs", resolved.app()?),
            ENV_COLUMNS,
        ),
        ("envs" | "env", Some(id)) => (
            format!("/orgs/{org}/apps/{}/envs/{id}", resolved.app()?),
            ENV_COLUMNS,
        ),
        ("deploys" | "deploy", None) => {
            (format!("{}/deploys", resolved.env_path()?), DEPLOY_COLUMNS)
        }
        ("deploys" | "deploy", Some(id)) => (
            format!("{}/deploys/{id}", resolved.env_path()?),
            DEPLOY_COLUMNS,
        ),
        ("sets" | "set", None) => (format!("{}/sets", resolved.app_path()?), SET_COLUMNS),
        ("sets" | "set", Some(id)) => (format!("{}/sets/{id}", resolved.app_path()?), SET_COLUMNS),
        ("deltas" | "delta", None) => (format!("{}/deltas", resolved.app_path()?), DELTA_COLUMNS),
        ("deltas" | "delta", Some(id)) => (
            format!("{}/deltas/{id}", resolved.app_path()?),
            DELTA_COLUMNS,
        ),
        ("rules" | "rule", None) => (format!("{}/rules", resolved.env_path()?), RULE_COLUMNS),
        ("rules" | "rule", Some(id)) => {
            (format!("{}/rules/{id}", resolved.env_path()?), RULE_COLUMNS)
        }
        ("webhooks" | "webhook", None) => (
            format!("{}/webhooks", resolved.app_path()?),
            WEBHOOK_COLUMNS,
        ),
        ("webhooks" | "webhook", Some(id)) => (
            format!("{}/webhooks/{id}", resolved.app_path()?),
            WEBHOOK_COLUMNS,
        ),
        ("pipelines" | "pipeline", None) => (
            format!("{}/pipelines", resolved.app_path()?),
            PIPELINE_COLUMNS,
        ),
        ("pipelines" | "pipeline", Some(id)) => (
            format!("{}/pipelines/{id}", resolved.app_path()?),
            PIPELINE_COLUMNS,
        ),
        ("builds" | "build", None) => (format!("{}/builds", resolved.app_path()?), BUILD_COLUMNS),
        ("builds" | "build", Some(id)) => (
            format!("{}/builds/{id}", resolved.app_path()?),
            BUILD_COLUMNS,
        ),
        ("build-definition" | "build-definitions", _) => (
            format!("{}/build-definition", resolved.app_path()?),
            BUILD_DEFINITION_COLUMNS,
        ),
        ("watches" | "watch", None) => (format!("/orgs/{org}/watches"), WATCH_COLUMNS),
        ("watches" | "watch", Some(id)) => (format!("/orgs/{org}/watches/{id}"), WATCH_COLUMNS),
        ("registries" | "registry", None) => (format!("/orgs/{org}/registries"), REGISTRY_COLUMNS),
        ("registries" | "registry", Some(id)) => {
            (format!("/orgs/{org}/registries/{id}"), REGISTRY_COLUMNS)
        }
        ("image-promotions" | "image-promotion", None) => (
            format!("{}/image-promotions", resolved.app_path()?),
            PROMOTION_COLUMNS,
        ),
        ("inbound-hooks" | "inbound-hook", None) => {
            (format!("/orgs/{org}/inbound-hooks"), INBOUND_HOOK_COLUMNS)
        }
        ("inbound-hooks" | "inbound-hook", Some(id)) => (
            format!("/orgs/{org}/inbound-hooks/{id}"),
            INBOUND_HOOK_COLUMNS,
        ),
        ("inbound-deliveries" | "inbound-delivery", Some(hook)) => (
            format!("/orgs/{org}/inbound-hooks/{hook}/deliveries"),
            INBOUND_DELIVERY_COLUMNS,
        ),
        ("deliveries" | "delivery", Some(hook)) if resolved.app.is_none() => (
            format!("/orgs/{org}/inbound-hooks/{hook}/deliveries"),
            INBOUND_DELIVERY_COLUMNS,
        ),
        ("deliveries" | "delivery", Some(hook)) => (
            format!("{}/webhooks/{hook}/deliveries", resolved.app_path()?),
            DELIVERY_COLUMNS,
        ),
        ("runs" | "run", None) => match resolved.app.as_deref() {
            Some(app) => (
                format!("/orgs/{org}/pipeline-runs?app={app}"),
                super::pipeline_runs::RUN_COLUMNS,
            ),
            None => (
                format!("/orgs/{org}/pipeline-runs"),
                super::pipeline_runs::RUN_COLUMNS,
            ),
        },
        ("approvals" | "approval", None) => (
            format!("{}/approvals", resolved.app_path()?),
            super::pipeline_runs::APPROVAL_COLUMNS,
        ),
        ("runs" | "run", Some(id)) => return super::pipeline_runs::show(global, id).await,
        ("approvals" | "approval", Some(_)) => {
            return Err(UsageError(format!(
                "get {} lists them all; filter with --app, or use `gangplank get runs RUN`",
                args.kind
            ))
            .into());
        }
        ("deliveries" | "delivery" | "inbound-deliveries" | "inbound-delivery", None) => {
            return Err(UsageError("get deliveries needs the hook's id".to_owned()).into());
        }
        (other, _) => {
            return Err(UsageError(format!(
                "cannot get {other:?}; use artefacts, artefact-versions, apps, envs, deploys, sets, deltas, rules, webhooks, registries, watches, inbound-hooks, deliveries, inbound-deliveries, builds, build-definition, pipelines, runs, approvals or image-promotions"
            ))
            .into());
        }
    };
    // Lists come a page at a time; every page is fetched, so the table shows everything.
    let answer = resolved.client().list_all(&path).await?;
    output::print(&answer, output::format(global.output), columns)
}
