//! Image builds on a real `gangplank agent` with `[builder]` (`POST /builds`): a repository on
//! a git server running the real `git http-backend` behind a token, the machine's Docker
//! engine, a docker-registry with htpasswd auth whose credentials a real `gangplank serve`
//! holds for the agent's `[credentials]`. The exact commit is built though its branch moved
//! on, tags are rendered, the digest is the registry's; the clone token shows up in no log
//! and no image; failures name their phase; cancel kills the build; ids are idempotent;
//! concurrency 1 keeps a second build pending.

use std::process::{Command, Stdio};

use gangplank_testkit::{Auth, GitServer, Registry, WorkTree, busybox_image_files};
use serde_json::{Value, json};

use crate::agent_docker::require_docker;
use crate::agents::{Agent, key_pair, now, run, sign};
use crate::support::{ADMIN, Server, poll};

const USER: &str = "builder";
const PASSWORD: &str = "build-secret-Kd73";
const TOKEN: &str = "clone-token-Wp52xR";

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
            &json!({"iss": "gangplank", "exp": now() + 300, "jti": format!("b{n}-{}", std::process::id())}),
            None,
        )
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.agent.base);
        let mut request = match method {
            "GET" => self.agent.http.get(url),
            _ => self.agent.http.post(url),
        }
        .bearer_auth(self.token());
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
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
        self.send("POST", "/builds", Some(body))
    }

    fn get(&self, id: &str) -> Value {
        let (status, build) = self.send("GET", &format!("/builds/{id}"), None);
        assert_eq!(status, 200, "{build}");
        build
    }

    /// The build once final, with every log line read along the way (long polls of 5 s).
    fn finished(&self, id: &str) -> (Value, Vec<String>) {
        let mut lines: Vec<String> = Vec::new();
        let mut next = 0;
        let build = poll(&format!("build {id} to finish"), || {
            let (status, build) =
                self.send("GET", &format!("/builds/{id}?from={next}&wait=5"), None);
            assert_eq!(status, 200, "{build}");
            assert_eq!(build["first_line"], next, "no line was dropped: {build}");
            for line in build["lines"].as_array().unwrap() {
                lines.push(line.as_str().unwrap().to_owned());
            }
            next = build["next"].as_u64().unwrap();
            let done = !matches!(build["status"].as_str(), Some("pending" | "running"));
            (done && build["lines"].as_array().unwrap().is_empty()).then_some(build)
        });
        (build, lines)
    }

    fn accepted(&self, id: &str) -> usize {
        self.agent
            .lines("build accepted")
            .iter()
            .filter(|f| f["build"] == id)
            .count()
    }
}

/// A builder agent (concurrency 1) whose `[credentials]` point at `server`, when given.
fn builder_agent(dir: &std::path::Path, credentials: Option<(&Server, &str)>) -> Caller {
    let (key, public) = key_pair(dir, "ec", "ec");
    let credentials = credentials.map_or(String::new(), |(server, token)| {
        format!(
            "[credentials]\nserver = \"{}\"\norg = \"default\"\ntoken = \"{token}\"\n",
            server.base
        )
    });
    let agent = Agent::start(
        dir,
        &format!(
            r#"
listen = "127.0.0.1:0"
state_dir = "{state}"
[auth]
public_keys = ["{public}"]
[builder]
concurrency = 1
engine = "docker"
{credentials}"#,
            state = dir.join("state").display(),
            public = public.display(),
        ),
    );
    Caller {
        agent,
        key,
        n: std::cell::Cell::new(0),
    }
}

/// Images the test pulled or tagged, removed on drop.
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

fn files(files: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect()
}

