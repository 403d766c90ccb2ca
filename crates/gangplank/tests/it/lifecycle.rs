//! A deployment's lifecycle against real servers and agents: an unreachable agent's deployment
//! fails at its deadline (errored) and frees the environment; at the deadline a reachable
//! agent is told to drop what has not begun; cancel (endpoint and CLI) ends an
//! in-progress deployment at once; a deployment resumed after a SIGKILL goes to the target it
//! was started with, on the real Docker engine; and with two replicas on PostgreSQL, the lease
//! holder killed mid-deployment, the other finishes it with one compose run per service, and a
//! cancel through one replica reaches the agent of the one running the deployment. Compose `up`
//! is held at a gate file, so a deployment is provably in progress while the test acts.
//! (Cancelling a *pending* deployment is tested on the store, `gangplank-store/tests/
//! lifecycle.rs`: the deployer claims a new deployment at once, so one cannot be held pending
//! here without a fault injected into the server.)

use std::path::{Path, PathBuf};
use std::process::Command;

use gangplank_testkit::{Registry, free_port};
use serde_json::{Value, json};

use crate::agents::{Agent, run};
use crate::receivers::{PyReceiver, whsec};
use crate::support::{ADMIN, Server, admin_cli, error_message, poll};

const ENV_PATH: &str = "/orgs/default/apps/shop/envs/development";

fn put_target(server: &Server, body: Value) {
    let (status, answer) = server.call(
        "PUT",
        &format!("{ENV_PATH}/target"),
        Some(ADMIN),
        Some(body),
    );
    assert_eq!(status, 200, "{answer}");
}

/// Creates a delta adding `modules` and posts a deployment of it: the answer's status and body.
fn start_deploy(server: &Server, modules: Value) -> (u16, Value) {
    let (status, delta) = server.call(
        "POST",
        "/orgs/default/apps/shop/deltas",
        Some(ADMIN),
        Some(json!({"metadata": {"env_id": "development"}, "modules": {"add": modules}})),
    );
    assert_eq!(status, 200, "{delta}");
    server.call(
        "POST",
        &format!("{ENV_PATH}/deploys"),
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"]})),
    )
}

fn started(server: &Server, modules: Value) -> String {
    let (status, deploy) = start_deploy(server, modules);
    assert_eq!(status, 201, "{deploy}");
    deploy["id"].as_str().unwrap().to_owned()
}

