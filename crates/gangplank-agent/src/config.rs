//! `gangplank agent` configuration: defaults, then an optional TOML file, then environment
//! variables, deployer-service's own names (`PORT`, `JWT_PUBLIC_KEY_PATH`, …) below
//! Gangplank's. The agent token is a secret: `Debug` never shows it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde::Deserialize;

/// Everything the agent can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Address to listen on (`0.0.0.0:8686`, the seed's port, by default).
    pub listen: String,
    /// Enables `POST /logout` (as the seed's `DEBUG_MODE=true`).
    pub debug: bool,
    /// Where the agent keeps its override files.
    pub state_dir: PathBuf,
    /// The compose command, split on spaces; detected (`docker compose`, else
    /// `docker-compose`) when unset.
    pub compose_command: Option<String>,
    /// The docker CLI (login, logout, ps, inspect).
    pub docker_command: String,
    /// A `DOCKER_CONFIG` directory for every docker and compose command (the user's when unset).
    pub docker_config: Option<PathBuf>,
    /// Largest `/deploy` body accepted, in bytes.
    pub max_body_bytes: usize,
    pub auth: AuthConfig,
    pub credentials: CredentialsConfig,
    /// `[builder]`: present when this agent builds images (`POST /builds`).
    pub builder: Option<BuilderConfig>,
    #[serde(rename = "project")]
    pub projects: Vec<ProjectConfig>,
}

/// `[auth]`: which tokens are trusted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// PEM public keys (RSA → RS256, P-256 → ES256, Ed25519 → EdDSA), re-read when changed.
    pub public_keys: Vec<PathBuf>,
    /// A Gangplank server's `/.well-known/jwks.json`.
    pub jwks_url: Option<String>,
    /// When set, tokens must list it in `aud`.
    pub audience: Option<String>,
    /// When non-empty, `iss` must be one of these.
    pub issuers: Vec<String>,
    /// Refuse tokens without `jti` (go-jwt's tokens have none).
    pub require_jti: bool,
}

/// `[credentials]`: where fresh registry credentials come from when a pull is refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialsConfig {
    /// A Gangplank server's base URL.
    pub server: Option<String>,
    pub org: Option<String>,
    /// An agent token: a service user's token allowed to fetch registry credentials.
    pub token: Option<SecretString>,
    /// A file holding the token (read at start).
    pub token_file: Option<PathBuf>,
    /// The registry ids to log in to.
    pub registries: Vec<String>,
    /// The seed's ECR login (`aws ecr get-login-password | docker login`), for hosts without a
    /// Gangplank server.
    pub aws_region: Option<String>,
    pub ecr_domain: Option<String>,
}

/// `[builder]`: the agent clones, builds and pushes images for the server's builds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuilderConfig {
    /// Builds running at once; later ones wait (`pending`).
    pub concurrency: usize,
    /// Where each build's checkout goes (a fresh directory, removed afterwards);
    /// `<state_dir>/builds` when unset.
    pub work_dir: Option<PathBuf>,
    pub engine: BuildEngine,
}

impl Default for BuilderConfig {
    fn default() -> Self {
        BuilderConfig {
            concurrency: 1,
            work_dir: None,
            engine: BuildEngine::Auto,
        }
    }
}

/// What builds and pushes: `auto` is docker when `docker info` answers, else buildah.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildEngine {
    Auto,
    Docker,
    Buildah,
}

/// Most builds a builder runs at once (each is a docker build: CPU, memory and disk).
pub const MAX_BUILD_CONCURRENCY: usize = 64;

/// `[[project]]`: one compose project the agent may deploy to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub name: String,
    /// The user's compose files, in order; never rewritten.
    pub files: Vec<PathBuf>,
    /// Services that may be deployed; every service in the files when empty.
    #[serde(default)]
    pub services: Vec<String>,
    /// How long a relaunched container has to become healthy; `0s` skips the check.
    #[serde(default = "default_health_timeout", with = "humantime_serde")]
    pub health_timeout: Duration,
    /// Without a healthcheck, how long it must keep running to count as healthy.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub grace: Duration,
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(120)
}

fn default_grace() -> Duration {
    Duration::from_secs(5)
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            listen: "0.0.0.0:8686".to_owned(),
            debug: false,
            state_dir: PathBuf::from("./gangplank-agent"),
            compose_command: None,
            docker_command: "docker".to_owned(),
            docker_config: None,
            max_body_bytes: 1024 * 1024,
            auth: AuthConfig::default(),
            credentials: CredentialsConfig::default(),
            builder: None,
            projects: Vec::new(),
        }
    }
}

