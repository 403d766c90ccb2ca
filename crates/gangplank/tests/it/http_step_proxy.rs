//! The pipeline `http` step never goes through a proxy named in the server's environment
//! (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`): a smoke test must reach the service itself, and
//! through a proxy the SSRF check would judge the proxy's address, not the target's.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use crate::pipeline_runs::{create_pipeline, start_run, wait_run};
use crate::receivers::PyReceiver;
use crate::support::{ADMIN, Server};

/// A "proxy" on 127.0.0.1 that records the first line of every request it is sent and
/// answers 502, so a request that went through it fails at once.
struct TrapProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TrapProxy {
    fn start() -> TrapProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the trap proxy");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut head = [0u8; 1024];
                    let n = stream.read(&mut head).unwrap_or(0);
                    let text = String::from_utf8_lossy(&head[..n]);
                    let first = text.lines().next().unwrap_or("(nothing sent)").to_owned();
                    seen.lock().unwrap().push(first);
                    let _ = stream.write_all(
                        b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                }
            })
        };
        TrapProxy {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TrapProxy {
    fn drop(&mut self) {
        // Wake the accept loop so it sees the stop flag.
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn the_http_step_ignores_a_proxy_in_the_servers_environment() {
    let proxy = TrapProxy::start();
    // The trap works: a client that honours a proxy setting is caught by it.
    let caught = reqwest::blocking::Client::builder()
        .proxy(reqwest::Proxy::all(proxy.url()).unwrap())
        .build()
        .unwrap()
        .get("http://127.0.0.1:9/probe")
        .send()
        .unwrap();
    assert_eq!(caught.status(), 502);
    assert_eq!(proxy.seen(), ["GET http://127.0.0.1:9/probe HTTP/1.1"]);
    proxy.seen.lock().unwrap().clear();

    let receiver = PyReceiver::start("", 0);
    let proxy_url = proxy.url();
    // reqwest bypasses a proxy for 127.0.0.1 only when NO_PROXY lists it; set empty (both
    // spellings, NO_PROXY winning) so no inherited value hides what is tested.
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("HTTP_PROXY", &proxy_url),
        ("HTTPS_PROXY", &proxy_url),
        ("ALL_PROXY", &proxy_url),
        ("http_proxy", &proxy_url),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ]);
    server.create_app("shop");
    let yaml = format!(
        "id: smoke\nname: Smoke\non:\n  pipeline_call: {{}}\njobs:\n  check:\n    steps:\n      - id: smoke\n        uses: actions/gangplank/http@v1\n        with:\n          method: POST\n          url: http://127.0.0.1:{}/smoke\n          body: {{probe: direct}}\n          expect_status: 204\n          timeout_seconds: 5\n",
        receiver.port
    );
    create_pipeline(&server, "shop", &yaml);
    let run = start_run(&server, ADMIN, "shop", "smoke", json!({}));
    let run = wait_run(&server, "shop", &run, "finished", |r| {
        matches!(
            r["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    });
    assert_eq!(
        run["status"],
        "succeeded",
        "{run}; the proxy saw {:?}",
        proxy.seen()
    );
    let smoke: Vec<_> = receiver
        .records()
        .into_iter()
        .filter(|r| r["path"] == "/smoke")
        .collect();
    assert_eq!(smoke.len(), 1, "the receiver got the request itself");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(smoke[0]["body"].as_str().unwrap()).unwrap(),
        json!({"probe": "direct"})
    );
    assert_eq!(
        proxy.seen(),
        Vec::<String>::new(),
        "nothing went to the proxy"
    );
}
