//! Fresh registry credentials when a pull is refused: from a Gangplank server with an agent
//! token (`GET /orgs/{org}/registries/{id}/creds`), or the seed's ECR login through the aws CLI.
//! Passwords go to `docker login` on stdin, never on argv or in a log.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use gangplank_api::registries::RegistryCreds;
use secrecy::ExposeSecret;

use crate::config::CredentialsConfig;
use crate::docker::Docker;

pub struct Credentials {
    config: CredentialsConfig,
    /// Registry hosts this agent logged in to, for `/logout`.
    logged_in: Mutex<BTreeSet<String>>,
}

impl Credentials {
    pub fn new(config: CredentialsConfig) -> Credentials {
        Credentials {
            config,
            logged_in: Mutex::new(BTreeSet::new()),
        }
    }

    /// Whether any source is configured (without one a refused pull simply fails).
    pub fn configured(&self) -> bool {
        !self.config.registries.is_empty() || self.ecr().is_some()
    }

    fn ecr(&self) -> Option<(&str, &str)> {
        Some((
            self.config.aws_region.as_deref()?,
            self.config.ecr_domain.as_deref()?,
        ))
    }

    /// Logs in to every configured registry. The error names the registry and the reason.
    pub async fn login(&self, docker: &Docker) -> Result<(), String> {
        for id in &self.config.registries {
            let creds = self.fetch(id).await?;
            let host = creds
                .registry
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let ran = docker
                .docker(
                    &[
                        "login",
                        "--username",
                        &creds.username,
                        "--password-stdin",
                        &host,
                    ],
                    Some(&creds.password),
                )
                .await;
            if !ran.ok {
                return Err(format!("docker login {host} failed: {}", ran.output.trim()));
            }
            tracing::info!(registry = %id, %host, "logged in with fresh credentials");
            self.remember(host);
        }
        if let Some((region, domain)) = self.ecr() {
            let ran = docker.ecr_login(region, domain).await;
            if !ran.ok {
                return Err(format!(
                    "ECR login to {domain} failed: {}",
                    ran.output.trim()
                ));
            }
            tracing::info!(%domain, "logged in to ECR");
            self.remember(domain.to_owned());
        }
        Ok(())
    }

    /// `docker logout` from every registry logged in to (and the seed's ECR domain).
    pub async fn logout(&self, docker: &Docker) -> Result<(), String> {
        let mut hosts = self
            .logged_in
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((_, domain)) = self.ecr() {
            hosts.insert(domain.to_owned());
        }
        for host in hosts {
            let ran = docker.docker(&["logout", &host], None).await;
            if !ran.ok {
                return Err(format!(
                    "docker logout {host} failed: {}",
                    ran.output.trim()
                ));
            }
        }
        Ok(())
    }

    fn remember(&self, host: String) {
        self.logged_in
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host);
    }

    pub(crate) async fn fetch(&self, id: &str) -> Result<RegistryCreds, String> {
        let (Some(server), Some(org), Some(token)) = (
            self.config.server.as_deref(),
            self.config.org.as_deref(),
            self.config.token.as_ref(),
        ) else {
            return Err("no Gangplank server is configured for credentials".to_owned());
        };
        let url = format!(
            "{}/orgs/{org}/registries/{id}/creds",
            server.trim_end_matches('/')
        );
        let response = crate::http_client()
            .get(&url)
            .timeout(Duration::from_secs(30))
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(|e| format!("fetching credentials for registry {id}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "fetching credentials for registry {id}: {status}: {}",
                body.chars().take(300).collect::<String>()
            ));
        }
        response
            .json()
            .await
            .map_err(|e| format!("reading credentials for registry {id}: {e}"))
    }
}
