//! Seed 002 end to end, with real programs only: a repository served by the real
//! `git http-backend` behind a token; GitHub push deliveries signed with `openssl` (JSON and
//! form-encoded); a real `gangplank agent` that is both the builder (`[builder]`, the
//! machine's Docker engine) and the compose host; a docker-registry with htpasswd auth. A push
//! to `main` builds that commit, registers it with the registry's digest, commit and ref, and
//! an automation rule deploys it: the service's port answers the new commit's content. A push
//! to another branch, a bad signature and a redelivery build nothing. Then SIGKILL of the
//! server during a build (it resumes and succeeds, its log not doubled) and of the agent (the
//! build ends `errored` saying the builder lost it, never stuck `running`).

use std::path::Path;
use std::process::Command;

use gangplank_testkit::{Auth, GitServer, Registry, WorkTree, busybox_image_files, free_port};
use serde_json::{Value, json};

use crate::agent_docker::{Cleanup, require_docker, served_version};
use crate::agents::Agent;
use crate::support::{ADMIN, Server, admin_cli, github_form, github_signature, poll};

const USER: &str = "seed2-robot";
const PASSWORD: &str = "seed2-registry-pass-Hx81";
const CLONE_TOKEN: &str = "seed2-clone-token-Rq55";
const SECRET: &str = "seed2-github-secret-Lm20";

/// Everything one scenario runs on.
struct Stack {
    dir: tempfile::TempDir,
    registry: Registry,
    git: GitServer,
    tree: WorkTree,
    server: Server,
    agent: Option<Agent>,
    agent_config: String,
    image: String,
    port: u16,
    /// The commit `start` pushed to `main`.
    first: String,
    _cleanup: Cleanup,
}

