//! `gangplank build run`, `logs build ID [-f]` and `cancel build ID`.

use std::time::Duration;

use gangplank_api::client::Body;
use reqwest::Method;
use serde_json::json;

use crate::cli::{BuildArgs, BuildCommand, Global};
use crate::client_config::Resolved;
use crate::commands::get::BUILD_COLUMNS;
use crate::output;

/// How often `logs build -f` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// The statuses a build ends in (gangplank_core::build::BuildStatus::is_terminal).
fn finished(status: &str) -> bool {
    !matches!(status, "queued" | "running")
}

/// `build run [APP] [--commit SHA] [--ref REF]`.
pub async fn run(global: &Global, args: BuildArgs) -> anyhow::Result<()> {
    let BuildCommand::Run {
        app,
        commit,
        git_ref,
    } = args.command;
    let resolved = Resolved::from(global)?;
    let org = resolved.org()?;
    let app = match app {
        Some(app) => app,
        None => resolved.app()?.to_owned(),
    };
    let mut body = json!({});
    if let Some(commit) = commit {
        body["commit"] = json!(commit);
    }
    if let Some(git_ref) = git_ref {
        body["ref"] = json!(git_ref);
    }
    let answer = resolved
        .client()
        .send(
            Method::POST,
            &format!("/orgs/{org}/apps/{app}/builds"),
            Body::Json(body),
        )
        .await?;
    output::print(&answer, output::format(global.output), BUILD_COLUMNS)
}

/// `logs build ID [-f]`: the build's log; with `-f`, new lines as they come until it ends,
/// then its status (exit 1 unless it succeeded).
pub async fn logs(global: &Global, id: &str, follow: bool) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let client = resolved.client();
    let path = format!("{}/builds/{id}/logs", resolved.app_path()?);
    let mut from = 0;
    loop {
        let answer = client
            .send(Method::GET, &format!("{path}?from={from}"), Body::Empty)
            .await?;
        let lines = answer["lines"].as_array().cloned().unwrap_or_default();
        for line in &lines {
            println!("{}", line.as_str().unwrap_or_default());
        }
        from = answer["next"].as_u64().unwrap_or(from);
        let status = answer["status"].as_str().unwrap_or_default().to_owned();
        if !follow {
            return Ok(());
        }
        if finished(&status) && lines.is_empty() {
            let build = client
                .send(
                    Method::GET,
                    &format!("{}/builds/{id}", resolved.app_path()?),
                    Body::Empty,
                )
                .await?;
            let message = build["message"].as_str().unwrap_or_default();
            if status == "succeeded" {
                eprintln!(
                    "build {id} succeeded: {} version {}",
                    build["digest"].as_str().unwrap_or_default(),
                    build["version_id"].as_str().unwrap_or_default()
                );
                return Ok(());
            }
            anyhow::bail!("build {id} {status}: {message}");
        }
        if lines.is_empty() {
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    }
}

/// `cancel build ID`.
pub async fn cancel(global: &Global, id: &str) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let client = resolved.client();
    let path = format!("{}/builds/{id}", resolved.app_path()?);
    client
        .send(Method::POST, &format!("{path}/cancel"), Body::Empty)
        .await?;
    let after = client.send(Method::GET, &path, Body::Empty).await?;
    let status = after["status"].as_str().unwrap_or_default();
    println!(
        "build {id} is {}",
        if finished(status) {
            status
        } else {
            "cancelling"
        }
    );
    Ok(())
}
