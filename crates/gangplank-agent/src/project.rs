//! A compose project as the agent knows it: the user's files (read once, never written), the
//! services that may be deployed, and the override file the agent owns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::config::ProjectConfig;

#[derive(Debug)]
pub struct Project {
    pub name: String,
    /// The user's files, then the agent's override file last (so it wins).
    pub files: Vec<PathBuf>,
    pub services: BTreeSet<String>,
    /// The user's `version:` key, copied into the override (compose v1 refuses a mix).
    pub version: Option<String>,
    pub health_timeout: Duration,
    pub grace: Duration,
    pub override_path: PathBuf,
}

impl Project {
    /// Reads the project's compose files and creates its override file if missing.
    pub fn load(config: &ProjectConfig, state_dir: &Path) -> anyhow::Result<Project> {
        let mut defined = BTreeSet::new();
        let mut version = None;
        for file in &config.files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading compose file {}", file.display()))?;
            let doc: Value = serde_yaml_ng::from_str(&text)
                .with_context(|| format!("parsing compose file {}", file.display()))?;
            if let Some(services) = doc.get("services").and_then(Value::as_object) {
                defined.extend(services.keys().cloned());
            }
            if version.is_none() {
                version = doc.get("version").and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
            }
        }
        let services = if config.services.is_empty() {
            defined
        } else {
            for service in &config.services {
                if !defined.contains(service) {
                    anyhow::bail!(
                        "project {}: service {service:?} is not defined in its compose files",
                        config.name
                    );
                }
            }
            config.services.iter().cloned().collect()
        };
        let override_path = state_dir.join(format!("{}.override.json", config.name));
        let mut files = config.files.clone();
        files.push(override_path.clone());
        let project = Project {
            name: config.name.clone(),
            files,
            services,
            version,
            health_timeout: config.health_timeout,
            grace: config.grace,
            override_path,
        };
        if !project.override_path.exists() {
            project.write_override(&gangplank_core::agent::with_image(
                &Value::Null,
                project.version.as_deref(),
                "",
                None,
            ))?;
        }
        Ok(project)
    }

    pub fn read_override(&self) -> Value {
        std::fs::read(&self.override_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null)
    }

    /// Replaces the override file atomically (write, fsync, rename), so a crash leaves the old
    /// file or the new one, never half of one.
    pub fn write_override(&self, doc: &Value) -> anyhow::Result<()> {
        use std::io::Write;
        let tmp = self.override_path.with_extension("json.tmp");
        let mut file =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(doc)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.override_path)
            .with_context(|| format!("replacing {}", self.override_path.display()))?;
        Ok(())
    }
}
