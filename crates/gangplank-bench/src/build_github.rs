//! `build`, part one, the Gangplank side: seed 002's setup with real programs only (as
//! `crates/gangplank/tests/it/seed_002.rs` has it). A docker-registry with htpasswd auth; a
//! repository behind the testkit's `GitServer` (the real `git http-backend`) with a clone
//! token; a real `gangplank serve` (automation debounce 0) holding the registry's credentials;
//! a real `gangplank agent` that is both the builder (`[builder]`, the machine's Docker engine)
//! and the compose host; the app's compose target, build definition and GitHub hook. A first
//! build (by API) is deployed by hand, then an `update` rule on the image takes over. Each
//! measured run commits a new `VERSION` to `main`, POSTs the signed GitHub push delivery and
//! times from the POST returning to the service's port answering the new content.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gangplank_testkit::{Auth, GitServer, Registry, WorkTree, busybox_image_files, free_port};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::build_hand::{Leftovers, compose_command, compose_file_text};
use crate::server::{start_server, wait_ready};

pub const USER: &str = "bench-build-robot";
pub const PASSWORD: &str = "bench-build-registry-pass";
pub const CLONE_TOKEN: &str = "bench-build-clone-token";
const SECRET: &str = "bench-build-github-secret";
/// How long one build may take to reach the port before the bench gives up.
const RUN_LIMIT: Duration = Duration::from_secs(300);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's API with the bootstrap token.
struct Api {
    http: reqwest::Client,
    base: String,
}

/// Everything part one runs on. Fields drop in order: the agent and the server stop first.
pub struct Stack {
    _agent: Killed,
    _server: Killed,
    api: Api,
    pub registry: Registry,
    pub git: GitServer,
    pub tree: WorkTree,
    /// The image the build definition pushes (`host/bench/gp<pid>`).
    pub image: String,
    /// The service's port on 127.0.0.1.
    pub port: u16,
    /// The newest deployment's id, so a run waits for the next one to end.
    last_deploy: String,
    /// Dropped after the agent and the server have stopped.
    _leftovers: Leftovers,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        crate::server::call(&self.http, &self.base, method, path, body).await
    }
}

impl Stack {
    async fn call(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        self.api.call(method, path, body).await
    }

    /// The registry, the git server with the first commit on `main` (VERSION = `first`), the
    /// server, the agent and the app; the first commit built, deployed by hand and served;
    /// then the `update` rule.
    pub async fn start(binary: &Path, dir: &Path, first: &str) -> anyhow::Result<Stack> {
        let registry = Registry::start_with(Auth::Htpasswd(USER, PASSWORD));
        let host = registry.host();
        let git = GitServer::start(Some(CLONE_TOKEN));
        let tree = WorkTree::new(&git.create_repo("shop.git"));
        let files = busybox_image_files("VERSION", first.as_bytes(), 8080);
        let borrowed: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_slice()))
            .collect();
        let first_commit = tree.commit(&borrowed, "first");
        tree.push("main");

        let pid = std::process::id();
        let image = format!("{host}/bench/gp{pid}");
        let project = format!("gpbuild{pid}");
        let port = free_port();
        std::fs::create_dir_all(dir)?;
        let compose_file = dir.join("compose.yml");
        std::fs::write(&compose_file, compose_file_text(&image, port))?;
        let state = dir.join("agent-state");
        let project_files = vec![
            compose_file.clone(),
            state.join(format!("{project}.override.json")),
        ];
        let data = dir.join("server-data");
        std::fs::create_dir_all(&data)?;
        let (server, base) =
            start_server(binary, &data, &[("GANGPLANK_AUTOMATION_DEBOUNCE", "0s")])?;
        let server = Killed(server);
        let api = Api {
            http: reqwest::Client::new(),
            base,
        };
        wait_ready(&api.http, &api.base).await?;
        api.call(
            "POST",
            "/orgs/default/registries",
            json!({"id": "local", "registry": host, "type": "basic", "enable_ci": true,
                "insecure": true, "creds": {"username": USER, "password": PASSWORD}}),
        )
        .await?;
        let user = api
            .call(
                "POST",
                "/orgs/default/users",
                json!({"name": "bench-agent", "role": "artefactContributor"}),
            )
            .await?;
        let user_id = user["id"].as_str().context("user id")?;
        let token = api
            .call(
                "POST",
                &format!("/users/{user_id}/tokens"),
                json!({"id": "agent", "type": "static"}),
            )
            .await?;
        let agent_token = token["token"].as_str().context("token")?;
        let agent_dir = dir.join("agent");
        std::fs::create_dir_all(&agent_dir)?;
        let config = agent_dir.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:0"
