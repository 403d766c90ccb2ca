//! A running server for one test, and small request helpers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::Value;

/// The administrator token every test server is bootstrapped with.
pub const ADMIN: &str = "gp_test_admin_token_0123456789";

/// A 64-hex value like the commits and tags of seed 000.
pub const SHA64: &str = "90254ccc7352e1a5c8d1e4cdab2a032cefac9fd5d4d632ca003a2943c9a9b0a3";
pub const SHA64_B: &str = "336b803b83d080df05a37160a9d5d908f86689ec2205a6e4317b7ac58d2c8f82";

pub struct Server {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    _temp: tempfile::TempDir,
    pub http: Client,
    env: Vec<(String, String)>,
}

impl Server {
    /// Starts a server bootstrapped with [`ADMIN`].
    pub fn start() -> Server {
        Server::start_with(&[("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN)])
    }

    /// Starts a server with extra environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(url) = fresh_postgres_database() {
            env.push(("GANGPLANK_DATABASE_URL".to_owned(), url));
        }
        let (child, base) = spawn(&data_dir, &env);
        let http = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let server = Server {
            child,
            base,
            data_dir,
            _temp: temp,
            http,
            env,
        };
        server.wait_ready();
        server
    }

    /// Kills the server without warning (SIGKILL) and starts it again on the same data.
    pub fn crash_and_restart(&mut self) {
        self.crash_and_restart_after(|_| {});
    }

    /// Kills the server (SIGKILL), runs `meddle` on the stopped data dir, and starts again.
    pub fn crash_and_restart_after(&mut self, meddle: impl FnOnce(&Path)) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
        meddle(&self.data_dir);
        let (child, base) = spawn(&self.data_dir, &self.env);
        self.child = child;
        self.base = base;
        self.wait_ready();
    }

    /// Kills the server (SIGKILL) and starts it again on the same data without the
    /// environment variable `key` (a crash test's hold point is not set on the restart).
    pub fn crash_and_restart_without(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
        self.crash_and_restart();
    }

    fn wait_ready(&self) {
        poll(&format!("the server at {} to be ready", self.base), || {
            let ready = self.http.get(format!("{}/ready", self.base)).send();
            ready.is_ok_and(|r| r.status().is_success()).then_some(())
        });
    }

    /// Sends a JSON request (or none when `body` is `None`) and returns status and JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        finish(request.send().expect("request"))
    }

    /// Sends raw bytes with a content type.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        finish(request.send().expect("request"))
    }

    /// Creates the app `id` (with its development environment) as the administrator.
    pub fn create_app(&self, id: &str) {
        let (status, body) = self.call(
            "POST",
            "/orgs/default/apps",
            Some(ADMIN),
            Some(serde_json::json!({"id": id})),
        );
        assert_eq!(status, 201, "{body}");
    }

    /// Creates a service user with `role` and returns (user id, token).
    pub fn user(&self, role: &str) -> (String, String) {
        let (status, user) = self.call(
            "POST",
            "/orgs/default/users",
            Some(ADMIN),
            Some(serde_json::json!({"name": role, "role": role})),
        );
        assert_eq!(status, 200, "{user}");
        let id = user["id"].as_str().unwrap().to_owned();
        let (status, token) = self.call(
            "POST",
            &format!("/users/{id}/tokens"),
            Some(ADMIN),
            Some(serde_json::json!({"id": "ci", "type": "static"})),
        );
        assert_eq!(status, 200, "{token}");
        (id, token["token"].as_str().unwrap().to_owned())
    }

    /// Kills the server and runs `gangplank serve` on its data (and database) in the
    /// foreground, for a start that is expected to fail; returns its exit status and stderr.
    pub fn kill_and_serve_once(&mut self) -> (std::process::ExitStatus, String) {
        self.kill_and_run(&["serve"])
    }

    /// Kills the server and runs `gangplank ARGS` with the server's settings; returns the exit
    /// status and stderr.
    pub fn kill_and_run(&mut self, args: &[&str]) -> (std::process::ExitStatus, String) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
        let mut command = Command::new(env!("CARGO_BIN_EXE_gangplank"));
        command
            .args(args)
            .env("GANGPLANK_LISTEN", "127.0.0.1:0")
            .env("GANGPLANK_DATA_DIR", &self.data_dir)
            .env("GANGPLANK_LOG_FORMAT", "text")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let output = command.output().expect("run gangplank serve");
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Sends the server SIGTERM (a graceful shutdown) and polls for its exit until `limit`:
    /// its exit status, or `None` if it is still running then.
    pub fn terminate_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The PostgreSQL URL the server uses, when it does.
    pub fn database_url(&self) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == "GANGPLANK_DATABASE_URL")
            .map(|(_, v)| v.clone())
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(log_path(&self.data_dir)).unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A second server with this one's settings and database (a replica: on PostgreSQL the
    /// same database, so give both `GANGPLANK_MASTER_KEY`), with a data dir of its own.
    pub fn replica(&self) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let (child, base) = spawn(&data_dir, &self.env);
        let server = Server {
            child,
            base,
            data_dir,
            _temp: temp,
            http: self.http.clone(),
            env: self.env.clone(),
        };
        server.wait_ready();
        server
    }
}

