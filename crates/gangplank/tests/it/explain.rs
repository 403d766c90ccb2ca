//! Honest explanations and what `resume` and `deploy --redeploy` do: the automation log says
//! how the deployment a version went into ended, `resume` re-evaluates the versions skipped
//! while automation was held, and a redeploy is a new deployment of the current set.

use serde_json::{Value, json};

use crate::cli::gangplank;
use crate::support::{ADMIN, Server, poll, wait_deploy_final};

const WEB: &str = "registry.test/acme/web";

fn register(server: &Server, version: &str) {
    let (status, body) = server.call(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        Some(
            json!({"name": WEB, "type": "container", "version": version, "ref": "refs/heads/main"}),
        ),
    );
    assert_eq!(status, 200, "{body}");
}

fn env_path(app: &str) -> String {
    format!("/orgs/default/apps/{app}/envs/development")
}

/// Deploys `web` at `version` by a delta on top of what the environment runs.
fn deploy_web(server: &Server, app: &str, version: &str, first: bool) -> Value {
    let image = json!(format!("{WEB}:{version}"));
    let modules = if first {
        json!({"add": {"web": {"spec": {"containers": {"main": {"image": image}}}}}})
    } else {
        json!({"update": {"web": [{"op": "replace", "path": "/spec/containers/main/image", "value": image}]}})
    };
    let (status, delta) = server.call(
        "POST",
        &format!("/orgs/default/apps/{app}/deltas"),
        Some(ADMIN),
        Some(json!({"metadata": {"env_id": "development"}, "modules": modules})),
    );
    assert_eq!(status, 200, "{delta}");
    let (status, deploy) = server.call(
        "POST",
        &format!("{}/deploys", env_path(app)),
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"], "comment": version})),
    );
    assert_eq!(status, 201, "{deploy}");
    let done = wait_deploy_final(server, app, "development", deploy["id"].as_str().unwrap());
    assert_eq!(done["status"], "succeeded", "{done}");
    done
}

