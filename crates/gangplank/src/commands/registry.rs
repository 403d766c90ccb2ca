//! `gangplank registry creds ID [--docker-login]`: credentials for CI, in one call.
//! `gangplank registry rollback [REPO] [--to VERSION] [--yes]`: the seed's `rollback.sh`, with
//! a numbered menu of the app's promotion destinations when no REPO is given on a terminal.
//! `gangplank registry resume REPO`: lifts the hold a rollback put on automatic promotion.

use std::io::{BufRead, IsTerminal, Write};

use gangplank_api::client::Body;
use gangplank_core::registry::registry_host;
use reqwest::Method;
use serde_json::json;

use crate::UsageError;
use crate::cli::{Global, RegistryAction, RegistryArgs};
use crate::client_config::Resolved;

pub async fn run(global: &Global, args: RegistryArgs) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    match args.action {
        RegistryAction::Creds { id, docker_login } => creds(&resolved, &id, docker_login).await,
        RegistryAction::Rollback {
            repository,
            to,
            live_tag,
            yes,
            message,
        } => rollback(&resolved, repository, to, live_tag, yes, message).await,
        RegistryAction::Resume {
            repository,
            live_tag,
        } => {
            let path = format!("{}/image-promotions/resume", resolved.app_path()?);
            let body = json!({"repository": repository, "live_tag": live_tag});
            resolved
                .client()
                .send(Method::POST, &path, Body::Json(body))
                .await?;
            println!("Automatic promotion into {repository}:{live_tag} resumed");
            Ok(())
        }
    }
}

async fn creds(resolved: &Resolved, id: &str, docker_login: bool) -> anyhow::Result<()> {
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

async fn rollback(
    resolved: &Resolved,
    repository: Option<String>,
    to: Option<String>,
    live_tag: String,
    yes: bool,
    message: Option<String>,
) -> anyhow::Result<()> {
    let app_path = resolved.app_path()?;
    let interactive = std::io::stdin().is_terminal();
    let repository = match repository {
        Some(repository) => repository,
        None if interactive => {
            let records = resolved
                .client()
                .list_all(&format!("{app_path}/image-promotions"))
                .await?;
            let destinations = destinations(&records);
            if destinations.is_empty() {
                return Err(UsageError("the app has no promotion destinations yet".into()).into());
            }
            choose(&destinations)?
        }
        None => {
            return Err(UsageError(
                "registry rollback needs the repository when not on a terminal".into(),
            )
            .into());
        }
    };
    if interactive && !yes && !confirm(&format!("Roll back {repository}:{live_tag}?"))? {
        println!("Rollback cancelled");
        return Ok(());
    }
    let mut body = json!({"repository": repository, "live_tag": live_tag});
    if let Some(to) = to {
        body["to_version"] = json!(to);
    }
    if let Some(message) = message {
        body["comment"] = json!(message);
    }
    let record = resolved
        .client()
        .send(
            Method::POST,
            &format!("{app_path}/image-promotions/rollback"),
            Body::Json(body),
        )
        .await?;
    println!(
        "Rollback from v{} to v{}",
        record["version_before"].as_str().unwrap_or_default(),
        record["version_after"].as_str().unwrap_or_default()
    );
    println!("Rollback completed");
    Ok(())
}

/// The distinct destinations of promotion records, in the order first seen (newest first).
fn destinations(records: &serde_json::Value) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for record in records.as_array().into_iter().flatten() {
        if let Some(dest) = record["destination"].as_str()
            && !seen.iter().any(|s| s == dest)
        {
            seen.push(dest.to_owned());
        }
    }
    seen
}

/// A numbered menu on stderr; the chosen item.
fn choose(items: &[String]) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    for (i, item) in items.iter().enumerate() {
        writeln!(err, "{}) {item}", i + 1)?;
    }
    loop {
        write!(err, "Repository to roll back (1-{}): ", items.len())?;
        err.flush()?;
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Err(UsageError("no repository chosen".into()).into());
        }
        if let Some(item) = line
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| items.get(n))
        {
            return Ok(item.clone());
        }
    }
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
