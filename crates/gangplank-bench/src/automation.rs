//! `automation`: with many apps, environments, workloads and rules loaded (debounce 0), the
//! time from an artefact-version POST returning to (a) its deployment existing and (b) the
//! `deployment.finished` webhook arriving, beside the polling intervals of the tools people
//! use today; then the sustained outbound delivery rate, and a SIGKILL in the middle of a
//! delivery burst losing nothing.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::registry::percentile;
use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::receiver::{self, Arrivals};
use crate::server::{TOKEN, start_server, wait_ready};

struct Options {
    server_binary: PathBuf,
    apps: usize,
    envs: usize,
    workloads: usize,
    versions: usize,
    fanout_webhooks: usize,
    fanout_envs: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        server_binary: PathBuf::new(),
        apps: 1000,
        envs: 3,
        workloads: 10,
        versions: 1000,
        fanout_webhooks: 50,
        fanout_envs: 200,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server-binary" => o.server_binary = PathBuf::from(value()?),
            "--apps" => o.apps = value()?.parse()?,
            "--envs" => o.envs = value()?.parse()?,
            "--workloads" => o.workloads = value()?.parse()?,
            "--versions" => o.versions = value()?.parse()?,
            "--fanout-webhooks" => o.fanout_webhooks = value()?.parse()?,
            "--fanout-envs" => o.fanout_envs = value()?.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    if o.server_binary.as_os_str().is_empty() {
        bail!("--server-binary is required");
    }
    if o.envs == 0 || o.envs > 3 {
        bail!("--envs must be 1 to 3");
    }
    Ok(o)
}

const ENVS: [&str; 3] = ["development", "staging", "production"];

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status} {text}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

fn image(app: usize, workload: usize, version: &str) -> String {
    format!("registry.bench/app-{app}/w{workload}:{version}")
}

async fn set_up_app(
    api: &Api,
    workloads: usize,
    envs: usize,
    app: usize,
    hook_url: &str,
) -> anyhow::Result<()> {
    let id = format!("app-{app}");
    api.post("/orgs/default/apps", json!({"id": id})).await?;
    api.post(
        &format!("/orgs/default/apps/{id}/webhooks"),
        json!({"id": format!("hook-{app}"), "url": hook_url,
               "triggers": [{"scope": "deployment", "type": "finished"}],
               "payload": {"deploy_id": "${deploy_id}", "app_id": "${app_id}", "env_id": "${env_id}", "comment": "${comment}"}}),
    )
    .await?;
    let modules: serde_json::Map<String, Value> = (0..workloads)
        .map(|w| {
            (
                format!("w{w}"),
                json!({"spec": {"containers": {"main": {"image": image(app, w, "v0")}}}}),
            )
        })
        .collect();
    for env in &ENVS[..envs] {
        if *env != "development" {
            api.post(
                &format!("/orgs/default/apps/{id}/envs"),
                json!({"id": env, "name": env}),
            )
            .await?;
        }
        let delta = api
            .post(
                &format!("/orgs/default/apps/{id}/deltas"),
                json!({"modules": {"add": modules}}),
            )
            .await?;
        api.post(
            &format!("/orgs/default/apps/{id}/envs/{env}/deploys"),
            json!({"delta_id": delta["id"]}),
        )
        .await?;
        api.post(
            &format!("/orgs/default/apps/{id}/envs/{env}/rules"),
            json!({"type": "update"}),
        )
        .await?;
    }
    Ok(())
}

fn millis(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

/// Parses the API's `…T…Z` millisecond timestamps.
fn parse_time(text: &str) -> Option<f64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min, sec) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days as f64 * 86_400.0) + h * 3600.0 + min * 60.0 + sec) * 1000.0)
}

