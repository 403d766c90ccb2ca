//! `list`: memory and throughput while clients walk every page of a large version list.
//!
//! Loads N artefact versions (default 1,000,000), restarts the server so its peak-memory mark
//! covers the listing alone, then has several clients walk `GET /orgs/default/artefact-versions`
//! to the end by following `Link` headers, all at once. Prints the idle footprint, the peak
//! during the listing (the kernel's high-water mark and sampled RSS) and pages per second;
//! every client must see every version exactly once.
//!
//! Loading: by default the rows go straight into the server's own SQLite file (schema from the
//! server's migrations, the columns the API writes, one transaction), because a million API
//! posts take minutes; `--via-api` posts them through the API instead.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::server::{TOKEN, read_status_kib, start_server, wait_ready};

struct Options {
    server_binary: PathBuf,
    versions: u64,
    clients: usize,
    per_page: usize,
    via_api: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        server_binary: PathBuf::new(),
        versions: 1_000_000,
        clients: 8,
        per_page: 100,
        via_api: false,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server-binary" => o.server_binary = PathBuf::from(value()?),
            "--versions" => o.versions = value()?.parse().context("--versions")?,
            "--clients" => o.clients = value()?.parse().context("--clients")?,
            "--per-page" => o.per_page = value()?.parse().context("--per-page")?,
            "--via-api" => o.via_api = true,
            other => bail!("unknown option {other}"),
        }
    }
    ensure!(
        !o.server_binary.as_os_str().is_empty(),
        "--server-binary is required"
    );
    ensure!(o.clients > 0, "--clients must be at least 1");
    ensure!(
        (1..=100).contains(&o.per_page),
        "--per-page must be 1 to 100"
    );
    Ok(o)
}

