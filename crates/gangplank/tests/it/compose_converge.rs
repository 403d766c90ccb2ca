//! Level-triggered compose deployments on the machine's real Docker engine: `gangplank
//! rollback` and `gangplank deploy --set` of an older set put the old version back on the
//! host; a redeploy of what already runs costs no compose run (the agent answers `unchanged`);
//! a host wiped by hand converges on the next deployment. The agent's compose command is a
//! wrapper that logs its argv, so the test sees exactly what ran.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gangplank_testkit::{Registry, free_port};
use serde_json::{Value, json};

use crate::agent_docker::{Cleanup, build_image, require_docker, served_version};
use crate::agents::{Agent, run};
use crate::support::{ADMIN, Server, admin_cli, poll};

/// Runs `gangplank` (the CLI) against `server` for app `shop`, env `development`; its JSON.
fn cli(server: &Server, home: &Path, args: &[&str]) -> Value {
    let output = admin_cli(server, home)
        .args(["--app", "shop", "--env", "development", "-o", "json"])
        .args(args)
        .output()
        .expect("run the gangplank CLI");
    assert!(
        output.status.success(),
        "gangplank {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn wait_final(server: &Server, deploy: &Value) -> Value {
    crate::support::wait_deploy_final(
        server,
        "shop",
        "development",
        deploy["id"].as_str().expect("a deployment id"),
    )
}

/// The compose runs the wrapper logged (one line per compose command).
fn compose_runs(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn rollback_deploy_set_redeploy_and_a_wiped_host_all_converge() {
    require_docker();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let registry = Registry::start(None);
    let host = registry.host();
    let repo = format!("{host}/converge/web");
    let project = format!("gpconv{}", std::process::id());
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
    let override_file = state_dir.join(format!("{project}.override.json"));
    let _cleanup = Cleanup {
        project: project.clone(),
        files: vec![compose_file.clone(), override_file.clone()],
        images: ["1", "2"].iter().map(|v| format!("{repo}:{v}")).collect(),
    };
    let mut images = std::collections::HashMap::new();
    for version in ["1", "2"] {
        let tag = format!("{repo}:{version}");
        build_image(dir, &tag, version, true);
        run("docker", &["push", &tag]);
        let digest = registry.skopeo_digest("converge/web", version, None);
        images.insert(version, format!("{tag}@{digest}"));
    }
    // Drop the local copies: the agent pulls what it runs.
    run(
        "docker",
        &["rmi", &format!("{repo}:1"), &format!("{repo}:2")],
    );

    // The agent's compose command: log the argv, then run docker-compose.
    let compose_log = dir.join("compose-runs.log");
    let wrapper = dir.join("compose-wrapper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec docker-compose \"$@\"\n",
            compose_log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_OBSERVE_INTERVAL_SECONDS", "1"),
    ]);
    // What the server observes the host running: in sync with `version`'s image.
    let in_sync_with = |version: &str| {
        let wanted = images[version].clone();
        crate::support::poll(&format!("runtime in sync with v{version}"), || {
            let (status, r) = server.call(
                "GET",
                "/orgs/default/apps/shop/envs/development/runtime",
                Some(ADMIN),
                None,
            );
            assert_eq!(status, 200, "{r}");
            let web = &r["workloads"][0];
            let ok = r["in_sync"] == true
                && web["in_sync"] == true
                && web["running_image"] == web["desired_image"]
                && web["desired_image"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(wanted.as_str()));
            ok.then_some(r)
        })
    };
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
grace = "1s"
"#,
            state = state_dir.display(),
            wrapper = wrapper.display(),
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
    let home = tempfile::tempdir().unwrap();

    // v1, then v2, each from a delta.
    let deploy_version = |version: &str| -> Value {
        let (status, delta) = server.call(
            "POST",
            "/orgs/default/apps/shop/deltas",
            Some(ADMIN),
            Some(
                json!({"metadata": {"env_id": "development"}, "modules": {"add": {"web": {
                "spec": {"containers": {"main": {"image": images[version]}}}}}}}),
            ),
        );
        assert_eq!(status, 200, "{delta}");
        let (status, deploy) = server.call(
            "POST",
            "/orgs/default/apps/shop/envs/development/deploys",
            Some(ADMIN),
            Some(json!({"delta_id": delta["id"], "comment": format!("v{version}")})),
        );
        assert_eq!(status, 201, "{deploy}");
        wait_final(&server, &deploy)
    };
    let v1 = deploy_version("1");
    assert_eq!(v1["status"], "succeeded", "{v1}");
    assert_eq!(served_version(service_port).as_deref(), Some("1"));
    let v2 = deploy_version("2");
    assert_eq!(v2["status"], "succeeded", "{v2}");
    assert_eq!(served_version(service_port).as_deref(), Some("2"));

    // `gangplank rollback`: v1's set again, and the host runs v1 again.
    let rollback = wait_final(&server, &cli(&server, home.path(), &["rollback"]));
    assert_eq!(rollback["status"], "succeeded", "{rollback}");
    assert_eq!(rollback["set_id"], v1["set_id"], "{rollback}");
    assert_eq!(served_version(service_port).as_deref(), Some("1"));
    in_sync_with("1");

    // `gangplank deploy --set` of v2's set (older than the rollback): v2 again.
    let set_v2 = v2["set_id"].as_str().unwrap();
    let again = wait_final(
        &server,
        &cli(&server, home.path(), &["deploy", "--set", set_v2]),
    );
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(served_version(service_port).as_deref(), Some("2"));
    in_sync_with("2");

    // A redeploy of what already runs: the agent answers `unchanged`, compose does not run.
    let runs = compose_runs(&compose_log).len();
    let same = wait_final(
        &server,
        &cli(&server, home.path(), &["deploy", "--set", set_v2]),
    );
    assert_eq!(same["status"], "succeeded", "{same}");
    assert_eq!(
        compose_runs(&compose_log).len(),
        runs,
        "an unchanged redeploy ran compose: {:?}",
        compose_runs(&compose_log)
    );
    let record_id = format!("{}-web", same["id"].as_str().unwrap());
    let unchanged =
        agent.lines("deployment unchanged: the service already runs the image, nothing run");
    assert!(
        unchanged
            .iter()
            .any(|f| f["deploy"] == record_id.as_str() && f["result"] == "unchanged"),
        "{unchanged:?}"
    );
    assert_eq!(served_version(service_port).as_deref(), Some("2"));

    // The host wiped by hand (containers and the agent's override gone): the next deployment
    // of the same set converges it.
    run(
        "docker-compose",
        &["-p", &project, "-f", compose_file.to_str().unwrap(), "down"],
    );
    std::fs::remove_file(&override_file).unwrap();
    assert_eq!(served_version(service_port), None);
    let healed = wait_final(
        &server,
        &cli(&server, home.path(), &["deploy", "--set", set_v2]),
    );
    assert_eq!(healed["status"], "succeeded", "{healed}");
    poll("the wiped host to serve v2 again", || {
        served_version(service_port).filter(|v| v == "2")
    });
    let ran = compose_runs(&compose_log);
    assert!(
        ran.len() > runs
            && ran
                .last()
                .is_some_and(|l| l.ends_with("up -d --no-deps web")),
        "{ran:?}"
    );

    // The agent said what it did: one outcome line per run, with image, digest and duration.
    let succeeded = agent.lines("deployment succeeded");
    assert_eq!(succeeded.len(), 5, "{succeeded:?}");
    for line in &succeeded {
        assert_eq!(line["result"], "succeeded", "{line}");
        assert_eq!(line["service"], "web", "{line}");
        assert!(
            line["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))
                && line["duration_ms"].is_u64()
                && line["image"].as_str().is_some_and(|i| i.starts_with(&repo)),
            "{line}"
        );
    }
    let verdicts = agent.lines("health verdict");
    assert!(
        verdicts.len() >= 5 && verdicts.iter().all(|v| v["verdict"] == "healthy"),
        "{verdicts:?}"
    );
}
