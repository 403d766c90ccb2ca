//! `gangplank registry creds ID [--docker-login]`: credentials for CI, in one call.

use gangplank_api::client::Body;
use gangplank_core::registry::registry_host;
use reqwest::Method;

use crate::cli::{Global, RegistryAction, RegistryArgs};
use crate::client_config::Resolved;

pub async fn run(global: &Global, args: RegistryArgs) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let RegistryAction::Creds { id, docker_login } = args.action;
    let path = format!("/orgs/{}/registries/{id}/creds", resolved.org()?);
    let creds = resolved
        .client()
        .send(Method::GET, &path, Body::Empty)
        .await?;
    if docker_login {
        // Only the password on stdout; the rest on stderr, for
        // `gangplank registry creds ID --docker-login | docker login -u USER --password-stdin HOST`.
        eprintln!(
            "docker login -u {} --password-stdin {}",
            creds["username"].as_str().unwrap_or_default(),
            registry_host(creds["registry"].as_str().unwrap_or_default())
        );
        println!("{}", creds["password"].as_str().unwrap_or_default());
    } else {
        println!("{}", serde_json::to_string_pretty(&creds)?);
    }
    Ok(())
}
