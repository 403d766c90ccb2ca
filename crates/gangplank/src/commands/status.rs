//! `gangplank status [--app A --env E]`: what the hosts run against each environment's set, from
//! `GET …/envs/{env}/runtime`, as one table (and a line per environment saying whether it is in
//! sync), or the runtime objects themselves as JSON or YAML.

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{Global, OutputFormat};
use crate::client_config::Resolved;
use crate::output::{self, Columns};

const COLUMNS: Columns = &[
    ("WORKLOAD", "workload"),
    ("SERVICE", "service"),
    ("DESIRED", "desired_image"),
    ("RUNNING", "running_image"),
    ("HEALTH", "health"),
    ("IN-SYNC", "in_sync"),
    ("LAST-SEEN", "last_seen_at"),
];
const MANY_COLUMNS: Columns = &[
    ("APP", "app"),
    ("ENV", "env"),
    ("WORKLOAD", "workload"),
    ("SERVICE", "service"),
    ("DESIRED", "desired_image"),
    ("RUNNING", "running_image"),
    ("HEALTH", "health"),
    ("IN-SYNC", "in_sync"),
    ("LAST-SEEN", "last_seen_at"),
];

pub async fn run(global: &Global) -> anyhow::Result<()> {
    let resolved = Resolved::from(global)?;
    let org = resolved.org()?.to_owned();
    let client = resolved.client();
    let apps: Vec<String> = match &resolved.app {
        Some(app) => vec![app.clone()],
        None => ids(&client.list_all(&format!("/orgs/{org}/apps")).await?),
    };
    // One environment when both are named; otherwise each app's environments (only those
    // with the --env id, when one is given without --app).
    let single = resolved.app.is_some() && resolved.env.is_some();
    let mut envs: Vec<(String, String)> = Vec::new();
    for app in &apps {
        if single {
            envs.push((app.clone(), resolved.env.clone().unwrap_or_default()));
            continue;
        }
        let listed = client
            .list_all(&format!("/orgs/{org}/apps/{app}/envs"))
            .await?;
        envs.extend(
            ids(&listed)
                .into_iter()
                .filter(|env| resolved.env.as_ref().is_none_or(|only| only == env))
                .map(|env| (app.clone(), env)),
        );
    }
    let mut runtimes = Vec::new();
    for (app, env) in &envs {
        let runtime = client
            .send(
                Method::GET,
                &format!("/orgs/{org}/apps/{app}/envs/{env}/runtime"),
                gangplank_api::client::Body::Empty,
            )
            .await?;
        runtimes.push((app.clone(), runtime));
    }
    match output::format(global.output) {
        OutputFormat::Table => {
            let rows: Vec<Value> = runtimes
                .iter()
                .flat_map(|(app, runtime)| table_rows(app, runtime))
                .collect();
            let columns = if single { COLUMNS } else { MANY_COLUMNS };
            print!("{}", output::table(&Value::Array(rows), columns));
            for (app, runtime) in &runtimes {
                println!("{}", summary(app, runtime));
            }
            Ok(())
        }
        format => {
            let value = if single {
                runtimes.remove(0).1
            } else {
                Value::Array(
                    runtimes
                        .into_iter()
                        .map(|(app, mut runtime)| {
                            runtime["app_id"] = Value::String(app);
                            runtime
                        })
                        .collect(),
                )
            };
            output::print(&value, format, COLUMNS)
        }
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// One table row per workload, with the in-sync judgement in words.
fn table_rows(app: &str, runtime: &Value) -> Vec<Value> {
    let env = runtime["env_id"].as_str().unwrap_or_default();
    runtime["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            let in_sync = if w["agent_reachable"] == Value::Bool(false) {
                "agent unreachable".to_owned()
            } else {
                match w["in_sync"].as_bool() {
                    Some(true) => "yes".to_owned(),
                    Some(false) => match w["reason"].as_str() {
                        Some(reason) if !reason.is_empty() => format!("no: {reason}"),
                        _ => "no".to_owned(),
                    },
                    None => "-".to_owned(),
                }
            };
            json!({
                "app": app,
                "env": env,
                "workload": w["workload"],
                "service": w["service"],
                "desired_image": w["desired_image"],
                "running_image": w["running_image"],
                "health": w["health"],
                "in_sync": in_sync,
                "last_seen_at": w["last_seen_at"],
            })
        })
        .collect()
}

/// `app/env: in sync|DRIFTED since …|not judged yet (checked …)`.
fn summary(app: &str, runtime: &Value) -> String {
    let env = runtime["env_id"].as_str().unwrap_or_default();
    let verdict = match (
        runtime["in_sync"].as_bool(),
        runtime["drifted_since"].as_str(),
    ) {
        (Some(true), _) => "in sync".to_owned(),
        (Some(false), Some(since)) => format!("DRIFTED since {since}"),
        (Some(false), None) => "DRIFTED".to_owned(),
        (None, _) if runtime["checked_at"].is_null() => "not observed yet".to_owned(),
        (None, _) => "not judged (an agent is unreachable, or nothing is deployed)".to_owned(),
    };
    match runtime["checked_at"].as_str() {
        Some(checked) => format!("{app}/{env}: {verdict} (checked {checked})"),
        None => format!("{app}/{env}: {verdict}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn rows_and_summaries_say_what_differs() {
        let runtime = json!({
            "env_id": "development", "in_sync": false,
            "drifted_since": "2026-01-01T00:00:00.000Z", "checked_at": "2026-01-01T00:01:00.000Z",
            "workloads": [
                {"workload": "web", "service": "web", "desired_image": "w:2", "running_image": "w:1",
                 "health": "healthy", "in_sync": false, "reason": "the agent pins w:1",
                 "last_seen_at": "2026-01-01T00:01:00.000Z", "agent_reachable": true},
                {"workload": "db", "service": "db", "desired_image": "d:1", "running_image": null,
                 "health": "unknown", "in_sync": null, "reason": "agent unreachable: refused",
                 "last_seen_at": null, "agent_reachable": false}
            ]
        });
        let rows = super::table_rows("shop", &runtime);
        assert_eq!(rows[0]["in_sync"], "no: the agent pins w:1");
        assert_eq!(rows[1]["in_sync"], "agent unreachable");
        assert_eq!(
            super::summary("shop", &runtime),
            "shop/development: DRIFTED since 2026-01-01T00:00:00.000Z (checked 2026-01-01T00:01:00.000Z)"
        );
    }
}
