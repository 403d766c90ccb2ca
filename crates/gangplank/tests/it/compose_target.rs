//! The server's compose target without Docker: its JWKS, the target's validation, a real agent
//! (with a recording compose command) verifying the server's signed requests, refusals (with
//! the agent's reason) and an unreachable agent reported per workload, and level-triggered
//! applies: a service the host does not run is run again on the next deployment.

use serde_json::{Value, json};

use crate::agent_api::recording_compose;
use crate::agents::Agent;
use crate::support::{ADMIN, Server, error_message};

fn target(server: &Server, body: Value) -> (u16, Value) {
    server.call(
        "PUT",
        "/orgs/default/apps/shop/envs/development/target",
        Some(ADMIN),
        Some(body),
    )
}

fn deploy_images(server: &Server, modules: Value) -> Value {
    let (status, delta) = server.call(
        "POST",
        "/orgs/default/apps/shop/deltas",
        Some(ADMIN),
        Some(json!({"metadata": {"env_id": "development"}, "modules": {"add": modules}})),
    );
    assert_eq!(status, 200, "{delta}");
    let (status, deploy) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"]})),
    );
    assert_eq!(status, 201, "{deploy}");
    crate::support::wait_deploy_final(
        server,
        "shop",
        "development",
        deploy["id"].as_str().unwrap(),
    )
}

