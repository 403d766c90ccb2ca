//! Real webhook receivers on 127.0.0.1 for the tests: a Python one that verifies both
//! signatures independently of Gangplank, and the Debian `webhook` program (adnanh/webhook).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// A test signing secret: `whsec_` and base64 of an ASCII key, so adnanh/webhook can be
/// configured with the same key as plain text.
pub const SECRET_TEXT: &str = "gangplank-test-signing-key-0123456789";

pub fn whsec() -> String {
    use base64::Engine;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(SECRET_TEXT)
    )
}

pub struct PyReceiver {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PyReceiver {
    /// Starts a receiver answering `statuses` in order, then 204; on `port` (0: any).
    pub fn start(statuses: &str, port: u16) -> PyReceiver {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/receiver.py");
        let mut child = Command::new("python3")
            .args([
                script,
                &whsec(),
                statuses,
                log.to_str().unwrap(),
                &port.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the test receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("receiver said {line:?}"));
        PyReceiver {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Polls until at least `n` requests arrived (60 s deadline).
    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        gangplank_testkit::poll(&format!("{n} requests to arrive"), || {
            let records = self.records();
            (records.len() >= n).then_some(records)
        })
    }
}

impl Drop for PyReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Debian `webhook` program with one hook, `gangplank`, that runs only when
/// `X-Hub-Signature-256` verifies against [`SECRET_TEXT`], answering 403 otherwise.
pub struct AdnanhWebhook {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl AdnanhWebhook {
    pub fn start() -> AdnanhWebhook {
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("hooks.json");
        let config = serde_json::json!([{
            "id": "gangplank",
            "execute-command": "/bin/true",
            "response-message": "verified",
            "trigger-rule-mismatch-http-response-code": 403,
            "trigger-rule": {"match": {
                "type": "payload-hmac-sha256",
                "secret": SECRET_TEXT,
                "parameter": {"source": "header", "name": "X-Hub-Signature-256"}
            }}
        }]);
        std::fs::write(&hooks, config.to_string()).unwrap();
        let port = free_port();
        let child = Command::new("webhook")
            .args([
                "-hooks",
                hooks.to_str().unwrap(),
                "-ip",
                "127.0.0.1",
                "-port",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Debian `webhook` package is installed (cargo xtask test installs it)");
        gangplank_testkit::poll(&format!("webhook to listen on {port}"), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        AdnanhWebhook {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/gangplank", self.port)
    }
}

impl Drop for AdnanhWebhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