/// Artefacts the versions are spread over.
const ARTEFACTS: u64 = 8;

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let scratch = std::env::temp_dir().join(format!("gangplank-bench-list-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).context("creating the scratch directory")?;
    let result = measure(&o, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn measure(o: &Options, scratch: &Path) -> anyhow::Result<()> {
    let data_dir = scratch.join("server");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(o.clients.max(32))
        .build()?;
    let loaded = Instant::now();
    {
        let (mut server, base) = start_server(&o.server_binary, &data_dir, &[])?;
        wait_ready(&http, &base).await?;
        if o.via_api {
            load_via_api(&http, &base, o.versions).await?;
        }
        let _ = server.kill();
        let _ = server.wait();
    }
    if !o.via_api {
        load_via_sql(&data_dir.join("gangplank.db"), o.versions)?;
    }
    let load_time = loaded.elapsed();

    let (mut server, base) = start_server(&o.server_binary, &data_dir, &[])?;
    let pid = server.id();
    wait_ready(&http, &base).await?;
    // Let start-up allocations settle before reading the idle footprint.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = read_status_kib(pid, "VmRSS:")?;

    let done = Arc::new(AtomicBool::new(false));
    let sampled_peak = Arc::new(AtomicU64::new(idle_rss));
    let sampler = {
        let (done, peak) = (done.clone(), sampled_peak.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(rss) = read_status_kib(pid, "VmRSS:") {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let started = Instant::now();
    let mut walkers = Vec::new();
    for _ in 0..o.clients {
        let (http, base, per_page) = (http.clone(), base.clone(), o.per_page);
        walkers.push(tokio::spawn(
            async move { walk(&http, &base, per_page).await },
        ));
    }
    let mut pages = 0u64;
    let mut outcome = Ok(());
    for walker in walkers {
        match walker.await? {
            Ok((walked_pages, seen)) => {
                pages += walked_pages;
                if seen != o.versions && outcome.is_ok() {
                    outcome = Err(anyhow::anyhow!(
                        "a client saw {seen} distinct versions of {}",
                        o.versions
                    ));
                }
            }
            Err(error) if outcome.is_ok() => outcome = Err(error),
            Err(_) => {}
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let peak_hwm = read_status_kib(pid, "VmHWM:")?;
    let _ = server.kill();
    let _ = server.wait();
    outcome?;

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "list benchmark: {} versions loaded {} in {:.1} s; {} clients walk every page of {}",
        o.versions,
        if o.via_api { "via the API" } else { "via SQL" },
        load_time.as_secs_f64(),
        o.clients,
        o.per_page
    );
    println!("{:<44} {:>14}", "measure", "gangplank");
    println!("{:<44} {:>14}", "pages served", pages);
    println!("{:<44} {:>14.1}", "listing time (s)", elapsed.as_secs_f64());
    println!(
        "{:<44} {:>14.0}",
        "pages/s",
        pages as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{:<44} {:>14.0}",
        "versions/s",
        (o.versions * o.clients as u64) as f64 / elapsed.as_secs_f64()
    );
    println!("{:<44} {:>14.1}", "idle RSS (MB)", mib(idle_rss));
    println!(
        "{:<44} {:>14.1}",
        "peak RSS while listing, sampled (MB)",
        mib(sampled_peak.load(Ordering::Relaxed))
    );
    println!(
        "{:<44} {:>14.1}",
        "peak RSS, high-water mark (MB)",
        mib(peak_hwm)
    );
    Ok(())
}

/// Follows `Link` headers from the first page to the last; returns the pages fetched and the
/// number of distinct versions seen (an error if any came twice).
async fn walk(http: &reqwest::Client, base: &str, per_page: usize) -> anyhow::Result<(u64, u64)> {
    let mut url = format!("{base}/orgs/default/artefact-versions?per_page={per_page}");
    let mut seen = HashSet::new();
    let mut pages = 0u64;
    loop {
        let response = http.get(&url).bearer_auth(TOKEN).send().await?;
        ensure!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        let next = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.strip_prefix('<')?.split_once('>'))
            .map(|(target, _)| format!("{base}{target}"));
        let page: Vec<serde_json::Value> = response.json().await?;
        pages += 1;
        for version in &page {
            let id = version["id"].as_str().context("a version without id")?;
            ensure!(seen.insert(id.to_owned()), "version {id} came twice");
        }
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    Ok((pages, seen.len() as u64))
}

/// Writes `count` versions into the stopped server's database in one transaction, with the
/// columns the API writes for a container version with a commit and no digest.
fn load_via_sql(db: &Path, count: u64) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(db).context("opening the server's database")?;
    let tx = conn.transaction()?;
    let admin: String = tx.query_row(
        "SELECT user_id FROM org_members WHERE org_id = 'default' LIMIT 1",
        [],
        |row| row.get(0),
    )?;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    for a in 0..ARTEFACTS {
        tx.execute(
            "INSERT INTO artefacts (id, org_id, name, kind, created_at, created_by, updated_at, updated_by) \
             VALUES ($1, 'default', $2, 'container', $3, $4, $3, $4)",
            (
                format!("00000000-0000-4000-8000-{a:012x}"),
                format!("registry.example.com/team/app{a}"),
                now,
                &admin,
            ),
        )?;
    }
    {
        let mut insert = tx.prepare(
            "INSERT INTO artefact_versions (id, org_id, artefact_id, version, git_ref, commit_sha, \
             digest, content_hash, archived, spec, created_at, created_by, updated_at, updated_by) \
             VALUES ($1, 'default', $2, $3, 'refs/heads/main', $4, '', '', FALSE, NULL, $5, $6, $5, $6)",
        )?;
        for n in 0..count {
            insert.execute((
                format!("{n:08x}-0000-4000-8000-000000000000"),
                format!("00000000-0000-4000-8000-{:012x}", n % ARTEFACTS),
                format!("1.{}.{n}", n % ARTEFACTS),
                format!("{n:040x}"),
                now,
                &admin,
            ))?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Posts `count` versions through the API, 32 at a time.
async fn load_via_api(http: &reqwest::Client, base: &str, count: u64) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let url = Arc::new(format!("{base}/orgs/default/artefact-versions"));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (http, url, next) = (http.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return anyhow::Ok(());
                }
                let body = serde_json::json!({
                    "type": "container",
                    "name": format!("registry.example.com/team/app{}", n % ARTEFACTS),
                    "version": format!("1.{}.{n}", n % ARTEFACTS),
                    "ref": "refs/heads/main",
                    "commit": format!("{n:040x}"),
                });
                let response = http
                    .post(url.as_str())
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "posting a version: {}",
                    response.status()
                );
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
