//! `build`, part one, by hand: what a person (or a CI script) runs for the same change on the
//! same host, each step timed and summed. `git clone` of the commit from the same git server
//! (the token as an `http.extraHeader`, as the agent sends it), `docker build` of the same
//! Dockerfile with the same tags (`<commit>` and `latest`, in a repository of its own so
//! Gangplank never sees these pushes), `docker push` of each tag (logged in beforehand to a
//! `DOCKER_CONFIG` of its own), then the compose command the agent would pick (`docker
//! compose` if it works, else `docker-compose`): `pull && up -d` of a project of its own on a
//! port of its own, until that port answers the new content.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use base64::Engine as _;
use gangplank_testkit::free_port;

use crate::build_github::{CLONE_TOKEN, PASSWORD, USER, served};

/// One by-hand run's steps, in milliseconds.
#[derive(Clone, Copy, Default)]
pub struct Steps {
    pub clone: f64,
    pub build: f64,
    pub push: f64,
    pub compose: f64,
    /// From `up -d` returning to the port answering the new content.
    pub serve: f64,
}

impl Steps {
    pub fn total(&self) -> f64 {
        self.clone + self.build + self.push + self.compose + self.serve
    }
}

/// The by-hand side's configuration, compose project and image; removed on drop.
pub struct ByHand {
    dir: PathBuf,
    config: PathBuf,
    compose: Vec<String>,
    compose_file: PathBuf,
    project: String,
    image: String,
    port: u16,
    clone_url: String,
    runs: usize,
    _leftovers: Leftovers,
}

/// The service's compose file, the same on both sides: `image:latest` on 127.0.0.1:`port`.
/// busybox httpd runs as PID 1 and so ignores SIGTERM; `stop_signal: SIGKILL` stops the old
/// container at once, as a service that exits on SIGTERM would, instead of after compose's
/// 10 s stop timeout (which both sides would otherwise wait through on every deploy).
pub fn compose_file_text(image: &str, port: u16) -> String {
    format!(
        "version: \"3.8\"\nservices:\n  web:\n    image: {image}:latest\n    stop_signal: SIGKILL\n    ports: [\"127.0.0.1:{port}:8080\"]\n"
    )
}

/// `docker compose` when `docker compose version` works, else `docker-compose`: how the agent
/// picks its compose command when none is configured.
pub fn compose_command() -> Vec<String> {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if plugin {
        vec!["docker".to_owned(), "compose".to_owned()]
    } else {
        vec!["docker-compose".to_owned()]
    }
}

/// Runs `program args` with `DOCKER_CONFIG` = `config` when given; stdout, or an error with
/// stderr.
fn run(program: &[String], args: &[&str], config: Option<&Path>) -> anyhow::Result<String> {
    let mut command = Command::new(&program[0]);
    command.args(&program[1..]).args(args);
    if let Some(config) = config {
        command.env("DOCKER_CONFIG", config);
    }
    let out = command
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .with_context(|| format!("running {}", program[0]))?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}",
            program.join(" "),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn docker() -> Vec<String> {
    vec!["docker".to_owned()]
}

fn path(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

/// A compose project and every local image of a repository (any tag), removed on drop.
pub struct Leftovers {
    pub compose: Vec<String>,
    pub project: String,
    pub files: Vec<PathBuf>,
    pub repository: String,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let mut args = vec!["-p".to_owned(), self.project.clone()];
        for file in &self.files {
            args.extend(["-f".to_owned(), file.display().to_string()]);
        }
        args.extend(["down".to_owned(), "--volumes".to_owned()]);
        let _ = Command::new(&self.compose[0])
            .args(&self.compose[1..])
            .args(&args)
            .output();
        let ids = Command::new("docker")
            .args(["images", "-q", &self.repository])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        let mut ids: Vec<&str> = ids.split_whitespace().collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&ids)
                .output();
        }
    }
}

impl ByHand {
    /// Logs a fresh `DOCKER_CONFIG` in `dir` in to the registry at `host` and writes the
    /// project's compose file.
    pub fn new(dir: &Path, host: &str, clone_url: &str) -> anyhow::Result<ByHand> {
        std::fs::create_dir_all(dir)?;
        let pid = std::process::id();
        let port = free_port();
        let image = format!("{host}/bench/hand{pid}");
        let compose_file = dir.join("compose.yml");
        std::fs::write(&compose_file, compose_file_text(&image, port))?;
        let compose = compose_command();
        let project = format!("gphand{pid}");
        let hand = ByHand {
            dir: dir.to_path_buf(),
            config: dir.join("docker-config"),
            _leftovers: Leftovers {
                compose: compose.clone(),
                project: project.clone(),
                files: vec![compose_file.clone()],
                repository: image.clone(),
            },
            compose,
            compose_file,
            project,
            image,
            port,
            clone_url: clone_url.to_owned(),
            runs: 0,
        };
        let mut login = Command::new("docker")
            .env("DOCKER_CONFIG", &hand.config)
            .args(["login", "-u", USER, "--password-stdin", host])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running docker login")?;
        login
            .stdin
            .take()
            .context("docker login stdin")?
            .write_all(PASSWORD.as_bytes())?;
        let out = login.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "docker login {host}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(hand)
    }

    /// One run for `commit` (whose `VERSION` is `content`, already on the git server): clone,
    /// build, push, compose pull and up, then poll the port until it answers `content`.
    pub async fn run(&mut self, commit: &str, content: &str) -> anyhow::Result<Steps> {
        self.runs += 1;
        let checkout = self.dir.join(format!("checkout-{}", self.runs));
        let header = format!(
            "http.extraHeader=Authorization: Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("x-access-token:{CLONE_TOKEN}"))
        );
        let git = vec!["git".to_owned()];
        let mut steps = Steps::default();

        let t = Instant::now();
        run(
            &git,
            &[
                "-c",
                &header,
                "clone",
                "-q",
                "--depth",
                "1",
                &self.clone_url,
                path(&checkout)?,
            ],
            None,
        )?;
        run(
            &git,
            &["-C", path(&checkout)?, "checkout", "-q", commit],
            None,
        )?;
        steps.clone = ms(t);

        let (by_commit, latest) = (
            format!("{}:{commit}", self.image),
            format!("{}:latest", self.image),
        );
        let t = Instant::now();
        let built = run(
            &docker(),
            &[
                "build",
                "--force-rm",
                "-t",
                &by_commit,
                "-t",
                &latest,
                path(&checkout)?,
            ],
            Some(&self.config),
        )?;
        steps.build = ms(t);
        if !built.lines().any(cached) {
            bail!("docker build of {commit} used no cached layer: {built}");
        }

        let t = Instant::now();
        for tag in [&by_commit, &latest] {
            run(&docker(), &["push", "-q", tag], Some(&self.config))?;
        }
        steps.push = ms(t);

        let file = path(&self.compose_file)?.to_owned();
        let t = Instant::now();
        for verb in ["pull", "up"] {
            let mut args = vec!["-p", &self.project, "-f", &file, verb];
            if verb == "up" {
                args.push("-d");
            }
            run(&self.compose, &args, Some(&self.config))?;
        }
        steps.compose = ms(t);

        let t = Instant::now();
        steps.serve = served(self.port, content, t).await?;
        let _ = std::fs::remove_dir_all(&checkout);
        Ok(steps)
    }
}

/// Whether a `docker build` output line says a step came from the cache (the classic
/// builder's ` ---> Using cache`, BuildKit's `CACHED`).
pub fn cached(line: &str) -> bool {
    line.contains("Using cache") || line.contains("CACHED")
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