impl AgentConfig {
    /// Builds the configuration from an optional file and the environment (`env` looks a
    /// variable up; tests pass a map).
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => AgentConfig::default(),
        };
        config.apply_seed_variables(&env)?;
        if let Some(v) = env("GANGPLANK_AGENT_LISTEN") {
            config.listen = v;
        }
        if let Some(v) = env("GANGPLANK_AGENT_DEBUG") {
            config.debug = parse_bool("GANGPLANK_AGENT_DEBUG", &v)?;
        }
        if let Some(v) = env("GANGPLANK_AGENT_STATE_DIR") {
            config.state_dir = PathBuf::from(v);
        }
        if let Some(v) = env("GANGPLANK_AGENT_COMPOSE_COMMAND") {
            config.compose_command = Some(v);
        }
        if let Some(v) = env("GANGPLANK_AGENT_DOCKER_CONFIG") {
            config.docker_config = Some(PathBuf::from(v));
        }
        if let Some(v) = env("GANGPLANK_AGENT_PUBLIC_KEYS") {
            config.auth.public_keys = v.split(',').map(PathBuf::from).collect();
        }
        if let Some(v) = env("GANGPLANK_AGENT_JWKS_URL") {
            config.auth.jwks_url = Some(v);
        }
        if let Some(v) = env("GANGPLANK_AGENT_SERVER") {
            config.credentials.server = Some(v);
        }
        if let Some(v) = env("GANGPLANK_AGENT_ORG") {
            config.credentials.org = Some(v);
        }
        if let Some(v) = env("GANGPLANK_AGENT_REGISTRIES") {
            config.credentials.registries = v.split(',').map(str::to_owned).collect();
        }
        if let Some(v) = env("GANGPLANK_AGENT_TOKEN") {
            config.credentials.token = Some(v.into());
        }
        if let Some(path) = config.credentials.token_file.clone()
            && config.credentials.token.is_none()
        {
            let token = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the agent token {}", path.display()))?;
            config.credentials.token = Some(token.trim().to_owned().into());
        }
        config.validate()?;
        Ok(config)
    }

    /// deployer-service's variables, so its systemd unit works unchanged.
    fn apply_seed_variables(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        if let Some(port) = env("PORT") {
            let port: u16 = port
                .parse()
                .map_err(|_| anyhow::anyhow!("PORT={port:?} is not a port number"))?;
            self.listen = format!("0.0.0.0:{port}");
        }
        if let Some(path) = env("JWT_PUBLIC_KEY_PATH") {
            self.auth.public_keys.push(PathBuf::from(path));
        }
        if let Some(mode) = env("DEBUG_MODE") {
            // The seed refuses anything but exactly `true` or `false`.
            self.debug = match mode.as_str() {
                "true" => true,
                "false" => false,
                _ => bail!("DEBUG_MODE must be exactly true or false, not {mode:?}"),
            };
        }
        if let Some(region) = env("AWS_REGION") {
            self.credentials.aws_region = Some(region);
        }
        if let Some(domain) = env("ECR_DOMAIN") {
            self.credentials.ecr_domain = Some(domain);
        }
        if let Some(file) = env("DOCKER_COMPOSE_FILE") {
            let file = PathBuf::from(file);
            // Compose's own default project name: the file's directory.
            let name = env("COMPOSE_PROJECT_NAME").unwrap_or_else(|| {
                let dir = file
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or_default();
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "default".to_owned())
            });
            self.projects.push(ProjectConfig {
                name: normalise_project(&name),
                files: vec![file],
                services: Vec::new(),
                health_timeout: default_health_timeout(),
                grace: default_grace(),
            });
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        // A builder-only agent deploys nothing: it needs no compose project.
        if self.projects.is_empty() && self.builder.is_none() {
            bail!(
                "no compose project is configured: add a [[project]] (or a [builder]) or set DOCKER_COMPOSE_FILE"
            );
        }
        if let Some(builder) = &self.builder
            && !(1..=MAX_BUILD_CONCURRENCY).contains(&builder.concurrency)
        {
            bail!("[builder] concurrency must be between 1 and {MAX_BUILD_CONCURRENCY}");
        }
        if self.auth.public_keys.is_empty() && self.auth.jwks_url.is_none() {
            bail!(
                "no verification key is configured: set [auth] public_keys, jwks_url, or JWT_PUBLIC_KEY_PATH"
            );
        }
        let mut names = std::collections::HashSet::new();
        for project in &self.projects {
            if project.name.is_empty() || normalise_project(&project.name) != project.name {
                bail!(
                    "project name {:?} must be lowercase letters, digits, '-' and '_'",
                    project.name
                );
            }
            if !names.insert(&project.name) {
                bail!("project {:?} is configured twice", project.name);
            }
            if project.files.is_empty() {
                bail!("project {:?} has no compose files", project.name);
            }
        }
        let c = &self.credentials;
        if !c.registries.is_empty() && (c.server.is_none() || c.org.is_none() || c.token.is_none())
        {
            bail!("[credentials] registries need server, org and token (or token_file)");
        }
        Ok(())
    }
}