fn log(server: &Server, app: &str) -> Vec<Value> {
    let (status, body) = server.call(
        "GET",
        &format!("{}/automation-log", env_path(app)),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

/// The newest log entry about `version`.
fn entry(entries: &[Value], version: &str) -> Option<Value> {
    entries.iter().find(|e| e["version"] == version).cloned()
}

fn deploys(server: &Server, app: &str) -> Vec<Value> {
    let (status, list) = server.call(
        "GET",
        &format!("{}/deploys", env_path(app)),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

fn web_image(server: &Server, app: &str, set_id: &str) -> String {
    let (status, set) = server.call(
        "GET",
        &format!("/orgs/default/apps/{app}/sets/{set_id}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{set}");
    set["modules"]["web"]["spec"]["containers"]["main"]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn create_rule(server: &Server, app: &str, rule: Value) -> Value {
    let (status, body) = server.call(
        "POST",
        &format!("{}/rules", env_path(app)),
        Some(ADMIN),
        Some(rule),
    );
    assert_eq!(status, 201, "{body}");
    body
}

fn automation_server() -> Server {
    Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_AUTOMATION_DEBOUNCE", "0"),
    ])
}

#[test]
fn a_version_deployed_into_a_failed_deployment_is_explained_as_failed() {
    let server = automation_server();
    server.create_app("honest");
    deploy_web(&server, "honest", "1.0.0", true);
    create_rule(&server, "honest", json!({"type": "update"}));

    // On the `none` target, the deployment succeeds and the log says so.
    register(&server, "2.0.0");
    let succeeded = poll("2.0.0's deployment to end", || {
        entry(&log(&server, "honest"), "2.0.0")
            .filter(|e| matches!(e["deploy_status"].as_str(), Some("succeeded" | "failed")))
    });
    assert_eq!(
        succeeded["reason"],
        format!(
            "deployed in deployment {} (succeeded)",
            succeeded["deploy_id"].as_str().unwrap()
        )
        .as_str()
    );
    assert!(succeeded.get("deploy_error").is_none(), "{succeeded}");

    // A compose host nobody answers at: the deployment fails at its one-second deadline.
    let unreachable = format!("http://127.0.0.1:{}", gangplank_testkit::free_port());
    let (status, body) = server.call(
        "PUT",
        &format!("{}/target", env_path("honest")),
        Some(ADMIN),
        Some(json!({"type": "compose", "timeout_seconds": 1,
                    "agents": [{"url": unreachable, "services": {"web": "web"}}]})),
    );
    assert_eq!(status, 200, "{body}");
    register(&server, "3.0.0");
    let failed = poll("3.0.0's deployment to end", || {
        entry(&log(&server, "honest"), "3.0.0")
            .filter(|e| matches!(e["deploy_status"].as_str(), Some("succeeded" | "failed")))
    });
    let deploy_id = failed["deploy_id"].as_str().unwrap();
    assert_eq!(failed["outcome"], "deployed", "{failed}");
    assert_eq!(failed["deploy_status"], "failed", "{failed}");
    // The deployment's first error, as its errors endpoint reports it.
    let (status, errors) = server.call(
        "GET",
        &format!("{}/deploys/{deploy_id}/errors", env_path("honest")),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{errors}");
    let first = &errors[0];
    let code = first["code"].as_str().unwrap();
    assert!(code.starts_with("GP-"), "{errors}");
    let error = format!("{code} {}", first["summary"].as_str().unwrap());
    assert_eq!(failed["deploy_error"], error.as_str(), "{failed}");
    assert_eq!(
        failed["reason"],
        format!("deployed in deployment {deploy_id} (failed: {error})").as_str()
    );
    let (_, deploy) = server.call(
        "GET",
        &format!("{}/deploys/{deploy_id}", env_path("honest")),
        Some(ADMIN),
        None,
    );
    assert_eq!(
        deploy["status"], "failed",
        "the log agrees with the deployment"
    );

    // `gangplank explain` prints the outcome in its table.
    let home = tempfile::tempdir().unwrap();
    let out = gangplank(home.path())
        .args([
            "--url",
            server.base.as_str(),
            "--token",
            ADMIN,
            "--org",
            "default",
        ])
        .args([
            "--app",
            "honest",
            "--env",
            "development",
            "-o",
            "table",
            "explain",
        ])
        .assert()
        .success();
    let table = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let line_of = |version: &str| {
        table
            .lines()
            .find(|l| l.starts_with(version))
            .unwrap_or_else(|| panic!("no line for {version}: {table}"))
            .to_owned()
    };
    assert!(
        line_of("3.0.0").contains(&format!("(failed: {error})")),
        "{table}"
    );
    assert!(line_of("2.0.0").ends_with("(succeeded)"), "{table}");
}

#[test]
fn resume_deploys_the_newest_eligible_version_skipped_while_held() {
    let mut server = automation_server();
    server.create_app("held");
    let v1 = deploy_web(&server, "held", "1.0.0", true);
    deploy_web(&server, "held", "2.0.0", false);
    let rule = create_rule(
        &server,
        "held",
        json!({"type": "update", "version_policy": {"type": "semver", "constraint": ">=3"}}),
    );

    // Roll back to 1.0.0: automation is held.
    let (status, body) = server.call(
        "PUT",
        &format!("{}/from_deploy_id", env_path("held")),
        Some(ADMIN),
        Some(v1["id"].clone()),
    );
    assert_eq!(status, 204, "{body}");
    let (status, rollback) = server.call(
        "POST",
        &format!("{}/deploys", env_path("held")),
        Some(ADMIN),
        Some(json!({"comment": "rollback"})),
    );
    assert_eq!(status, 201, "{rollback}");
    wait_deploy_final(
        &server,
        "held",
        "development",
        rollback["id"].as_str().unwrap(),
    );

    for version in ["3.0.0", "3.1.0", "4.0.0"] {
        register(&server, version);
    }
    let entries = poll("three held decisions", || {
        let entries = log(&server, "held");
        (entries.iter().filter(|e| e["code"] == "held").count() == 3).then_some(entries)
    });
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(
        deploys(&server, "held").len(),
        3,
        "nothing deploys while held"
    );
    // The rules changed while held: 4.0.0 is no longer eligible.
    let rule_id = rule["id"].as_str().unwrap();
    let (status, body) = server.call(
        "PUT",
        &format!("{}/rules/{rule_id}", env_path("held")),
        Some(ADMIN),
        Some(json!({"type": "update", "version_policy": {"type": "semver", "constraint": "^3"}})),
    );
    assert_eq!(status, 200, "{body}");

    let (status, _) = server.call(
        "POST",
        &format!("{}/automation/resume", env_path("held")),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    // The re-evaluation was written with the resume: a crash right after loses nothing.
    server.crash_and_restart();

    let deployed = poll("the re-evaluated version's deployment", || {
        entry(&log(&server, "held"), "3.1.0").filter(|e| e["deploy_status"] == "succeeded")
    });
    let deploy_id = deployed["deploy_id"].as_str().unwrap();
    assert_eq!(deployed["code"], "deployed", "{deployed}");
    assert_eq!(
        deployed["reason"],
        format!("re-evaluated after resume: deployed in deployment {deploy_id} (succeeded)")
            .as_str()
    );
    let list = deploys(&server, "held");
    assert_eq!(list.len(), 4, "one deployment after resume: {list:?}");
    assert_eq!(list[0]["id"], deploy_id);
    assert_eq!(
        list[0]["comment"],
        format!("Automated Deployment: {WEB}:3.1.0").as_str()
    );
    assert_eq!(list[0]["triggered_by"], format!("rule/{rule_id}").as_str());
    assert_eq!(
        web_image(&server, "held", list[0]["set_id"].as_str().unwrap()),
        format!("{WEB}:3.1.0")
    );
    let entries = log(&server, "held");
    let older = entry(&entries, "3.0.0").unwrap();
    assert_eq!(older["code"], "superseded", "{older}");
    assert_eq!(
        older["reason"],
        format!("re-evaluated after resume: {WEB}:3.1.0, a newer version, is deployed instead")
            .as_str()
    );
    let refused = entry(&entries, "4.0.0").unwrap();
    assert_eq!(refused["code"], "policy", "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .starts_with("re-evaluated after resume: version \"4.0.0\""),
        "{refused}"
    );

    // A second resume has nothing left to re-evaluate: the next version is the only news.
    let (status, _) = server.call(
        "POST",
        &format!("{}/automation/resume", env_path("held")),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    register(&server, "3.2.0");
    poll("3.2.0's deployment", || {
        entry(&log(&server, "held"), "3.2.0").filter(|e| e["deploy_status"] == "succeeded")
    });
    let entries = log(&server, "held");
    for (version, count) in [("3.0.0", 2), ("3.1.0", 2), ("4.0.0", 2), ("3.2.0", 1)] {
        assert_eq!(
            entries.iter().filter(|e| e["version"] == version).count(),
            count,
            "{version}: {entries:?}"
        );
    }
    assert_eq!(deploys(&server, "held").len(), 5);
}

#[test]
fn deploy_redeploy_is_a_new_deployment_of_the_current_set() {
    let server = Server::start();
    server.create_app("again");
    let first = deploy_web(&server, "again", "1.0.0", true);
    let home = tempfile::tempdir().unwrap();
    let cli = |env: &str| {
        let mut command = gangplank(home.path());
        command
            .args([
                "--url",
                server.base.as_str(),
                "--token",
                ADMIN,
                "--org",
                "default",
            ])
            .args([
                "--app",
                "again",
                "--env",
                env,
                "-o",
                "table",
                "deploy",
                "--redeploy",
            ]);
        command
    };
    let out = cli("development").assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let list = deploys(&server, "again");
    assert_eq!(list.len(), 2, "{list:?}");
    let redeploy = &list[0];
    let (id, set, first_id) = (
        redeploy["id"].as_str().unwrap(),
        first["set_id"].as_str().unwrap(),
        first["id"].as_str().unwrap(),
    );
    assert_ne!(id, first_id);
    assert_eq!(redeploy["set_id"], first["set_id"]);
    assert_eq!(redeploy["from_id"], first["id"]);
    assert_eq!(
        redeploy["comment"],
        format!("Redeploy of {first_id}").as_str()
    );
    assert!(
        stdout.starts_with(&format!(
            "deployment {id} redeploys set {set} of deployment {first_id} ("
        )),
        "{stdout}"
    );
    let done = wait_deploy_final(&server, "again", "development", id);
    assert_eq!(done["status"], "succeeded", "{done}");

    // An environment without a deployment: one error line, non-zero exit.
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/again/envs",
        Some(ADMIN),
        Some(json!({"id": "staging", "name": "staging", "type": "development"})),
    );
    assert_eq!(status, 201, "{body}");
    let out = cli("staging").assert().failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("no deployment to redeploy"),
        "{stderr}"
    );
    assert!(out.get_output().stdout.is_empty());
}
