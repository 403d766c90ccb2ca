//! `gangplank run pipeline|approve|deny|cancel run|logs run`: starting pipeline runs and
//! answering what they wait for. A run or an approval is named by its id alone; the verbs find
//! the pipeline (and job) it belongs to through the lists, since the API's paths need them.

use gangplank_api::client::{Body, Client};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::UsageError;
use crate::cli::{Global, LogsArgs, RespondArgs, RunArgs};
use crate::client_config::Resolved;
use crate::output::{self, Columns};

pub const RUN_COLUMNS: Columns = &[
    ("ID", "id"),
    ("PIPELINE", "pipeline_id"),
    ("STATUS", "status"),
    ("TRIGGER", "trigger"),
    ("MESSAGE", "status_message"),
    ("CREATED", "created_at"),
];

pub const APPROVAL_COLUMNS: Columns = &[
    ("ID", "id"),
    ("RUN", "run_id"),
    ("JOB", "job_id"),
    ("ENV", "env_id"),
    ("STATUS", "status"),
    ("NEEDS", "required_approvals"),
    ("MESSAGE", "message"),
];

/// `run pipeline ID --input k=v`: starts a run and prints it.
pub async fn run(global: &Global, args: RunArgs) -> anyhow::Result<()> {
    if args.kind != "pipeline" {
        return Err(
            UsageError(format!("cannot run {:?}; use `run pipeline ID`", args.kind)).into(),
        );
    }
    let inputs = parse_inputs(&args.inputs)?;
    let resolved = Resolved::from(global)?;
    let path = format!(
        "{}/pipelines/{}/runs",
        resolved.app_path()?,
        args.pipeline_id
    );
    let answer = resolved
        .client()
        .send(Method::POST, &path, Body::Json(json!({"inputs": inputs})))
        .await?;
    output::print(&answer, output::format(global.output), RUN_COLUMNS)
}

/// `NAME=TEXT` is a string input; `NAME:=JSON` any JSON value (`count:=3`, `dry:=true`).
pub fn parse_inputs(items: &[String]) -> Result<Map<String, Value>, UsageError> {
    let mut inputs = Map::new();
    for item in items {
        let (name, value) = match item.split_once('=') {
            Some((name, json)) if name.ends_with(':') => {
                let value = serde_json::from_str(json).map_err(|e| {
                    UsageError(format!(
                        "--input {item}: the value after := is not JSON: {e}"
                    ))
                })?;
                (name.trim_end_matches(':'), value)
            }
            Some((name, text)) => (name, Value::String(text.to_owned())),
            None => {
                return Err(UsageError(format!(
                    "--input {item}: expected NAME=TEXT or NAME:=JSON"
                )));
            }
        };
        if name.is_empty() {
            return Err(UsageError(format!("--input {item}: the name is empty")));
        }
        if inputs.insert(name.to_owned(), value).is_some() {
            return Err(UsageError(format!(
                "--input {name} is given more than once"
            )));
        }
    }
    Ok(inputs)
}

/// The run `run_id` of the app, found through the org-wide run list filtered by app.
async fn find_run(client: &Client, resolved: &Resolved, run_id: &str) -> anyhow::Result<Value> {
    let path = format!(
        "/orgs/{}/pipeline-runs?app={}",
        resolved.org()?,
        resolved.app()?
    );
    let runs = client.list_all(&path).await?;
    runs.as_array()
        .and_then(|runs| runs.iter().find(|r| r["id"] == run_id))
        .cloned()
        .ok_or_else(|| {
            UsageError(format!(
                "no pipeline run {run_id} in app {}",
                resolved.app().unwrap_or_default()
            ))
            .into()
        })
}

fn run_path(resolved: &Resolved, run: &Value) -> Result<String, UsageError> {
    Ok(format!(
        "{}/pipelines/{}/runs/{}",
        resolved.app_path()?,
        run["pipeline_id"].as_str().unwrap_or_default(),
        run["id"].as_str().unwrap_or_default()
    ))
}

/// `cancel run RUN`.
pub async fn cancel(global: &Global, run_id: &str) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let client = resolved.client();
    let run = find_run(&client, &resolved, run_id).await?;
    let path = format!("{}/cancel", run_path(&resolved, &run)?);
    client.send(Method::POST, &path, Body::Empty).await?;
    let after = client
        .send(Method::GET, &run_path(&resolved, &run)?, Body::Empty)
        .await?;
    println!(
        "run {run_id} is {}",
        after["status"].as_str().unwrap_or("cancelling")
    );
    Ok(())
}

