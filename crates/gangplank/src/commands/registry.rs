//! `gangplank registry creds ID [--docker-login]`: credentials for CI, in one call.

use gangplank_api::client::Body;
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
            login_host(creds["registry"].as_str().unwrap_or_default())
        );
        println!("{}", creds["password"].as_str().unwrap_or_default());
    } else {
        println!("{}", serde_json::to_string_pretty(&creds)?);
    }
    Ok(())
}

/// The host `docker login` takes: a registry prefix such as `registry.example.com/acme` names a
/// path too, and docker refuses a server address with a path.
fn login_host(registry: &str) -> &str {
    registry.split('/').next().unwrap_or(registry)
}

#[cfg(test)]
mod tests {
    #[test]
    fn docker_login_gets_the_host_only() {
        assert_eq!(
            super::login_host("registry.example.com/acme"),
            "registry.example.com"
        );
        assert_eq!(super::login_host("localhost:5000"), "localhost:5000");
        assert_eq!(super::login_host("ghcr.io/org/team"), "ghcr.io");
    }
}
