//! `bench agent`'s second table, level-triggered deployments: (a) a no-change `POST /apply` of
//! 20 services that already run their images (a no-op compose script, and a docker script
//! that answers `ps`/`inspect`/`image inspect` as the engine would) beside one `GET /state`,
//! which observes the same way; (b) on the real Docker engine, an artefact version's POST to
//! the service's port answering the new version through Gangplank (server, agent, a local
//! registry) beside a bare `docker-compose pull && docker-compose up -d` of the same service
//! on the same host.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::server::{TOKEN, start_server, wait_ready};

const SERVICES: usize = 20;
const ROUNDS: usize = 100;

/// The second table's numbers (milliseconds).
pub struct Converge {
    pub apply_ms: f64,
    pub state_ms: f64,
    pub gangplank_ms: f64,
    pub bare_ms: f64,
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn measure(binary: &Path, dir: &Path) -> anyhow::Result<Converge> {
    let (apply_ms, state_ms) = no_change(binary, &dir.join("no-change")).await?;
    let (gangplank_ms, bare_ms) = real_engine(binary, &dir.join("engine")).await?;
    Ok(Converge {
        apply_ms,
        state_ms,
        gangplank_ms,
        bare_ms,
    })
}

pub fn print(c: &Converge) {
    println!();
    println!("level-triggered deployments: same run, release build");
    println!(
        "{:<52} {:>12} {:>12} {:>8} {:>10}",
        "measure", "gangplank", "baseline", "ratio", "target"
    );
    let row = |name: &str, a: f64, b: f64, target: &str| {
        println!("{name:<52} {a:>12.1} {b:>12.1} {:>8.2} {target:>10}", a / b);
    };
    row(
        &format!("no-change apply of {SERVICES} services vs GET /state (ms)"),
        c.apply_ms,
        c.state_ms,
        "<= 1.10",
    );
    row(
        "version POST to new version served vs bare pull+up (ms)",
        c.gangplank_ms,
        c.bare_ms,
        "<= 1.20",
    );
}

fn script(path: &Path, body: &str) -> anyhow::Result<()> {
    std::fs::write(path, body)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
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

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// (a): the median of `ROUNDS` applies (each a new deployment id) and of `ROUNDS` state reads.
async fn no_change(binary: &Path, dir: &Path) -> anyhow::Result<(f64, f64)> {
    std::fs::create_dir_all(dir.join("state"))?;
    let digest = format!("sha256:{}", "ab".repeat(32));
    let image = format!("example.test/web:1@{digest}");
    let names: Vec<String> = (1..=SERVICES).map(|n| format!("s{n:02}")).collect();
    let mut compose = String::from("services:\n");
    let mut pins = serde_json::Map::new();
    let mut containers = Vec::new();
    for (n, name) in names.iter().enumerate() {
        compose.push_str(&format!("  {name}:\n    image: example.test/web:1\n"));
        pins.insert(name.clone(), json!({"image": image}));
        containers.push(json!({
            "Id": format!("c{n}"),
            "Created": "2026-01-01T00:00:00.000000000Z",
            "Image": "sha256:img",
            "Config": {"Image": image, "Labels": {
                "com.docker.compose.project": "bench",
                "com.docker.compose.service": name,
            }},
            "State": {"Status": "running", "StartedAt": "2026-01-01T00:00:01.000000000Z"},
            "RestartCount": 0,
        }));
    }
    std::fs::write(dir.join("compose.yml"), compose)?;
    std::fs::write(
        dir.join("state/bench.override.json"),
        json!({"services": pins}).to_string(),
    )?;
    std::fs::write(
        dir.join("ps.txt"),
        (0..SERVICES).map(|n| format!("c{n}\n")).collect::<String>(),
    )?;
    std::fs::write(
        dir.join("inspect.json"),
        Value::from(containers).to_string(),
    )?;
    std::fs::write(
        dir.join("image.json"),
        json!([{"Id": "sha256:img", "RepoDigests": [format!("example.test/web@{digest}")]}])
            .to_string(),
    )?;
    let docker = dir.join("docker.sh");
    script(
        &docker,
        &format!(
            "#!/bin/sh\ncase \"$1\" in\n  ps) cat {d}/ps.txt ;;\n  inspect) cat {d}/inspect.json ;;\n  image) cat {d}/image.json ;;\n  *) exit 1 ;;\nesac\n",
            d = dir.display()
        ),
    )?;
    // Any compose run is a failure of the measure: the script records it.
    let compose_ran = dir.join("compose-ran");
    let noop = dir.join("compose.sh");
    script(
        &noop,
        &format!("#!/bin/sh\necho \"$@\" >> {}\n", compose_ran.display()),
    )?;
    let (key, public) = gangplank_testkit::key_pair(dir, "ec", "ec");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncompose_command = \"{}\"\ndocker_command = \"{}\"\n[auth]\npublic_keys = [\"{}\"]\n[[project]]\nname = \"bench\"\nfiles = [\"{}\"]\nhealth_timeout = \"0s\"\n",
            dir.join("state").display(),
            noop.display(),
            docker.display(),
            public.display(),
            dir.join("compose.yml").display()
        ),
    )?;
    let (_agent, base) = start_agent(binary, &config)?;
    let encoding = EncodingKey::from_ec_pem(&std::fs::read(&key)?)?;
    let exp = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 600) as i64;
    let mut tokens = (0..ROUNDS * 2 + 10).map(|n| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &json!({"iss": "bench", "exp": exp, "jti": format!("converge-{n}")}),
            &encoding,
        )
    });
    let mut token = || -> anyhow::Result<String> { Ok(tokens.next().context("out of tokens")??) };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/health")).send().await.is_err() {
        if Instant::now() > deadline {
            bail!("the agent did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let services: serde_json::Map<String, Value> = names
        .iter()
        .map(|n| (n.clone(), Value::from(image.clone())))
        .collect();
    let mut applies = Vec::new();
    let mut states = Vec::new();
    // Interleaved, so drift in the machine's load touches both alike; one warm-up each.
    for round in 0..=ROUNDS {
        let body =
            json!({"id": format!("bench-{round}"), "project": "bench", "services": services});
        let started = Instant::now();
        let answer = http
            .post(format!("{base}/apply"))
            .bearer_auth(token()?)
            .json(&body)
            .send()
            .await?;
        let status = answer.status();
        let applied: Value = answer.json().await?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        if status != 200
            || applied["services"]
                .as_array()
                .is_none_or(|s| s.len() != SERVICES || s.iter().any(|r| r["status"] != "unchanged"))
        {
            bail!("the no-change apply was not all unchanged ({status}): {applied}");
        }
        let started = Instant::now();
        let state = http
            .get(format!("{base}/state"))
            .bearer_auth(token()?)
            .send()
            .await?;
        if !state.status().is_success() {
            bail!("GET /state answered {}", state.status());
        }
        let _ = state.bytes().await?;
        let state_took = started.elapsed().as_secs_f64() * 1000.0;
        if round > 0 {
            applies.push(took);
            states.push(state_took);
        }
    }
    if compose_ran.exists() {
        bail!(
            "compose ran during a no-change apply: {}",
            std::fs::read_to_string(&compose_ran)?
        );
    }
    Ok((median(applies), median(states)))
}

/// `web:<version>` FROM scratch: busybox httpd serving `/VERSION`.
fn build_image(dir: &Path, tag: &str, version: &str) -> anyhow::Result<()> {
    let context = dir.join(format!("img-{version}"));
    std::fs::create_dir_all(&context)?;
    std::fs::copy("/bin/busybox", context.join("busybox"))
        .context("busybox-static is installed at /bin/busybox")?;
    std::fs::write(context.join("VERSION"), version)?;
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY VERSION /VERSION\n\
         ENTRYPOINT [\"/bin/busybox\"]\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/\"]\n",
    )?;
    run("docker", &["build", "-q", "-t", tag, path(&context)?])
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn path(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

/// Polls the port until it serves `version`; the time from `started`.
async fn served(port: u16, version: &str, started: Instant) -> anyhow::Result<f64> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = started + Duration::from_secs(300);
    loop {
        let answer = http
            .get(format!("http://127.0.0.1:{port}/VERSION"))
            .send()
            .await;
        if let Ok(answer) = answer
            && answer.status().is_success()
            && answer.text().await.is_ok_and(|t| t == version)
        {
            return Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
        if Instant::now() > deadline {
            bail!("port {port} did not serve version {version} within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Compose projects and images made for (b), removed on drop.
struct EngineCleanup {
    projects: Vec<(String, Vec<String>)>,
    images: Vec<String>,
}

impl Drop for EngineCleanup {
    fn drop(&mut self) {
        for (project, files) in &self.projects {
            let mut args = vec!["-p".to_owned(), project.clone()];
            for file in files {
                args.extend(["-f".to_owned(), file.clone()]);
            }
            args.push("down".to_owned());
            let _ = Command::new("docker-compose").args(&args).output();
        }
        let _ = Command::new("docker")
            .arg("rmi")
            .arg("-f")
            .args(&self.images)
            .output();
    }
}

/// (b): Gangplank's path from a version POST to the new version served, beside a bare
/// `docker-compose pull && up -d` of the same service. Each side pulls an image the engine
/// does not have yet (the local copies are removed after the push).
async fn real_engine(binary: &Path, dir: &Path) -> anyhow::Result<(f64, f64)> {
    std::fs::create_dir_all(dir)?;
    let registry = gangplank_testkit::Registry::start(None);
    let host = registry.host();
    let repo = format!("{host}/bench/web");
    let pid = std::process::id();
    let (agent_project, bare_project) = (format!("gpbench{pid}"), format!("gpbare{pid}"));
    let (agent_port, bare_port) = (
        gangplank_testkit::free_port(),
        gangplank_testkit::free_port(),
    );
    let state_dir = dir.join("agent-state");
    let agent_file = dir.join("agent-compose.yml");
    let bare_file = dir.join("bare-compose.yml");
    let compose = |port: u16, version: &str| {
        format!(
            "version: \"3.8\"\nservices:\n  web:\n    image: {repo}:{version}\n    ports: [\"127.0.0.1:{port}:8080\"]\n"
        )
    };
    std::fs::write(&agent_file, compose(agent_port, "1"))?;
    std::fs::write(&bare_file, compose(bare_port, "1"))?;
    let versions = ["1", "2", "3"];
    let _cleanup = EngineCleanup {
        projects: vec![
            (
                agent_project.clone(),
                vec![
                    path(&agent_file)?.to_owned(),
                    path(&state_dir.join(format!("{agent_project}.override.json")))?.to_owned(),
                ],
            ),
            (bare_project.clone(), vec![path(&bare_file)?.to_owned()]),
        ],
        images: versions.iter().map(|v| format!("{repo}:{v}")).collect(),
    };
    let mut digests = std::collections::HashMap::new();
    for version in versions {
        let tag = format!("{repo}:{version}");
        build_image(dir, &tag, version)?;
        run("docker", &["push", &tag])?;
        digests.insert(version, registry.skopeo_digest("bench/web", version, None));
    }

    let data = dir.join("server-data");
    std::fs::create_dir_all(&data)?;
    let (server, base) = start_server(binary, &data, &[("GANGPLANK_AUTOMATION_DEBOUNCE", "0s")])?;
    let _server = Killed(server);
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await?;
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[auth]\njwks_url = \"{base}/.well-known/jwks.json\"\n[[project]]\nname = \"{agent_project}\"\nfiles = [\"{}\"]\nservices = [\"web\"]\nhealth_timeout = \"60s\"\ngrace = \"1s\"\n",
            state_dir.display(),
            agent_file.display()
        ),
    )?;
    let (_agent, agent_base) = start_agent(binary, &config)?;
    let call = |method: reqwest::Method, route: &str, body: Value| {
        http.request(method, format!("{base}{route}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let expect = |answer: reqwest::Response, what: &str| -> anyhow::Result<()> {
        if !answer.status().is_success() {
            bail!("{what} answered {}", answer.status());
        }
        Ok(())
    };
    expect(
        call(
            reqwest::Method::POST,
            "/orgs/default/apps",
            json!({"id": "bench"}),
        )
        .await?,
        "creating the app",
    )?;
    expect(
        call(
            reqwest::Method::PUT,
            "/orgs/default/apps/bench/envs/development/target",
            json!({"type": "compose", "agents": [{"url": agent_base, "services": {"web": "web"}}]}),
        )
        .await?,
        "setting the target",
    )?;
    expect(
        call(
            reqwest::Method::POST,
            "/orgs/default/apps/bench/envs/development/rules",
            json!({"type": "update", "artefacts_filter": [repo]}),
        )
        .await?,
        "creating the rule",
    )?;
    let notice = |version: &'static str| {
        call(
            reqwest::Method::POST,
            "/orgs/default/artefact-versions",
            json!({"name": repo, "type": "container", "version": version,
                   "digest": digests[version], "ref": "refs/heads/main",
                   "commit": "0".repeat(64)}),
        )
    };
    // v1 first, through Gangplank (the environment needs a set for the rule to update).
    let (status, delta): (reqwest::StatusCode, Value) = {
        let answer = call(
            reqwest::Method::POST,
            "/orgs/default/apps/bench/deltas",
            json!({"metadata": {"env_id": "development"}, "modules": {"add": {"web": {
                "spec": {"containers": {"main": {"image": format!("{repo}:1@{}", digests["1"])}}}}}}}),
        )
        .await?;
        (answer.status(), answer.json().await?)
    };
    if !status.is_success() {
        bail!("creating the delta answered {status}: {delta}");
    }
    expect(
        call(
            reqwest::Method::POST,
            "/orgs/default/apps/bench/envs/development/deploys",
            json!({"delta_id": delta["id"]}),
        )
        .await?,
        "deploying v1",
    )?;
    served(agent_port, "1", Instant::now()).await?;
    run(
        "docker-compose",
        &["-p", &bare_project, "-f", path(&bare_file)?, "up", "-d"],
    )?;
    served(bare_port, "1", Instant::now()).await?;
    // Neither side finds the next versions in the engine's cache.
    run(
        "docker",
        &["rmi", &format!("{repo}:2"), &format!("{repo}:3")],
    )?;

    let started = Instant::now();
    expect(notice("2").await?, "posting version 2")?;
    let gangplank_ms = served(agent_port, "2", started).await?;

    std::fs::write(&bare_file, compose(bare_port, "3"))?;
    let started = Instant::now();
    run(
        "docker-compose",
        &["-p", &bare_project, "-f", path(&bare_file)?, "pull", "web"],
    )?;
    run(
        "docker-compose",
        &[
            "-p",
            &bare_project,
            "-f",
            path(&bare_file)?,
            "up",
            "-d",
            "web",
        ],
    )?;
    let bare_ms = served(bare_port, "3", started).await?;
    Ok((gangplank_ms, bare_ms))
}