fn finish(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

fn spawn(data_dir: &Path, env: &[(String, String)]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gangplank"));
    command
        .arg("serve")
        .env("GANGPLANK_LISTEN", "127.0.0.1:0")
        .env("GANGPLANK_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        // The log goes to a file beside the data dir: tests can grep it (no secrets), and it is
        // printed when a test fails.
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path(data_dir))
                .expect("open the server log"),
        ));
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("start gangplank serve");
    let base = listening_address(&mut child);
    (child, base)
}

/// The base URL from the `listening on …` line `serve` and `agent` print first.
pub fn listening_address(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read address");
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// Polls deployment `id` of `app`/`env` until it succeeded or failed, and returns it.
pub fn wait_deploy_final(server: &Server, app: &str, env: &str, id: &str) -> Value {
    poll(&format!("deployment {id} to finish"), || {
        let (_, d) = server.call(
            "GET",
            &format!("/orgs/default/apps/{app}/envs/{env}/deploys/{id}"),
            Some(ADMIN),
            None,
        );
        matches!(d["status"].as_str(), Some("succeeded" | "failed")).then_some(d)
    })
}

/// Where a server's log goes: beside its data dir.
fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.with_file_name("server.log")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(log_path(&self.data_dir)).unwrap_or_default();
            eprintln!("---- server log ({}) ----\n{log}", self.base);
        }
    }
}

/// Asserts the JSON error shape and returns the message.
pub fn error_message(body: &Value) -> &str {
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "not the error shape: {body}"
    );
    body["message"].as_str().unwrap()
}

pub use gangplank_testkit::poll;

/// With `GANGPLANK_TEST_PG` (a server URL such as `postgres://postgres@127.0.0.1:5433`, set by
/// `cargo xtask test` for its PostgreSQL pass), a new empty database on it for one server.
fn fresh_postgres_database() -> Option<String> {
    let server = std::env::var("GANGPLANK_TEST_PG").ok()?;
    let n = NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("gp_{}_{n}", std::process::id());
    let status = Command::new("psql")
        .args([
            &format!("{server}/postgres"),
            "-q",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .status()
        .expect("psql creates the test database");
    assert!(status.success(), "creating database {name}");
    Some(format!("{server}/{name}"))
}

static NEXT_DB: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The CLI (`cli::gangplank`: no `GANGPLANK_*` from the environment, its config under `home`)
/// aimed at `server` as the administrator of org `default`.
pub fn admin_cli(server: &Server, home: &std::path::Path) -> assert_cmd::Command {
    let mut command = crate::cli::gangplank(home);
    command.args([
        "--url",
        server.base.as_str(),
        "--token",
        ADMIN,
        "--org",
        "default",
    ]);
    command
}

/// GitHub's `X-Hub-Signature-256` for `body`: `sha256=<hex>` by `openssl dgst -hmac`,
/// independently of Gangplank's HMAC.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    format!("sha256={}", text.split_whitespace().next().unwrap())
}

/// `payload=<percent-encoded JSON>`: a GitHub delivery as `application/x-www-form-urlencoded`.
pub fn github_form(payload: &str) -> String {
    let encoded: String = payload
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("payload={encoded}")
}
