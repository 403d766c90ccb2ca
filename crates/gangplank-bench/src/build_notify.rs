//! `build`, part two: a registry's push notification → the version registered, p99 over
//! `--pushes` pushes. Each tag is pushed to a local docker-registry (htpasswd auth) first;
//! then its notification, the envelope docker-registry sends (`events[].action = push`,
//! target repository, tag, digest), is POSTed to a `distribution` inbound hook of a real
//! `gangplank serve`. The hook verifies the tag through the registry and registers the
//! version before it answers, so the POST's round trip is the whole path (the registry's own
//! sender is exercised by the tests, where its retries and headers matter, not its timing).

use std::path::Path;
use std::process::Child;
use std::time::Instant;

use anyhow::{Context, bail};
use gangplank_oci::{Client, Credentials};
use gangplank_testkit::{Auth, Registry};
use serde_json::{Value, json};

use crate::registry::{noise, push_image};
use crate::server::{start_server, wait_ready};

const CREDS: (&str, &str) = ("bench-robot", "bench-notify-password");
const HOOK_TOKEN: &str = "bench-distribution-token-0123456789";

/// What part two measured: each notification's round trip, in ms, sorted.
pub struct Measured {
    pub sorted_ms: Vec<f64>,
}

struct Server {
    child: Child,
    http: reqwest::Client,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn call(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        crate::server::call(&self.http, &self.base, method, path, body).await
    }
}

pub async fn measure(binary: &Path, data_dir: &Path, pushes: usize) -> anyhow::Result<Measured> {
    let registry = Registry::start_with(Auth::Htpasswd(CREDS.0, CREDS.1));
    let host = registry.host();
    let client = Client::new(
        reqwest::Client::new(),
        &host,
        Some(Credentials {
            username: CREDS.0.to_owned(),
            password: CREDS.1.to_owned(),
        }),
        true,
    );
    let (child, base) = start_server(binary, data_dir, &[])?;
    let server = Server {
        child,
        http: reqwest::Client::new(),
        base,
    };
    wait_ready(&server.http, &server.base).await?;
    server
        .call(
            "POST",
            "/orgs/default/registries",
            json!({"id": "bench", "registry": host, "type": "basic", "insecure": true,
                "creds": {"username": CREDS.0, "password": CREDS.1}}),
        )
        .await?;
    server
        .call(
            "POST",
            "/orgs/default/inbound-hooks",
            json!({"id": "registry", "kind": "distribution", "secret": HOOK_TOKEN}),
        )
        .await?;
    eprintln!("pushing {pushes} tags to {host}…");
    let mut pushed = Vec::with_capacity(pushes);
    for n in 0..pushes {
        let tag = format!("v{n}");
        let manifest =
            push_image(&client, "notify/app", &tag, &[noise(256, n as u64 + 11)]).await?;
        pushed.push((tag, manifest.digest, manifest.bytes.len()));
    }
    eprintln!("sending {pushes} notifications…");
    let url = format!("{}/hooks/default/registry", server.base);
    let mut sorted_ms = Vec::with_capacity(pushes);
    for (n, (tag, digest, size)) in pushed.iter().enumerate() {
        let envelope = json!({"events": [{
            "id": format!("bench-event-{n}"),
            "timestamp": "2026-12-02T05:00:00Z",
            "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "size": size, "digest": digest, "length": size,
                "repository": "notify/app", "url": format!("http://{host}/v2/notify/app/manifests/{digest}"),
                "tag": tag},
            "request": {"id": format!("req-{n}"), "addr": "127.0.0.1", "host": host,
                "method": "PUT", "useragent": "bench"},
            "actor": {"name": CREDS.0},
            "source": {"addr": host, "instanceID": "bench"}
        }]});
        let started = Instant::now();
        let response = server
            .http
            .post(&url)
            .header(
                "content-type",
                "application/vnd.docker.distribution.events.v1+json",
            )
            .bearer_auth(HOOK_TOKEN)
            .body(envelope.to_string())
            .send()
            .await?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let status = response.status();
        let receipt: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() || receipt["verdict"] != "accepted" {
            bail!("notification {n} for {tag}: {status} {receipt}");
        }
        sorted_ms.push(elapsed);
    }
    // Every push is a registered version with the registry's digest.
    let versions = server
        .call(
            "GET",
            &format!("/orgs/default/artefact-versions?name={host}/notify/app&per_page=1"),
            Value::Null,
        )
        .await?;
    let newest = &versions[0];
    let (tag, digest, _) = pushed.last().context("no push")?;
    if newest["version"] != tag.as_str() || newest["digest"] != digest.as_str() {
        bail!("the last push was not registered as {tag} {digest}: {newest}");
    }
    sorted_ms.sort_by(f64::total_cmp);
    Ok(Measured { sorted_ms })
}
