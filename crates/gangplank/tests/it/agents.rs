//! A running `gangplank agent` for one test, keys made with openssl, and tokens signed by an
//! independent signer (`jwt_sign.py`, Python's `cryptography`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use reqwest::blocking::Client;

pub struct Agent {
    child: Child,
    pub base: String,
    log: PathBuf,
    pub http: Client,
}

impl Agent {
    /// Starts an agent with `config` (TOML) written to `dir/agent.toml`.
    pub fn start(dir: &Path, config: &str) -> Agent {
        let path = dir.join("agent.toml");
        std::fs::write(&path, config).unwrap();
        let log = dir.join("agent.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_gangplank"))
            .args(["agent", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("start gangplank agent");
        let base = crate::support::listening_address(&mut child);
        let agent = Agent {
            child,
            base,
            log,
            http: Client::builder()
                .timeout(Duration::from_secs(180))
                .build()
                .unwrap(),
        };
        crate::support::poll("the agent to answer /health", || {
            agent
                .http
                .get(format!("{}/health", agent.base))
                .send()
                .ok()
                .filter(|r| r.status() == 200)
        });
        agent
    }

    /// A seed-style request: base64 text body, bearer token. Returns status and body text.
    pub fn deploy_text(
        &self,
        token: Option<&str>,
        body: impl Into<reqwest::blocking::Body>,
    ) -> (u16, String) {
        let mut request = self
            .http
            .post(format!("{}/deploy", self.base))
            .header("content-type", "text/plain")
            .body(body);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().expect("deploy request");
        (response.status().as_u16(), response.text().unwrap())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `fields` of the agent's JSON log lines whose message is `message`.
    pub fn lines(&self, message: &str) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|l| l["fields"].clone())
            .filter(|f| f["message"] == message)
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- agent log ({}) ----\n{}", self.base, self.log());
        }
    }
}

/// Runs a command and asserts it succeeded; returns stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub use gangplank_testkit::key_pair;

/// Signs `claims` with the independent signer.
pub fn sign(alg: &str, key: &Path, claims: &serde_json::Value, header: Option<&str>) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/jwt_sign.py");
    let claims = claims.to_string();
    let mut args = vec![script, alg, key.to_str().unwrap(), &claims];
    if let Some(header) = header {
        args.push(header);
    }
    run("python3", &args).trim().to_owned()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
