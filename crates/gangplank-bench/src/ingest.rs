//! `ingest`: artefact-version ingestion over HTTP against the ceiling it is judged by, the raw
//! rate of durable single-row SQLite inserts on the same disk, measured in the same run.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::server::{TOKEN, read_status_kib, start_server, wait_ready};

pub struct Options {
    server_binary: PathBuf,
    seconds: u64,
    clients: usize,
}

pub fn parse_options(args: &[String]) -> anyhow::Result<Options> {
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

pub async fn ingest(options: Options) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("gangplank-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).context("creating the scratch directory")?;
    let ceiling_time = Duration::from_secs(options.seconds.min(5));
    let raw_ceiling = rusqlite_ceiling(&scratch.join("raw.db"), ceiling_time)?;
    let sqlx_ceiling = sqlx_ceiling(&scratch.join("sqlx.db"), ceiling_time).await?;
    // Judged against the faster of the two drivers, so a slow driver cannot lower the bar.
    let ceiling = raw_ceiling.max(sqlx_ceiling);

    let data_dir = scratch.join("server");
    let (mut server, base) = start_server(&options.server_binary, &data_dir, &[])?;
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
        "{:<44} {:>14} {:>14.0}",
        "  ceiling via rusqlite (same thread)", "", raw_ceiling
    );
    println!(
        "{:<44} {:>14} {:>14.0}",
        "  ceiling via sqlx (worker thread)", "", sqlx_ceiling
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

/// Sequential inserts, one transaction per row, WAL with `synchronous=FULL`: every row durable,
/// through rusqlite on this thread, the least overhead SQLite allows.
fn rusqlite_ceiling(path: &Path, duration: Duration) -> anyhow::Result<f64> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         CREATE TABLE rows (id INTEGER PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL)",
    )?;
    let mut insert = conn.prepare("INSERT INTO rows (name, version) VALUES ($1, $2)")?;
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < duration {
        insert.execute(("registry.example.com/team/app", count.to_string()))?;
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// The same through sqlx, whose SQLite driver runs each statement on a worker thread.
async fn sqlx_ceiling(path: &Path, duration: Duration) -> anyhow::Result<f64> {
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
