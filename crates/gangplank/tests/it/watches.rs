//! Registry watches against a real docker-registry with htpasswd auth: a tag pushed while no
//! event is sent is registered with the registry's digest, a tag outside the filter is not,
//! a restart registers nothing twice; and a registry answering 429 (a small proxy in front of
//! the real one) is backed off.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gangplank_testkit::{Registry, poll};
use serde_json::{Value, json};

use crate::support::{ADMIN, Server, admin_cli, error_message};

const USER: &str = "watch-robot";
const PASSWORD: &str = "watch-registry-password-31";

fn server() -> Server {
    Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WATCH_MIN_INTERVAL_SECONDS", "1"),
        // Two watches at 1 s exceed the default budget (60 per minute per registry host).
        ("GANGPLANK_WATCH_REQUESTS_PER_MINUTE", "1000"),
    ])
}

fn add_registry(server: &Server, host: &str) {
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(
            json!({"id": "local", "registry": host, "type": "basic", "insecure": true,
                    "creds": {"username": USER, "password": PASSWORD}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
}

/// The registered versions of `name`, as (version, digest), in registration order.
fn versions(server: &Server, name: &str) -> Vec<(String, String)> {
    let (status, body) = server.call(
        "GET",
        &format!("/orgs/default/artefact-versions?name={name}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let mut found: Vec<(String, String)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap_or_default().to_owned(),
                v["digest"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn watch(server: &Server, id: &str) -> Value {
    let (status, body) = server.call(
        "GET",
        &format!("/orgs/default/watches/{id}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the watch has polled after `after` (its `last_polled_at` differs).
fn polled_after(server: &Server, id: &str, after: &Value) -> Value {
    poll("the watch to poll", || {
        let w = watch(server, id);
        (w["last_polled_at"].is_string() && w["last_polled_at"] != *after).then_some(w)
    })
}

#[test]
fn a_watch_registers_new_tags_verified_and_nothing_twice_after_a_restart() {
    let registry = Registry::start(Some((USER, PASSWORD)));
    let creds = Some((USER, PASSWORD));
    registry.push_tiny_image_as("team/app", "1.0.0", "before the watch", creds);
    let mut server = server();
    add_registry(&server, &registry.host());
    let name = format!("{}/team/app", registry.host());

    // Each field is checked, and a 400 names it.
    for (body, field) in [
        (json!({"image": "team/app"}), "image"),
        (json!({"image": format!("{name}:1.0")}), "image"),
        (json!({"image": name, "semver": "one or two"}), "semver"),
        (json!({"image": name, "regex": "("}), "regex"),
        (json!({"image": name, "regex": "x", "semver": "1"}), "regex"),
        (
            json!({"image": name, "interval_seconds": 0}),
            "interval_seconds",
        ),
        (
            json!({"image": name, "interval_seconds": 100_000}),
            "interval_seconds",
        ),
    ] {
        let (status, answer) =
            server.call("POST", "/orgs/default/watches", Some(ADMIN), Some(body));
        assert_eq!(status, 400, "{answer}");
        assert!(
            error_message(&answer).starts_with(&format!("{field}:")),
            "{answer}"
        );
    }

    let (status, created) = server.call(
        "POST",
        "/orgs/default/watches",
        Some(ADMIN),
        Some(json!({"image": name, "semver": ">=1.0, <2", "interval_seconds": 1})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["filter"], "semver");
    assert!(created["last_polled_at"].is_null(), "{created}");

    // The first poll takes the registry as it finds it: 1.0.0 is not registered.
    let first = polled_after(&server, &id, &Value::Null);
    assert_eq!(first["last_error"], "", "{first}");
    assert!(versions(&server, &name).is_empty());

    // Pushed while no event is sent: 1.1.0 is registered with the registry's digest; 2.0.0 is
    // outside the range.
    let digest = registry.push_tiny_image_as("team/app", "1.1.0", "new", creds);
    registry.push_tiny_image_as("team/app", "2.0.0", "outside", creds);
    assert_eq!(
        registry.skopeo_digest("team/app", "1.1.0", creds),
        digest,
        "skopeo and the registry agree"
    );
    poll("1.1.0 to be registered", || {
        (!versions(&server, &name).is_empty()).then_some(())
    });
    let after = watch(&server, &id);
    polled_after(&server, &id, &after["last_polled_at"]);
    assert_eq!(
        versions(&server, &name),
        vec![("1.1.0".to_owned(), digest.clone())]
    );

    // A restart continues the schedule from the store: nothing is registered again, and the
    // baseline stays a baseline.
    server.crash_and_restart();
    let later = registry.push_tiny_image_as("team/app", "1.2.0", "after the restart", creds);
    poll("1.2.0 to be registered", || {
        (versions(&server, &name).len() == 2).then_some(())
    });
    let after = watch(&server, &id);
    polled_after(&server, &id, &after["last_polled_at"]);
    assert_eq!(
        versions(&server, &name),
        vec![
            ("1.1.0".to_owned(), digest),
            ("1.2.0".to_owned(), later.clone())
        ]
    );

    // Listed, read and deleted like the other resources; the versions stay.
    let (status, list) = server.call("GET", "/orgs/default/watches", Some(ADMIN), None);
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (status, _) = server.call(
        "DELETE",
        &format!("/orgs/default/watches/{id}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    let (status, _) = server.call(
        "GET",
        &format!("/orgs/default/watches/{id}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(versions(&server, &name).len(), 2);
}

/// A proxy on 127.0.0.1 in front of a registry: it forwards every request (one per
/// connection), but answers the next `throttle` tag-list requests with 429 and `Retry-After`.
struct Proxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    /// (when, request line, answered 429).
    log: Vec<(Instant, String, bool)>,
    throttle: usize,
    retry_after: u64,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(client, upstream, &shared));
            }
        });
        Proxy { port, state }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn throttle(&self, count: usize, retry_after: u64) {
        let mut state = self.state.lock().unwrap();
        state.throttle = count;
        state.retry_after = retry_after;
    }

    fn log(&self) -> Vec<(Instant, String, bool)> {
        self.state.lock().unwrap().log.clone()
    }
}

fn serve(client: TcpStream, upstream: u16, state: &Mutex<ProxyState>) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            headers.push(line);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let throttled = {
        let mut state = state.lock().unwrap();
        let throttled = request_line.contains("/tags/list") && state.throttle > 0;
        if throttled {
            state.throttle -= 1;
        }
        state
            .log
            .push((Instant::now(), request_line.trim().to_owned(), throttled));
        throttled.then_some(state.retry_after)
    };
    let mut client = client;
    if let Some(seconds) = throttled {
        let _ = write!(
            client,
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {seconds}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let mut forwarded = request_line.into_bytes();
    for line in headers {
        forwarded.extend_from_slice(line.as_bytes());
    }
    forwarded.extend_from_slice(b"Connection: close\r\n\r\n");
    forwarded.extend_from_slice(&body);
    if server.write_all(&forwarded).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer);
    let _ = client.write_all(&answer);
}

/// The tag-list requests the proxy saw, as (when, answered 429).
fn tag_lists(proxy: &Proxy) -> Vec<(Instant, bool)> {
    proxy
        .log()
        .into_iter()
        .filter(|(_, line, _)| line.contains("/tags/list"))
        .map(|(at, _, throttled)| (at, throttled))
        .collect()
}

#[test]
fn a_registry_answering_429_is_backed_off_then_polled_again() {
    let registry = Registry::start(Some((USER, PASSWORD)));
    let creds = Some((USER, PASSWORD));
    registry.push_tiny_image_as("team/app", "v1", "first", creds);
    let proxy = Proxy::start(registry.port);
    let server = server();
    add_registry(&server, &proxy.host());
    let name = format!("{}/team/app", proxy.host());
    let home = tempfile::tempdir().unwrap();
    // Another registry, which a throttled one must not hold up.
    let other = Registry::start(None);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(json!({"id": "other", "registry": other.host(), "type": "public", "insecure": true})),
    );
    assert_eq!(status, 201, "{body}");
    let other_name = format!("{}/team/other", other.host());
    let (status, body) = server.call(
        "POST",
        "/orgs/default/watches",
        Some(ADMIN),
        Some(json!({"image": other_name, "interval_seconds": 1})),
    );
    assert_eq!(status, 201, "{body}");
    let other_id = body["id"].as_str().unwrap().to_owned();
    polled_after(&server, &other_id, &Value::Null);

    // Two watches on the one registry, made with the CLI.
    for regex in ["^v[0-9]+$", "^w[0-9]+$"] {
        admin_cli(&server, home.path())
            .args([
                "create",
                "watch",
                &name,
                "--regex",
                regex,
                "--interval",
                "1s",
            ])
            .assert()
            .success();
    }
    let output = admin_cli(&server, home.path())
        .args(["-o", "json", "get", "watches"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect();
    let ids: Vec<String> = ids.into_iter().filter(|id| *id != other_id).collect();
    assert_eq!(ids.len(), 2, "{listed}");
    for id in &ids {
        polled_after(&server, id, &Value::Null);
    }

    // One 429 with Retry-After: 5. The OCI client sits it out; nothing reaches the registry
    // before the five seconds have passed, and then the new tag is registered. Meanwhile the
    // other registry's watch goes on polling: a tag pushed there is registered before.
    proxy.throttle(1, 5);
    poll("a 429 to be answered", || {
        tag_lists(&proxy).iter().any(|(_, t)| *t).then_some(())
    });
    let other_digest = other.push_tiny_image("team/other", "v1", "elsewhere");
    poll("the other registry's tag to be registered", || {
        versions(&server, &other_name)
            .iter()
            .any(|(v, d)| v == "v1" && *d == other_digest)
            .then_some(())
    });
    let sitting_out = proxy.log();
    let (throttled_at, _, _) = sitting_out.iter().find(|(_, _, t)| *t).unwrap();
    assert!(
        !sitting_out.iter().any(|(at, _, _)| at > throttled_at),
        "the other registry's tag was registered while the throttled one sat out its 429"
    );
    let digest = registry.push_tiny_image_as("team/app", "v2", "second", creds);
    poll("v2 to be registered", || {
        versions(&server, &name)
            .iter()
            .any(|(v, d)| v == "v2" && *d == digest)
            .then_some(())
    });
    let log = proxy.log();
    let (throttled_at, _, _) = log.iter().find(|(_, _, t)| *t).unwrap();
    let next = log
        .iter()
        .find(|(at, _, _)| at > throttled_at)
        .expect("a request after the 429");
    assert!(
        next.0.duration_since(*throttled_at) >= Duration::from_millis(4_900),
        "a request {:?} after the 429: {}",
        next.0.duration_since(*throttled_at),
        next.1
    );

    // A registry that keeps answering 429 after the client's retries: every watch of it is
    // left alone for 4 × the minimum interval (4 s here, a watch's interval being 1 s), with
    // the 429 as its last error.
    proxy.throttle(6, 0);
    poll("the registry to be backed off", || {
        ids.iter()
            .all(|id| {
                watch(&server, id)["last_error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("429")
            })
            .then_some(())
    });
    let last_throttled = tag_lists(&proxy)
        .into_iter()
        .filter(|(_, t)| *t)
        .map(|(at, _)| at)
        .max()
        .unwrap();
    let digest = registry.push_tiny_image_as("team/app", "v3", "third", creds);
    poll("v3 to be registered after the back-off", || {
        versions(&server, &name)
            .iter()
            .any(|(v, d)| v == "v3" && *d == digest)
            .then_some(())
    });
    let resumed = proxy
        .log()
        .into_iter()
        .find(|(at, _, _)| *at > last_throttled)
        .expect("a request after the back-off");
    assert!(
        resumed.0.duration_since(last_throttled) >= Duration::from_millis(3_900),
        "a request {:?} after the last 429: {}",
        resumed.0.duration_since(last_throttled),
        resumed.1
    );
    for id in &ids {
        poll("the error to clear after a good poll", || {
            (watch(&server, id)["last_error"] == "").then_some(())
        });
    }
}
