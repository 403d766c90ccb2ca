//! The client's configuration file (`<config dir>/gangplank/config.toml`) and the resolution of
//! url, token, org, app and env: flag, then environment variable, then file.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::UsageError;
use crate::cli::Global;

/// The server a client talks to when nothing says otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The keys `gangplank config set` accepts.
pub const KEYS: [&str; 5] = ["url", "token", "org", "app", "env"];

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

pub fn path() -> anyhow::Result<PathBuf> {
    let dir = dirs::config_dir()
        .context("cannot find the user's configuration directory (set HOME or XDG_CONFIG_HOME)")?;
    Ok(dir.join("gangplank").join("config.toml"))
}

impl FileConfig {
    pub fn load() -> anyhow::Result<Self> {
        let path = path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self) -> anyhow::Result<()> {
        let path = path()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = toml::to_string(self).context("serialising the configuration")?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // The file may hold a token: readable by its owner only.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn set(&mut self, key: &str, value: String) -> Result<(), UsageError> {
        let slot = match key {
            "url" => &mut self.url,
            "token" => &mut self.token,
            "org" => &mut self.org,
            "app" => &mut self.app,
            "env" => &mut self.env,
            _ => {
                return Err(UsageError(format!(
                    "unknown key {key:?}; use one of {}",
                    KEYS.join(", ")
                )));
            }
        };
        if key == "url" {
            check_url(&value)?;
        }
        *slot = Some(value);
        Ok(())
    }
}

/// Refuses a server URL that cannot be called, saying how to fix it: reqwest's own error for a
/// missing scheme is `builder error: relative URL without a base`.
pub fn check_url(url: &str) -> Result<(), UsageError> {
    let invalid = |what: String| UsageError(format!("invalid server URL {url:?}: {what}"));
    if !url.contains("://") {
        return Err(invalid(format!(
            "add http:// or https://, e.g. http://{url}"
        )));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("use http:// or https://".to_owned()));
    }
    if !parsed.has_host() {
        return Err(invalid("it has no host".to_owned()));
    }
    Ok(())
}

/// The effective client settings.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub url: String,
    pub token: Option<String>,
    pub org: Option<String>,
    pub app: Option<String>,
    pub env: Option<String>,
}

impl Resolved {
    pub fn from(global: &Global) -> anyhow::Result<Self> {
        let file = FileConfig::load()?;
        let url = global
            .url
            .clone()
            .or(file.url)
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        check_url(&url)?;
        Ok(Resolved {
            url,
            token: global.token.clone().or(file.token),
            org: global.org.clone().or(file.org),
            app: global.app.clone().or(file.app),
            env: global.env.clone().or(file.env),
        })
    }

    pub fn org(&self) -> Result<&str, UsageError> {
        self.org.as_deref().ok_or_else(|| UsageError("no organization: pass --org, set GANGPLANK_ORG, or run `gangplank config set org ID`".to_owned()))
    }

    pub fn app(&self) -> Result<&str, UsageError> {
        self.app.as_deref().ok_or_else(|| UsageError("no application: pass --app, set GANGPLANK_APP, or run `gangplank config set app ID`".to_owned()))
    }

    pub fn env(&self) -> Result<&str, UsageError> {
        self.env.as_deref().ok_or_else(|| UsageError("no environment: pass --env, set GANGPLANK_ENV, or run `gangplank config set env ID`".to_owned()))
    }

    /// `/orgs/{org}/apps/{app}`.
    pub fn app_path(&self) -> Result<String, UsageError> {
        Ok(format!("/orgs/{}/apps/{}", self.org()?, self.app()?))
    }

    /// `/orgs/{org}/apps/{app}/envs/{env}`.
    pub fn env_path(&self) -> Result<String, UsageError> {
        Ok(format!("{}/envs/{}", self.app_path()?, self.env()?))
    }

    pub fn client(&self) -> gangplank_api::client::Client {
        gangplank_api::client::Client::new(&self.url, self.token.clone())
    }
}
