//! `registry`: Gangplank's OCI client against skopeo on the same local registries, in one run:
//! (a) tag → digest resolution for many tags, (b) copying a large image between two
//! repositories of one registry (mount: no blob bytes should move) and between two registries.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use gangplank_oci::{Client, Manifest, sha256_digest};
use gangplank_testkit::Registry;

struct Options {
    tags: usize,
    megabytes: usize,
    layers: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        tags: 1000,
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
            "--tags" => o.tags = value()?.parse()?,
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

/// The `q` quantile of sorted values (the nearest index; NaN when empty).
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Deterministic, incompressible bytes (xorshift), so no layer compresses or repeats.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub(crate) async fn push_image(
    client: &Client,
    repository: &str,
    tag: &str,
    layers: &[Vec<u8>],
) -> anyhow::Result<Manifest> {
    let mut descriptors = Vec::new();
    for layer in layers {
        let digest = client.push_blob(repository, layer).await?;
        descriptors.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{digest}","size":{}}}"#,
            layer.len()
        ));
    }
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = client.push_blob(repository, config).await?;
    let bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        descriptors.join(",")
    )
    .into_bytes();
    let manifest = Manifest {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        digest: sha256_digest(&bytes),
        bytes,
    };
    client.put_manifest(repository, tag, &manifest).await?;
    Ok(manifest)
}

fn skopeo(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .context("running skopeo (install it: apt-get install skopeo)")?;
    if !output.status.success() {
        bail!(
            "skopeo {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let http = reqwest::Client::new();

    // (a) resolution.
    let registry = Registry::start(None);
    let client = Client::new(http.clone(), &registry.host(), None, true);
    let small = push_image(&client, "bench/app", "t0", &[noise(1024, 1)]).await?;
    for n in 1..o.tags {
        client
            .put_manifest("bench/app", &format!("t{n}"), &small)
            .await?;
    }
    let mut ours = Vec::with_capacity(o.tags);
    let started = Instant::now();
    for n in 0..o.tags {
        let t = Instant::now();
        let digest = client.resolve_digest("bench/app", &format!("t{n}")).await?;
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        if digest != small.digest {
            bail!("t{n} resolved to {digest}, not {}", small.digest);
        }
    }
    let ours_rate = o.tags as f64 / started.elapsed().as_secs_f64();
    let mut theirs = Vec::with_capacity(o.tags);
    let started = Instant::now();
    for n in 0..o.tags {
        let t = Instant::now();
        let reference = format!("docker://{}/bench/app:t{n}", registry.host());
        skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &reference,
        ])?;
        theirs.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let theirs_rate = o.tags as f64 / started.elapsed().as_secs_f64();
    ours.sort_by(f64::total_cmp);
    theirs.sort_by(f64::total_cmp);

    // (b) copies.
    let other = Registry::start(None);
    let target = Client::new(http.clone(), &other.host(), None, true);
    let layer_size = o.megabytes * 1024 * 1024 / o.layers;
    let layers: Vec<Vec<u8>> = (0..o.layers)
        .map(|n| noise(layer_size, n as u64 + 7))
        .collect();
    push_image(&client, "dev/big", "1", &layers).await?;
    drop(layers);
    let time = |start: Instant| start.elapsed().as_secs_f64();
    let t = Instant::now();
    let same = client
        .copy_image(&client, "dev/big", "1", "prod-gangplank/big", "1")
        .await?;
    let ours_same = time(t);
    let t = Instant::now();
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}/dev/big:1", registry.host()),
        &format!("docker://{}/prod-skopeo/big:1", registry.host()),
    ])?;
    let skopeo_same = time(t);
    let t = Instant::now();
    let across = target
        .copy_image(&client, "dev/big", "1", "prod-gangplank/big", "1")
        .await?;
    let ours_across = time(t);
    let t = Instant::now();
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}/dev/big:1", registry.host()),
        &format!("docker://{}/prod-skopeo/big:1", other.host()),
    ])?;
    let skopeo_across = time(t);

    println!(
        "registry benchmark: local docker-registry (distribution), release build, skopeo in the same run"
    );
    println!(
        "{:<46}{:>12}{:>12}{:>14}",
        "(a) tag → digest, sequential", "gangplank", "skopeo", "target"
    );
    println!(
        "{:<46}{:>12.0}{:>12.1}{:>14}",
        format!("resolutions/s over {} tags", o.tags),
        ours_rate,
        theirs_rate,
        "-"
    );
    println!(
        "{:<46}{:>12.2}{:>12.1}{:>14}",
        "p99 (ms)",
        percentile(&ours, 0.99),
        percentile(&theirs, 0.99),
        "-"
    );
    println!();
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "{:<46}{:>12}{:>12}{:>14}",
        format!("(b) copy {} MB in {} layers", o.megabytes, o.layers),
        "gangplank",
        "skopeo",
        "target"
    );
    println!(
        "{:<46}{:>12.2}{:>12.2}{:>14}",
        "same registry, seconds", ours_same, skopeo_same, "<= 0.5x"
    );
    println!(
        "{:<46}{:>12.2}{:>12}{:>14}",
        "  ratio to skopeo",
        ours_same / skopeo_same,
        "",
        "<= 0.50"
    );
    println!(
        "{:<46}{:>12.1}{:>12}{:>14}",
        "  blob MB moved (mounted blobs)",
        mb(same.bytes_moved),
        "",
        "0"
    );
    println!(
        "{:<46}{:>12.2}{:>12.2}{:>14}",
        "across registries, seconds", ours_across, skopeo_across, "<= 1.0x"
    );
    println!(
        "{:<46}{:>12.2}{:>12}{:>14}",
        "  ratio to skopeo",
        ours_across / skopeo_across,
        "",
        "<= 1.00"
    );
    println!(
        "{:<46}{:>12.1}{:>12}{:>14}",
        "  blob MB moved",
        mb(across.bytes_moved),
        "",
        "-"
    );
    println!("copy reports: same registry {same:?}; across {across:?}");
    Ok(())
}