/// Compose's project-name rule: lowercase, only `[a-z0-9_-]`.
pub fn normalise_project(name: &str) -> String {
    name.to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => bail!("{name} must be true or false, not {value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)], file: Option<&str>) -> anyhow::Result<AgentConfig> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        AgentConfig::load(file.map(|_| path.as_path()), |k| map.get(k).cloned())
    }

    #[test]
    fn the_seeds_variables_make_a_working_agent() {
        let config = load(
            &[
                ("PORT", "9000"),
                ("JWT_PUBLIC_KEY_PATH", "/etc/deployer/public.pem"),
                ("DOCKER_COMPOSE_FILE", "/srv/shop/docker-compose.yml"),
                ("COMPOSE_PROJECT_NAME", "Shop"),
                ("DEBUG_MODE", "true"),
                ("AWS_REGION", "us-east-1"),
                ("ECR_DOMAIN", "1.dkr.ecr.us-east-1.amazonaws.com"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert!(config.debug);
        assert_eq!(config.projects[0].name, "shop");
        assert_eq!(config.credentials.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(config.auth.public_keys.len(), 1);
    }

    #[test]
    fn gangplank_names_win_and_bad_values_are_refused() {
        let vars = [
            ("PORT", "9000"),
            ("GANGPLANK_AGENT_LISTEN", "127.0.0.1:1"),
            ("JWT_PUBLIC_KEY_PATH", "/k.pem"),
            ("DOCKER_COMPOSE_FILE", "/srv/a/compose.yml"),
        ];
        assert_eq!(load(&vars, None).unwrap().listen, "127.0.0.1:1");
        let bad = |extra: (&'static str, &'static str)| {
            let mut v = vars.to_vec();
            v.push(extra);
            load(&v, None).unwrap_err().to_string()
        };
        assert!(bad(("DEBUG_MODE", "yes")).contains("DEBUG_MODE"));
        assert!(bad(("PORT", "http")).contains("PORT"));
        assert!(
            load(&[("JWT_PUBLIC_KEY_PATH", "/k.pem")], Some("[builder]\n")).is_ok_and(|c| c
                .builder
                .is_some_and(|b| b.concurrency == 1
                    && b.engine == BuildEngine::Auto
                    && b.work_dir.is_none())),
            "a builder-only agent needs no project"
        );
        assert!(
            load(
                &[("JWT_PUBLIC_KEY_PATH", "/k.pem")],
                Some("[builder]\nconcurrency = 0\n")
            )
            .unwrap_err()
            .to_string()
            .contains("concurrency")
        );
        assert!(
            load(
                &[("JWT_PUBLIC_KEY_PATH", "/k.pem")],
                Some("[builder]\nengine = \"kaniko\"\n")
            )
            .unwrap_err()
            .to_string()
            .contains("parsing")
        );
        assert!(
            load(&[("JWT_PUBLIC_KEY_PATH", "/k.pem")], None)
                .unwrap_err()
                .to_string()
                .contains("no compose project")
        );
        assert!(
            load(&[("DOCKER_COMPOSE_FILE", "/c.yml")], None)
                .unwrap_err()
                .to_string()
                .contains("no verification key")
        );
    }

    /// The example in docs/agent.md is a real configuration (parsed, not validated: its
    /// token file does not exist here).
    #[test]
    fn the_documented_example_parses() {
        let docs = include_str!("../../../docs/agent.md");
        let example = docs
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/agent.md has a TOML example");
        let config: AgentConfig = toml::from_str(example).unwrap();
        assert_eq!(config.projects[0].name, "shop");
        assert_eq!(config.projects[0].health_timeout, Duration::from_secs(120));
        assert_eq!(config.credentials.registries, ["acme"]);
    }

    #[test]
    fn a_file_configures_projects_and_keeps_the_token_secret() {
        let config = load(
            &[],
            Some(
                r#"
listen = "127.0.0.1:0"
[auth]
jwks_url = "http://127.0.0.1:8080/.well-known/jwks.json"
[credentials]
server = "http://127.0.0.1:8080"
org = "default"
token = "very-secret-token"
registries = ["local"]
[[project]]
name = "shop"
files = ["/srv/shop/compose.yml"]
services = ["web"]
health_timeout = "30s"
"#,
            ),
        )
        .unwrap();
        assert_eq!(config.projects[0].health_timeout, Duration::from_secs(30));
        assert!(!format!("{config:?}").contains("very-secret-token"));
        assert!(
            load(
                &[],
                Some("[[project]]\nname = \"Bad Name\"\nfiles = [\"a\"]\n[auth]\njwks_url=\"x\"")
            )
            .unwrap_err()
            .to_string()
            .contains("Bad Name")
        );
    }
}