state_dir = "{state}"
docker_config = "{docker_config}"
[auth]
jwks_url = "{base}/.well-known/jwks.json"
[credentials]
server = "{base}"
org = "default"
token = "{agent_token}"
registries = ["local"]
[builder]
concurrency = 1
engine = "docker"
[[project]]
name = "{project}"
files = ["{file}"]
services = ["web"]
health_timeout = "60s"
grace = "1s"
"#,
                state = state.display(),
                docker_config = dir.join("agent-docker").display(),
                base = api.base,
                file = compose_file.display(),
            ),
        )?;
        let (agent, agent_base) = start_agent(binary, &config)?;
        let mut stack = Stack {
            _agent: agent,
            _server: server,
            api,
            registry,
            git,
            tree,
            _leftovers: Leftovers {
                compose: compose_command(),
                project,
                files: project_files,
                repository: image.clone(),
            },
            image,
            port,
            last_deploy: String::new(),
        };
        stack
            .call("POST", "/orgs/default/apps", json!({"id": "shop"}))
            .await?;
        stack
            .call(
                "PUT",
                "/orgs/default/apps/shop/envs/development/target",
                json!({"type": "compose", "agents": [{"url": agent_base, "services": {"web": "web"}}]}),
            )
            .await?;
        stack
            .call(
                "PUT",
                "/orgs/default/apps/shop/build-definition",
                json!({"clone_url": stack.git.url("shop.git"), "clone_token": CLONE_TOKEN,
                    "branches": ["main"], "image": stack.image, "builder": agent_base}),
            )
            .await?;
        stack
            .call(
                "POST",
                "/orgs/default/inbound-hooks",
                json!({"id": "gh", "kind": "github", "secret": SECRET}),
            )
            .await?;

        // The first commit, built by API and deployed by hand (the environment needs a set
        // for the rule to update).
        stack
            .call(
                "POST",
                "/orgs/default/apps/shop/builds",
                json!({"commit": first_commit}),
            )
            .await?;
        let built = stack.ended_build_of(&first_commit).await?;
        let delta = stack
            .call(
                "POST",
                "/orgs/default/apps/shop/deltas",
                json!({"metadata": {"env_id": "development"}, "modules": {"add": {"web": {
                    "spec": {"containers": {"main": {"image":
                        format!("{}:{first_commit}@{}", stack.image, built["digest"].as_str().unwrap_or_default())
                    }}}}}}}),
            )
            .await?;
        let deploy = stack
            .call(
                "POST",
                "/orgs/default/apps/shop/envs/development/deploys",
                json!({"delta_id": delta["id"], "comment": "first"}),
            )
            .await?;
        stack.last_deploy = deploy["id"].as_str().context("deploy id")?.to_owned();
        stack.wait_deploy_ended().await?;
        served(stack.port, first, Instant::now()).await?;
        stack
            .call(
                "POST",
                "/orgs/default/apps/shop/envs/development/rules",
                json!({"type": "update", "artefacts_filter": [stack.image]}),
            )
            .await?;
        Ok(stack)
    }

    /// The build of `commit` once it ended; an error unless it succeeded.
    async fn ended_build_of(&self, commit: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            let builds = self
                .call(
                    "GET",
                    "/orgs/default/apps/shop/builds?per_page=20",
                    Value::Null,
                )
                .await?;
            let ended = builds.as_array().and_then(|list| {
                list.iter()
                    .find(|b| {
                        b["commit"] == commit
                            && !matches!(b["status"].as_str(), Some("queued" | "running"))
                    })
                    .cloned()
            });
            if let Some(build) = ended {
                if build["status"] != "succeeded" {
                    bail!("the build of {commit} ended {build}");
                }
                return Ok(build);
            }
            if Instant::now() > deadline {
                bail!("the build of {commit} did not end within {RUN_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the newest deployment (`last_deploy` or a newer one) to end; an error unless
    /// it succeeded.
    async fn wait_deploy_ended(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            let list = self
                .call(
                    "GET",
                    "/orgs/default/apps/shop/envs/development/deploys",
                    Value::Null,
                )
                .await?;
            let newest = &list[0];
            match newest["status"].as_str() {
                Some("succeeded") => {
                    self.last_deploy = newest["id"].as_str().unwrap_or_default().to_owned();
                    return Ok(());
                }
                Some("failed") => bail!("deployment failed: {newest}"),
                _ => {}
            }
            if Instant::now() > deadline {
                bail!("no deployment ended within {RUN_LIMIT:?}: {newest}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One measured run: commit `content` as `VERSION` on `main`, deliver GitHub's push
    /// event, and time from the POST returning to the port answering `content` (ms). Then
    /// waits for the build and its deployment to end, so the next run starts from rest.
    pub async fn run(&mut self, n: usize, content: &str) -> anyhow::Result<f64> {
        let commit = self
            .tree
            .commit(&[("VERSION", content.as_bytes())], content);
        self.tree.push("main");
        let payload = json!({"ref": "refs/heads/main", "before": "0".repeat(40),
            "after": commit, "repository": {"full_name": "acme/shop",
            "clone_url": self.git.url("shop.git")}, "pusher": {"name": "bench"}})
        .to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes())?;
        mac.update(payload.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let response = self
            .api
            .http
            .post(format!("{}/hooks/default/gh", self.api.base))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header(
                "x-github-delivery",
                format!("bench-{}-{n}", std::process::id()),
            )
            .header("x-hub-signature-256", signature)
            .body(payload)
            .send()
            .await?;
        let status = response.status();
        let receipt: Value = response.json().await.unwrap_or(Value::Null);
        let started = Instant::now();
        if !status.is_success() || receipt["verdict"] != "accepted" {
            bail!("push delivery {n}: {status} {receipt}");
        }
        let ms = served(self.port, content, started).await?;
        let build = self.ended_build_of(&commit).await?;
        let log = self
            .call(
                "GET",
                &format!(
                    "/orgs/default/apps/shop/builds/{}/logs",
                    build["id"].as_str().unwrap_or_default()
                ),
                Value::Null,
            )
            .await?;
        let lines: Vec<&str> = log["lines"]
            .as_array()
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !lines.iter().any(|l| crate::build_hand::cached(l)) {
            bail!("the build of {commit} used no cached layer: {lines:?}");
        }
        let before = self.last_deploy.clone();
        // The deployment that served the commit may still be checking health.
        loop {
            self.wait_deploy_ended().await?;
            if self.last_deploy != before {
                break;
            }
            if started.elapsed() > RUN_LIMIT {
                bail!("no deployment of {commit} was recorded within {RUN_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(ms)
    }
}

fn start_agent(binary: &Path, config: &Path) -> anyhow::Result<(Killed, String)> {
    let mut child = Command::new(binary)
        .args(["agent", "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting gangplank agent")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("agent stdout")?).read_line(&mut line)?;
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected agent line {line:?}"))?
        .to_owned();
    Ok((Killed(child), base))
}

/// Polls `127.0.0.1:port/VERSION` every 20 ms (each try with a 500 ms timeout) until it
/// answers `content`; the milliseconds since `started`.
pub async fn served(port: u16, content: &str, started: Instant) -> anyhow::Result<f64> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    let url = format!("http://127.0.0.1:{port}/VERSION");
    loop {
        if let Ok(answer) = http.get(&url).send().await
            && answer.status().is_success()
            && answer.text().await.is_ok_and(|t| t == content)
        {
            return Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
        if started.elapsed() > RUN_LIMIT {
            bail!("port {port} did not answer {content:?} within {RUN_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
