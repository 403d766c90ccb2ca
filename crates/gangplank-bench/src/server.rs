//! Starting the real server for a benchmark, and reading its memory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The bootstrap token of every benchmark server.
pub const TOKEN: &str = "gp_bench_token_0123456789abcdef";

pub fn start_server(
    binary: &Path,
    data_dir: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(binary)
        .arg("serve")
        .env("GANGPLANK_LISTEN", "127.0.0.1:0")
        .env("GANGPLANK_DATA_DIR", data_dir)
        .env("GANGPLANK_BOOTSTRAP_TOKEN", TOKEN)
        // GANGPLANK_BENCH_SERVER_LOG=FILE keeps the server's log (at RUST_LOG, default warn)
        // for looking into a result.
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::piped())
        .stderr(match std::env::var_os("GANGPLANK_BENCH_SERVER_LOG") {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .context("opening GANGPLANK_BENCH_SERVER_LOG")?,
            ),
            None => Stdio::null(),
        })
        .envs(env.iter().copied())
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

/// One JSON request to a benchmark server as its administrator (`body` `null`: none); the
/// answer's JSON (`null` when empty or not JSON), or an error naming the request and status.
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let mut request = http
        .request(method.parse()?, format!("{base}{path}"))
        .bearer_auth(TOKEN);
    if !body.is_null() {
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
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

pub async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
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

pub fn read_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
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