fn deployment(server: &Server, id: &str) -> Value {
    let (status, deploy) = server.call(
        "GET",
        &format!("{ENV_PATH}/deploys/{id}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{deploy}");
    deploy
}

fn wait_status(server: &Server, id: &str, wanted: &[&str]) -> Value {
    poll(&format!("deployment {id} to be one of {wanted:?}"), || {
        let deploy = deployment(server, id);
        wanted
            .contains(&deploy["status"].as_str().unwrap_or_default())
            .then_some(deploy)
    })
}

fn error_codes(server: &Server, id: &str) -> Vec<String> {
    let (_, errors) = server.call(
        "GET",
        &format!("{ENV_PATH}/deploys/{id}/errors"),
        Some(ADMIN),
        None,
    );
    errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect()
}

fn workload(image: &str) -> Value {
    json!({"spec": {"containers": {"main": {"image": image}}}})
}

fn unreachable_agent(timeout_seconds: u64) -> Value {
    json!({"type": "compose", "timeout_seconds": timeout_seconds, "agents": [
        // Port 1: nothing listens there (a free port could be taken by another test's server).
        {"url": "http://127.0.0.1:1", "services": {"web": "web"}}
    ]})
}

#[test]
fn an_unreachable_agent_fails_the_deployment_at_its_deadline() {
    let server = Server::start();
    server.create_app("shop");
    put_target(&server, unreachable_agent(3));
    let id = started(&server, json!({"web": workload("r/web:1")}));
    let deploy = wait_status(&server, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(
        (deploy["status"].as_str(), deploy["failure"].as_str()),
        (Some("failed"), Some("errored")),
        "{deploy}"
    );
    let codes = error_codes(&server, &id);
    assert!(
        codes
            .iter()
            .any(|c| c == "GP-DEADLINE" || c == "GP-AGENT-TIMEOUT"),
        "{codes:?}"
    );
    // The environment is free again.
    let (status, next) = start_deploy(&server, json!({"web": workload("r/web:2")}));
    assert_eq!(status, 201, "{next}");
}

#[test]
fn the_deadline_tells_the_agent_to_drop_what_has_not_begun() {
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let server = Server::start();
    server.create_app("shop");
    let (agent, project, gate) = gated_agent(dir, &server, "deadline");
    put_target(
        &server,
        json!({"type": "compose", "timeout_seconds": 3, "agents": [
            {"url": agent.base, "project": project, "services": {"api": "api", "web": "web"}}
        ]}),
    );
    let id = started(
        &server,
        json!({"api": workload("r/api:2"), "web": workload("r/web:2")}),
    );
    let deploy = wait_status(&server, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(
        (deploy["status"].as_str(), deploy["failure"].as_str()),
        (Some("failed"), Some("errored")),
        "{deploy}"
    );
    // The server told the agent: `web`, not begun, was dropped.
    poll("the agent to drop the queued run at the deadline", || {
        agent
            .log()
            .lines()
            .any(|l| l.contains("cancelled before it ran") && l.contains("web"))
            .then_some(())
    });
    std::fs::write(&gate, "").unwrap();
}

#[test]
fn cancel_ends_an_in_progress_deployment_at_once() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
    ]);
    server.create_app("shop");
    put_target(&server, unreachable_agent(3600));
    let receiver = PyReceiver::start("204", 0);
    let (status, hook) = server.call(
        "POST",
        "/orgs/default/apps/shop/webhooks",
        Some(ADMIN),
        Some(
            json!({"id": "hook", "url": receiver.url(), "secret": whsec(),
                    "triggers": [{"scope": "deployment", "type": "finished"}],
                    "payload": {"deploy": "${deploy_id}", "status": "${status}"}}),
        ),
    );
    assert_eq!(status, 201, "{hook}");

    // By the endpoint.
    let first = started(&server, json!({"web": workload("r/web:1")}));
    wait_status(&server, &first, &["in progress"]);
    let (status, blocked) = start_deploy(&server, json!({"web": workload("r/web:2")}));
    assert_eq!(status, 409, "{blocked}");
    let (status, cancelled) = server.call(
        "POST",
        &format!("{ENV_PATH}/deploys/{first}/cancel"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(deployment(&server, &first)["status"], "cancelled");
    // `/metrics` counts it among the finished deployments.
    let metrics = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .expect("scrape")
        .text()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gangplank_deployments_finished_total")
                && l.contains("status=\"cancelled\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    // `deployment.finished` says so.
    let records = receiver.wait_for(1);
    let body: Value = serde_json::from_str(records[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"deploy": first, "status": "cancelled"}),
        "{records:?}"
    );

    // A new deployment can start, and the CLI cancels it.
    let second = started(&server, json!({"web": workload("r/web:2")}));
    wait_status(&server, &second, &["in progress"]);
    let cli = |id: &str| {
        admin_cli(&server, server.data_dir())
            .args(["cancel", id, "--app", "shop", "--env", "development"])
            .output()
            .expect("run gangplank cancel")
    };
    let out = cli(&second);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains(&second) && stdout.contains("cancelled"),
        "{stdout}"
    );
    assert_eq!(deployment(&server, &second)["status"], "cancelled");

    // Cancelling what already ended: 409 JSON; the CLI says so on one line and fails.
    let (status, conflict) = server.call(
        "POST",
        &format!("{ENV_PATH}/deploys/{second}/cancel"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"], "conflict", "{conflict}");
    assert!(error_message(&conflict).contains("cancelled"), "{conflict}");
    let out = cli(&second);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let (status, missing) = server.call(
        "POST",
        &format!("{ENV_PATH}/deploys/nope/cancel"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 404, "{missing}");
    error_message(&missing);

    // A viewer may not cancel.
    let (_, viewer) = server.user("member");
    let third = started(&server, json!({"web": workload("r/web:3")}));
    let (status, refused) = server.call(
        "POST",
        &format!("{ENV_PATH}/deploys/{third}/cancel"),
        Some(&viewer),
        None,
    );
    assert!(matches!(status, 403 | 404), "{status} {refused}");
    let (status, _) = server.call(
        "POST",
        &format!("{ENV_PATH}/deploys/{third}/cancel"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{:?}", deployment(&server, &third));
}

/// Fails loudly when the engine is missing: these tests never pass without it.
fn require_docker() {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    assert!(
        info.as_ref().is_ok_and(|o| o.status.success()),
        "the lifecycle Docker tests need a running Docker engine (`docker info` failed: {:?})",
        info.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
}

/// A compose project with one `web` service on a free port, the image it runs, and a real
/// agent for it whose compose command is a wrapper recording each argv, whose `up` waits while
/// the gate is held (so a deployment is provably in progress while the test acts); removed on
/// drop.
struct Host {
    project: String,
    compose_file: PathBuf,
    override_file: PathBuf,
    port: u16,
    ran: PathBuf,
    /// Exists while the gate is open.
    gate: PathBuf,
    agent: Agent,
}

impl Host {
    /// `name` keeps the compose projects of tests running at once apart.
    fn start(dir: &Path, server: &Server, image: &str, name: &str) -> Host {
        std::fs::create_dir_all(dir).unwrap();
        let project = format!("gplife{}{name}", std::process::id());
        let port = free_port();
        let compose_file = dir.join("compose.yml");
        std::fs::write(
            &compose_file,
            format!(
                "services:\n  web:\n    image: {image}\n    ports: [\"127.0.0.1:{port}:8080\"]\n"
            ),
        )
        .unwrap();
        // Records every compose command, holds an `up` while the gate is closed, then runs the
        // real one.
        let ran = dir.join("ran.log");
        let gate = dir.join("open-gate");
        std::fs::write(&gate, "").unwrap();
        let wrapper = dir.join("compose.sh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$@\" >> {ran}\ncase \" $* \" in\n  *\" up \"*) while [ ! -e {gate} ]; do sleep 0.05; done ;;\nesac\nexec docker-compose \"$@\"\n",
                ran = ran.display(),
                gate = gate.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let state_dir = dir.join("state");
        let agent = Agent::start(
            dir,
            &format!(
                r#"
listen = "127.0.0.1:0"
state_dir = "{state}"
compose_command = "{wrapper}"
[auth]
jwks_url = "{base}/.well-known/jwks.json"
[[project]]
name = "{project}"
files = ["{file}"]
services = ["web"]
health_timeout = "60s"
"#,
                state = state_dir.display(),
                wrapper = wrapper.display(),
                base = server.base,
                file = compose_file.display(),
            ),
        );
        Host {
            override_file: state_dir.join(format!("{project}.override.json")),
            project,
            compose_file,
            port,
            ran,
            gate,
            agent,
        }
    }

    /// Closes the gate: the next compose `up` waits until [`Host::release`].
    fn hold(&self) {
        std::fs::remove_file(&self.gate).unwrap();
    }

    fn release(&self) {
        std::fs::write(&self.gate, "").unwrap();
    }

    fn served_version(&self) -> Option<String> {
        reqwest::blocking::get(format!("http://127.0.0.1:{}/VERSION", self.port))
            .ok()
            .filter(|r| r.status() == 200)
            .and_then(|r| r.text().ok())
    }

    /// The compose `up` runs the agent made for `web`.
    fn ups(&self) -> usize {
        std::fs::read_to_string(&self.ran)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w == "up") && l.contains("web"))
            .count()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let mut args = vec!["-p".to_owned(), self.project.clone()];
        for file in [&self.compose_file, &self.override_file] {
            if file.exists() {
                args.push("-f".to_owned());
                args.push(file.display().to_string());
            }
        }
        args.extend(["down".to_owned(), "--volumes".to_owned()]);
        let _ = Command::new("docker-compose").args(&args).output();
    }
}

/// Builds and pushes `<registry>/life/web:<version>`, FROM scratch: busybox httpd serving
/// `/VERSION`, with a healthcheck on it. Returns the reference with its digest. (The host's
/// gate, not the image, holds a deployment in progress.)
fn web_image(dir: &Path, registry: &Registry, version: &str) -> String {
    let context = dir.join(format!("img-{version}"));
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy("/bin/busybox", context.join("busybox"))
        .expect("busybox-static is installed at /bin/busybox (cargo xtask test installs it)");
    std::fs::write(context.join("VERSION"), version).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY VERSION /VERSION\n\
         HEALTHCHECK --interval=1s --timeout=2s --retries=30 CMD [\"/bin/busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8080/VERSION\"]\n\
         ENTRYPOINT [\"/bin/busybox\"]\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/\"]\n",
    )
    .unwrap();
    let tag = format!("{}/life/web:{version}", registry.host());
    run(
        "docker",
        &["build", "-q", "-t", &tag, context.to_str().unwrap()],
    );
    run("docker", &["push", &tag]);
    let digest = registry.skopeo_digest("life/web", version, None);
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    format!("{tag}@{digest}")
}

#[test]
fn a_resumed_deployment_goes_to_the_target_it_started_with() {
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let registry = Registry::start(None);
    let image = web_image(temp.path(), &registry, "1");
    // On PostgreSQL a crashed server's lease must lapse before the restart resumes the
    // deployment (SQLite releases it at start): keep that short.
    let mut server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_DEPLOY_LEASE_SECONDS", "4"),
        ("RUST_LOG", "info"),
    ]);
    server.create_app("shop");
    let original = Host::start(&temp.path().join("a"), &server, &image, "resume");
    // Where the environment's target points after the deployment started: an agent that only
    // records (its compose command does nothing).
    let other_dir = temp.path().join("b");
    std::fs::create_dir_all(&other_dir).unwrap();
    let (compose, other_ran) = crate::agent_api::recording_compose(&other_dir);
    std::fs::write(
        other_dir.join("compose.yml"),
        "services:\n  web:\n    image: r/web:1\n",
    )
    .unwrap();
    let other = Agent::start(
        &other_dir,
        &format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncompose_command = \"{compose}\"\n[auth]\njwks_url = \"{}/.well-known/jwks.json\"\n[[project]]\nname = \"shop\"\nfiles = [\"{}\"]\nservices = [\"web\"]\nhealth_timeout = \"0s\"\n",
            other_dir.join("state").display(),
            server.base,
            other_dir.join("compose.yml").display()
        ),
    );
    put_target(
        &server,
        json!({"type": "compose", "timeout_seconds": 300, "agents": [
            {"url": original.agent.base, "project": original.project, "services": {"web": "web"}}
        ]}),
    );
    original.hold();
    let id = started(&server, json!({"web": workload(&image)}));
    // Mid-deployment: the agent's compose `up` waits at the gate until the test opens it.
    poll("the original agent to run compose up", || {
        (original.ups() > 0).then_some(())
    });
    assert_eq!(deployment(&server, &id)["status"], "in progress");
    put_target(
        &server,
        json!({"type": "compose", "agents": [
            {"url": other.base, "project": "shop", "services": {"web": "web"}}
        ]}),
    );
    server.crash_and_restart();
    // The restarted server resumed the deployment (a second claim) while its `up` was held.
    poll("the restarted server to claim the deployment again", || {
        claimed_again(&server, &id).then_some(())
    });
    original.release();
    let deploy = wait_status(&server, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(
        deploy["status"],
        "succeeded",
        "{deploy} {:?}",
        error_codes(&server, &id)
    );
    assert_eq!(original.served_version().as_deref(), Some("1"));
    assert_eq!(original.ups(), 1, "the service was started once");
    assert!(
        std::fs::read_to_string(&other_ran)
            .unwrap_or_default()
            .is_empty(),
        "the new target's agent ran something"
    );
}

#[test]
fn two_replicas_apply_a_deployment_once_when_the_lease_holder_dies() {
    if std::env::var_os("GANGPLANK_TEST_PG").is_none() {
        println!(
            "two replicas need PostgreSQL: this test runs in the PostgreSQL pass of `cargo xtask test`"
        );
        return;
    }
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let registry = Registry::start(None);
    let image = web_image(temp.path(), &registry, "1");
    let master_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    };
    let env = [
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_MASTER_KEY", master_key.as_str()),
        ("GANGPLANK_DEPLOY_LEASE_SECONDS", "4"),
        ("RUST_LOG", "info"),
    ];
    let first = Server::start_with(&env);
    let second = first.replica();
    first.create_app("shop");
    let host = Host::start(&temp.path().join("a"), &first, &image, "replicas");
    host.hold();
    put_target(
        &first,
        json!({"type": "compose", "timeout_seconds": 300, "agents": [
            {"url": host.agent.base, "project": host.project, "services": {"web": "web"}}
        ]}),
    );
    let id = started(&first, json!({"web": workload(&image)}));
    let claimed = |server: &Server| {
        server
            .log()
            .lines()
            .any(|l| l.contains("deployment claimed") && l.contains(&id))
    };
    let mut replicas = [Some(first), Some(second)];
    let holder = poll("a replica to claim the deployment", || {
        replicas
            .iter()
            .position(|r| r.as_ref().is_some_and(claimed))
    });
    // Mid-deployment: the agent's compose `up` waits at the gate until the test opens it.
    poll("the agent to run compose up", || {
        (host.ups() > 0).then_some(())
    });
    let holding = replicas[holder].as_ref().unwrap();
    assert_eq!(deployment(holding, &id)["status"], "in progress");
    drop(replicas[holder].take()); // SIGKILL
    let survivor = replicas[1 - holder].take().unwrap();
    poll(
        "the survivor to claim the deployment once the lease lapses",
        || claimed_again(&survivor, &id).then_some(()),
    );
    host.release();
    let deploy = wait_status(&survivor, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(
        deploy["status"],
        "succeeded",
        "{deploy} {}\n{}",
        survivor
            .call(
                "GET",
                &format!("{ENV_PATH}/deploys/{id}/errors"),
                Some(ADMIN),
                None
            )
            .1,
        host.agent.log()
    );
    assert!(claimed(&survivor), "the survivor took the deployment over");
    assert_eq!(host.served_version().as_deref(), Some("1"));
    assert_eq!(host.ups(), 1, "one compose up for the deployment's service");
}

#[test]
fn a_cancel_through_one_replica_reaches_the_agent_of_the_other() {
    if std::env::var_os("GANGPLANK_TEST_PG").is_none() {
        println!(
            "two replicas need PostgreSQL: this test runs in the PostgreSQL pass of `cargo xtask test`"
        );
        return;
    }
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let master_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    };
    // A long lease: the runner learns of the cancel from its status check, not a renewal.
    let env = [
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_MASTER_KEY", master_key.as_str()),
        ("GANGPLANK_DEPLOY_LEASE_SECONDS", "120"),
        ("RUST_LOG", "info"),
    ];
    let first = Server::start_with(&env);
    let second = first.replica();
    first.create_app("shop");
    let (agent, project, gate) = gated_agent(dir, &first, "xcancel");
    put_target(
        &first,
        json!({"type": "compose", "timeout_seconds": 300, "agents": [
            {"url": agent.base, "project": project, "services": {"api": "api", "web": "web"}}
        ]}),
    );
    let id = started(
        &first,
        json!({"api": workload("r/api:2"), "web": workload("r/web:2")}),
    );
    let replicas = [&first, &second];
    let holder = poll("a replica to claim the deployment", || {
        replicas.iter().position(|r| {
            r.log()
                .lines()
                .any(|l| l.contains("deployment claimed") && l.contains(&id))
        })
    });
    poll("the agent to run api (held at the gate)", || {
        std::fs::read_to_string(dir.join("ran.log"))
            .unwrap_or_default()
            .contains("up -d --no-deps api")
            .then_some(())
    });
    let other = replicas[1 - holder];
    let (status, cancelled) = other.call(
        "POST",
        &format!("{ENV_PATH}/deploys/{id}/cancel"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{cancelled}");
    // The holder's runner noticed and told the agent: `web`, not begun, was dropped.
    poll("the agent to drop the queued run after the cancel", || {
        agent
            .log()
            .lines()
            .any(|l| l.contains("cancelled before it ran") && l.contains("web"))
            .then_some(())
    });
    std::fs::write(&gate, "").unwrap();
    assert_eq!(deployment(&first, &id)["status"], "cancelled");
}

/// Whether `server` logged a second claim (attempt 2) of deployment `id`: it resumed it.
fn claimed_again(server: &Server, id: &str) -> bool {
    server.log().lines().any(|l| {
        // JSON logs (stderr is a file), or text.
        l.contains("deployment claimed")
            && l.contains(id)
            && (l.contains("\"attempt\":2") || l.contains("attempt=2"))
    })
}

/// A real agent whose compose command records (`ran.log` in `dir`) and holds `up … api` at a
/// gate (returned: the test creates it to open) so `api` stays running and `web` waits queued
/// behind it; with the compose project it manages.
/// `name` keeps the compose projects of tests running at once apart.
fn gated_agent(dir: &Path, server: &Server, name: &str) -> (Agent, String, PathBuf) {
    let ran = dir.join("ran.log");
    let gate = dir.join("open-gate");
    let compose = dir.join("compose.sh");
    std::fs::write(
        &compose,
        format!(
            "#!/bin/sh\necho \"$@\" >> {ran}\ncase \"$*\" in\n  *\"up -d --no-deps api\"*) while [ ! -e {gate} ]; do sleep 0.05; done ;;\nesac\necho ok\n",
            ran = ran.display(),
            gate = gate.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&compose, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("compose.yml"),
        "services:\n  api:\n    image: r/api:1\n  web:\n    image: r/web:1\n",
    )
    .unwrap();
    let project = format!("gplife{}{name}", std::process::id());
    let agent = Agent::start(
        dir,
        &format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncompose_command = \"{}\"\n[auth]\njwks_url = \"{}/.well-known/jwks.json\"\n[[project]]\nname = \"{project}\"\nfiles = [\"{}\"]\nservices = [\"api\", \"web\"]\nhealth_timeout = \"0s\"\n",
            dir.join("state").display(),
            compose.display(),
            server.base,
            dir.join("compose.yml").display()
        ),
    );
    (agent, project, gate)
}
