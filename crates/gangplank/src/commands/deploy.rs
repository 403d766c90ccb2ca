//! `gangplank deploy|rollback|resume|diff sets|explain`: the verbs that change or explain what
//! an environment runs.

use gangplank_api::client::Body;
use reqwest::Method;
use serde_json::{Value, json};

use crate::UsageError;
use crate::cli::{DeployArgs, DiffArgs, ExplainArgs, Global, OutputFormat, RollbackArgs};
use crate::client_config::Resolved;
use crate::commands::get::DEPLOY_COLUMNS;
use crate::output::{self, Columns};

const LOG_COLUMNS: Columns = &[
    ("VERSION", "version"),
    ("NAME", "name"),
    ("OUTCOME", "outcome"),
    ("RULE", "rule_id"),
    ("DEPLOY", "deploy_id"),
    ("REASON", "reason"),
];

pub async fn deploy(global: &Global, args: DeployArgs) -> anyhow::Result<()> {
    if args.redeploy {
        return redeploy(global, args.message).await;
    }
    let resolved = Resolved::from(global)?;
    let mut body = json!({});
    if let Some(delta) = args.delta {
        body["delta_id"] = Value::String(delta);
    }
    if let Some(set) = args.set {
        body["set_id"] = Value::String(set);
    }
    if let Some(message) = args.message {
        body["comment"] = Value::String(message);
    }
    let path = format!("{}/deploys", resolved.env_path()?);
    let answer = resolved
        .client()
        .send(Method::POST, &path, Body::Json(body))
        .await?;
    output::print(&answer, output::format(global.output), DEPLOY_COLUMNS)
}

/// `deploy --redeploy`: what `deploy --set` does with the set of the environment's current
/// (newest) deployment, so every host is sent that set again.
async fn redeploy(global: &Global, message: Option<String>) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let env_path = resolved.env_path()?;
    let client = resolved.client();
    let env = client.send(Method::GET, &env_path, Body::Empty).await?;
    let (Some(current), Some(set)) = (
        env["last_deploy"]["id"].as_str(),
        env["last_deploy"]["set_id"].as_str(),
    ) else {
        return Err(UsageError(format!(
            "environment {} has no deployment to redeploy; deploy a delta or a set first",
            resolved.env()?
        ))
        .into());
    };
    let comment = message.unwrap_or_else(|| format!("Redeploy of {current}"));
    let answer = client
        .send(
            Method::POST,
            &format!("{env_path}/deploys"),
            Body::Json(json!({"set_id": set, "comment": comment})),
        )
        .await?;
    match output::format(global.output) {
        OutputFormat::Table => println!(
            "deployment {} redeploys set {set} of deployment {current} ({})",
            answer["id"].as_str().unwrap_or("?"),
            answer["status"].as_str().unwrap_or("?")
        ),
        format => output::print(&answer, format, DEPLOY_COLUMNS)?,
    }
    Ok(())
}

pub async fn rollback(global: &Global, args: RollbackArgs) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let env_path = resolved.env_path()?;
    let client = resolved.client();
    let target = match args.to {
        Some(id) => id,
        None => {
            let deploys = client.list_all(&format!("{env_path}/deploys")).await?;
            previous_succeeded(&deploys).ok_or_else(|| {
                UsageError(
                    "no earlier succeeded deployment to roll back to; pass --to DEPLOY_ID"
                        .to_owned(),
                )
            })?
        }
    };
    client
        .send(
            Method::PUT,
            &format!("{env_path}/from_deploy_id"),
            Body::Json(Value::String(target.clone())),
        )
        .await?;
    let comment = args
        .message
        .unwrap_or_else(|| format!("Rollback to {target}"));
    let answer = client
        .send(
            Method::POST,
            &format!("{env_path}/deploys"),
            Body::Json(json!({"comment": comment})),
        )
        .await?;
    output::print(&answer, output::format(global.output), DEPLOY_COLUMNS)?;
    eprintln!("automation is held in this environment until `gangplank resume`");
    Ok(())
}

/// The newest succeeded deployment older than the newest one (deployments come newest first).
fn previous_succeeded(deploys: &Value) -> Option<String> {
    deploys
        .as_array()?
        .iter()
        .skip(1)
        .find(|d| d["status"] == "succeeded")
        .and_then(|d| d["id"].as_str())
        .map(str::to_owned)
}

pub async fn resume(global: &Global) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let path = format!("{}/automation/resume", resolved.env_path()?);
    resolved
        .client()
        .send(Method::POST, &path, Body::Empty)
        .await?;
    eprintln!(
        "automation resumed in {}; the newest eligible version skipped while it was held is \
         re-evaluated (see `gangplank explain`)",
        resolved.env()?
    );
    Ok(())
}

pub async fn diff(global: &Global, args: DiffArgs) -> anyhow::Result<()> {
    if args.kind != "sets" {
        return Err(UsageError(format!(
            "cannot diff {:?}; use `diff sets FROM TO`",
            args.kind
        ))
        .into());
    }
    let resolved = Resolved::from(global)?;
    let path = format!(
        "{}/sets/{}/diff/{}",
        resolved.app_path()?,
        args.to,
        args.from
    );
    let answer = resolved
        .client()
        .send(Method::GET, &path, Body::Empty)
        .await?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

pub async fn explain(global: &Global, args: ExplainArgs) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let path = format!(
        "{}/automation-log?limit={}",
        resolved.env_path()?,
        args.limit
    );
    // `limit` caps the whole log; the pages up to it are all fetched.
    let answer = resolved.client().list_all(&path).await?;
    output::print(&answer, output::format(global.output), LOG_COLUMNS)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn rollback_target_is_the_previous_succeeded_deployment() {
        let deploys = json!([
            {"id": "d4", "status": "succeeded"},
            {"id": "d3", "status": "failed"},
            {"id": "d2", "status": "succeeded"},
            {"id": "d1", "status": "succeeded"}
        ]);
        assert_eq!(super::previous_succeeded(&deploys).as_deref(), Some("d2"));
        assert_eq!(
            super::previous_succeeded(&json!([{"id": "d1", "status": "succeeded"}])),
            None
        );
    }
}