#[test]
fn builds_the_exact_commit_and_pushes_its_tags_without_leaking_the_clone_token() {
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let registry = Registry::start_with(Auth::Htpasswd(USER, PASSWORD));
    let host = registry.host();
    let git = GitServer::start(Some(TOKEN));
    let tree = WorkTree::new(&git.create_repo("shop.git"));
    let old = tree.commit(
        &files(&busybox_image_files("VERSION", b"old-Aq1", 8080)),
        "v1",
    );
    tree.push("main");
    let new = tree.commit(&[("VERSION", b"new-Bz2".as_slice())], "v2");
    tree.push("main");
    assert_ne!(old, new);

    let server = Server::start();
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(
            json!({"id": "local", "registry": host, "type": "basic", "enable_ci": true, "insecure": true,
                    "creds": {"username": USER, "password": PASSWORD}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    let (_, agent_token) = server.user("artefactContributor");
    let caller = builder_agent(dir, Some((&server, &agent_token)));

    let repository = format!("shop/web{}", std::process::id());
    let image = format!("{host}/{repository}");
    let request = json!({
        "id": "b1", "clone_url": git.url("shop.git"), "clone_token": TOKEN,
        "ref": "refs/heads/main", "commit": old, "dockerfile": "Dockerfile", "context": ".",
        "build_args": {"NOTE": "not-a-secret"}, "image": image,
        "tags": ["${commit}", "${branch}-${short_commit}", "latest"],
        "registry_id": "local", "timeout_seconds": 300,
    });
    let (status, started) = caller.start(&request);
    assert_eq!(status, 201, "{started}");
    assert!(
        matches!(started["status"].as_str(), Some("pending" | "running")),
        "{started}"
    );
    let (build, lines) = caller.finished("b1");
    assert_eq!(
        build["status"],
        "succeeded",
        "{build}\n{}",
        lines.join("\n")
    );
    assert_eq!(
        build["commit"],
        old.as_str(),
        "the older commit, not the branch's head"
    );
    let short = &old[..7];
    assert_eq!(
        build["tags"],
        json!([old, format!("main-{short}"), "latest"]),
        "{build}"
    );
    let digest = build["digest"].as_str().unwrap().to_owned();
    for tag in [old.as_str(), &format!("main-{short}"), "latest"] {
        assert_eq!(
            registry.skopeo_digest(&repository, tag, Some((USER, PASSWORD))),
            digest,
            "{tag}"
        );
    }
    for phase in [
        "==> clone ",
        "==> build",
        &format!("==> push {image}:latest"),
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(phase)),
            "{phase}: {}",
            lines.join("\n")
        );
    }

    // The image holds the old commit's content; its history holds no token.
    let pulled = format!("{image}@{digest}");
    let _cleanup = Cleanup(vec![pulled.clone()]);
    let docker_config = dir.join("test-docker");
    let mut login = Command::new("docker")
        .arg("--config")
        .arg(&docker_config)
        .args(["login", "-u", USER, "--password-stdin", &host])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), PASSWORD.as_bytes()).unwrap();
    assert!(login.wait().unwrap().success(), "docker login");
    let config = docker_config.to_str().unwrap();
    run("docker", &["--config", config, "pull", "-q", &pulled]);
    let content = run("docker", &["run", "--rm", &pulled, "cat", "/VERSION"]);
    assert_eq!(content, "old-Aq1");
    let history = run("docker", &["history", "--no-trunc", &pulled]);
    let basic = crate::agents::b64(&format!("x-access-token:{TOKEN}"));
    for secret in [TOKEN, basic.as_str(), PASSWORD] {
        assert!(!history.contains(secret), "{secret} in the image history");
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "{secret} in the build log"
        );
        assert!(
            !caller.agent.log().contains(secret),
            "{secret} in the agent log"
        );
    }
    // The agent's tags went after the push: the engine keeps none of them.
    assert_eq!(
        run("docker", &["images", "-q", &format!("{image}:latest")]).trim(),
        ""
    );

    // The same id again: the same build, not built again; other contents: 409.
    let (status, again) = caller.start(&request);
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["digest"], &again["status"]),
        (&build["digest"], &build["status"])
    );
    assert_eq!(caller.accepted("b1"), 1);
    let mut other = request.clone();
    other["commit"] = json!(new);
    let (status, refused) = caller.start(&other);
    assert_eq!(
        (status, refused["error"].as_str()),
        (409, Some("conflict")),
        "{refused}"
    );

    // Without a commit: the head of the ref, reported.
    let mut head = request.clone();
    head["id"] = json!("b2");
    head["tags"] = json!(["head"]);
    head.as_object_mut().unwrap().remove("commit");
    let (status, _) = caller.start(&head);
    assert_eq!(status, 201);
    let (build, lines) = caller.finished("b2");
    assert_eq!(
        build["status"],
        "succeeded",
        "{build}\n{}",
        lines.join("\n")
    );
    assert_eq!(build["commit"], new.as_str());
    let pulled_head = format!("{image}@{}", build["digest"].as_str().unwrap());
    let _cleanup_head = Cleanup(vec![pulled_head.clone()]);
    run("docker", &["--config", config, "pull", "-q", &pulled_head]);
    assert_eq!(
        run("docker", &["run", "--rm", &pulled_head, "cat", "/VERSION"]),
        "new-Bz2"
    );
}

