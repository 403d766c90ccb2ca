//! `build`: issue 14's two measurements in one run. (1) From a GitHub push delivery's POST
//! returning to the service answering the new commit's content, through a real `gangplank
//! serve`, a `gangplank agent` builder and a compose deploy, against the same steps by hand
//! (`git clone` + `docker build` + `docker push` + `docker compose pull && up -d`): Gangplank's
//! overhead is the difference, target ≤ 1 s. (2) A registry push notification → the version
//! registered, p99 over `--pushes` pushes, ceiling 50 ms (`build_notify`).

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::registry::percentile;

/// (2)'s ceiling, milliseconds.
const NOTIFY_P99_MS: f64 = 50.0;

struct Options {
    server_binary: PathBuf,
    pushes: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        server_binary: PathBuf::new(),
        pushes: 500,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server-binary" => o.server_binary = PathBuf::from(value()?),
            "--pushes" => o.pushes = value()?.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    if o.server_binary.as_os_str().is_empty() {
        bail!("--server-binary is required");
    }
    if o.pushes == 0 {
        bail!("--pushes must be at least 1");
    }
    Ok(o)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "pass" } else { "FAIL" }
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let dir = tempfile::tempdir()?;
    eprintln!("(2) registry notification → version registered…");
    let notify =
        crate::build_notify::measure(&o.server_binary, &dir.path().join("notify"), o.pushes)
            .await?;
    let (p50, p99) = (
        percentile(&notify.sorted_ms, 0.50),
        percentile(&notify.sorted_ms, 0.99),
    );
    println!("| measurement | Gangplank | peer or ceiling | target | result |");
    println!("|---|---|---|---|---|");
    println!(
        "| (2) notification → version registered, p50 / p99 over {} pushes | {p50:.1} / {p99:.1} ms | ceiling {NOTIFY_P99_MS} ms | p99 ≤ {NOTIFY_P99_MS} ms | {} |",
        o.pushes,
        verdict(p99 <= NOTIFY_P99_MS)
    );
    Ok(())
}
