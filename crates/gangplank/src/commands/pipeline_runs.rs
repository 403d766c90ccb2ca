//! `gangplank run pipeline|approve|deny|cancel run|logs run|get runs ID`: starting pipeline
//! runs, showing one, and answering what they wait for. A run or an approval is named by its id
//! alone; the verbs find the pipeline (and job) it belongs to through the lists, since the
//! API's paths need them.

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

const JOB_COLUMNS: Columns = &[
    ("JOB", "id"),
    ("STATUS", "status"),
    ("WAITING FOR", "waiting_for"),
    ("MESSAGE", "status_message"),
    ("COMPLETED", "completed_at"),
];

const STEP_COLUMNS: Columns = &[
    ("JOB", "job"),
    ("STEP", "index"),
    ("NAME", "name"),
    ("USES", "uses"),
    ("STATUS", "status"),
    ("MESSAGE", "status_message"),
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
    let key = args
        .idempotency_key
        .as_deref()
        .map(idempotency_key)
        .transpose()?;
    let headers: Vec<(&str, &str)> = key.iter().map(|k| ("Idempotency-Key", *k)).collect();
    let answer = resolved
        .client()
        .send_with_headers(
            Method::POST,
            &path,
            Body::Json(json!({"inputs": inputs})),
            &headers,
        )
        .await?;
    output::print(&answer, output::format(global.output), RUN_COLUMNS)
}

/// `--idempotency-key KEY`: text a header can carry (the server checks the rest).
fn idempotency_key(key: &str) -> Result<&str, UsageError> {
    if key.trim().is_empty() || !key.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(UsageError(format!(
            "--idempotency-key {key:?}: printable ASCII, not empty"
        )));
    }
    Ok(key)
}

/// `get runs ID`: the run, with its jobs and each job's steps (`jobs[].steps[]` in JSON and
/// YAML; in a table, the run, then its jobs, then their steps).
pub async fn show(global: &Global, run_id: &str) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let client = resolved.client();
    let found = find_run(&client, &resolved, run_id).await?;
    let path = run_path(&resolved, &found)?;
    let mut run = client.send(Method::GET, &path, Body::Empty).await?;
    let mut jobs = Vec::new();
    for job in client
        .list_all(&format!("{path}/jobs"))
        .await?
        .as_array()
        .into_iter()
        .flatten()
    {
        let job_id = job["id"].as_str().unwrap_or_default();
        jobs.push(
            client
                .send(Method::GET, &format!("{path}/jobs/{job_id}"), Body::Empty)
                .await?,
        );
    }
    run["jobs"] = Value::Array(jobs);
    match output::format(global.output) {
        crate::cli::OutputFormat::Table => print!("{}", run_tables(&run)),
        format => output::print(&run, format, RUN_COLUMNS)?,
    }
    Ok(())
}

/// A run shown as three tables: the run, its jobs, their steps (a message's first line).
fn run_tables(run: &Value) -> String {
    let first_line = |v: &Value| {
        json!(
            v.as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
        )
    };
    let jobs = run["jobs"].as_array().cloned().unwrap_or_default();
    let mut steps = Vec::new();
    for job in &jobs {
        for step in job["steps"].as_array().into_iter().flatten() {
            let mut row = step.clone();
            row["job"] = job["id"].clone();
            row["status_message"] = first_line(&step["status_message"]);
            steps.push(row);
        }
    }
    let jobs: Vec<Value> = jobs
        .into_iter()
        .map(|mut job| {
            job["status_message"] = first_line(&job["status_message"]);
            job
        })
        .collect();
    let mut out = output::table(run, RUN_COLUMNS);
    out.push('\n');
    out.push_str(&output::table(&Value::Array(jobs), JOB_COLUMNS));
    out.push('\n');
    out.push_str(&output::table(&Value::Array(steps), STEP_COLUMNS));
    out
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

/// The run `run_id`, found through the org-wide run list: of the app given by --app, else of
/// any app the caller may read.
async fn find_run(client: &Client, resolved: &Resolved, run_id: &str) -> anyhow::Result<Value> {
    let org = resolved.org()?;
    let (path, scope) = match resolved.app.as_deref() {
        Some(app) => (
            format!("/orgs/{org}/pipeline-runs?app={app}"),
            format!("app {app}"),
        ),
        None => (
            format!("/orgs/{org}/pipeline-runs"),
            format!("organization {org}"),
        ),
    };
    let runs = client.list_all(&path).await?;
    runs.as_array()
        .and_then(|runs| runs.iter().find(|r| r["id"] == run_id))
        .cloned()
        .ok_or_else(|| UsageError(format!("no pipeline run {run_id} in {scope}")).into())
}

/// The API path of `run`, in the app it belongs to.
fn run_path(resolved: &Resolved, run: &Value) -> Result<String, UsageError> {
    Ok(format!(
        "/orgs/{}/apps/{}/pipelines/{}/runs/{}",
        resolved.org()?,
        run["app_id"].as_str().unwrap_or_default(),
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