fn errors(server: &Server, deploy: &Value) -> Vec<Value> {
    let (_, errors) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/shop/envs/development/deploys/{}/errors",
            deploy["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    errors.as_array().unwrap().clone()
}

fn workload(image: &str) -> Value {
    json!({"spec": {"containers": {"main": {"image": image}}}})
}

#[test]
fn the_server_signs_for_agents_and_reports_each_workload() {
    let mut server = Server::start();
    let (status, jwks) = server.call("GET", "/.well-known/jwks.json", None, None);
    assert_eq!(status, 200);
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key.get("d").is_none(), "the JWKS holds a private key");
    server.create_app("shop");

    let invalid = [
        (json!({"type": "k8s"}), "type"),
        (json!({"type": "compose"}), "agents"),
        (
            json!({"type": "compose", "agents": [{"url": "ftp://x", "services": {"web": "web"}}]}),
            "agents[0].url",
        ),
        (
            json!({"type": "compose", "agents": [{"url": "http://10.0.0.5:8686", "services": {}}]}),
            "agents[0].services",
        ),
        (
            json!({"type": "compose", "agents": [{"url": "http://10.0.0.5:8686", "services": {"web": "bad name"}}]}),
            "agents[0].services.web",
        ),
        (
            json!({"type": "none", "agents": [{"url": "http://10.0.0.5:8686", "services": {"web": "web"}}]}),
            "agents",
        ),
        // Two workloads as one compose service: one of them would silently not be deployed.
        (
            json!({"type": "compose", "agents": [{"url": "http://10.0.0.5:8686", "services": {"api": "web", "web": "web"}}]}),
            "agents[0].services.web",
        ),
        (
            json!({"type": "compose", "auto_heal": true, "auto_heal_after_seconds": 0, "agents": [{"url": "http://10.0.0.5:8686", "services": {"web": "web"}}]}),
            "auto_heal_after_seconds",
        ),
        (
            json!({"type": "compose", "auto_heal_after_seconds": 86_401, "agents": [{"url": "http://10.0.0.5:8686", "services": {"web": "web"}}]}),
            "auto_heal_after_seconds",
        ),
        (json!({"type": "none", "auto_heal": true}), "auto_heal"),
    ];
    for (body, field) in invalid {
        let (status, answer) = target(&server, body.clone());
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            error_message(&answer).starts_with(field),
            "{body}: {answer}"
        );
    }

    // A real agent that trusts the server's JWKS and may deploy `web` only.
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let (compose, ran_log) = recording_compose(dir);
    std::fs::write(
        dir.join("compose.yml"),
        "services:\n  web:\n    image: r/web:1\n  api:\n    image: r/api:1\n",
    )
    .unwrap();
    let agent = Agent::start(
        dir,
        &format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncompose_command = \"{compose}\"\n[auth]\njwks_url = \"{}/.well-known/jwks.json\"\n[[project]]\nname = \"shop\"\nfiles = [\"{}\"]\nservices = [\"web\"]\nhealth_timeout = \"0s\"\n",
            dir.join("state").display(),
            server.base,
            dir.join("compose.yml").display()
        ),
    );
    let unreachable = format!("http://127.0.0.1:{}", gangplank_testkit::free_port());
    let wanted = json!({"type": "compose", "timeout_seconds": 3, "agents": [
        {"url": agent.base, "services": {"web": "web", "api": "api"}},
        {"url": unreachable, "services": {"worker": "worker"}},
    ]});
    let (status, body) = target(&server, wanted.clone());
    assert_eq!(status, 200, "{body}");
    let (_, read) = server.call(
        "GET",
        "/orgs/default/apps/shop/envs/development/target",
        Some(ADMIN),
        None,
    );
    assert_eq!(read, wanted);

    let deploy = deploy_images(
        &server,
        json!({"web": workload("r/web:2"), "api": workload("r/api:2"), "worker": workload("r/worker:2")}),
    );
    // One agent refuses, one is unreachable until the deadline: the deployment fails.
    assert_eq!(deploy["status"], "failed", "{deploy}");
    let mut codes: Vec<(String, String)> = errors(&server, &deploy)
        .iter()
        .map(|e| {
            (
                e["object_id"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    codes.sort();
    // The agent refuses the whole apply (it may not deploy `api`), saying why; nothing runs.
    assert_eq!(
        codes,
        [
            ("api".to_owned(), "GP-AGENT-REFUSED".to_owned()),
            ("web".to_owned(), "GP-AGENT-REFUSED".to_owned()),
            ("worker".to_owned(), "GP-AGENT-TIMEOUT".to_owned()),
        ],
        "{:?}",
        errors(&server, &deploy)
    );
    let refused = errors(&server, &deploy);
    let api = refused.iter().find(|e| e["object_id"] == "api").unwrap();
    assert!(
        api["summary"]
            .as_str()
            .unwrap()
            .contains(r#"service "api" may not be deployed by this agent"#),
        "{api}"
    );
    let worker = refused.iter().find(|e| e["object_id"] == "worker").unwrap();
    assert!(
        worker["message"]
            .as_str()
            .unwrap()
            .contains("last problem:"),
        "{worker}"
    );
    assert!(!ran_log.exists(), "a refused apply ran compose");

    // `web` alone is applied: the agent verified the server's ES256 token through the JWKS.
    let (status, _) = target(
        &server,
        json!({"type": "compose", "agents": [{"url": agent.base, "services": {"web": "web"}}]}),
    );
    assert_eq!(status, 200);
    let web_only = deploy_images(&server, json!({"web": workload("r/web:3")}));
    assert_eq!(web_only["status"], "succeeded", "{web_only}");
    let ran = std::fs::read_to_string(&ran_log).unwrap();
    assert!(ran.contains("up -d --no-deps web"), "{ran}");
    let runs = ran.lines().count();

    // Level-triggered: a deployment that changes only an unmapped workload still sends `web`,
    // and since no container runs it here (the compose command only records), the agent runs
    // it again rather than trusting the server's history.
    let other = deploy_images(&server, json!({"other": workload("r/other:1")}));
    assert_eq!(other["status"], "succeeded", "{other}");
    let ran = std::fs::read_to_string(&ran_log).unwrap();
    assert!(ran.lines().count() > runs, "{ran}");
    let (_, record) = server.call(
        "GET",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        None,
    );
    let latest = record[0]["id"].as_str().unwrap().to_owned();
    let answer: Value = reqwest::blocking::Client::new()
        .get(format!("{}/deploys/{latest}-web", agent.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answer["error"], "unauthorized", "{answer}");
    assert_eq!(answer["message"], "no bearer token", "{answer}");

    // An agent expecting another audience refuses the server's token, and says why: the reason
    // travels into the deployment's errors.
    let strict_dir = dir.join("strict");
    std::fs::create_dir_all(&strict_dir).unwrap();
    let strict = Agent::start(
        &strict_dir,
        &format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncompose_command = \"{compose}\"\n[auth]\njwks_url = \"{}/.well-known/jwks.json\"\naudience = \"http://elsewhere.test:8686\"\n[[project]]\nname = \"shop\"\nfiles = [\"{}\"]\nservices = [\"web\"]\nhealth_timeout = \"0s\"\n",
            strict_dir.join("state").display(),
            server.base,
            dir.join("compose.yml").display()
        ),
    );
    let (status, _) = target(
        &server,
        json!({"type": "compose", "agents": [{"url": strict.base, "services": {"web": "web"}}]}),
    );
    assert_eq!(status, 200);
    let refused = deploy_images(&server, json!({"web": workload("r/web:4")}));
    assert_eq!(refused["status"], "failed", "{refused}");
    let errors = errors(&server, &refused);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "GP-AGENT-REFUSED");
    assert_eq!(
        errors[0]["summary"],
        r#"GP-AGENT-REFUSED: the token's audience does not include "http://elsewhere.test:8686""#
    );
    let strict_log = strict.log();
    assert!(
        strict_log.contains("request refused") && !strict_log.contains("eyJ"),
        "{strict_log}"
    );

    // The key survives a restart: the same kid.
    server.crash_and_restart();
    let (_, again) = server.call("GET", "/.well-known/jwks.json", None, None);
    assert_eq!(again["keys"][0]["kid"], key["kid"]);
}

#[test]
fn an_agent_that_restarts_mid_deployment_is_sent_the_apply_again_and_converges() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    server.create_app("shop");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    std::fs::write(
        dir.join("compose.yml"),
        "services:\n  web:\n    image: r/web:1\n",
    )
    .unwrap();
    // The first `up` waits for a gate file, so the agent is stopped while it runs; every
    // compose command is recorded.
    let ran_log = dir.join("ran.log");
    let gate = dir.join("gate");
    let compose = dir.join("compose.sh");
    std::fs::write(
        &compose,
        format!(
            "#!/bin/sh\necho \"$@\" >> {log}\ncase \"$*\" in\n  *\"up -d\"*) [ -e {gate}.used ] || {{ touch {gate}.used; while [ ! -e {gate} ]; do sleep 0.05; done; }} ;;\nesac\necho ok\n",
            log = ran_log.display(),
            gate = gate.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&compose, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = gangplank_testkit::free_port();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nstate_dir = \"{}\"\ncompose_command = \"{}\"\n[auth]\njwks_url = \"{}/.well-known/jwks.json\"\n[[project]]\nname = \"gprestart{}\"\nfiles = [\"{}\"]\nservices = [\"web\"]\nhealth_timeout = \"0s\"\n",
        dir.join("state").display(),
        compose.display(),
        server.base,
        std::process::id(),
        dir.join("compose.yml").display()
    );
    let agent = Agent::start(dir, &config);
    let (status, body) = target(
        &server,
        json!({"type": "compose", "timeout_seconds": 120, "agents": [{"url": agent.base, "services": {"web": "web"}}]}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, delta) = server.call(
        "POST",
        "/orgs/default/apps/shop/deltas",
        Some(ADMIN),
        Some(json!({"metadata": {"env_id": "development"}, "modules": {"add": {"web": workload("r/web:2")}}})),
    );
    assert_eq!(status, 200, "{delta}");
    let (status, deploy) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"]})),
    );
    assert_eq!(status, 201, "{deploy}");
    let ups = || {
        std::fs::read_to_string(&ran_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.ends_with("up -d --no-deps web"))
            .count()
    };
    crate::support::poll("the first run to reach `up`", || (ups() == 1).then_some(()));
    // The agent stops mid-run and comes back with no memory of the apply.
    drop(agent);
    std::fs::write(&gate, "").unwrap();
    let agent = Agent::start(dir, &config);
    let done = crate::support::wait_deploy_final(
        &server,
        "shop",
        "development",
        deploy["id"].as_str().unwrap(),
    );
    assert_eq!(done["status"], "succeeded", "{done}");
    // The new agent was sent the same apply, observed that nothing runs `web`, and ran it.
    assert_eq!(ups(), 2);
    let succeeded = agent.lines("deployment succeeded");
    assert_eq!(succeeded.len(), 1, "{succeeded:?}");
    assert_eq!(
        succeeded[0]["deploy"],
        format!("{}-web", deploy["id"].as_str().unwrap())
    );
}