async fn wait_for(arrivals: &Arrivals, n: usize, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while arrivals.len() < n {
        if Instant::now() > deadline {
            bail!(
                "only {} of {n} webhooks arrived within {within:?}",
                arrivals.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let scratch =
        std::env::temp_dir().join(format!("gangplank-bench-automation-{}", std::process::id()));
    let data_dir = scratch.join("data");
    let env = [
        ("GANGPLANK_AUTOMATION_DEBOUNCE", "0"),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
    ];
    let (mut server, base) = start_server(&o.server_binary, &data_dir, &env)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    wait_ready(&http, &base).await?;
    let api = Api {
        http: http.clone(),
        base,
    };
    let (hook_url, arrivals) = receiver::start().await?;

    let setup = Instant::now();
    let apps: Vec<usize> = (0..o.apps).collect();
    let mut handles = Vec::new();
    for chunk in apps.chunks(o.apps.div_ceil(16).max(1)) {
        let (api, hook_url, chunk) = (api.clone(), hook_url.clone(), chunk.to_vec());
        let (workloads, envs) = (o.workloads, o.envs);
        handles.push(tokio::spawn(async move {
            for app in chunk {
                set_up_app(&api, workloads, envs, app, &hook_url).await?;
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let initial = o.apps * o.envs;
    wait_for(&arrivals, initial, Duration::from_secs(600)).await?;
    eprintln!(
        "set up {} apps × {} envs × {} workloads, {} rules, {} initial deployments in {:.1} s",
        o.apps,
        o.envs,
        o.workloads,
        initial,
        initial,
        setup.elapsed().as_secs_f64()
    );

    let mut to_deploy = Vec::new();
    let mut to_webhook = Vec::new();
    let mut to_finish = Vec::new();
    for k in 0..o.versions {
        let (app, workload) = (k % o.apps, k % o.workloads);
        let before = arrivals.len();
        api.post(
            "/orgs/default/artefact-versions",
            json!({"type": "container", "name": format!("registry.bench/app-{app}/w{workload}"),
                   "version": format!("v{}", k + 1), "ref": "refs/heads/main"}),
        )
        .await?;
        let returned = millis(SystemTime::now());
        wait_for(&arrivals, before + o.envs, Duration::from_secs(30)).await?;
        for arrival in &arrivals.snapshot()[before..] {
            to_webhook.push(millis(arrival.at) - returned);
            let path = format!(
                "/orgs/default/apps/{}/envs/{}/deploys/{}",
                arrival.body["app_id"].as_str().unwrap_or_default(),
                arrival.body["env_id"].as_str().unwrap_or_default(),
                arrival.body["deploy_id"].as_str().unwrap_or_default()
            );
            let deploy = api.call(reqwest::Method::GET, &path, None).await?;
            let created = parse_time(deploy["created_at"].as_str().unwrap_or_default())
                .context("created_at")?;
            to_deploy.push(created - returned);
            let finished = parse_time(deploy["status_changed_at"].as_str().unwrap_or_default())
                .context("status_changed_at")?;
            to_finish.push(finished - returned);
        }
    }
    to_deploy.sort_by(f64::total_cmp);
    to_webhook.sort_by(f64::total_cmp);
    to_finish.sort_by(f64::total_cmp);

    // Delivery rate: one app whose webhooks all hear environment creation.
    let rate = delivery_burst(&api, &o, &arrivals, &hook_url, "fanout", None).await?;
    // The same with a SIGKILL in the middle.
    let binary = o.server_binary.clone();
    let restart = |server: &mut std::process::Child| -> anyhow::Result<String> {
        server.kill()?;
        server.wait()?;
        let (child, base) = start_server(&binary, &data_dir, &env)?;
        *server = child;
        Ok(base)
    };
    let (lost, duplicates, expected) = {
        let api2 = api.clone();
        let kill = |api: &Api| -> anyhow::Result<Api> {
            let base = restart(&mut server)?;
            Ok(Api {
                http: api.http.clone(),
                base,
            })
        };
        let result = delivery_burst(
            &api2,
            &o,
            &arrivals,
            &hook_url,
            "restart",
            Some(Box::new(kill)),
        )
        .await?;
        (result.lost, result.duplicates, result.expected)
    };
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&scratch);

    println!(
        "automation benchmark: {} apps × {} envs × {} workloads, {} active rules, debounce 0, {} versions, release build",
        o.apps,
        o.envs,
        o.workloads,
        o.apps * o.envs,
        o.versions
    );
    println!(
        "{:<52}{:>12}{:>12}",
        "from the version POST returning to", "p50 (ms)", "p99 (ms)"
    );
    println!(
        "{:<52}{:>12.1}{:>12.1}",
        "(a) the deployment existing",
        percentile(&to_deploy, 0.5),
        percentile(&to_deploy, 0.99)
    );
    println!(
        "{:<52}{:>12.1}{:>12.1}",
        "    the deployment finished (target none)",
        percentile(&to_finish, 0.5),
        percentile(&to_finish, 0.99)
    );
    println!(
        "{:<52}{:>12.1}{:>12.1}",
        "(b) the webhook arriving (target p99 <= 20)",
        percentile(&to_webhook, 0.5),
        percentile(&to_webhook, 0.99)
    );
    println!(
        "{:<52}{:>12}{:>12}",
        "Keel (polls every 1 min), worst case", "60000", "60000"
    );
    println!(
        "{:<52}{:>12}{:>12}",
        "Argo CD Image Updater (every 2 min), worst case", "120000", "120000"
    );
    println!(
        "{:<52}{:>12}{:>12}",
        "Kargo (every 5 min), worst case", "300000", "300000"
    );
    println!();
    println!(
        "{:<52}{:>12}{:>12}",
        "outbound deliveries", "gangplank", "target"
    );
    println!(
        "{:<52}{:>12.0}{:>12}",
        "deliveries/s to a local receiver", rate.per_second, ">= 2000"
    );
    println!("{:<52}{:>12}{:>12}", "lost (no restart)", rate.lost, "0");
    println!(
        "{:<52}{:>12}{:>12}",
        format!("lost of {expected} across a SIGKILL mid-burst"),
        lost,
        "0"
    );
    println!(
        "{:<52}{:>12}{:>12}",
        "re-sent after the SIGKILL (at least once)", duplicates, "-"
    );
    Ok(())
}

struct Burst {
    per_second: f64,
    lost: usize,
    duplicates: usize,
    expected: usize,
}

type Kill<'a> = Box<dyn FnOnce(&Api) -> anyhow::Result<Api> + 'a>;

/// Creates an app with `fanout_webhooks` webhooks on environment creation, then
/// `fanout_envs` environments; waits for every delivery. With `kill`, the server is killed
/// and restarted once half have arrived.
async fn delivery_burst(
    api: &Api,
    o: &Options,
    arrivals: &Arrivals,
    hook_url: &str,
    app: &str,
    kill: Option<Kill<'_>>,
) -> anyhow::Result<Burst> {
    api.post("/orgs/default/apps", json!({"id": app})).await?;
    for h in 0..o.fanout_webhooks {
        api.post(
            &format!("/orgs/default/apps/{app}/webhooks"),
            json!({"id": format!("{app}-{h}"), "url": hook_url, "triggers": [{"scope": "environment", "type": "created"}],
                   "payload": {"env": "${env_id}"}}),
        )
        .await?;
    }
    let start = arrivals.len();
    let expected = o.fanout_webhooks * o.fanout_envs;
    let mut handles = Vec::new();
    for chunk in (0..o.fanout_envs)
        .collect::<Vec<_>>()
        .chunks(o.fanout_envs.div_ceil(8).max(1))
    {
        let (api, chunk, app) = (api.clone(), chunk.to_vec(), app.to_owned());
        handles.push(tokio::spawn(async move {
            for e in chunk {
                api.post(
                    &format!("/orgs/default/apps/{app}/envs"),
                    json!({"id": format!("e{e}"), "name": format!("e{e}")}),
                )
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    if let Some(kill) = kill {
        wait_for(arrivals, start + expected / 2, Duration::from_secs(120)).await?;
        let restarted = kill(api)?;
        wait_ready(&restarted.http, &restarted.base).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let unique = loop {
        let seen: HashSet<String> = arrivals.snapshot()[start..]
            .iter()
            .map(|a| a.webhook_id.clone())
            .collect();
        if seen.len() >= expected || Instant::now() > deadline {
            break seen.len();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let batch = arrivals.snapshot()[start..].to_vec();
    let first = batch
        .iter()
        .map(|a| millis(a.at))
        .fold(f64::INFINITY, f64::min);
    let last = batch.iter().map(|a| millis(a.at)).fold(0.0, f64::max);
    Ok(Burst {
        per_second: unique as f64 / ((last - first) / 1000.0).max(0.001),
        lost: expected.saturating_sub(unique),
        duplicates: batch.len() - unique,
        expected,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_api_timestamps() {
        assert_eq!(super::parse_time("1970-01-01T00:00:01.500Z"), Some(1500.0));
        assert_eq!(
            super::parse_time("2020-06-22T09:37:23.523Z"),
            Some(1_592_818_643_523.0)
        );
    }
}
