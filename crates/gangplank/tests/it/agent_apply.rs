//! The agent's `POST /apply` without Docker: the docker command is a script that answers
//! `ps`/`inspect`/`image inspect` like an engine running `web` at its pinned image, and the
//! compose command records its arguments and, for `api`, holds `up` until the test opens a
//! gate file, so a run stays in progress while the test looks. Covers `unchanged` without a
//! compose run, 200 vs 202, repeated ids, the long poll, cancel, refusals with their reasons,
//! and the header-read timeout.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::agents::{Agent, key_pair, now, sign};
use crate::support::poll;

const WEB: &str = "r/web:1@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn ran(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn statuses(applied: &Value) -> Vec<(String, String)> {
    applied["services"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap_or_default().to_owned(),
                r["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn apply_answers_unchanged_without_compose_waits_cancels_and_says_why_it_refuses() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    std::fs::write(
        dir.join("compose.yml"),
        "services:\n  web:\n    image: r/web:0\n  api:\n    image: r/api:0\n  worker:\n    image: r/worker:0\n  other:\n    image: r/other:0\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(
        dir.join("state/shop.override.json"),
        json!({"services": {"web": {"image": WEB}}}).to_string(),
    )
    .unwrap();
    // The engine: `web` runs its pinned image (by digest); nothing else has a container. A
    // second container `gone` is listed by `ps` but removed before `inspect` (a deployment
    // replacing it): inspect prints what it found and fails, which is not an engine failure.
    std::fs::write(dir.join("ps.txt"), "c1\ngone\n").unwrap();
    std::fs::write(
        dir.join("inspect.json"),
        json!([{"Id": "c1", "Created": "2026-01-01T00:00:00Z", "Image": "sha256:img",
                "Config": {"Image": WEB, "Labels": {"com.docker.compose.project": "shop",
                                                     "com.docker.compose.service": "web"}},
                "State": {"Status": "running", "StartedAt": "2026-01-01T00:00:01Z"}}])
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("image.json"),
        json!([{"Id": "sha256:img", "RepoDigests": [WEB.replace("r/web:1@", "r/web@")]}])
            .to_string(),
    )
    .unwrap();
    let docker = dir.join("docker.sh");
    script(
        &docker,
        &format!(
            "#!/bin/sh\ncase \"$1\" in\n  ps) cat {d}/ps.txt ;;\n  inspect) cat {d}/inspect.json; case \"$*\" in *gone*) echo 'Error: No such object: gone' >&2; exit 1 ;; esac ;;\n  image) cat {d}/image.json ;;\n  *) exit 1 ;;\nesac\n",
            d = dir.display()
        ),
    );
    let ran_log = dir.join("ran.log");
    let gate = dir.join("open-gate");
    let compose = dir.join("compose.sh");
    // `up … api` waits for the gate: the tool's own wait, so the test can see a run in flight.
    script(
        &compose,
        &format!(
            "#!/bin/sh\necho \"$@\" >> {log}\ncase \"$*\" in\n  *\"up -d --no-deps api\"*) while [ ! -e {gate} ]; do sleep 0.05; done ;;\nesac\necho ok\n",
            log = ran_log.display(),
            gate = gate.display()
        ),
    );
    let (key, public) = key_pair(dir, "ec", "ec");
    let agent = Agent::start(
        dir,
        &format!(
            r#"
listen = "127.0.0.1:0"
state_dir = "{state}"
compose_command = "{compose}"
docker_command = "{docker}"
[auth]
public_keys = ["{public}"]
audience = "http://agent.test:8686"
[[project]]
name = "shop"
files = ["{file}"]
services = ["web", "api", "worker"]
health_timeout = "0s"
"#,
            state = dir.join("state").display(),
            compose = compose.display(),
            docker = docker.display(),
            public = public.display(),
            file = dir.join("compose.yml").display(),
        ),
    );
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    // Tokens need the agent's audience; a token for another says so (and nothing runs).
    let wrong_audience = sign(
        "ES256",
        &key,
        &json!({"iss": "gangplank", "exp": now() + 300, "jti": "aud-1", "aud": "http://other.test"}),
        None,
    );
    let refused: Value = http
        .post(format!("{}/apply", agent.base))
        .bearer_auth(&wrong_audience)
        .json(&json!({"id": "d0", "services": {"web": WEB}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        refused,
        json!({"error": "unauthorized", "message": "the token's audience does not include \"http://agent.test:8686\""})
    );
    let token = |n: &str| {
        sign(
            "ES256",
            &key,
            &json!({"iss": "gangplank", "exp": now() + 300, "jti": n, "aud": "http://agent.test:8686"}),
            None,
        )
    };
    let send = |request: reqwest::blocking::RequestBuilder, n: &str| -> (u16, Value) {
        let response = request.bearer_auth(token(n)).send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    };
    let http = &http;
    let base = &agent.base;

    // `web` already runs WEB: unchanged at once, 200, no compose run.
    let (status, applied) = send(
        http.post(format!("{base}/apply"))
            .json(&json!({"id": "d1", "project": "shop", "services": {"web": WEB}})),
        "t1",
    );
    assert_eq!(status, 200, "{applied}");
    assert_eq!(statuses(&applied), pairs(&[("web", "unchanged")]));
    assert_eq!(applied["services"][0]["id"], "d1-web");
    assert!(ran(&ran_log).is_empty(), "{:?}", ran(&ran_log));
    let unchanged =
        agent.lines("deployment unchanged: the service already runs the image, nothing run");
    assert_eq!(unchanged.len(), 1, "{unchanged:?}");
    assert_eq!(unchanged[0]["deploy"], "d1-web");
    assert_eq!(unchanged[0]["result"], "unchanged");

    // `api` must run (held at `up` by the gate), `worker` waits behind it: 202.
    let (status, applied) = send(
        http.post(format!("{base}/apply")).json(
            &json!({"id": "d2", "services": {"web": WEB, "api": "r/api:2", "worker": "r/worker:2"}}),
        ),
        "t2",
    );
    assert_eq!(status, 202, "{applied}");
    assert_eq!(
        statuses(&applied),
        pairs(&[
            ("api", "queued"),
            ("web", "unchanged"),
            ("worker", "queued")
        ])
    );
    poll("api's run to begin", || {
        ran(&ran_log)
            .iter()
            .any(|l| l.ends_with("up -d --no-deps api"))
            .then_some(())
    });
    // A repeated apply answers its records; nothing runs twice.
    let (status, again) = send(
        http.post(format!("{base}/apply")).json(
            &json!({"id": "d2", "services": {"web": WEB, "api": "r/api:2", "worker": "r/worker:2"}}),
        ),
        "t3",
    );
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        statuses(&again),
        pairs(&[
            ("api", "running"),
            ("web", "unchanged"),
            ("worker", "queued")
        ])
    );
    // A short long poll ends at its wait with the records as they are.
    let (status, polled) = send(http.get(format!("{base}/applies/d2?wait_seconds=1")), "t4");
    assert_eq!(status, 200, "{polled}");
    assert_eq!(polled["services"][0]["status"], "running");
    // Cancel: `worker` (queued) is dropped; `api` (running) finishes and is recorded.
    let (status, cancelled) = send(
        http.post(format!("{base}/applies/d2/cancel"))
            .header("content-type", "application/json"),
        "t5",
    );
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(
        statuses(&cancelled),
        pairs(&[
            ("api", "running"),
            ("web", "unchanged"),
            ("worker", "cancelled")
        ])
    );
    // A long poll that outlasts the run answers as soon as it ends.
    let waiter = {
        let http = http.clone();
        let url = format!("{base}/applies/d2?wait_seconds=30");
        let token = token("t6");
        std::thread::spawn(move || -> Value {
            http.get(url)
                .bearer_auth(token)
                .send()
                .unwrap()
                .json()
                .unwrap()
        })
    };
    std::fs::write(&gate, "").unwrap();
    let done = waiter.join().unwrap();
    assert_eq!(
        statuses(&done),
        pairs(&[
            ("api", "succeeded"),
            ("web", "unchanged"),
            ("worker", "cancelled")
        ])
    );
    assert!(
        !ran(&ran_log).iter().any(|l| l.contains("worker")),
        "a cancelled job ran: {:?}",
        ran(&ran_log)
    );
    let cancelled_lines = agent.lines("deployment cancelled before it ran");
    assert_eq!(cancelled_lines.len(), 1, "{cancelled_lines:?}");
    assert_eq!(cancelled_lines[0]["deploy"], "d2-worker");
    let succeeded = agent.lines("deployment succeeded");
    assert_eq!(succeeded.len(), 1, "{succeeded:?}");
    assert_eq!(succeeded[0]["deploy"], "d2-api");
    assert_eq!(succeeded[0]["image"], "r/api:2");
    // The service's record answers under its own id too.
    let (status, record) = send(http.get(format!("{base}/deploys/d2-api")), "t7");
    assert_eq!((status, &record["status"]), (200, &json!("succeeded")));
    // A finished apply repeated: 200, the same records, nothing run.
    let runs = ran(&ran_log).len();
    let (status, repeated) = send(
        http.post(format!("{base}/apply")).json(
            &json!({"id": "d2", "services": {"web": WEB, "api": "r/api:2", "worker": "r/worker:2"}}),
        ),
        "t8",
    );
    assert_eq!(status, 200, "{repeated}");
    assert_eq!(statuses(&repeated), statuses(&done));
    assert_eq!(ran(&ran_log).len(), runs);

    // Refusals, each with its reason.
    let bad = [
        (
            json!({"id": "d3", "services": {"other": "r/other:1"}}),
            400,
            "service \"other\" may not be deployed",
        ),
        (
            json!({"id": "d3", "project": "nope", "services": {"web": WEB}}),
            400,
            "no project \"nope\"",
        ),
        (
            json!({"id": "d/3", "services": {"web": WEB}}),
            400,
            "id must be",
        ),
        (
            json!({"id": "d3", "services": {}}),
            400,
            "at least one service",
        ),
        (
            json!({"id": "d3", "services": {"web": "r/web:1 --privileged"}}),
            400,
            "services.web",
        ),
        (json!({"id": "d3"}), 400, "not an apply request"),
    ];
    for (n, (body, code, reason)) in bad.into_iter().enumerate() {
        let (status, answer) = send(
            http.post(format!("{base}/apply")).json(&body),
            &format!("bad-{n}"),
        );
        assert_eq!(status, code, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(reason),
            "{body}: {answer}"
        );
    }
    let (status, answer) = send(http.get(format!("{base}/applies/unknown")), "t9");
    assert_eq!((status, &answer["error"]), (404, &json!("not_found")));
    let (status, answer) = send(
        http.get(format!("{base}/applies/d2?wait_seconds=soon")),
        "t10",
    );
    assert_eq!((status, &answer["error"]), (400, &json!("invalid_request")));
    let text = http
        .post(format!("{base}/apply"))
        .bearer_auth(token("t11"))
        .header("content-type", "text/plain")
        .body("d2")
        .send()
        .unwrap();
    assert_eq!(text.status().as_u16(), 415);
    // The seed's text callers still get only `unauthorized`.
    let seed = http
        .post(format!("{base}/deploy"))
        .header("content-type", "text/plain")
        .body("eyJzZXJ2aWNlIjoid2ViIn0=")
        .send()
        .unwrap();
    assert_eq!(seed.status().as_u16(), 401);
    assert_eq!(seed.text().unwrap(), "unauthorized\n");
    assert!(!agent.log().contains("eyJ"), "a token reached the log");

    // A connection that never sends its headers is closed by the agent.
    let address = base.trim_start_matches("http://");
    let mut silent = std::net::TcpStream::connect(address).unwrap();
    silent.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(90)))
        .unwrap();
    let mut rest = Vec::new();
    let closed = silent.read_to_end(&mut rest);
    assert!(
        closed.is_ok()
            || closed
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the agent kept a silent connection open: {closed:?}"
    );
}
