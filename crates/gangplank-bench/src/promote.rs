//! `promote`: issue 13's three measurements in one run, on the same local docker-registries
//! (htpasswd auth), with one image of `--megabytes` MB in `--layers` layers of random bytes
//! built with Docker FROM scratch and pushed to `ecr-dev/repo-1`:
//! (a) dev → test → prod through a real `gangplank serve` pipeline run (approvals by API as
//! soon as they appear) against the seed's `docker pull` + `tag` + `push` per stage;
//! (b) one promotion across registries with other credentials, as the `promote-image` action
//! runs it (copy by digest, the replaced image archived, `latest` moved, every tag write
//! journalled), against `skopeo copy` of the same image between the same registries;
//! (c) an approval's POST returning → `latest` moved, p99 over `--runs` runs.
//! One table: measured, peer or ceiling, ratio, target, pass or fail.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use gangplank_oci::{Client, Credentials};
use gangplank_server::promotion::{promote, registry::Repo};
use gangplank_testkit::{Auth, Registry};

use crate::promote_pipeline::Gangplank;
use crate::promote_seed::Docker;
use crate::registry::{noise, push_image};

const DEV: (&str, &str) = ("dev-robot", "bench-dev-password");
const PROD: (&str, &str) = ("prod-robot", "bench-prod-password");
/// (a)'s target: the pipeline's time as a fraction of the seed's.
const STAGES_TARGET: f64 = 0.05;
/// (b)'s target: Gangplank's time as a fraction of `skopeo copy`'s.
const ACROSS_TARGET: f64 = 1.0;
/// (c)'s ceiling, milliseconds.
const APPROVAL_P99_MS: f64 = 50.0;

struct Options {
    server_binary: PathBuf,
    megabytes: usize,
    layers: usize,
    runs: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        server_binary: PathBuf::new(),
        megabytes: 500,
        layers: 5,
        runs: 200,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server-binary" => o.server_binary = PathBuf::from(value()?),
            "--megabytes" => o.megabytes = value()?.parse()?,
            "--layers" => o.layers = value()?.parse()?,
            "--runs" => o.runs = value()?.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    if o.server_binary.as_os_str().is_empty() {
        bail!("--server-binary is required");
    }
    if o.layers == 0 || o.runs == 0 {
        bail!("--layers and --runs must be at least 1");
    }
    Ok(o)
}

fn client(registry: &Registry, creds: (&str, &str)) -> Client {
    Client::new(
        reqwest::Client::new(),
        &registry.host(),
        Some(Credentials {
            username: creds.0.to_owned(),
            password: creds.1.to_owned(),
        }),
        true,
    )
}

