//! Benchmarks for `cargo xtask bench`: `ingest` measures artefact-version ingestion over HTTP
//! against the ceiling it is judged by, the raw rate of durable single-row SQLite inserts on
//! the same disk, measured in the same run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

const TOKEN: &str = "gp_bench_token_0123456789abcdef";

struct Options {
    server_binary: PathBuf,
    seconds: u64,
    clients: usize,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        server_binary: PathBuf::new(),
        seconds: 10,
        clients: 32,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server-binary" => options.server_binary = PathBuf::from(value()?),
            "--seconds" => options.seconds = value()?.parse().context("--seconds")?,
            "--clients" => options.clients = value()?.parse().context("--clients")?,
            other => bail!("unknown option {other}"),
        }
    }
    if options.server_binary.as_os_str().is_empty() {
        bail!("--server-binary is required");
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((verb, rest)) if verb == "ingest" => ingest(parse_options(rest)?).await,
        _ => {
            bail!("usage: gangplank-bench ingest --server-binary PATH [--seconds N] [--clients N]")
        }
    }
}

async fn ingest(options: Options) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("gangplank-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).context("creating the scratch directory")?;
    let ceiling = sqlite_ceiling(
        &scratch.join("ceiling.db"),
        Duration::from_secs(options.seconds.min(5)),
    )
    .await?;

    let data_dir = scratch.join("server");
    let (mut server, base) = start_server(&options.server_binary, &data_dir)?;
    let pid = server.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients)
        .build()?;
    wait_ready(&http, &base).await?;
    // Let start-up allocations settle before reading the idle footprint.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = read_status_kib(pid, "VmRSS:")?;

    let load = run_load(
        &http,
        &base,
        options.clients,
        Duration::from_secs(options.seconds),
    )
    .await;
    let peak_rss = read_status_kib(pid, "VmHWM:")?;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&scratch);
    let load = load?;

    let rate = load.count as f64 / load.elapsed.as_secs_f64();
    println!(
        "ingest benchmark: {} clients, {} s, release build, data on {}",
        options.clients,
        options.seconds,
        scratch.parent().unwrap_or(&scratch).display()
    );
    println!(
        "{:<44} {:>14} {:>14}",
        "measure", "gangplank", "target/ceiling"
    );
    println!(
        "{:<44} {:>14.0} {:>14.0}",
        "versions/s (ceiling: durable 1-row SQLite tx)", rate, ceiling
    );
    println!(
        "{:<44} {:>14.2} {:>14}",
        "ratio to ceiling",
        rate / ceiling,
        ">= 1.00"
    );
    println!(
        "{:<44} {:>14.2} {:>14}",
        "p50 latency (ms)",
        load.percentile(0.50),
        ""
    );
    println!(
        "{:<44} {:>14.2} {:>14}",
        "p99 latency (ms)",
        load.percentile(0.99),
        "<= 25"
    );
    println!(
        "{:<44} {:>14.1} {:>14}",
        "idle RSS (MB)",
        idle_rss as f64 / 1024.0,
        "<= 20"
    );
    println!(
        "{:<44} {:>14.1} {:>14}",
        "peak RSS (MB)",
        peak_rss as f64 / 1024.0,
        ""
    );
    println!("{:<44} {:>14} {:>14}", "errors", load.errors, "0");
    Ok(())
}

/// Sequential inserts, one transaction per row, WAL with `synchronous=FULL`: every row durable.
async fn sqlite_ceiling(path: &Path, duration: Duration) -> anyhow::Result<f64> {
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await?;
    sqlx::query(
        "CREATE TABLE rows (id INTEGER PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < duration {
        sqlx::query("INSERT INTO rows (name, version) VALUES ($1, $2)")
            .bind("registry.example.com/team/app")
            .bind(count.to_string())
            .execute(&mut conn)
            .await?;
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn start_server(binary: &Path, data_dir: &Path) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(binary)
        .arg("serve")
        .env("GANGPLANK_LISTEN", "127.0.0.1:0")
        .env("GANGPLANK_DATA_DIR", data_dir)
        .env("GANGPLANK_BOOTSTRAP_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the server's address")?;
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line {line:?}"))?;
    Ok((child, address.to_owned()))
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the server did not become ready within 30 s")
}

fn read_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} missing"))?;
    line.split_whitespace()
        .nth(1)
        .context("malformed status line")?
        .parse()
        .context("parsing KiB")
}

struct Load {
    count: u64,
    errors: u64,
    elapsed: Duration,
    latencies_ms: Vec<f64>,
}

impl Load {
    fn percentile(&self, q: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_ms.len() - 1) as f64 * q).round() as usize;
        self.latencies_ms[index]
    }
}

async fn run_load(
    http: &reqwest::Client,
    base: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Load> {
    let url = Arc::new(format!("{base}/orgs/default/artefact-versions"));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut n = 0u64;
            while started.elapsed() < duration {
                let body = serde_json::json!({
                    "type": "container",
                    "name": format!("registry.example.com/team/app{}", client % 8),
                    "version": format!("1.{client}.{n}"),
                    "ref": "refs/heads/main",
                    "commit": format!("{:040x}", (client as u64) << 32 | n),
                });
                let sent = Instant::now();
                let response = http
                    .post(url.as_str())
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0)
                    }
                    _ => errors += 1,
                }
                n += 1;
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, task_errors) = task.await?;
        all.extend(latencies);
        errors += task_errors;
    }
    let elapsed = started.elapsed();
    all.sort_by(f64::total_cmp);
    Ok(Load {
        count: all.len() as u64,
        errors,
        elapsed,
        latencies_ms: all,
    })
}