/// `approve|deny ID [-m TEXT]`: ID is the request's, or a run's with exactly one waiting.
pub async fn respond(global: &Global, args: RespondArgs, approve: bool) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let client = resolved.client();
    let waiting = client
        .list_all(&format!(
            "{}/approvals?status=waiting",
            resolved.app_path()?
        ))
        .await?;
    let matches: Vec<&Value> = waiting
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|a| a["id"] == args.id.as_str() || a["run_id"] == args.id.as_str())
                .collect()
        })
        .unwrap_or_default();
    let request = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(UsageError(format!(
                "no waiting approval request {} (by its id or its run's) in app {}",
                args.id,
                resolved.app()?
            ))
            .into());
        }
        many => {
            let ids: Vec<&str> = many.iter().filter_map(|a| a["id"].as_str()).collect();
            return Err(UsageError(format!(
                "run {} waits on several approval requests; name one: {}",
                args.id,
                ids.join(", ")
            ))
            .into());
        }
    };
    let path = format!(
        "{}/pipelines/{}/runs/{}/jobs/{}/approvals/{}/{}",
        resolved.app_path()?,
        request["pipeline_id"].as_str().unwrap_or_default(),
        request["run_id"].as_str().unwrap_or_default(),
        request["job_id"].as_str().unwrap_or_default(),
        request["id"].as_str().unwrap_or_default(),
        if approve { "approve" } else { "deny" }
    );
    let body = match args.message {
        Some(comment) => Body::Json(json!({ "comment": comment })),
        None => Body::Empty,
    };
    let answer = client.send(Method::POST, &path, body).await?;
    match output::format(global.output) {
        crate::cli::OutputFormat::Table => println!(
            "approval {} of run {} is {} ({} of {} approvals)",
            answer["id"].as_str().unwrap_or_default(),
            answer["run_id"].as_str().unwrap_or_default(),
            answer["status"].as_str().unwrap_or_default(),
            answer["responses"]
                .as_array()
                .map_or(0, |r| r.iter().filter(|r| r["action"] == "approve").count()),
            answer["required_approvals"].as_u64().unwrap_or(1),
        ),
        format => output::print(&answer, format, APPROVAL_COLUMNS)?,
    }
    Ok(())
}

/// `logs run RUN [--job J] [--step N]`: every selected step's log, one line per entry.
pub async fn logs(global: &Global, args: LogsArgs) -> anyhow::Result<()> {
    if args.kind != "run" {
        return Err(UsageError(format!(
            "cannot show logs of {:?}; use `logs run RUN`",
            args.kind
        ))
        .into());
    }
    let resolved = Resolved::from(global)?;
    let client = resolved.client();
    let run = find_run(&client, &resolved, &args.run_id).await?;
    let run_path = run_path(&resolved, &run)?;
    let jobs = client.list_all(&format!("{run_path}/jobs")).await?;
    let mut printed = 0;
    for job in jobs.as_array().into_iter().flatten() {
        let job_id = job["id"].as_str().unwrap_or_default();
        if args.job.as_deref().is_some_and(|j| j != job_id) {
            continue;
        }
        let job = client
            .send(
                Method::GET,
                &format!("{run_path}/jobs/{job_id}"),
                Body::Empty,
            )
            .await?;
        for step in job["steps"].as_array().into_iter().flatten() {
            let index = step["index"].as_u64().unwrap_or_default();
            if args.step.is_some_and(|s| u64::from(s) != index) {
                continue;
            }
            let lines = client
                .list_all(&format!("{run_path}/jobs/{job_id}/steps/{index}/logs"))
                .await?;
            let name = step["name"].as_str().unwrap_or_default();
            for line in lines.as_array().into_iter().flatten() {
                println!(
                    "{job_id}[{index}] {name}: {} {} {}",
                    line["at"].as_str().unwrap_or_default(),
                    line["level"].as_str().unwrap_or_default(),
                    line["message"].as_str().unwrap_or_default()
                );
                printed += 1;
            }
        }
    }
    if printed == 0 {
        eprintln!("(no log lines yet)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_text_or_json() {
        let inputs = parse_inputs(&[
            "env=prod".to_owned(),
            "count:=3".to_owned(),
            "note=a=b".to_owned(),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(inputs),
            json!({"env": "prod", "count": 3, "note": "a=b"})
        );
        assert!(parse_inputs(&["x".to_owned()]).is_err());
        assert!(parse_inputs(&["=1".to_owned()]).is_err());
        assert!(parse_inputs(&["n:=nope".to_owned()]).is_err());
        assert!(parse_inputs(&["a=1".to_owned(), "a=2".to_owned()]).is_err());
    }
}