fn repo(registry: &Registry, path: &str, creds: (&str, &str)) -> Repo {
    Repo {
        client: std::sync::Arc::new(client(registry, creds)),
        image: format!("{}/{path}", registry.host()),
        path: path.to_owned(),
    }
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let dir = tempfile::tempdir()?;
    // The registry tells the bench when a tag is stored (its push notification), so (c) sees
    // `latest` move without polling the registry it is timing.
    let (events_url, events) = crate::receiver::start().await?;
    let dev = Registry::start_notifying(Auth::Htpasswd(DEV.0, DEV.1), &events_url, &[]);
    let prod = Registry::start_with(Auth::Htpasswd(PROD.0, PROD.1));
    let dev_client = client(&dev, DEV);
    let prod_client = client(&prod, PROD);
    let host = dev.host();

    eprintln!(
        "building and pushing a {} MB image in {} layers with Docker…",
        o.megabytes, o.layers
    );
    let mut docker = Docker::login(dir.path(), &host, DEV.0, DEV.1)?;
    let image = |path: &str| format!("{host}/{path}:latest");
    let (dev_image, test_image, prod_image) = (
        image("ecr-dev/repo-1"),
        image("seed-test/repo-1"),
        image("seed-prod/repo-1"),
    );
    docker.build_and_push(dir.path(), &dev_image, o.megabytes, o.layers)?;
    let base = dev_client.get_manifest("ecr-dev/repo-1", "latest").await?;
    let digest = base.digest.clone();
    // Something live in test and prod already, so each promotion archives it as 0.1.
    for (n, path) in ["ecr-test/repo-1", "ecr-prod/repo-1"].iter().enumerate() {
        push_image(&dev_client, path, "latest", &[noise(4096, n as u64 + 3)]).await?;
    }
    push_image(&prod_client, "ecr-prod/repo-1", "latest", &[noise(4096, 5)]).await?;

    // (a) The seed's method, then the pipeline, on the same registry.
    eprintln!("(a) docker pull + tag + push, dev → test → prod…");
    let stages = docker.seed_promotion(&[
        (dev_image.as_str(), test_image.as_str()),
        (test_image.as_str(), prod_image.as_str()),
    ])?;
    let seed: f64 = stages.iter().sum();
    eprintln!("(a) the pipeline run, dev → test → prod…");
    let server = Gangplank::start(&o.server_binary, &dir.path().join("data"), &host, DEV).await?;
    let pipeline = server.promote_through_stages(&host, &digest).await?;
    for path in ["ecr-test/repo-1", "ecr-prod/repo-1"] {
        let live = dev_client.resolve_digest(path, "latest").await?;
        let tags = dev_client.all_tags(path).await?;
        if live != digest || !tags.iter().any(|t| t == "0.1") {
            bail!("(a) left {path} at {live} with tags {tags:?}");
        }
    }

    // (b) Across registries, skopeo then Gangplank, the same image between the same two.
    eprintln!("(b) across registries…");
    let t = Instant::now();
    let output = std::process::Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .args(["--src-creds", &format!("{}:{}", DEV.0, DEV.1)])
        .args(["--dest-creds", &format!("{}:{}", PROD.0, PROD.1)])
        .arg(format!("docker://{host}/ecr-dev/repo-1@{digest}"))
        .arg(format!(
            "docker://{}/ecr-prod-skopeo/repo-1:latest",
            prod.host()
        ))
        .output()
        .context("running skopeo (install it: apt-get install skopeo)")?;
    if !output.status.success() {
        bail!("skopeo copy: {}", String::from_utf8_lossy(&output.stderr));
    }
    let skopeo = t.elapsed().as_secs_f64();
    let store_url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let store = gangplank_store::Store::connect(&store_url).await?;
    let (from, to) = (
        repo(&dev, "ecr-dev/repo-1", DEV),
        repo(&prod, "ecr-prod/repo-1", PROD),
    );
    let t = Instant::now();
    let row = promote::promote(
        &store,
        &from,
        &to,
        promote::Request {
            promotion_id: "bench".into(),
            org_id: "bench".into(),
            app_id: "bench".into(),
            step_key: "bench/promote/0".into(),
            run_id: "bench".into(),
            job_id: "promote".into(),
            step_index: 0,
            source_tag: "latest".into(),
            source_digest: digest.clone(),
            live_tag: "latest".into(),
            created_by: "bench".into(),
            approvals: "[]".into(),
            automatic: false,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("promotion: {e}"))?;
    let across = t.elapsed().as_secs_f64();
    let live = prod_client
        .resolve_digest("ecr-prod/repo-1", "latest")
        .await?;
    if live != digest || row.archive_tag != "0.1" {
        bail!(
            "(b) left latest at {live} and archived {:?}",
            row.archive_tag
        );
    }

    // (c) Approval → latest moved.
    eprintln!("(c) {} runs: approval POST → latest moved…", o.runs);
    let mut latencies = server
        .approval_latencies(&host, &dev_client, &base, o.runs, &events)
        .await?;
    latencies.sort_by(f64::total_cmp);
    let p99 = percentile(&latencies, 0.99);
    drop(server);
    drop(docker);

    let verdict = |ratio: f64, target: f64| if ratio <= target { "pass" } else { "FAIL" };
    println!(
        "promote benchmark: {} MB image in {} layers (random bytes, built with Docker FROM scratch), local docker-registries with htpasswd auth, release build",
        o.megabytes, o.layers
    );
    println!(
        "{:<44}{:>12}  {:<34}{:>8}{:>10}{:>8}",
        "", "measured", "peer or ceiling", "ratio", "target", "result"
    );
    let stage_ratio = pipeline / seed;
    println!(
        "{:<44}{:>10.2} s  {:<34}{:>7.3}x{:>10}{:>8}",
        "(a) dev → test → prod, pipeline run",
        pipeline,
        format!("{seed:.2} s docker pull+tag+push"),
        stage_ratio,
        format!("<= {STAGES_TARGET}x"),
        verdict(stage_ratio, STAGES_TARGET)
    );
    let across_ratio = across / skopeo;
    println!(
        "{:<44}{:>10.2} s  {:<34}{:>7.3}x{:>10}{:>8}",
        "(b) across registries, promote-image",
        across,
        format!("{skopeo:.2} s skopeo copy"),
        across_ratio,
        format!("<= {ACROSS_TARGET}x"),
        verdict(across_ratio, ACROSS_TARGET)
    );
    let approval_ratio = p99 / APPROVAL_P99_MS;
    println!(
        "{:<44}{:>9.1} ms  {:<34}{:>7.3}x{:>10}{:>8}",
        format!("(c) approval POST → latest moved, p99/{}", o.runs),
        p99,
        format!("{APPROVAL_P99_MS} ms ceiling"),
        approval_ratio,
        format!("<= {APPROVAL_P99_MS} ms"),
        verdict(approval_ratio, 1.0)
    );
    println!(
        "(a) the seed's stages: {} s (dev → test, test → prod); the pipeline's time runs from the version's POST to the run succeeded, two approvals included",
        stages
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" s, ")
    );
    println!(
        "(b) {:.1} MB of blobs moved, digest preserved, the replaced image archived as {} (versions {} → {})",
        row.bytes_moved as f64 / (1024.0 * 1024.0),
        row.archive_tag,
        row.version_before,
        row.version_after
    );
    println!(
        "(c) p50 {:.1} ms, max {:.1} ms; from the POST's return to the registry's push notification of `latest` at the new digest",
        percentile(&latencies, 0.5),
        latencies.last().copied().unwrap_or_default()
    );
    Ok(())
}
