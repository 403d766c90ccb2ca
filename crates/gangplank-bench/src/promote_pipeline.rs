//! `promote`, through a real `gangplank serve`: (a) a dev → test → prod pipeline run started
//! by registering the dev image, each approval given by API as soon as it appears; (c) the time
//! from an approval's POST returning to the destination's `latest` carrying the new digest,
//! as the registry's own push notification reports it, over many runs (polling the registry
//! instead would load the very registry whose writes are timed: each look is a bcrypt check).

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use gangplank_oci::{Client, Manifest, sha256_digest};
use serde_json::{Value, json};

use crate::receiver::Arrivals;
use crate::server::{TOKEN, start_server, wait_ready};

/// The app every bench pipeline lives in.
const APP: &str = "bench";

/// A running server, its administrator (the bootstrap token: registers versions, starts runs)
/// and a second administrator who approves (nobody approves their own run).
pub struct Gangplank {
    child: Child,
    http: reqwest::Client,
    base: String,
    approver: String,
}

impl Drop for Gangplank {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gangplank {
    /// Starts the server on `data_dir`, registers `host` with its credentials, creates the app
    /// and the approver.
    pub async fn start(
        binary: &Path,
        data_dir: &Path,
        host: &str,
        creds: (&str, &str),
    ) -> anyhow::Result<Gangplank> {
        let (child, base) = start_server(binary, data_dir, &[])?;
        let mut g = Gangplank {
            child,
            http: reqwest::Client::new(),
            base,
            approver: String::new(),
        };
        wait_ready(&g.http, &g.base).await?;
        g.call(
            "POST",
            "/orgs/default/registries",
            TOKEN,
            Some(
                json!({"id": "bench", "registry": host, "type": "basic", "insecure": true,
                        "creds": {"username": creds.0, "password": creds.1}}),
            ),
        )
        .await?;
        g.call(
            "POST",
            "/orgs/default/apps",
            TOKEN,
            Some(json!({"id": APP})),
        )
        .await?;
        let user = g
            .call(
                "POST",
                "/orgs/default/users",
                TOKEN,
                Some(json!({"name": "approver", "role": "administrator"})),
            )
            .await?;
        let id = user["id"].as_str().context("user id")?;
        let token = g
            .call(
                "POST",
                &format!("/users/{id}/tokens"),
                TOKEN,
                Some(json!({"id": "bench", "type": "static"})),
            )
            .await?;
        g.approver = token["token"].as_str().context("token")?.to_owned();
        Ok(g)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.parse()?, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
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
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    async fn create_pipeline(&self, yaml: String) -> anyhow::Result<()> {
        let path = format!("/orgs/default/apps/{APP}/pipelines");
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/x-yaml")
            .body(yaml)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "POST {path}: {} {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(())
    }

    async fn run(&self, pipeline: &str, run: &str) -> anyhow::Result<Value> {
        self.call(
            "GET",
            &format!("/orgs/default/apps/{APP}/pipelines/{pipeline}/runs/{run}"),
            TOKEN,
            None,
        )
        .await
    }

    /// Approves the run's waiting approval requests; how many there were.
    async fn approve_waiting(&self, run: &str) -> anyhow::Result<usize> {
        let waiting = self
            .call(
                "GET",
                &format!("/orgs/default/apps/{APP}/approvals?run={run}&status=waiting"),
                TOKEN,
                None,
            )
            .await?;
        let waiting = waiting.as_array().cloned().unwrap_or_default();
        for request in &waiting {
            let field = |name: &str| request[name].as_str().unwrap_or_default().to_owned();
            let path = format!(
                "/orgs/default/apps/{APP}/pipelines/{}/runs/{run}/jobs/{}/approvals/{}/approve",
                field("pipeline_id"),
                field("job_id"),
                field("id")
            );
            self.call("POST", &path, &self.approver, None).await?;
        }
        Ok(waiting.len())
    }

    /// Polls the run until it finished, approving what waits meanwhile; fails unless it
    /// succeeded.
    async fn finish(&self, pipeline: &str, run: &str, approve: bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let body = self.run(pipeline, run).await?;
            match body["status"].as_str() {
                Some("succeeded") => return Ok(()),
                Some("failed" | "cancelled") => bail!("run {run} ended: {body}"),
                _ => {}
            }
            if Instant::now() > deadline {
                bail!("run {run} did not finish within 120 s: {body}");
            }
            if !approve || self.approve_waiting(run).await? == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }

    /// (a): the seed's dev → test → prod pipeline (promotion.md §5.4) on `host`, started by
    /// registering `dev_image@digest` as a new version; seconds from that POST to the run
    /// succeeded.
    pub async fn promote_through_stages(&self, host: &str, digest: &str) -> anyhow::Result<f64> {
        let pattern = format!("^{}/ecr-dev/repo-1$", host.replace('.', "\\."));
        self.create_pipeline(format!(
            r#"id: repo-1-promotion
name: repo-1 dev to test to prod
on:
  artefact:
    type: container
    include: ['{pattern}']
    tags: [latest]
jobs:
  to-test:
    steps:
      - uses: actions/humanitec/approve@v1
        with: {{env_id: development, message: Promote to test?}}
      - uses: actions/gangplank/promote-image
        with: {{source: '${{{{ inputs.image }}}}@${{{{ inputs.digest }}}}', destination: '{host}/ecr-test/repo-1'}}
  to-prod:
    needs: [to-test]
    steps:
      - uses: actions/humanitec/approve@v1
        with: {{env_id: development, message: Promote to prod?}}
      - uses: actions/gangplank/promote-image
        with: {{source: '${{{{ inputs.image }}}}@${{{{ inputs.digest }}}}', destination: '{host}/ecr-prod/repo-1'}}
"#
        ))
        .await?;
        let runs = format!("/orgs/default/apps/{APP}/pipelines/repo-1-promotion/runs");
        let t = Instant::now();
        self.call(
            "POST",
            "/orgs/default/artefact-versions",
            TOKEN,
            Some(
                json!({"type": "container", "name": format!("{host}/ecr-dev/repo-1"),
                        "version": "latest", "digest": digest}),
            ),
        )
        .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let run = loop {
            let list = self.call("GET", &runs, TOKEN, None).await?;
            if let Some(id) = list[0]["id"].as_str() {
                break id.to_owned();
            }
            if Instant::now() > deadline {
                bail!("registering the dev image started no run within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        self.finish("repo-1-promotion", &run, true).await?;
        Ok(t.elapsed().as_secs_f64())
    }

    /// (c): `runs` runs of a one-job pipeline (approve, then promote-image into
    /// `ecr-latency/repo-1`), each promoting a new image (the bench image's layers under a
    /// config of its own). For each, the milliseconds from the approval's POST returning to
    /// the registry's push notification of `latest` at the new digest arriving (`events`: the
    /// receiver the registry notifies; the registry sends it as it stores the tag).
    pub async fn approval_latencies(
        &self,
        host: &str,
        client: &Client,
        base: &Manifest,
        runs: usize,
        events: &Arrivals,
    ) -> anyhow::Result<Vec<f64>> {
        self.create_pipeline(format!(
            r#"id: latency
name: approval to latest
on:
  pipeline_call:
    inputs:
      image: {{type: string, required: true}}
      digest: {{type: string, required: true}}
jobs:
  promote:
    steps:
      - uses: actions/humanitec/approve@v1
        with: {{env_id: development, message: Promote?}}
      - uses: actions/gangplank/promote-image
        with: {{source: '${{{{ inputs.image }}}}@${{{{ inputs.digest }}}}', destination: '{host}/ecr-latency/repo-1'}}
"#
        ))
        .await?;
        let mut manifest: Value = serde_json::from_slice(&base.bytes)?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .context("the bench image's manifest names no config")?
            .to_owned();
        let config: Value =
            serde_json::from_slice(&client.get_blob("ecr-dev/repo-1", &config_digest).await?)?;
        let mut latencies = Vec::with_capacity(runs);
        for n in 0..runs {
            // Same layers, a config of its own: a new digest to promote each time.
            let mut variant = config.clone();
            variant["bench_run"] = json!(n);
            let bytes = serde_json::to_vec(&variant)?;
            manifest["config"]["digest"] = json!(client.push_blob("ecr-dev/repo-1", &bytes).await?);
            manifest["config"]["size"] = json!(bytes.len());
            let bytes = serde_json::to_vec(&manifest)?;
            let image = Manifest {
                media_type: base.media_type.clone(),
                digest: sha256_digest(&bytes),
                bytes,
            };
            client
                .put_manifest("ecr-dev/repo-1", &format!("run-{n}"), &image)
                .await?;

            let run = self
                .call(
                    "POST",
                    &format!("/orgs/default/apps/{APP}/pipelines/latency/runs"),
                    TOKEN,
                    Some(json!({"inputs": {"image": format!("{host}/ecr-dev/repo-1"),
                                           "digest": image.digest}})),
                )
                .await?;
            let run = run["id"].as_str().context("run id")?.to_owned();
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.approve_waiting(&run).await? == 0 {
                if Instant::now() > deadline {
                    bail!("run {run} opened no approval request within 30 s");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let approved = SystemTime::now();
            let moved = loop {
                if let Some(at) = pushed_at(events, "ecr-latency/repo-1", "latest", &image.digest) {
                    break at;
                }
                if approved.elapsed().unwrap_or_default() > Duration::from_secs(30) {
                    bail!("run {run}: latest did not move within 30 s of the approval");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            };
            let latency = moved.duration_since(approved).unwrap_or_default();
            latencies.push(latency.as_secs_f64() * 1000.0);
            // Finished before the next starts: the next promotion would find the repository
            // still locked by this run otherwise, and wait for it.
            self.finish("latency", &run, false).await?;
        }
        Ok(latencies)
    }
}

/// When the registry reported storing `repository:tag` at `digest`, if it did.
fn pushed_at(events: &Arrivals, repository: &str, tag: &str, digest: &str) -> Option<SystemTime> {
    events.newest_matching(|arrival| {
        arrival.body["events"].as_array().is_some_and(|events| {
            events.iter().any(|e| {
                e["action"] == "push"
                    && e["target"]["repository"] == repository
                    && e["target"]["tag"] == tag
                    && e["target"]["digest"] == digest
            })
        })
    })
}