impl Stack {
    /// The registry, the git server with one commit on `main` (VERSION = `first`), a server
    /// (on a fixed port, so a restart keeps its address) holding the registry's credentials,
    /// the agent (builder and compose host), the app with its environment's compose target,
    /// build definition and GitHub hook. `dockerfile_extra` goes after the Dockerfile's COPYs.
    fn start(first: &str, dockerfile_extra: &str) -> Stack {
        require_docker();
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start_with(Auth::Htpasswd(USER, PASSWORD));
        let host = registry.host();
        let git = GitServer::start(Some(CLONE_TOKEN));
        let tree = WorkTree::new(&git.create_repo("shop.git"));
        let mut files = busybox_image_files("VERSION", first.as_bytes(), 8080);
        if !dockerfile_extra.is_empty() {
            let (_, dockerfile) = files.iter_mut().find(|(p, _)| p == "Dockerfile").unwrap();
            let text = String::from_utf8(dockerfile.clone()).unwrap();
            let text = text.replacen("ENTRYPOINT", &format!("{dockerfile_extra}\nENTRYPOINT"), 1);
            *dockerfile = text.into_bytes();
        }
        let borrowed: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_slice()))
            .collect();
        let first = tree.commit(&borrowed, "first");
        tree.push("main");

        let pid = std::process::id();
        let image = format!("{host}/seed2/web{pid}");
        let project = format!("gpseed2{pid}{}", free_port());
        let port = free_port();
        let compose_file = dir.path().join("compose.yml");
        std::fs::write(
            &compose_file,
            format!(
                "version: \"3.8\"\nservices:\n  web:\n    image: {image}:latest\n    ports: [\"127.0.0.1:{port}:8080\"]\n"
            ),
        )
        .unwrap();
        let state = dir.path().join("agent-state");
        let cleanup = Cleanup {
            project: project.clone(),
            files: vec![
                compose_file.clone(),
                state.join(format!("{project}.override.json")),
            ],
            images: Vec::new(),
        };
        let server_port = free_port();
        let server = Server::start_with(&[
            ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
            ("GANGPLANK_AUTOMATION_DEBOUNCE", "0s"),
            ("GANGPLANK_LISTEN", &format!("127.0.0.1:{server_port}")),
        ]);
        let call = |method: &str, path: &str, body: Value| {
            let (status, answer) = server.call(method, path, Some(ADMIN), Some(body));
            assert!((200..300).contains(&status), "{method} {path}: {answer}");
            answer
        };
        call(
            "POST",
            "/orgs/default/registries",
            json!({"id": "local", "registry": host, "type": "basic", "enable_ci": true,
                "insecure": true, "creds": {"username": USER, "password": PASSWORD}}),
        );
        let (_, agent_token) = server.user("artefactContributor");
        let agent_port = free_port();
        let agent_config = format!(
            r#"
listen = "127.0.0.1:{agent_port}"
state_dir = "{state}"
docker_config = "{docker_config}"
[auth]
jwks_url = "{base}/.well-known/jwks.json"
[credentials]
server = "{base}"
org = "default"
token = "{agent_token}"
registries = ["local"]
[builder]
concurrency = 1
engine = "docker"
[[project]]
name = "{project}"
files = ["{file}"]
services = ["web"]
health_timeout = "60s"
grace = "1s"
"#,
            state = state.display(),
            docker_config = dir.path().join("agent-docker").display(),
            base = server.base,
            file = compose_file.display(),
        );
        let agent_dir = dir.path().join("agent");
        std::fs::create_dir_all(&agent_dir).unwrap();
        let agent = Agent::start(&agent_dir, &agent_config);
        server.create_app("shop");
        call(
            "PUT",
            "/orgs/default/apps/shop/envs/development/target",
            json!({"type": "compose", "agents": [{"url": agent.base, "services": {"web": "web"}}]}),
        );
        call(
            "PUT",
            "/orgs/default/apps/shop/build-definition",
            json!({"clone_url": git.url("shop.git"), "clone_token": CLONE_TOKEN,
                "branches": ["main"], "image": image, "builder": agent.base}),
        );
        call(
            "POST",
            "/orgs/default/inbound-hooks",
            json!({"id": "gh", "kind": "github", "secret": SECRET}),
        );
        Stack {
            dir,
            registry,
            git,
            tree,
            server,
            agent: Some(agent),
            agent_config,
            image,
            port,
            first,
            _cleanup: cleanup,
        }
    }

    /// Commits `VERSION` = `content` on `branch` and pushes it; the commit id.
    fn commit(&self, content: &str, branch: &str) -> String {
        let sha = self
            .tree
            .commit(&[("VERSION", content.as_bytes())], content);
        self.tree.push(branch);
        sha
    }

    /// A GitHub push delivery for `branch` at `after`, as JSON or form data, signed with
    /// `secret`.
    fn deliver(
        &self,
        id: &str,
        branch: &str,
        after: &str,
        form: bool,
        secret: &str,
    ) -> (u16, Value) {
        let payload = json!({"ref": format!("refs/heads/{branch}"), "before": "0".repeat(40),
            "after": after, "repository": {"full_name": "acme/shop",
            "clone_url": self.git.url("shop.git")}, "pusher": {"name": "octo-dev"}})
        .to_string();
        let (content_type, body) = if form {
            ("application/x-www-form-urlencoded", github_form(&payload))
        } else {
            ("application/json", payload)
        };
        let response = self
            .server
            .http
            .post(format!("{}/hooks/default/gh", self.server.base))
            .header("content-type", content_type)
            .header("x-github-event", "push")
            .header("x-github-delivery", id)
            .header(
                "x-hub-signature-256",
                github_signature(secret, body.as_bytes()),
            )
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    fn builds(&self) -> Vec<Value> {
        let (status, list) = self.server.call(
            "GET",
            "/orgs/default/apps/shop/builds?per_page=100",
            Some(ADMIN),
            None,
        );
        assert_eq!(status, 200, "{list}");
        list.as_array().cloned().unwrap_or_default()
    }

    /// The build of `commit` once it ended.
    fn ended_build_of(&self, commit: &str) -> Value {
        poll(&format!("the build of {commit} to end"), || {
            self.builds().into_iter().find(|b| {
                b["commit"] == commit && !matches!(b["status"].as_str(), Some("queued" | "running"))
            })
        })
    }

    fn log_of(&self, build: &Value) -> Vec<String> {
        let (status, log) = self.server.call(
            "GET",
            &format!(
                "/orgs/default/apps/shop/builds/{}/logs",
                build["id"].as_str().unwrap()
            ),
            Some(ADMIN),
            None,
        );
        assert_eq!(status, 200, "{log}");
        log["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect()
    }

    fn cli(&self, home: &Path) -> assert_cmd::Command {
        let mut command = admin_cli(&self.server, home);
        command.args(["--app", "shop"]);
        command
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["images", "-q", &self.image])
            .output()
            .map(|out| {
                let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                if !ids.is_empty() {
                    let _ = Command::new("docker")
                        .arg("rmi")
                        .arg("-f")
                        .args(&ids)
                        .output();
                }
            });
    }
}

