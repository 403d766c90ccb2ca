//! `promote` part (b): one image promotion across registries with other credentials, as the
//! `promote-image` action runs it (copy by digest, the replaced image archived as the next
//! version, the live tag moved; every tag write journalled in a SQLite store), against
//! `skopeo copy` of the same image between the same two registries, in the same run.
//! Parts (a) and (c) need the pipeline runner (approvals by API, dev → test → prod).

use std::time::Instant;

use anyhow::{Context, bail};
use gangplank_oci::{Client, Credentials};
use gangplank_server::promotion::{promote, registry::Repo};
use gangplank_testkit::{Auth, Registry};

use crate::registry::{noise, push_image};

const DEV: (&str, &str) = ("dev-robot", "bench-dev-password");
const PROD: (&str, &str) = ("prod-robot", "bench-prod-password");

struct Options {
    megabytes: usize,
    layers: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        megabytes: 500,
        layers: 5,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            // The server binary is not needed here; accepted so `cargo xtask bench` stays uniform.
            "--server-binary" => {
                value()?;
            }
            "--megabytes" => o.megabytes = value()?.parse()?,
            "--layers" => o.layers = value()?.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    if o.layers == 0 {
        bail!("--layers must be at least 1");
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
        client: client(registry, creds),
        image: format!("{}/{path}", registry.host()),
        path: path.to_owned(),
    }
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let dev = Registry::start_with(Auth::Htpasswd(DEV.0, DEV.1));
    let prod = Registry::start_with(Auth::Htpasswd(PROD.0, PROD.1));
    let dev_client = client(&dev, DEV);
    let prod_client = client(&prod, PROD);
    let layer_size = o.megabytes * 1024 * 1024 / o.layers;
    let layers: Vec<Vec<u8>> = (0..o.layers)
        .map(|n| noise(layer_size, n as u64 + 11))
        .collect();
    let image = push_image(&dev_client, "ecr-dev/repo-1", "latest", &layers).await?;
    drop(layers);
    // Something live in production already, so the promotion archives it as 0.1.
    push_image(&prod_client, "ecr-prod/repo-1", "latest", &[noise(4096, 3)]).await?;

    let time = |start: Instant| start.elapsed().as_secs_f64();
    let t = Instant::now();
    let source = format!("docker://{}/ecr-dev/repo-1@{}", dev.host(), image.digest);
    let output = std::process::Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .args(["--src-creds", &format!("{}:{}", DEV.0, DEV.1)])
        .args(["--dest-creds", &format!("{}:{}", PROD.0, PROD.1)])
        .arg(&source)
        .arg(format!(
            "docker://{}/ecr-prod-skopeo/repo-1:latest",
            prod.host()
        ))
        .output()
        .context("running skopeo (install it: apt-get install skopeo)")?;
    if !output.status.success() {
        bail!("skopeo copy: {}", String::from_utf8_lossy(&output.stderr));
    }
    let skopeo = time(t);

    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let store = gangplank_store::Store::connect(&url).await?;
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
            source_digest: image.digest.clone(),
            live_tag: "latest".into(),
            created_by: "bench".into(),
            approvals: "[]".into(),
            automatic: false,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("promotion: {e}"))?;
    let ours = time(t);
    let live = prod_client
        .resolve_digest("ecr-prod/repo-1", "latest")
        .await?;
    if live != image.digest || row.archive_tag != "0.1" {
        bail!(
            "the promotion left latest at {live} and archived {:?}",
            row.archive_tag
        );
    }

    let mb = |bytes: i64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "promote benchmark (b): two local docker-registries with htpasswd auth, release build"
    );
    println!(
        "{:<50}{:>12}{:>12}{:>10}",
        format!(
            "across registries, {} MB in {} layers",
            o.megabytes, o.layers
        ),
        "gangplank",
        "skopeo",
        "target"
    );
    println!("{:<50}{:>12.2}{:>12.2}{:>10}", "seconds", ours, skopeo, "-");
    println!(
        "{:<50}{:>12.2}{:>12}{:>10}",
        "ratio to skopeo copy",
        ours / skopeo,
        "",
        "<= 1.0"
    );
    println!(
        "{:<50}{:>12.1}{:>12}{:>10}",
        "blob MB moved",
        mb(row.bytes_moved),
        "",
        "-"
    );
    println!(
        "digest preserved: {} (archived the replaced image as {}; versions {} → {})",
        live == image.digest,
        row.archive_tag,
        row.version_before,
        row.version_after
    );
    Ok(())
}
