//! One-off containers on a real `gangplank agent` and the machine's Docker engine
//! (`POST /runs`): an image built FROM scratch with busybox-static, pushed to a local
//! docker-registry with htpasswd auth and pulled with the agent's own docker config. Exit
//! codes, output (both streams, capped), env passed off argv, repeated ids, conflicts, cancel,
//! timeout, an unpullable image, and refusals with their reasons.

use std::process::Command;

use gangplank_testkit::{Auth, Registry};
use serde_json::{Value, json};

use crate::agent_docker::{build_image, require_docker};
use crate::agents::{Agent, key_pair, now, run, sign};
use crate::support::poll;

const USER: &str = "runner";
const PASSWORD: &str = "run-secret-Hq27";

struct Caller {
    agent: Agent,
    key: std::path::PathBuf,
    n: std::cell::Cell<u32>,
}

impl Caller {
    fn token(&self) -> String {
        let n = self.n.get() + 1;
        self.n.set(n);
        sign(
            "ES256",
            &self.key,
            &json!({"iss": "gangplank", "exp": now() + 300, "jti": format!("t{n}-{}", std::process::id())}),
            None,
        )
    }

    fn send(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let url = format!("{}{path}", self.agent.base);
        let mut request = match method {
            "GET" => self.agent.http.get(url),
            _ => self.agent.http.post(url),
        }
        .bearer_auth(self.token());
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn start(&self, body: &Value) -> (u16, Value) {
        self.send("POST", "/runs", Some(&body.to_string()))
    }

    /// The run once final (long polls of up to 5 s).
    fn finished(&self, id: &str) -> Value {
        poll(&format!("run {id} to finish"), || {
            let (status, run) = self.send("GET", &format!("/runs/{id}?wait_seconds=5"), None);
            assert_eq!(status, 200, "{run}");
            let done = !matches!(run["status"].as_str(), Some("pending" | "running"));
            done.then_some(run)
        })
    }

    fn accepted(&self, id: &str) -> usize {
        self.agent
            .lines("run accepted")
            .iter()
            .filter(|f| f["run"] == id)
            .count()
    }
}

fn containers(id: &str) -> String {
    run(
        "docker",
        &[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("name=gangplank-run-{id}"),
        ],
    )
}

#[test]
fn one_off_containers_run_once_report_exit_codes_and_stop_on_cancel_or_timeout() {
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let registry = Registry::start_with(Auth::Htpasswd(USER, PASSWORD));
    let host = registry.host();
    let image = format!("{host}/tools/busybox:{}", std::process::id());
    build_image(dir, &image, "1", true);
    // The agent's docker config is logged in to the registry: its credentials, not the test's.
    let agent_config = dir.join("agent-docker");
    let mut login = Command::new("docker")
        .args([
            "--config",
            agent_config.to_str().unwrap(),
            "login",
            "-u",
            USER,
            "--password-stdin",
            &host,
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), PASSWORD.as_bytes()).unwrap();
    assert!(login.wait().unwrap().success(), "docker login");
    run(
        "docker",
        &["--config", agent_config.to_str().unwrap(), "push", &image],
    );
    // Pulled by the agent, not left over from the build.
    run("docker", &["rmi", &image]);
    let digest = registry.skopeo_digest(
        "tools/busybox",
        &std::process::id().to_string(),
        Some((USER, PASSWORD)),
    );
    let pinned = format!("{host}/tools/busybox@{digest}");
    std::fs::write(
        dir.join("compose.yml"),
        "services:\n  web:\n    image: unused:1\n",
    )
    .unwrap();
    let (key, public) = key_pair(dir, "ec", "ec");
    let agent = Agent::start(
        dir,
        &format!(
            r#"
listen = "127.0.0.1:0"
state_dir = "{state}"
docker_config = "{docker_config}"
[auth]
public_keys = ["{public}"]
[[project]]
name = "unused"
files = ["{file}"]
services = ["web"]
"#,
            state = dir.join("state").display(),
            docker_config = agent_config.display(),
            public = public.display(),
            file = dir.join("compose.yml").display(),
        ),
    );
    let caller = Caller {
        agent,
        key,
        n: std::cell::Cell::new(0),
    };
    let tag = std::process::id();
    let id = |name: &str| format!("{name}-{tag}");
    let cleanup = Cleanup(vec![pinned.clone()]);

    // Exit 0: both streams, the env's values in the container (never on argv), and never in
    // the docker CLI's environment: GODEBUG there would make the (Go) CLI trace its start.
    let ok = json!({"id": id("ok"), "image": pinned,
                    "command": ["sh", "-c", "echo hello $GREETING $GODEBUG; echo to-stderr >&2"],
                    "env": {"GREETING": "value-Zx81", "GODEBUG": "inittrace=1"},
                    "timeout_seconds": 120});
    let (status, started) = caller.start(&ok);
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["status"], "pending");
    let done = caller.finished(&id("ok"));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["exit_code"], 0);
    let output = done["output"].as_str().unwrap();
    assert!(
        output.contains("hello value-Zx81 inittrace=1") && output.contains("to-stderr"),
        "{output}"
    );
    assert!(
        !output.contains("init internal/"),
        "the env reached the docker CLI: {output}"
    );
    assert!(done["finished_at"].is_string());
    assert!(
        !caller.agent.log().contains("value-Zx81"),
        "env values are never logged"
    );
    // The same id again: the same run, answered, not run again; other contents: 409.
    let (status, again) = caller.start(&ok);
    assert_eq!((status, &again["output"]), (200, &done["output"]));
    assert_eq!(caller.accepted(&id("ok")), 1);
    let mut other = ok.clone();
    other["command"] = json!(["true"]);
    let (status, refused) = caller.start(&other);
    assert_eq!(
        (status, refused["error"].as_str()),
        (409, Some("conflict")),
        "{refused}"
    );

    // Exit 3: failed, with its code and output.
    let (status, _) = caller.start(&json!({"id": id("three"), "image": pinned,
                                           "command": ["sh", "-c", "echo failing; exit 3"]}));
    assert_eq!(status, 202);
    let done = caller.finished(&id("three"));
    assert_eq!(
        (done["status"].as_str(), done["exit_code"].as_i64()),
        (Some("failed"), Some(3)),
        "{done}"
    );
    assert!(done["output"].as_str().unwrap().contains("failing"));
    assert_eq!(done["message"], "exited with code 3");

    // Output beyond 64 KiB: the tail is kept, the rest counted.
    caller.start(&json!({"id": id("loud"), "image": pinned,
                         "command": ["sh", "-c", "yes 0123456789 | head -c 200000; echo; echo the-end"]}));
    let done = caller.finished(&id("loud"));
    assert_eq!(done["status"], "succeeded", "{done}");
    let output = done["output"].as_str().unwrap();
    assert!(
        output.len() <= 64 * 1024 && output.trim_end().ends_with("the-end"),
        "{}",
        output.len()
    );
    assert!(
        done["output_dropped"].as_u64().unwrap() > 130_000,
        "{}",
        done["output_dropped"]
    );

    // Cancel while running: the container is killed and gone.
    caller.start(&json!({"id": id("cancel"), "image": pinned, "command": ["sleep", "300"]}));
    poll("the container to run", || {
        let (_, run) = caller.send("GET", &format!("/runs/{}", id("cancel")), None);
        (run["status"] == "running" && !containers(&id("cancel")).trim().is_empty()).then_some(())
    });
    let (status, _) = caller.send("POST", &format!("/runs/{}/cancel", id("cancel")), None);
    assert_eq!(status, 200);
    let done = caller.finished(&id("cancel"));
    assert_eq!(done["status"], "cancelled", "{done}");
    poll("the cancelled container to be removed", || {
        containers(&id("cancel")).trim().is_empty().then_some(())
    });

    // The timeout kills it too.
    caller.start(&json!({"id": id("slow"), "image": pinned, "command": ["sleep", "300"], "timeout_seconds": 2}));
    let done = caller.finished(&id("slow"));
    assert_eq!(done["status"], "timed_out", "{done}");
    assert_eq!(done["message"], "killed after its timeout of 2 s");

    // An image the registry does not have: failed at the pull, nothing ran.
    caller.start(&json!({"id": id("missing"), "image": format!("{host}/tools/missing:1")}));
    let done = caller.finished(&id("missing"));
    assert_eq!(done["status"], "failed");
    assert!(done["exit_code"].is_null(), "{done}");
    assert!(
        done["message"].as_str().unwrap().starts_with("pulling "),
        "{done}"
    );

    // Refusals, each with its reason; none starts a container.
    for (body, reason) in [
        (json!({"id": "-x", "image": pinned}), "id must be"),
        (
            json!({"id": "r1", "image": "--privileged"}),
            "image must be",
        ),
        (
            json!({"id": "r2", "image": pinned, "env": {"PATH": "/x"}}),
            "env.PATH",
        ),
        (
            json!({"id": "r3", "image": pinned, "timeout_seconds": 0}),
            "timeout_seconds",
        ),
        (
            json!({"id": "r4", "image": pinned, "shell": "sh"}),
            "unknown field",
        ),
        (json!({"id": "r5"}), "missing field"),
    ] {
        let (status, refused) = caller.start(&body);
        assert_eq!(status, 400, "{body}: {refused}");
        assert!(
            refused["message"].as_str().unwrap().contains(reason),
            "{body}: {refused}"
        );
    }
    let response = caller
        .agent
        .http
        .post(format!("{}/runs", caller.agent.base))
        .header("content-type", "application/json")
        .body(json!({"id": "r6", "image": pinned}).to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 401, "no token");
    let response = caller
        .agent
        .http
        .post(format!("{}/runs", caller.agent.base))
        .bearer_auth(caller.token())
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(response.status(), 415, "JSON only");
    let (status, unknown) = caller.send("GET", "/runs/nope", None);
    assert_eq!(
        (status, unknown["error"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = caller.send("POST", "/runs/nope/cancel", None);
    assert_eq!(status, 404);
    let (status, _) = caller.send(
        "GET",
        &format!("/runs/{}?wait_seconds=soon", id("ok")),
        None,
    );
    assert_eq!(status, 400);
    for rid in ["r1", "r2", "r3", "r4", "r5", "r6"] {
        assert_eq!(caller.accepted(rid), 0, "{rid}");
    }
    drop(cleanup);
}

/// Removes the test's images from the engine.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .arg("rmi")
            .arg("-f")
            .args(&self.0)
            .output();
    }
}
