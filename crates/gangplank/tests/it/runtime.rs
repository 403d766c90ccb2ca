//! Observed state and drift on the machine's real Docker engine: a real agent runs a compose
//! project; the server observes it (`GET /state`) every second; the service is changed by hand
//! with `docker-compose up -d` of the user's own compose file; `runtime`, a webhook receiver on
//! 127.0.0.1, `gangplank status` and `/metrics` all show the drift; `gangplank deploy
//! --redeploy` converges it, and with `auto_heal` it converges by itself. A stopped agent is reported
//! unreachable, not drifted. The test command fails (never skips) where no engine runs.

use std::path::Path;

use gangplank_testkit::{Auth, Registry, free_port};
use serde_json::{Value, json};

use crate::agent_docker::{Cleanup, build_image, require_docker, served_version};
use crate::agents::{Agent, run};
use crate::receivers::{PyReceiver, whsec};
use crate::support::{ADMIN, Server, admin_cli, poll};

const RUNTIME: &str = "/orgs/default/apps/shop/envs/development/runtime";

fn runtime(server: &Server) -> Value {
    let (status, body) = server.call("GET", RUNTIME, Some(ADMIN), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls `runtime` until `check` holds for it.
fn runtime_until(server: &Server, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    poll(what, || Some(runtime(server)).filter(|r| check(r)))
}

/// The deliveries the receiver got for `event` (its JSON bodies).
fn events(receiver: &PyReceiver, event: &str) -> Vec<Value> {
    receiver
        .records()
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(r["body"].as_str()?).ok())
        .filter(|body| body["event"] == event)
        .collect()
}

/// Recreates the service from the user's compose file alone (without the agent's override),
/// so it runs the file's image: a change made by hand on the host.
fn change_by_hand(project: &str, compose_file: &Path) {
    run(
        "docker-compose",
        &[
            "-p",
            project,
            "-f",
            compose_file.to_str().unwrap(),
            "up",
            "-d",
            "--no-deps",
            "web",
        ],
    );
}

fn metric(server: &Server, name: &str) -> Option<f64> {
    let text = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
}

fn deploys(server: &Server) -> Vec<Value> {
    let (_, list) = server.call(
        "GET",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        None,
    );
    list.as_array().cloned().unwrap_or_default()
}

#[test]
fn drift_is_seen_announced_and_converged() {
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let registry = Registry::start_with(Auth::Anonymous);
    let repo = format!("{}/demo/web", registry.host());
    let (v1, v2) = (format!("{repo}:1"), format!("{repo}:2"));
    let project = format!("gpdrift{}", std::process::id());
    let service_port = free_port();
    // The user's compose file names v2; Gangplank's set says v1, which the agent pins.
    let compose_file = dir.join("compose.yml");
    std::fs::write(
        &compose_file,
        format!(
            "services:\n  web:\n    image: {v2}\n    ports: [\"127.0.0.1:{service_port}:8080\"]\n"
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
        images: vec![v1.clone(), v2.clone()],
    };
    for (tag, version) in [(&v1, "1"), (&v2, "2")] {
        build_image(dir, tag, version, true);
        run("docker", &["push", tag]);
    }

    let receiver = PyReceiver::start("", 0);
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("GANGPLANK_OBSERVE_INTERVAL_SECONDS", "1"),
    ]);
    let agent = Agent::start(
        dir,
        &format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[auth]\njwks_url = \"{}/.well-known/jwks.json\"\n[[project]]\nname = \"{project}\"\nfiles = [\"{}\"]\nservices = [\"web\"]\nhealth_timeout = \"60s\"\ngrace = \"1s\"\n",
            state_dir.display(),
            server.base,
            compose_file.display(),
        ),
    );
    server.create_app("shop");
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/shop/webhooks",
        Some(ADMIN),
        Some(json!({"id": "drift", "url": receiver.url(), "secret": whsec(),
                    "triggers": [{"scope": "environment", "type": "drifted"}, {"scope": "environment", "type": "in_sync"}],
                    "payload": {"event": "${event}", "env": "${env_id}", "workloads": "${workloads}",
                                "since": "${drifted_since}", "reason": "${reason}"}})),
    );
    assert_eq!(status, 201, "{body}");
    let target = |auto_heal: bool| {
        let (status, body) = server.call(
            "PUT",
            "/orgs/default/apps/shop/envs/development/target",
            Some(ADMIN),
            Some(
                json!({"type": "compose", "auto_heal": auto_heal, "auto_heal_after_seconds": 1,
                        "agents": [{"url": agent.base, "services": {"web": "web"}}]}),
            ),
        );
        assert_eq!(status, 200, "{body}");
    };
    target(false);

    // v1 through the agent: every workload in sync.
    let (status, delta) = server.call(
        "POST",
        "/orgs/default/apps/shop/deltas",
        Some(ADMIN),
        Some(
            json!({"metadata": {"env_id": "development"}, "modules": {"add": {"web": {
            "spec": {"containers": {"main": {"image": v1}}}}}}}),
        ),
    );
    assert_eq!(status, 200, "{delta}");
    let (status, first) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"]})),
    );
    assert_eq!(status, 201, "{first}");
    let first = crate::support::wait_deploy_final(
        &server,
        "shop",
        "development",
        first["id"].as_str().unwrap(),
    );
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(served_version(service_port).as_deref(), Some("1"));
    let synced = runtime_until(&server, "runtime to show v1 in sync", |r| {
        r["in_sync"] == true
    });
    let web = &synced["workloads"][0];
    assert_eq!(synced["workloads"].as_array().unwrap().len(), 1, "{synced}");
    assert_eq!(
        (
            &web["workload"],
            &web["service"],
            &web["project"],
            &web["desired_image"],
            &web["running_image"],
            &web["in_sync"],
            &web["agent_reachable"],
            &web["state"],
        ),
        (
            &json!("web"),
            &json!("web"),
            &json!(project),
            &json!(v1),
            &json!(v1),
            &json!(true),
            &json!(true),
            &json!("running"),
        ),
        "{synced}"
    );
    assert!(web["last_seen_at"].is_string() && synced["drifted_since"].is_null());

    // By hand: the service now runs the compose file's v2.
    change_by_hand(&project, &compose_file);
    assert_eq!(served_version(service_port).as_deref(), Some("2"));
    // While compose recreates the container the observer may first see the old one exited
    // (drift too, for another reason): wait for the new container.
    let drifted = runtime_until(&server, "runtime to show the drift", |r| {
        r["in_sync"] == false && r["workloads"][0]["running_image"] == json!(v2)
    });
    let web = &drifted["workloads"][0];
    assert_eq!(
        (
            &web["desired_image"],
            &web["running_image"],
            &web["in_sync"]
        ),
        (&json!(v1), &json!(v2), &json!(false)),
        "{drifted}"
    );
    assert_eq!(web["reason"], format!("the container runs {v2}"));
    assert!(drifted["drifted_since"].is_string(), "{drifted}");
    let announced = poll("environment.drifted to arrive", || {
        Some(events(&receiver, "environment.drifted")).filter(|e| !e.is_empty())
    });
    assert_eq!(
        (&announced[0]["env"], &announced[0]["workloads"]),
        (&json!("development"), &json!("web"))
    );
    assert_eq!(announced[0]["since"], drifted["drifted_since"]);
    assert!(
        receiver.records().iter().all(|r| r["standard_ok"] == true),
        "signed deliveries"
    );

    // `gangplank status` prints it.
    let home = tempfile::tempdir().unwrap();
    let status = admin_cli(&server, home.path())
        .args([
            "--app",
            "shop",
            "--env",
            "development",
            "-o",
            "table",
            "status",
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{printed}");
    assert!(
        printed.starts_with("WORKLOAD")
            && printed.contains(&format!("no: the container runs {v2}"))
            && printed.contains("shop/development: DRIFTED since"),
        "{printed}"
    );
    // Every environment of every app, when none is named.
    let everything = admin_cli(&server, home.path())
        .args(["-o", "table", "status"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&everything.stdout);
    assert!(
        everything.status.success() && printed.starts_with("APP") && printed.contains("shop"),
        "{printed}"
    );
    // An environment that does not exist: one line on stderr, a failing exit.
    let missing = admin_cli(&server, home.path())
        .args(["--app", "shop", "--env", "nowhere", "status"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && stderr.lines().count() == 1 && stderr.starts_with("error:"),
        "{stderr}"
    );

    // The metrics show it.
    poll("the drift in /metrics", || {
        (metric(&server, "gangplank_environments_drifted") == Some(1.0)
            && metric(&server, "gangplank_workloads_out_of_sync") == Some(1.0))
        .then_some(())
    });

    // `gangplank deploy --redeploy` converges it, and `environment.in_sync` arrives.
    let redeployed = admin_cli(&server, home.path())
        .args([
            "--app",
            "shop",
            "--env",
            "development",
            "-o",
            "json",
            "deploy",
            "--redeploy",
            "-m",
            "converge",
        ])
        .output()
        .unwrap();
    assert!(
        redeployed.status.success(),
        "{}",
        String::from_utf8_lossy(&redeployed.stderr)
    );
    let redeploy: Value = serde_json::from_slice(&redeployed.stdout).unwrap();
    assert_eq!(redeploy["comment"], "converge", "{redeploy}");
    let redeploy = crate::support::wait_deploy_final(
        &server,
        "shop",
        "development",
        redeploy["id"].as_str().unwrap(),
    );
    assert_eq!(redeploy["status"], "succeeded", "{redeploy}");
    assert_eq!(served_version(service_port).as_deref(), Some("1"));
    let converged = runtime_until(&server, "runtime to converge", |r| r["in_sync"] == true);
    assert_eq!(converged["workloads"][0]["running_image"], json!(v1));
    let back = poll("environment.in_sync to arrive", || {
        Some(events(&receiver, "environment.in_sync")).filter(|e| !e.is_empty())
    });
    assert_eq!(back[0]["since"], drifted["drifted_since"], "{back:?}");
    poll("the metrics to clear", || {
        (metric(&server, "gangplank_environments_drifted") == Some(0.0)).then_some(())
    });
    assert_eq!(events(&receiver, "environment.drifted").len(), 1);

    // With auto_heal, the same change is undone by a redeploy of the current set.
    target(true);
    let before = deploys(&server).len();
    change_by_hand(&project, &compose_file);
    let healed = poll("auto-heal to redeploy and succeed", || {
        deploys(&server)
            .into_iter()
            .find(|d| d["triggered_by"] == "auto-heal" && d["status"] == "succeeded")
    });
    assert!(
        healed["comment"]
            .as_str()
            .is_some_and(|c| c.starts_with("auto-heal: drifted since ")),
        "{healed}"
    );
    assert_eq!(
        deploys(&server).len(),
        before + 1,
        "one heal for one episode"
    );
    runtime_until(&server, "runtime to converge after the heal", |r| {
        r["in_sync"] == true && r["workloads"][0]["running_image"] == json!(v1)
    });
    assert_eq!(served_version(service_port).as_deref(), Some("1"));
    poll("the healed episode's events", || {
        (events(&receiver, "environment.drifted").len() == 2
            && events(&receiver, "environment.in_sync").len() == 2)
            .then_some(())
    });
    assert!(
        server
            .log()
            .contains("auto-heal: redeploying the current set"),
        "the heal is logged"
    );

    // A stopped agent is unreachable, not drift.
    let agent_base = agent.base.clone();
    drop(agent);
    let unreachable = runtime_until(&server, "the agent to be reported unreachable", |r| {
        r["workloads"][0]["agent_reachable"] == false
    });
    let web = &unreachable["workloads"][0];
    assert_eq!(web["agent"], json!(agent_base));
    assert_eq!(web["running_image"], json!(v1), "the last seen image stays");
    assert!(
        web["in_sync"].is_null() && unreachable["in_sync"].is_null(),
        "{unreachable}"
    );
    assert!(unreachable["drifted_since"].is_null(), "{unreachable}");
    assert!(
        metric(&server, "gangplank_agent_observation_failures_total").is_some_and(|n| n >= 1.0)
    );
    assert_eq!(events(&receiver, "environment.drifted").len(), 2);

    // An environment that is no longer compose is not observed, and shows nothing stale.
    let (status, body) = server.call(
        "PUT",
        "/orgs/default/apps/shop/envs/development/target",
        Some(ADMIN),
        Some(json!({"type": "none"})),
    );
    assert_eq!(status, 200, "{body}");
    let none = runtime(&server);
    assert_eq!(
        (&none["in_sync"], &none["workloads"]),
        (&Value::Null, &json!([])),
        "{none}"
    );
    let (status, body) = server.call(
        "GET",
        "/orgs/default/apps/shop/envs/nowhere/runtime",
        Some(ADMIN),
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
}