/// The `/bin/busybox sleep 60` processes of this machine (a cancelled build's RUN step).
fn sleeping() -> usize {
    run("ps", &["-eo", "args"])
        .lines()
        .filter(|l| l.trim() == "/bin/busybox sleep 60")
        .count()
}

#[test]
fn failures_name_their_phase_cancel_kills_the_build_and_one_slot_keeps_the_next_pending() {
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let git = GitServer::start(Some(TOKEN));
    let tree = WorkTree::new(&git.create_repo("tools.git"));
    let mut repo = busybox_image_files("VERSION", b"1", 8080);
    repo.push((
        "sleepy/Dockerfile".to_owned(),
        b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"60\"]\n"
            .to_vec(),
    ));
    repo.push((
        "loud/Dockerfile".to_owned(),
        b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"seq\", \"1\", \"12000\"]\n"
            .to_vec(),
    ));
    repo.push((
        "broken/Dockerfile".to_owned(),
        b"FROM scratch\nNOT-AN-INSTRUCTION x\n".to_vec(),
    ));
    tree.symlink("/etc/passwd", "outside");
    let commit = tree.commit(&files(&repo), "tools");
    tree.push("main");
    // The branch moves on, and a commit on another branch only (no ref points at it).
    tree.commit(&[("NOTE", b"2".as_slice())], "two");
    tree.push("main");
    let side = tree.commit(&[("NOTE", b"3".as_slice())], "side");
    tree.commit(&[("NOTE", b"4".as_slice())], "side 2");
    tree.push("side");
    let caller = builder_agent(dir, None);
    let image = format!("127.0.0.1:9/tools/never{}", std::process::id());
    let request = |id: &str, dockerfile: &str, token: &str| {
        json!({
            "id": id, "clone_url": git.url("tools.git"), "clone_token": token,
            "ref": "refs/heads/main", "commit": commit, "dockerfile": dockerfile,
            "context": ".", "image": image, "tags": ["latest"], "timeout_seconds": 120,
        })
    };

    let config: Value = caller
        .agent
        .http
        .get(format!("{}/config", caller.agent.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(config["builder"]["engine"], "docker", "{config}");
    assert_eq!(config["builder"]["concurrency"], 1, "{config}");

    // A wrong token: the clone fails, and says so.
    caller.start(&request("wrong", "Dockerfile", "not-the-token"));
    let (build, lines) = caller.finished("wrong");
    assert_eq!(build["status"], "failed", "{build}");
    let message = build["message"].as_str().unwrap();
    assert!(message.starts_with("clone failed: "), "{message}");
    assert!(git.refused() > 0);
    assert!(!lines.iter().any(|l| l.contains("not-the-token")));

    // A broken Dockerfile: the build fails, and says so.
    caller.start(&request("broken", "broken/Dockerfile", TOKEN));
    let (build, lines) = caller.finished("broken");
    assert_eq!(build["status"], "failed", "{build}");
    assert_eq!(
        build["message"],
        "docker build exited with 1",
        "{}",
        lines.join("\n")
    );
    assert_eq!(build["commit"], commit.as_str());

    // A Dockerfile that is a symlink out of the checkout is not read.
    caller.start(&request("outside", "outside", TOKEN));
    let (build, _) = caller.finished("outside");
    assert_eq!(build["status"], "failed", "{build}");
    assert!(
        build["message"]
            .as_str()
            .unwrap()
            .contains("resolves outside the checkout"),
        "{build}"
    );

    // A server that refuses fetches by id: the ref is fetched and must hold the commit.
    git.set_protocol_v2(false);
    let mut by_ref = request("v0", "broken/Dockerfile", TOKEN);
    by_ref["commit"] = json!(commit);
    caller.start(&by_ref);
    let (build, lines) = caller.finished("v0");
    assert_eq!(
        (build["message"].as_str(), build["commit"].as_str()),
        (Some("docker build exited with 1"), Some(commit.as_str())),
        "{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.contains("by id failed")),
        "{}",
        lines.join("\n")
    );
    let mut elsewhere = request("side", "Dockerfile", TOKEN);
    elsewhere["commit"] = json!(side);
    caller.start(&elsewhere);
    let (build, _) = caller.finished("side");
    assert_eq!(
        build["message"],
        format!("clone failed: commit {side} is not in the history of refs/heads/main")
    );
    git.set_protocol_v2(true);

    // Stuck in a RUN step: a second build waits for the one slot; the cancel kills the
    // first (its sleep is gone) and the second then runs.
    let before = sleeping();
    let (status, _) = caller.start(&request("sleepy", "sleepy/Dockerfile", TOKEN));
    assert_eq!(status, 201);
    poll("the build's RUN step to sleep", || {
        let build = caller.get("sleepy");
        assert_eq!(build["status"], "running", "{build}");
        (sleeping() > before).then_some(())
    });
    // The checkout's git config holds no token (it went in git's environment only).
    let builds = dir.join("state/builds");
    let checkout = std::fs::read_dir(&builds)
        .unwrap()
        .next()
        .expect("the running build's directory")
        .unwrap()
        .path()
        .join("src");
    let git_config = std::fs::read_to_string(checkout.join(".git/config")).unwrap();
    let basic = crate::agents::b64(&format!("x-access-token:{TOKEN}"));
    assert!(
        !git_config.contains(TOKEN) && !git_config.contains(&basic),
        "{git_config}"
    );
    let (status, _) = caller.start(&request("next", "broken/Dockerfile", TOKEN));
    assert_eq!(status, 201);
    assert_eq!(caller.get("next")["status"], "pending");
    let (status, _) = caller.send("POST", "/builds/sleepy/cancel", None);
    assert_eq!(status, 200);
    let (build, _) = caller.finished("sleepy");
    assert_eq!(build["status"], "cancelled", "{build}");
    poll("the cancelled build's sleep to end", || {
        (sleeping() <= before).then_some(())
    });
    let (build, _) = caller.finished("next");
    assert_eq!(build["status"], "failed", "{build}");

    // The timeout stops it too.
    let mut slow = request("slow", "sleepy/Dockerfile", TOKEN);
    slow["timeout_seconds"] = json!(3);
    caller.start(&slow);
    let (build, _) = caller.finished("slow");
    assert_eq!(
        (build["status"].as_str(), build["message"].as_str()),
        (Some("failed"), Some("timed out after 3 s")),
        "{build}"
    );
    poll("the timed-out build's sleep to end", || {
        (sleeping() <= before).then_some(())
    });

    // A pending build cancelled ends at once.
    caller.start(&request("sleepy2", "sleepy/Dockerfile", TOKEN));
    caller.start(&request("queued", "Dockerfile", TOKEN));
    let (status, _) = caller.send("POST", "/builds/queued/cancel", None);
    assert_eq!(status, 200);
    let (build, _) = caller.finished("queued");
    assert_eq!(build["status"], "cancelled", "{build}");
    caller.send("POST", "/builds/sleepy2/cancel", None);
    assert_eq!(caller.finished("sleepy2").0["status"], "cancelled");

    // A log longer than the agent keeps: the oldest lines are dropped, and `first_line` says
    // how many.
    caller.start(&request("loud", "loud/Dockerfile", TOKEN));
    let build = poll("the loud build to finish", || {
        let (_, build) = caller.send("GET", "/builds/loud?wait=5", None);
        (build["status"] != "pending" && build["status"] != "running").then_some(build)
    });
    let (first, next) = (
        build["first_line"].as_u64().unwrap(),
        build["next"].as_u64().unwrap(),
    );
    assert!(first > 2000, "{first}");
    assert_eq!(next, first + 1000, "at most 1000 lines an answer");
    let (_, tail) = caller.send("GET", "/builds/loud?from=99999999", None);
    assert_eq!(
        tail["first_line"].as_u64().unwrap() - first,
        10_000,
        "{}",
        tail["first_line"]
    );
    assert_eq!(tail["lines"], json!([]));
    let (_, end) = caller.send("GET", &format!("/builds/loud?from={}", first + 9_990), None);
    assert!(
        end["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "12000"),
        "{end}"
    );

    // Refusals with their reasons; none starts a build.
    let good = request("r0", "Dockerfile", TOKEN);
    for (field, value, reason) in [
        ("commit", json!("main"), "commit"),
        ("dockerfile", json!("../Dockerfile"), "dockerfile"),
        ("context", json!("/"), "context"),
        ("ref", json!("main"), "ref"),
        ("clone_url", json!("file:///etc"), "clone_url"),
        ("tags", json!(["${nope}"]), "tags"),
        ("shell", json!("sh"), "unknown field"),
    ] {
        let mut body = good.clone();
        body[field] = value;
        let (status, refused) = caller.start(&body);
        assert_eq!(status, 400, "{field}: {refused}");
        assert!(
            refused["message"].as_str().unwrap().contains(reason),
            "{field}: {refused}"
        );
    }
    assert_eq!(caller.accepted("r0"), 0);
    let (status, unknown) = caller.send("GET", "/builds/nope", None);
    assert_eq!(
        (status, unknown["error"].as_str()),
        (404, Some("not_found"))
    );
    let response = caller
        .agent
        .http
        .post(format!("{}/builds", caller.agent.base))
        .header("content-type", "application/json")
        .body(good.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 401, "no token");
    // A failed docker build leaves its completed steps as untagged cache images: the test's
    // go (their ids are in the builds' logs).
    let mut layers = Vec::new();
    for id in ["broken", "v0", "next", "sleepy", "slow", "sleepy2", "loud"] {
        let (_, build) = caller.send("GET", &format!("/builds/{id}?from=0"), None);
        for line in build["lines"].as_array().unwrap() {
            if let Some(layer) = line.as_str().unwrap().strip_prefix(" ---> ")
                && layer.len() == 12
                && layer.bytes().all(|b| b.is_ascii_hexdigit())
                && !layers.iter().any(|l| l == layer)
            {
                layers.push(layer.to_owned());
            }
        }
    }
    drop(Cleanup(layers));
    // Builds leave no directory behind.
    assert_eq!(
        std::fs::read_dir(&builds).unwrap().count(),
        0,
        "{}",
        builds.display()
    );
}

#[test]
fn an_agent_without_builder_refuses_builds() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let (key, public) = key_pair(dir, "ec", "ec");
    std::fs::write(
        dir.join("compose.yml"),
        "services:\n  web:\n    image: unused:1\n",
    )
    .unwrap();
    let agent = Agent::start(
        dir,
        &format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[auth]\npublic_keys = [\"{}\"]\n\
             [[project]]\nname = \"unused\"\nfiles = [\"{}\"]\n",
            dir.join("state").display(),
            public.display(),
            dir.join("compose.yml").display()
        ),
    );
    let caller = Caller {
        agent,
        key,
        n: std::cell::Cell::new(0),
    };
    let config: Value = caller
        .agent
        .http
        .get(format!("{}/config", caller.agent.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(config["builder"].is_null(), "{config}");
    for (method, path) in [
        ("POST", "/builds"),
        ("GET", "/builds/x"),
        ("POST", "/builds/x/cancel"),
    ] {
        let body = json!({});
        let (status, refused) = caller.send(method, path, (path == "/builds").then_some(&body));
        assert_eq!(
            (status, refused["error"].as_str()),
            (404, Some("not_a_builder")),
            "{method} {path}: {refused}"
        );
    }
}