fn versions_of(server: &Server, image: &str) -> Vec<Value> {
    let (status, list) = server.call(
        "GET",
        &format!("/orgs/default/artefact-versions?name={image}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

#[test]
fn a_github_push_builds_registers_and_deploys_the_new_commit() {
    let pid = std::process::id();
    let stack = Stack::start(&format!("one-{pid}"), "");
    let server = &stack.server;
    let home = tempfile::tempdir().unwrap();

    // The first commit, built by a person (`gangplank build run`), deployed by hand.
    let first = stack.first.clone();
    let out = stack
        .cli(home.path())
        .args(["-o", "json", "build", "run", "shop", "--commit", &first])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = stack.ended_build_of(&first);
    assert_eq!(built["status"], "succeeded", "{built}");
    let digest =
        stack
            .registry
            .skopeo_digest(&format!("seed2/web{pid}"), &first, Some((USER, PASSWORD)));
    assert_eq!(built["digest"], digest.as_str(), "{built}");
    let version = versions_of(server, &stack.image)
        .into_iter()
        .find(|v| v["id"] == built["version_id"])
        .expect("the build's version is registered");
    assert_eq!(
        (&version["commit"], &version["ref"], &version["digest"]),
        (&json!(first), &json!("refs/heads/main"), &json!(digest)),
        "{version}"
    );
    let logs = stack
        .cli(home.path())
        .args(["logs", "build", built["id"].as_str().unwrap(), "-f"])
        .output()
        .unwrap();
    assert!(
        logs.status.success(),
        "{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    let printed = String::from_utf8_lossy(&logs.stdout);
    assert!(
        printed.contains("==> build") && printed.contains("==> push"),
        "{printed}"
    );
    assert!(!printed.contains(CLONE_TOKEN) && !printed.contains(PASSWORD));

    let (status, delta) = server.call(
        "POST",
        "/orgs/default/apps/shop/deltas",
        Some(ADMIN),
        Some(json!({"metadata": {"env_id": "development"}, "modules": {"add": {"web": {
            "spec": {"containers": {"main": {"image": format!("{}:{first}@{digest}", stack.image)}}}}}}})),
    );
    assert_eq!(status, 200, "{delta}");
    let (status, deploy) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"], "comment": "first"})),
    );
    assert_eq!(status, 201, "{deploy}");
    let deploy = crate::support::wait_deploy_final(
        server,
        "shop",
        "development",
        deploy["id"].as_str().unwrap(),
    );
    assert_eq!(deploy["status"], "succeeded", "{deploy}");
    assert_eq!(served_version(stack.port), Some(format!("one-{pid}")));
    let (status, rule) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/rules",
        Some(ADMIN),
        Some(json!({"type": "update", "artefacts_filter": [stack.image.clone()]})),
    );
    assert_eq!(status, 201, "{rule}");

    // A push to main, delivered as JSON: built, registered, deployed; the port answers it.
    let second = stack.commit(&format!("two-{pid}"), "main");
    let (status, receipt) = stack.deliver("seed2-d1", "main", &second, false, SECRET);
    assert_eq!(
        (status, &receipt["verdict"]),
        (200, &json!("accepted")),
        "{receipt}"
    );
    // GitHub's redelivery of the same delivery builds nothing twice.
    let (status, again) = stack.deliver("seed2-d1", "main", &second, false, SECRET);
    assert_eq!(status, 200, "{again}");
    let built = stack.ended_build_of(&second);
    assert_eq!(built["status"], "succeeded", "{built}");
    assert_eq!(built["trigger"], "github");
    poll("the service to answer the second commit", || {
        (served_version(stack.port) == Some(format!("two-{pid}"))).then_some(())
    });

    // Another branch, a bad signature: nothing is built.
    let other = stack.commit(&format!("dev-{pid}"), "dev");
    let (status, receipt) = stack.deliver("seed2-d2", "dev", &other, false, SECRET);
    assert_eq!(
        (status, &receipt["verdict"]),
        (200, &json!("ignored")),
        "{receipt}"
    );
    let (status, _) = stack.deliver("seed2-d3", "main", &other, false, "not-the-secret");
    assert_eq!(status, 401);

    // The same, delivered form-encoded (`payload=`), as GitHub sends it when told to.
    let third = stack.commit(&format!("three-{pid}"), "main");
    let (status, receipt) = stack.deliver("seed2-d4", "main", &third, true, SECRET);
    assert_eq!(
        (status, &receipt["verdict"]),
        (200, &json!("accepted")),
        "{receipt}"
    );
    assert_eq!(stack.ended_build_of(&third)["status"], "succeeded");
    poll("the service to answer the third commit", || {
        (served_version(stack.port) == Some(format!("three-{pid}"))).then_some(())
    });

    let commits: Vec<Value> = stack.builds().iter().map(|b| b["commit"].clone()).collect();
    assert_eq!(
        commits,
        [json!(third), json!(second), json!(first)],
        "one build per push"
    );
    assert!(!server.log().contains(CLONE_TOKEN));
    assert!(!stack.agent.as_ref().unwrap().log().contains(CLONE_TOKEN));
}

#[test]
fn a_build_survives_a_server_crash_and_ends_errored_when_its_builder_restarts() {
    let pid = std::process::id();
    // Each build sleeps a few seconds, so the crashes land while it runs.
    let mut stack = Stack::start(
        &format!("slow-{pid}"),
        r#"RUN ["/bin/busybox", "sleep", "4"]"#,
    );
    let first = stack.first.clone();
    let running = |stack: &Stack, commit: &str| {
        poll("the build to be running on the builder", || {
            stack.builds().into_iter().find(|b| {
                b["commit"] == commit
                    && b["status"] == "running"
                    && stack.log_of(b).iter().any(|l| l.starts_with("==> build"))
            })
        })
    };
    let (status, queued) = stack.server.call(
        "POST",
        "/orgs/default/apps/shop/builds",
        Some(ADMIN),
        Some(json!({"commit": first})),
    );
    assert_eq!(status, 201, "{queued}");
    running(&stack, &first);
    // SIGKILL of the server mid-build: the next claim finds the build on the builder and
    // follows it to the end; the log keeps each line once.
    stack.server.crash_and_restart();
    let built = stack.ended_build_of(&first);
    assert_eq!(built["status"], "succeeded", "{built}");
    assert!(!built["version_id"].as_str().unwrap().is_empty(), "{built}");
    let log = stack.log_of(&built);
    let builds_started = log.iter().filter(|l| l.starts_with("==> build")).count();
    assert_eq!(builds_started, 1, "one build, its log not doubled: {log:?}");
    let registered: Vec<Value> = versions_of(&stack.server, &stack.image)
        .into_iter()
        .filter(|v| v["commit"] == first.as_str())
        .collect();
    assert_eq!(registered.len(), 1, "{registered:?}");

    // SIGKILL of the agent mid-build, restarted on its address with no memory of it: the
    // build ends errored with the reason, never stuck running.
    let second = stack.commit(&format!("slow2-{pid}"), "main");
    let (status, _) = stack.server.call(
        "POST",
        "/orgs/default/apps/shop/builds",
        Some(ADMIN),
        Some(json!({"commit": second})),
    );
    assert_eq!(status, 201);
    running(&stack, &second);
    drop(stack.agent.take());
    let agent_dir = stack.dir.path().join("agent-restarted");
    std::fs::create_dir_all(&agent_dir).unwrap();
    stack.agent = Some(Agent::start(&agent_dir, &stack.agent_config));
    let ended = stack.ended_build_of(&second);
    assert_eq!(ended["status"], "errored", "{ended}");
    assert!(
        ended["message"].as_str().unwrap().contains("lost build"),
        "{ended}"
    );
    // A new build of the same commit goes through on the restarted builder.
    let (status, _) = stack.server.call(
        "POST",
        "/orgs/default/apps/shop/builds",
        Some(ADMIN),
        Some(json!({"commit": second})),
    );
    assert_eq!(status, 201);
    let rebuilt = poll("the rebuild to succeed", || {
        stack
            .builds()
            .into_iter()
            .find(|b| b["commit"] == second.as_str() && b["status"] == "succeeded")
    });
    assert_eq!(rebuilt["trigger"], "api");
}

#[test]
fn a_newer_push_supersedes_queued_builds_and_cancel_stops_a_running_one() {
    let pid = std::process::id();
    let stack = Stack::start(
        &format!("sup-{pid}"),
        r#"RUN ["/bin/busybox", "sleep", "3"]"#,
    );
    let home = tempfile::tempdir().unwrap();
    // Builds of one branch run one at a time: while the first runs, two more pushes queue,
    // and the newer supersedes the older.
    let first = stack.first.clone();
    let (status, _) = stack.deliver("sup-d1", "main", &first, false, SECRET);
    assert_eq!(status, 200);
    poll("the first build to run", || {
        stack
            .builds()
            .into_iter()
            .find(|b| b["commit"] == first.as_str() && b["status"] == "running")
    });
    let second = stack.commit(&format!("sup2-{pid}"), "main");
    let (status, _) = stack.deliver("sup-d2", "main", &second, false, SECRET);
    assert_eq!(status, 200);
    let third = stack.commit(&format!("sup3-{pid}"), "main");
    let (status, _) = stack.deliver("sup-d3", "main", &third, false, SECRET);
    assert_eq!(status, 200);
    let superseded = stack.ended_build_of(&second);
    assert_eq!(superseded["status"], "superseded", "{superseded}");
    assert!(
        superseded["message"]
            .as_str()
            .unwrap()
            .starts_with("superseded by build "),
        "{superseded}"
    );
    assert_eq!(stack.ended_build_of(&first)["status"], "succeeded");
    let newest = stack.ended_build_of(&third);
    assert_eq!(newest["status"], "succeeded", "{newest}");

    // `gangplank cancel build` stops a build while the builder runs it.
    let fourth = stack.commit(&format!("sup4-{pid}"), "main");
    let out = stack
        .cli(home.path())
        .args(["-o", "json", "build", "run", "--commit", &fourth])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queued: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = queued["id"].as_str().unwrap().to_owned();
    poll("the fourth build to be building", || {
        stack.builds().into_iter().find(|b| {
            b["id"] == id.as_str() && stack.log_of(b).iter().any(|l| l.starts_with("==> build"))
        })
    });
    let out = stack
        .cli(home.path())
        .args(["cancel", "build", &id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cancelled = stack.ended_build_of(&fourth);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(cancelled["version_id"].as_str().unwrap().is_empty());
    // `logs build -f` on a cancelled build prints its log and exits non-zero saying so.
    let out = stack
        .cli(home.path())
        .args(["logs", "build", &id, "-f"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("build {id} cancelled")),
        "{stderr}"
    );
}
