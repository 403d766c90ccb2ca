//! The host agent against the machine's real Docker engine: images built FROM scratch with
//! busybox-static, pushed to a local docker-registry with htpasswd auth, and deployed by a real
//! `gangplank agent` to a real compose project, driven by `gangplank serve`'s automation and
//! its compose target. The test command fails (never skips) where no engine runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use gangplank_testkit::{Auth, Registry, free_port};
use serde_json::{Value, json};

use crate::agents::{Agent, run};
use crate::support::{ADMIN, SHA64, Server, poll};

const USER: &str = "pusher";
const PASSWORD: &str = "push-secret-Zq81";

/// Fails loudly when the engine is missing: this test never passes without it.
pub(crate) fn require_docker() {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    assert!(
        info.as_ref().is_ok_and(|o| o.status.success()),
        "the agent tests need a running Docker engine (`docker info` failed: {:?})",
        info.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
}

/// Compose project, images and the test's docker config, removed on drop.
pub(crate) struct Cleanup {
    pub(crate) project: String,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut args = vec!["-p".to_owned(), self.project.clone()];
        for file in &self.files {
            args.push("-f".to_owned());
            args.push(file.display().to_string());
        }
        args.extend(["down".to_owned(), "--volumes".to_owned()]);
        let _ = Command::new("docker-compose").args(&args).output();
        let _ = Command::new("docker")
            .arg("rmi")
            .arg("-f")
            .args(&self.images)
            .output();
    }
}

/// Builds `web:<version>` FROM scratch: busybox httpd serving `/VERSION`, with a healthcheck
/// that fetches it, or one that always fails when `healthy` is false.
pub(crate) fn build_image(dir: &Path, tag: &str, version: &str, healthy: bool) {
    let context = dir.join(format!("img-{version}"));
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy("/bin/busybox", context.join("busybox"))
        .expect("busybox-static is installed at /bin/busybox (cargo xtask test installs it)");
    std::fs::write(context.join("VERSION"), version).unwrap();
    let check = if healthy {
        r#"["/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/VERSION"]"#
    } else {
        r#"["/bin/busybox", "false"]"#
    };
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY VERSION /VERSION\n\
             HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD {check}\n\
             ENTRYPOINT [\"/bin/busybox\"]\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/\"]\n"
        ),
    )
    .unwrap();
    run(
        "docker",
        &["build", "-q", "-t", tag, context.to_str().unwrap()],
    );
}

pub(crate) fn served_version(port: u16) -> Option<String> {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/VERSION"))
        .ok()
        .filter(|r| r.status() == 200)
        .and_then(|r| r.text().ok())
}

fn wait_final(server: &Server, id: &str) -> Value {
    crate::support::wait_deploy_final(server, "shop", "development", id)
}

/// The newest deployment once it differs from `after` and has finished.
fn next_deploy(server: &Server, after: &str) -> Value {
    let id = poll("automation to start a deployment", || {
        let (_, list) = server.call(
            "GET",
            "/orgs/default/apps/shop/envs/development/deploys",
            Some(ADMIN),
            None,
        );
        list[0]["id"]
            .as_str()
            .filter(|id| *id != after)
            .map(str::to_owned)
    });
    wait_final(server, &id)
}

