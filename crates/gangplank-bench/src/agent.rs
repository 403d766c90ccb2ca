//! `bench agent`: authenticated `/deploy` requests per second and their latency, with a no-op
//! compose command, against Debian's `webhook` (adnanh/webhook) running the same script behind
//! an HMAC rule (and waiting for it, as the agent's synchronous requests do); idle and loaded
//! RSS of both, measured in the same run. A second table (`agent_converge`) times
//! level-triggered deployments: a no-change apply beside `GET /state`, and a version's way to
//! the port on the real engine beside a bare compose pull and up.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::Sha256;

use crate::server::read_status_kib;

const SECRET: &str = "bench-hmac-secret";

struct Options {
    binary: PathBuf,
    clients: usize,
    seconds: u64,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        binary: PathBuf::new(),
        clients: 32,
        seconds: 5,
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--server-binary" => options.binary = PathBuf::from(value),
            "--clients" => options.clients = value.parse()?,
            "--seconds" => options.seconds = value.parse()?,
            _ => bail!("unknown option {flag}"),
        }
    }
    Ok(options)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Measured {
    rate: f64,
    p50: f64,
    p99: f64,
    errors: u64,
    idle_mb: f64,
    loaded_mb: f64,
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let scratch =
        std::env::temp_dir().join(format!("gangplank-bench-agent-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let result = measure_both(&options, &scratch).await;
    let converge = match &result {
        Ok(_) => Some(crate::agent_converge::measure(&options.binary, &scratch).await),
        Err(_) => None,
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let (agent, webhook) = result?;
    println!(
        "agent benchmark: {} clients, {} s each, no-op compose script, release build",
        options.clients, options.seconds
    );
    println!(
        "{:<34} {:>16} {:>16} {:>16}",
        "measure", "gangplank agent", "webhook 2.8", "target"
    );
    let row = |name: &str, a: f64, w: f64, target: &str| {
        println!("{name:<34} {a:>16.2} {w:>16.2} {target:>16}");
    };
    row(
        "authenticated /deploy per second",
        agent.rate,
        webhook.rate,
        ">= 1.0x webhook",
    );
    row(
        "ratio to webhook",
        agent.rate / webhook.rate,
        1.0,
        ">= 1.00",
    );
    row("p50 latency (ms)", agent.p50, webhook.p50, "");
    row("p99 latency (ms)", agent.p99, webhook.p99, "");
    row(
        "idle RSS (MB)",
        agent.idle_mb,
        webhook.idle_mb,
        "agent <= 10",
    );
    row(
        "loaded RSS (MB, peak)",
        agent.loaded_mb,
        webhook.loaded_mb,
        "<= 1.0x webhook",
    );
    row("errors", agent.errors as f64, webhook.errors as f64, "0");
    if let Some(converge) = converge {
        crate::agent_converge::print(&converge?);
    }
    Ok(())
}

async fn measure_both(options: &Options, dir: &Path) -> anyhow::Result<(Measured, Measured)> {
    let script = dir.join("noop.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n")?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let compose_file = dir.join("compose.yml");
    std::fs::write(
        &compose_file,
        "services:\n  web:\n    image: example.test/web:1\n",
    )?;
    let (key, public) = gangplank_testkit::key_pair(dir, "ec", "ec");

    // Every agent request carries its own token (ES256, unique jti): the strictest path, the
    // one the server's requests take. Signed before the clock starts.
    let expected = 20_000 * options.seconds as usize;
    let encoding = EncodingKey::from_ec_pem(&std::fs::read(&key)?)?;
    let exp = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 600) as i64;
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..expected)
            .map(|n| {
                jsonwebtoken::encode(
                    &Header::new(Algorithm::ES256),
                    &json!({"iss": "bench", "exp": exp, "jti": format!("bench-{n}")}),
                    &encoding,
                )
            })
            .collect::<Result<_, _>>()?,
    );

    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncompose_command = \"{}\"\n[auth]\npublic_keys = [\"{}\"]\n[[project]]\nname = \"bench\"\nfiles = [\"{}\"]\nhealth_timeout = \"0s\"\n",
            dir.join("state").display(),
            script.display(),
            public.display(),
            compose_file.display()
        ),
    )?;
    let mut child = Command::new(&options.binary)
        .args(["agent", "--config", path(&config)?])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting gangplank agent")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("agent stdout")?).read_line(&mut line)?;
    let agent = Killed(child);
    let agent_base = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected agent line {line:?}"))?
        .to_owned();
    let body = base64::engine::general_purpose::STANDARD.encode(r#"{"service":"web"}"#);
    let next = Arc::new(AtomicUsize::new(0));
    let agent_result = {
        let tokens = tokens.clone();
        let url = format!("{agent_base}/deploy");
        let body = body.clone();
        measure(
            agent.0.id(),
            &format!("{agent_base}/health"),
            options,
            move |http| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let token = tokens.get(n).cloned();
                let request = http
                    .post(&url)
                    .header("content-type", "text/plain")
                    .body(body.clone());
                token.map(|t| request.bearer_auth(t))
            },
        )
        .await?
    };
    drop(agent);

    let port = gangplank_testkit::free_port();
    let hooks = dir.join("hooks.json");
    std::fs::write(
        &hooks,
        json!([{
            "id": "deploy",
            "execute-command": script,
            "include-command-output-in-response": true,
            "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": SECRET,
                "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}}
        }])
        .to_string(),
    )?;
    let webhook = Killed(
        Command::new("webhook")
            .args([
                "-hooks",
                path(&hooks)?,
                "-ip",
                "127.0.0.1",
                "-port",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting webhook (Debian package `webhook`)")?,
    );
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())?;
    let webhook_body = r#"{"service":"web"}"#;
    mac.update(webhook_body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let url = format!("http://127.0.0.1:{port}/hooks/deploy");
    let ready = url.clone();
    let webhook_result = measure(webhook.0.id(), &ready, options, move |http| {
        Some(
            http.post(&url)
                .header("content-type", "application/json")
                .header("X-Hub-Signature-256", &signature)
                .body(webhook_body),
        )
    })
    .await?;
    Ok((agent_result, webhook_result))
}

/// Waits until `ready_url` answers, reads the idle RSS, runs the load, reads the peak RSS.
async fn measure(
    pid: u32,
    ready_url: &str,
    options: &Options,
    request: impl Fn(&reqwest::Client) -> Option<reqwest::RequestBuilder> + Send + Sync + 'static,
) -> anyhow::Result<Measured> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(ready_url).send().await.is_err() {
        if Instant::now() > deadline {
            bail!("{ready_url} did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = read_status_kib(pid, "VmRSS:")?;
    let request = Arc::new(request);
    let duration = Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..options.clients {
        let (http, request) = (http.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while started.elapsed() < duration {
                let Some(builder) = request(&http) else { break };
                let sent = Instant::now();
                match builder.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let loaded = read_status_kib(pid, "VmHWM:")?;
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Measured {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
        idle_mb: idle as f64 / 1024.0,
        loaded_mb: loaded as f64 / 1024.0,
    })
}

fn path(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("non-UTF-8 path")
}
