//! `build`: issue 14's two measurements in one run, one table. (1) From a GitHub push
//! delivery's POST returning to the service answering the new commit's content, through a real
//! `gangplank serve`, a `gangplank agent` builder and a compose deploy (`build_github`), against
//! the same steps by hand on the same host (`git clone` + `docker build` + `docker push` +
//! compose `pull && up -d`, `build_hand`), `--builds` times each, interleaved: Gangplank's
//! overhead is the difference of the medians, target ≤ 1 s. (2) A registry push notification →
//! the version registered, p99 over `--pushes` pushes, ceiling 50 ms (`build_notify`).
//! `--skip-build` and `--skip-notify` leave one out.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::build_github::Stack;
use crate::build_hand::{ByHand, Steps};
use crate::registry::percentile;

/// (1)'s target: Gangplank's median minus the by-hand median, milliseconds.
const OVERHEAD_MS: f64 = 1000.0;
/// (2)'s ceiling, milliseconds.
const NOTIFY_P99_MS: f64 = 50.0;

struct Options {
    server_binary: PathBuf,
    builds: usize,
    pushes: usize,
    skip_build: bool,
    skip_notify: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        server_binary: PathBuf::new(),
        builds: 5,
        pushes: 500,
        skip_build: false,
        skip_notify: false,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server-binary" => o.server_binary = PathBuf::from(value()?),
            "--builds" => o.builds = value()?.parse()?,
            "--pushes" => o.pushes = value()?.parse()?,
            "--skip-build" => o.skip_build = true,
            "--skip-notify" => o.skip_notify = true,
            other => bail!("unknown option {other}"),
        }
    }
    if o.server_binary.as_os_str().is_empty() {
        bail!("--server-binary is required");
    }
    if o.pushes == 0 || o.builds == 0 {
        bail!("--builds and --pushes must be at least 1");
    }
    Ok(o)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "pass" } else { "FAIL" }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn seconds(values: &[f64]) -> String {
    values
        .iter()
        .map(|ms| format!("{:.2}", ms / 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An image tagged from the first commit's tree, kept for the whole run: its parent chain
/// holds the `COPY busybox` layer, which the agent's `docker rmi` of each build's image would
/// otherwise prune when no other image still needs it.
struct CacheAnchor(String);

impl CacheAnchor {
    fn build(context: &Path) -> anyhow::Result<CacheAnchor> {
        let tag = format!("gangplank-bench-cache:{}", std::process::id());
        let out = Command::new("docker")
            .args(["build", "--force-rm", "-q", "-t", &tag])
            .arg(context)
            .output()
            .context("running docker build")?;
        if !out.status.success() {
            bail!(
                "docker build of the cache anchor: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(CacheAnchor(tag))
    }
}

impl Drop for CacheAnchor {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

/// (1): each side's run times (ms), interleaved run by run.
async fn measure_builds(
    binary: &Path,
    dir: &Path,
    builds: usize,
) -> anyhow::Result<(Vec<f64>, Vec<Steps>)> {
    let pid = std::process::id();
    eprintln!("(1) setting up: registry, git server, server, agent, first build and deploy…");
    let mut stack = Stack::start(binary, &dir.join("gangplank"), &format!("gp-{pid}-0")).await?;
    // Build cache: every measured commit on either side changes only `VERSION`, and both
    // build the same Dockerfile with the same engine and settings, so both reuse the cached
    // `COPY busybox` layer (kept alive by the anchor) and build only the `COPY VERSION` layer.
    // Contents differ per side and run (`gp-…`, `hand-…`), so neither finds the other's layer.
    let _anchor = CacheAnchor::build(stack.tree.path())?;
    let mut hand = ByHand::new(
        &dir.join("by-hand"),
        &stack.registry.host(),
        &stack.git.url("shop.git"),
    )?;
    // The by-hand side's first deployment, untimed, as Gangplank's first one was.
    let content = format!("hand-{pid}-0");
    let commit = stack
        .tree
        .commit(&[("VERSION", content.as_bytes())], &content);
    stack.tree.push("main");
    hand.run(&commit, &content).await?;

    let (mut gangplank, mut by_hand) = (Vec::new(), Vec::new());
    for n in 1..=builds {
        let content = format!("gp-{pid}-{n}");
        let ms = stack.run(n, &content).await?;
        eprintln!("(1) run {n}: Gangplank {:.2} s", ms / 1000.0);
        gangplank.push(ms);
        let content = format!("hand-{pid}-{n}");
        let commit = stack
            .tree
            .commit(&[("VERSION", content.as_bytes())], &content);
        stack.tree.push("main");
        let steps = hand.run(&commit, &content).await?;
        eprintln!(
            "(1) run {n}: by hand {:.2} s (clone {:.0} + build {:.0} + push {:.0} + compose {:.0} + serve {:.0} ms)",
            steps.total() / 1000.0,
            steps.clone,
            steps.build,
            steps.push,
            steps.compose,
            steps.serve
        );
        by_hand.push(steps);
    }
    Ok((gangplank, by_hand))
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let dir = tempfile::tempdir()?;
    let builds = if o.skip_build {
        None
    } else {
        Some(measure_builds(&o.server_binary, &dir.path().join("build"), o.builds).await?)
    };
    let notify = if o.skip_notify {
        None
    } else {
        eprintln!("(2) registry notification → version registered…");
        Some(
            crate::build_notify::measure(&o.server_binary, &dir.path().join("notify"), o.pushes)
                .await?,
        )
    };
    println!("| measurement | Gangplank | peer or ceiling | target | result |");
    println!("|---|---|---|---|---|");
    if let Some((gangplank, by_hand)) = builds {
        let totals: Vec<f64> = by_hand.iter().map(Steps::total).collect();
        let (ours, theirs) = (median(&gangplank), median(&totals));
        let step =
            |f: fn(&Steps) -> f64| median(&by_hand.iter().map(f).collect::<Vec<_>>()) / 1000.0;
        println!(
            "| (1) GitHub push delivered → port answers the new commit, median of {} builds (each: {} s) | {:.2} s | by hand {:.2} s (each: {} s; medians: clone {:.2} + build {:.2} + push {:.2} + compose pull/up {:.2} + serve {:.2} s) | | |",
            gangplank.len(),
            seconds(&gangplank),
            ours / 1000.0,
            theirs / 1000.0,
            seconds(&totals),
            step(|s| s.clone),
            step(|s| s.build),
            step(|s| s.push),
            step(|s| s.compose),
            step(|s| s.serve),
        );
        println!(
            "| (1) Gangplank's overhead: its median − the by-hand median | {:.2} s | | ≤ {:.0} s | {} |",
            (ours - theirs) / 1000.0,
            OVERHEAD_MS / 1000.0,
            verdict(ours - theirs <= OVERHEAD_MS)
        );
    }
    if let Some(notify) = notify {
        let (p50, p99) = (
            percentile(&notify.sorted_ms, 0.50),
            percentile(&notify.sorted_ms, 0.99),
        );
        println!(
            "| (2) notification → version registered, p50 / p99 over {} pushes | {p50:.1} / {p99:.1} ms | ceiling {NOTIFY_P99_MS} ms | p99 ≤ {NOTIFY_P99_MS} ms | {} |",
            o.pushes,
            verdict(p99 <= NOTIFY_P99_MS)
        );
    }
    Ok(())
}