#[test]
fn ci_notice_to_running_container_with_health_gated_rollback() {
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let registry = Registry::start_with(Auth::Htpasswd(USER, PASSWORD));
    let host = registry.host();
    let repo = format!("{host}/demo/web");
    let project = format!("gptest{}", std::process::id());
    let service_port = free_port();
    let compose_file = dir.join("compose.yml");
    std::fs::write(
        &compose_file,
        format!(
            "version: \"3.8\"\nservices:\n  web:\n    image: {repo}:1\n    ports: [\"127.0.0.1:{service_port}:8080\"]\n"
        ),
    )
    .unwrap();
    let state_dir = dir.join("agent-state");
    let _cleanup = Cleanup {
        project: project.clone(),
        files: vec![
            compose_file.clone(),
            state_dir.join(format!("{project}.override.json")),
        ],
        images: ["1", "2", "3", "4"]
            .iter()
            .map(|v| format!("{repo}:{v}"))
            .collect(),
    };

    // The images, pushed with the test's own docker config (the agent's starts empty).
    let pusher_config = dir.join("pusher-docker");
    let pusher = pusher_config.to_str().unwrap();
    let mut login = Command::new("docker")
        .args([
            "--config",
            pusher,
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
    assert!(
        login.wait().unwrap().success(),
        "docker login to the test registry"
    );
    let mut digests = std::collections::HashMap::new();
    for (version, healthy) in [("1", true), ("2", true), ("3", false), ("4", true)] {
        let tag = format!("{repo}:{version}");
        build_image(dir, &tag, version, healthy);
        run("docker", &["--config", pusher, "push", &tag]);
        digests.insert(
            version,
            registry.skopeo_digest("demo/web", version, Some((USER, PASSWORD))),
        );
    }

    // The server: the registry with its credentials, an agent token, the environment's target.
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_AUTOMATION_DEBOUNCE", "0s"),
    ]);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(json!({"id": "local", "registry": host, "type": "basic", "enable_ci": true, "insecure": true,
                    "creds": {"username": USER, "password": PASSWORD}})),
    );
    assert_eq!(status, 201, "{body}");
    let (_, agent_token) = server.user("artefactContributor");
    let agent = Agent::start(
        dir,
        &format!(
            r#"
listen = "127.0.0.1:0"
debug = true
state_dir = "{state}"
docker_config = "{docker_config}"
[auth]
jwks_url = "{base}/.well-known/jwks.json"
[credentials]
server = "{base}"
org = "default"
token = "{agent_token}"
registries = ["local"]
[[project]]
name = "{project}"
files = ["{file}"]
services = ["web"]
health_timeout = "60s"
grace = "1s"
"#,
            state = state_dir.display(),
            docker_config = dir.join("agent-docker").display(),
            base = server.base,
            file = compose_file.display(),
        ),
    );
    server.create_app("shop");
    let (status, body) = server.call(
        "PUT",
        "/orgs/default/apps/shop/envs/development/target",
        Some(ADMIN),
        Some(
            json!({"type": "compose", "agents": [{"url": agent.base, "services": {"web": "web"}}]}),
        ),
    );
    assert_eq!(status, 200, "{body}");

    // v1 by hand: the agent's docker config is empty, so its first pull is refused, it fetches
    // credentials from the server with its agent token, logs in, and pulls again.
    let (status, delta) = server.call(
        "POST",
        "/orgs/default/apps/shop/deltas",
        Some(ADMIN),
        Some(
            json!({"metadata": {"env_id": "development"}, "modules": {"add": {"web": {
            "profile": "humanitec/default-module",
            "spec": {"containers": {"main": {"image": format!("{repo}:1")}}}}}}}),
        ),
    );
    assert_eq!(status, 200, "{delta}");
    let (status, first) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"], "comment": "v1"})),
    );
    assert_eq!(status, 201, "{first}");
    let first = wait_final(&server, first["id"].as_str().unwrap());
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(served_version(service_port).as_deref(), Some("1"));
    let audit = |server: &Server| {
        let (_, list) = server.call(
            "GET",
            "/orgs/default/registries/local/creds-audit",
            Some(ADMIN),
            None,
        );
        list.as_array().map_or(0, Vec::len)
    };
    assert_eq!(audit(&server), 1, "the agent fetched credentials once");

    // v2 from a CI notice: artefact version → rule → compose target → agent → container.
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/rules",
        Some(ADMIN),
        Some(json!({"type": "update", "artefacts_filter": [repo.clone()]})),
    );
    assert_eq!(status, 201, "{body}");
    let notice = |version: &str| {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/artefact-versions",
            Some(ADMIN),
            Some(json!({"name": repo, "type": "container", "version": version, "digest": digests[version],
                        "commit": SHA64, "ref": "refs/heads/main"})),
        );
        assert_eq!(status, 200, "{body}");
    };
    notice("2");
    let second = next_deploy(&server, first["id"].as_str().unwrap());
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(served_version(service_port).as_deref(), Some("2"));
    let pinned: Value = serde_json::from_slice(
        &std::fs::read(state_dir.join(format!("{project}.override.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        pinned["services"]["web"]["image"],
        format!("{repo}:2@{}", digests["2"])
    );

    // v3 never becomes healthy: the agent puts v2 back and the deployment fails with why.
    notice("3");
    let third = next_deploy(&server, second["id"].as_str().unwrap());
    assert_eq!(third["status"], "failed", "{third}");
    let (_, errors) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/shop/envs/development/deploys/{}/errors",
            third["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    let errors = errors.to_string();
    assert!(
        errors.contains("healthcheck failed") && errors.contains("rolled back to"),
        "{errors}"
    );
    assert_eq!(served_version(service_port).as_deref(), Some("2"));

    // Expired credentials: after the debug logout the next pull is refused, and the agent logs
    // in again with fresh credentials from the server.
    let logout = agent
        .http
        .post(format!("{}/logout", agent.base))
        .send()
        .unwrap();
    assert_eq!(logout.status(), 200);
    assert_eq!(logout.text().unwrap(), "docker logout successful\n");
    notice("4");
    let fourth = next_deploy(&server, third["id"].as_str().unwrap());
    assert_eq!(fourth["status"], "succeeded", "{fourth}");
    assert_eq!(served_version(service_port).as_deref(), Some("4"));
    assert_eq!(
        audit(&server),
        2,
        "the agent fetched credentials again after the logout"
    );
    assert!(
        !agent.log().contains(PASSWORD),
        "the registry password leaked into the agent's log"
    );

    // The agent said what it did, one line per event.
    let outcomes = |message: &str| -> Vec<(String, String)> {
        agent
            .lines(message)
            .iter()
            .map(|f| {
                (
                    f["result"].as_str().unwrap_or_default().to_owned(),
                    f["image"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let pinned = |v: &str| format!("{repo}:{v}@{}", digests[v]);
    assert_eq!(
        outcomes("deployment succeeded"),
        [
            ("succeeded".to_owned(), format!("{repo}:1")),
            ("succeeded".to_owned(), pinned("2")),
            ("succeeded".to_owned(), pinned("4")),
        ]
    );
    let failed = agent.lines("deployment failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["image"], pinned("3"));
    assert_eq!(failed[0]["digest"], digests["3"]);
    assert!(
        failed[0]["duration_ms"].is_u64() && failed[0]["deploy"].as_str().is_some(),
        "{failed:?}"
    );
    let refused = agent.lines("pull refused: logging in to the registry again");
    let relogged = agent.lines("logged in again: pulling again");
    assert_eq!(
        (refused.len(), relogged.len()),
        (2, 2),
        "{refused:?} {relogged:?}"
    );
    let verdicts: Vec<Value> = agent
        .lines("health verdict")
        .iter()
        .map(|f| f["verdict"].clone())
        .collect();
    assert_eq!(
        verdicts,
        ["healthy", "healthy", "unhealthy", "healthy"].map(Value::from)
    );
    let rolled_back = agent.lines("rolled back");
    assert_eq!(rolled_back.len(), 1, "{rolled_back:?}");
    assert_eq!(rolled_back[0]["to"], pinned("2"));
}
