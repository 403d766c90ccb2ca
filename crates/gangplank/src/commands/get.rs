//! `gangplank get artefacts|artefact-versions|apps|envs [ID]`.

use gangplank_api::client::Body;
use reqwest::Method;

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
        (other, _) => {
            return Err(UsageError(format!(
                "cannot get {other:?}; use artefacts, artefact-versions, apps or envs"
            ))
            .into());
        }
    };
    let answer = resolved
        .client()
        .send(Method::GET, &path, Body::Empty)
        .await?;
    output::print(&answer, output::format(global.output), columns)
}
