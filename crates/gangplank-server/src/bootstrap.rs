//! First start: create the organization and its administrator, and hand the token over.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use gangplank_store::{Bootstrap, Store};
use secrecy::ExposeSecret;

use crate::Settings;
use crate::auth::{TokenHasher, generate_token};

/// Creates the bootstrap organization and administrator when the database is empty.
pub async fn ensure(
    store: &Store,
    settings: &Settings,
    tokens: &TokenHasher,
) -> anyhow::Result<()> {
    let (token, generated) = match &settings.bootstrap_token {
        Some(token) => (token.expose_secret().to_owned(), false),
        None => (generate_token(), true),
    };
    let created = store
        .bootstrap(Bootstrap {
            org_id: settings.bootstrap_org.clone(),
            admin_user_id: uuid::Uuid::new_v4().to_string(),
            admin_name: "admin".to_owned(),
            token_hash: tokens.hash(&token),
            env_types: vec![("development".to_owned(), "Development".to_owned())],
        })
        .await?;
    if !created {
        if settings.bootstrap_token.is_some() {
            tracing::info!("database already initialised; GANGPLANK_BOOTSTRAP_TOKEN is ignored");
        }
        return Ok(());
    }
    if generated {
        let path = settings.data_dir.join("admin-token");
        write_secret_file(&path, &token)?;
        tracing::info!(org = %settings.bootstrap_org, token_file = %path.display(), "created the organization and its administrator; the token is in the file");
    } else {
        tracing::info!(org = %settings.bootstrap_org, "created the organization and its administrator with GANGPLANK_BOOTSTRAP_TOKEN");
    }
    Ok(())
}

/// Writes `contents` to a new file readable only by its owner.
fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{contents}").with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}
