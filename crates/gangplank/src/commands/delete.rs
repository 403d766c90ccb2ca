//! `gangplank delete app|env|artefact|watch ID`.

use gangplank_api::client::Body;
use reqwest::Method;

use crate::UsageError;
use crate::cli::{DeleteArgs, Global};
use crate::client_config::Resolved;

pub async fn run(global: &Global, args: DeleteArgs) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let org = resolved.org()?;
    let id = &args.id;
    let path = match args.kind.as_str() {
        "app" => format!("/orgs/{org}/apps/{id}"),
        "env" => format!("/orgs/{org}/apps/{}/envs/{id}", resolved.app()?),
        "artefact" => format!("/orgs/{org}/artefacts/{id}"),
        "watch" => format!("/orgs/{org}/watches/{id}"),
        other => {
            return Err(UsageError(format!(
                "cannot delete {other:?}; use app, env, artefact or watch"
            ))
            .into());
        }
    };
    resolved
        .client()
        .send(Method::DELETE, &path, Body::Empty)
        .await?;
    eprintln!("deleted {} {id}", args.kind);
    Ok(())
}
