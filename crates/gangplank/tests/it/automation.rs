//! Seed 000 end to end, rollback with the automation hold, rules over the API, and the
//! automation log.

use serde_json::{Value, json};

use crate::receivers::{PyReceiver, whsec};
use crate::support::{ADMIN, SHA64, SHA64_B, Server, error_message, poll};

const APP1: &str = "667740703053.dkr.ecr.ca-central-1.amazonaws.com/app1";
const APP2: &str = "667740703053.dkr.ecr.ca-central-1.amazonaws.com/app2";

/// The payload template of seed 000, verbatim.
fn seed_payload() -> Value {
    json!({
        "event": "${event}",
        "org_id": "${org_id}",
        "app_id": "${app_id}",
        "env_id": "${env_id}",
        "triggered_at": "${triggered_at}",
        "triggered_by": "${triggered_by}",
        "deploy_id": "${deploy_id}",
        "delta_id": "${delta_id}",
        "set_id": "${set_id}",
        "comment": "${comment}",
        "status": "${status}"
    })
}

fn register(server: &Server, name: &str, version: &str, git_ref: &str) -> Value {
    let (status, body) = server.call(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        Some(json!({"name": name, "type": "container", "commit": SHA64, "version": version, "ref": git_ref})),
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn workload(image: &str) -> Value {
    json!({"profile": "humanitec/default-module", "spec": {"containers": {"main": {"image": image}}}})
}

/// Deploys a delta adding `modules` and waits until the deployment succeeded.
fn deploy_modules(server: &Server, app: &str, env: &str, modules: Value) -> Value {
    let (status, delta) = server.call(
        "POST",
        &format!("/orgs/default/apps/{app}/deltas"),
        Some(ADMIN),
        Some(json!({"metadata": {"env_id": env, "name": "initial"}, "modules": {"add": modules}})),
    );
    assert_eq!(status, 200, "{delta}");
    let (status, deploy) = server.call(
        "POST",
        &format!("/orgs/default/apps/{app}/envs/{env}/deploys"),
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"], "comment": "initial images"})),
    );
    assert_eq!(status, 201, "{deploy}");
    wait_succeeded(server, app, env, deploy["id"].as_str().unwrap())
}

fn wait_succeeded(server: &Server, app: &str, env: &str, id: &str) -> Value {
    poll(&format!("deployment {id} to succeed"), || {
        let (_, d) = server.call(
            "GET",
            &format!("/orgs/default/apps/{app}/envs/{env}/deploys/{id}"),
            Some(ADMIN),
            None,
        );
        (d["status"] == "succeeded").then_some(d)
    })
}

fn deploys(server: &Server, app: &str, env: &str) -> Vec<Value> {
    let (status, list) = server.call(
        "GET",
        &format!("/orgs/default/apps/{app}/envs/{env}/deploys"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

fn image_in_set(server: &Server, app: &str, set_id: &str, workload: &str) -> String {
    let (status, set) = server.call(
        "GET",
        &format!("/orgs/default/apps/{app}/sets/{set_id}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{set}");
    set["modules"][workload]["spec"]["containers"]["main"]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn create_app(server: &Server, app: &str) {
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": app})),
    );
    assert_eq!(status, 201, "{body}");
}

fn create_rule(server: &Server, app: &str, env: &str, rule: Value) -> Value {
    let (status, body) = server.call(
        "POST",
        &format!("/orgs/default/apps/{app}/envs/{env}/rules"),
        Some(ADMIN),
        Some(rule),
    );
    assert_eq!(status, 201, "{body}");
    body
}

fn log(server: &Server, app: &str, env: &str) -> Vec<Value> {
    let (status, body) = server.call(
        "GET",
        &format!("/orgs/default/apps/{app}/envs/{env}/automation-log"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[test]
fn seed_000_two_versions_become_one_deployment_and_a_signed_webhook() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("GANGPLANK_AUTOMATION_DEBOUNCE", "1s"),
    ]);
    create_app(&server, "automation");
    register(&server, APP1, SHA64, "refs/heads/main");
    register(&server, APP2, SHA64, "refs/heads/main");
    let first = deploy_modules(
        &server,
        "automation",
        "development",
        json!({"app1": workload(&format!("{APP1}:{SHA64}")), "app2": workload(&format!("{APP2}:{SHA64}"))}),
    );
    let receiver = PyReceiver::start("", 0);
    let (status, hook) = server.call(
        "POST",
        "/orgs/default/apps/automation/webhooks",
        Some(ADMIN),
        Some(json!({
            "id": "lambda", "url": receiver.url(), "payload": seed_payload(), "secret": whsec(),
            "triggers": [{"scope": "deployment", "type": "finished"}]
        })),
    );
    assert_eq!(status, 201, "{hook}");
    assert!(
        hook.get("secret").is_none(),
        "a given secret is never echoed"
    );
    let rule = create_rule(
        &server,
        "automation",
        "development",
        json!({"type": "update", "match_ref": "^refs/heads/main$"}),
    );

    register(&server, APP1, SHA64_B, "refs/heads/main");
    register(&server, APP2, SHA64_B, "refs/heads/main");

    let records = receiver.wait_for(1);
    let delivered: Value = serde_json::from_str(records[0]["body"].as_str().unwrap()).unwrap();
    let list = deploys(&server, "automation", "development");
    assert_eq!(
        list.len(),
        2,
        "one automated deployment besides the initial one: {list:?}"
    );
    let automated = &list[0];
    let comment = format!("Automated Deployment: {APP1}:{SHA64_B} {APP2}:{SHA64_B}");
    assert_eq!(automated["comment"], comment.as_str());
    assert_eq!(automated["from_id"], first["id"]);
    assert_eq!(
        automated["triggered_by"],
        format!("rule/{}", rule["id"].as_str().unwrap()).as_str()
    );
    let set_id = automated["set_id"].as_str().unwrap();
    assert_eq!(
        image_in_set(&server, "automation", set_id, "app1"),
        format!("{APP1}:{SHA64_B}")
    );
    assert_eq!(
        image_in_set(&server, "automation", set_id, "app2"),
        format!("{APP2}:{SHA64_B}")
    );

    let expected = json!({
        "event": "deployment.finished", "org_id": "default", "app_id": "automation",
        "env_id": "development", "triggered_by": automated["triggered_by"], "deploy_id": automated["id"],
        "delta_id": automated["delta_id"], "set_id": set_id, "comment": comment, "status": "succeeded",
        "triggered_at": delivered["triggered_at"],
    });
    assert_eq!(delivered, expected);
    assert!(delivered["triggered_at"].as_str().unwrap().ends_with('Z'));
    assert!(!automated["delta_id"].as_str().unwrap().is_empty());
    let record = &records[0];
    assert_eq!(
        record["standard_ok"], true,
        "Standard Webhooks signature verified by Python: {record}"
    );
    assert_eq!(
        record["hub_ok"], true,
        "X-Hub-Signature-256 verified by Python: {record}"
    );
    assert_eq!(
        record["headers"]["x-gangplank-event"],
        "deployment.finished"
    );
    assert_eq!(record["headers"]["content-type"], "application/json");

    let entries = log(&server, "automation", "development");
    assert_eq!(entries.len(), 2, "{entries:?}");
    for entry in &entries {
        assert_eq!(entry["outcome"], "deployed", "{entry}");
        assert_eq!(entry["deploy_id"], automated["id"]);
    }
    // The one deployment also drained the batch: nothing else is delivered.
    assert_eq!(receiver.records().len(), 1);
}

#[test]
fn rollback_redeploys_the_old_set_and_holds_automation_until_resumed() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_AUTOMATION_DEBOUNCE", "0"),
    ]);
    create_app(&server, "shop");
    let name = "registry.test/acme/web";
    let v1 = deploy_modules(
        &server,
        "shop",
        "development",
        json!({"web": workload(&format!("{name}:1.0.0"))}),
    );
    let (status, delta) = server.call(
        "POST",
        "/orgs/default/apps/shop/deltas",
        Some(ADMIN),
        Some(json!({"modules": {"update": {"web": [{"op": "replace", "path": "/spec/containers/main/image", "value": format!("{name}:2.0.0")}]}}})),
    );
    assert_eq!(status, 200, "{delta}");
    let (status, v2) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"]})),
    );
    assert_eq!(status, 201, "{v2}");
    wait_succeeded(&server, "shop", "development", v2["id"].as_str().unwrap());
    create_rule(&server, "shop", "development", json!({"type": "update"}));

    // Rollback = rebase on v1, then deploy without changes.
    let (status, body) = server.call(
        "PUT",
        "/orgs/default/apps/shop/envs/development/from_deploy_id",
        Some(ADMIN),
        Some(json!(v1["id"])),
    );
    assert_eq!(status, 204, "{body}");
    let (status, rollback) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"comment": "rollback"})),
    );
    assert_eq!(status, 201, "{rollback}");
    wait_succeeded(
        &server,
        "shop",
        "development",
        rollback["id"].as_str().unwrap(),
    );
    assert_eq!(
        rollback["set_id"], v1["set_id"],
        "the rollback deploys v1's set"
    );
    let history = deploys(&server, "shop", "development");
    let ids: Vec<&Value> = history.iter().map(|d| &d["id"]).collect();
    assert_eq!(
        ids,
        vec![&rollback["id"], &v2["id"], &v1["id"]],
        "history keeps all three, newest first"
    );
    let (_, env) = server.call(
        "GET",
        "/orgs/default/apps/shop/envs/development",
        Some(ADMIN),
        None,
    );
    assert_eq!(env["automation"]["held"], true, "{env}");
    assert_eq!(env["last_deploy"]["id"], rollback["id"]);

    // Held: a new version is logged as held and deploys nothing.
    register(&server, name, "3.0.0", "refs/heads/main");
    let entry = poll("the held decision", || {
        log(&server, "shop", "development")
            .into_iter()
            .find(|e| e["version"] == "3.0.0")
    });
    assert_eq!(entry["code"], "held", "{entry}");
    assert_eq!(deploys(&server, "shop", "development").len(), 3);

    // Resumed: 3.0.0, skipped while held, is re-evaluated and deploys, then the next version
    // (in the same batch or the next one).
    let (status, _) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs/development/automation/resume",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    register(&server, name, "4.0.0", "refs/heads/main");
    let newest = poll("the automated deployment after resume", || {
        deploys(&server, "shop", "development")
            .into_iter()
            .find(|d| {
                d["comment"]
                    .as_str()
                    .is_some_and(|c| c.ends_with(&format!(" {name}:4.0.0")))
            })
    });
    let done = wait_succeeded(
        &server,
        "shop",
        "development",
        newest["id"].as_str().unwrap(),
    );
    assert_eq!(
        image_in_set(&server, "shop", done["set_id"].as_str().unwrap(), "web"),
        format!("{name}:4.0.0")
    );
}

#[test]
fn rules_filter_ref_policy_and_workload_are_explained() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_AUTOMATION_DEBOUNCE", "0"),
    ]);
    create_app(&server, "svc");
    let web = "registry.test/acme/web";
    deploy_modules(
        &server,
        "svc",
        "development",
        json!({"web": workload(&format!("{web}:1.0.0")), "proxy": workload("nginx:1.25")}),
    );

    // Invalid rules are 400s naming the field.
    for (rule, field) in [
        (
            json!({"type": "update", "match_ref": "refs/(heads"}),
            "match_ref",
        ),
        (
            json!({"type": "update", "match": "main", "match_ref": "x"}),
            "match_ref",
        ),
        (
            json!({"type": "update", "images_filter": [], "artefacts_filter": []}),
            "images_filter",
        ),
        (
            json!({"type": "update", "version_policy": {"type": "semver", "constraint": "one"}}),
            "version_policy.constraint",
        ),
        (json!({"type": "deploy"}), "type"),
    ] {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/apps/svc/envs/development/rules",
            Some(ADMIN),
            Some(rule.clone()),
        );
        assert_eq!(status, 400, "{rule} → {body}");
        assert!(error_message(&body).starts_with(field), "{rule}: {body}");
    }
    create_rule(
        &server,
        "svc",
        "development",
        json!({"type": "update", "match_ref": "^refs/tags/", "artefacts_filter": [web, "nginx", "registry.test/acme/unused"],
               "version_policy": {"type": "semver", "constraint": "^1.2"}}),
    );
    let cases = [
        (
            "registry.test/acme/other",
            "1.3.0",
            "refs/tags/1.3.0",
            "filter",
        ),
        (web, "1.3.0", "refs/heads/main", "ref"),
        (web, "2.0.0", "refs/tags/2.0.0", "policy"),
        (web, "1.3.0-rc.1", "refs/tags/1.3.0-rc.1", "policy"),
        (
            "registry.test/acme/unused",
            "1.3.0",
            "refs/tags/1.3.0",
            "no_workload",
        ),
        (
            "docker.io/library/nginx",
            "1.27.0",
            "refs/tags/1.27.0",
            "deployed",
        ),
    ];
    for (name, version, git_ref, _) in &cases {
        register(&server, name, version, git_ref);
    }
    let entries = poll("a decision for every considered version", || {
        let entries = log(&server, "svc", "development");
        (entries.len() == 5 && entries.iter().all(|e| e["outcome"] != "queued")).then_some(entries)
    });
    for (name, version, _, code) in cases.iter().filter(|c| c.0 != "registry.test/acme/other") {
        let entry = entries
            .iter()
            .find(|e| e["name"] == *name && e["version"] == *version)
            .unwrap_or_else(|| panic!("no log entry for {name}:{version} in {entries:?}"));
        assert_eq!(entry["code"], *code, "{entry}");
        assert!(!entry["reason"].as_str().unwrap().is_empty());
    }
    let list = deploys(&server, "svc", "development");
    assert_eq!(list.len(), 2, "only nginx deployed: {list:?}");
    assert_eq!(
        image_in_set(&server, "svc", list[0]["set_id"].as_str().unwrap(), "proxy"),
        "docker.io/library/nginx:1.27.0",
        "nginx ≡ docker.io/library/nginx"
    );
}

#[test]
fn deployments_conflict_while_active_and_sets_diff() {
    let server = Server::start();
    create_app(&server, "core");
    let first = deploy_modules(
        &server,
        "core",
        "development",
        json!({"api": workload("registry.test/api:1")}),
    );
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/core/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"delta_id": "nope"})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).starts_with("delta_id"));
    let (status, body) = server.call(
        "PUT",
        "/orgs/default/apps/core/envs/development/from_deploy_id",
        Some(ADMIN),
        Some(json!("0000")),
    );
    assert_eq!(status, 400, "{body}");
    // Redeploying the same set twice quickly: the second conflicts while the first is active,
    // or succeeds after it: never two active at once.
    let (status, again) = server.call(
        "POST",
        "/orgs/default/apps/core/envs/development/deploys",
        Some(ADMIN),
        Some(json!({})),
    );
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["set_id"], first["set_id"]);
    let (status, second) = server.call(
        "POST",
        "/orgs/default/apps/core/envs/development/deploys",
        Some(ADMIN),
        Some(json!({})),
    );
    assert!(status == 201 || status == 409, "{status} {second}");
    if status == 409 {
        assert!(error_message(&second).contains("already active"));
    }
    let (status, empty) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/core/sets/{}?diff={}",
            first["set_id"].as_str().unwrap(),
            first["set_id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(empty["modules"]["add"], json!({}));
    let (status, errors) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/core/envs/development/deploys/{}/errors",
            first["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!((status, errors), (200, json!([])));
}

#[test]
fn exclude_filters_legacy_rules_and_regex_policies_over_the_api() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_AUTOMATION_DEBOUNCE", "0"),
    ]);
    create_app(&server, "multi");
    let web = "registry.test/acme/web";
    for env in ["staging", "production"] {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/apps/multi/envs",
            Some(ADMIN),
            Some(json!({"id": env, "name": env})),
        );
        assert_eq!(status, 201, "{body}");
    }
    for env in ["development", "staging", "production"] {
        deploy_modules(
            &server,
            "multi",
            env,
            json!({"web": workload(&format!("{web}:0.1"))}),
        );
    }
    // development excludes the artefact; staging follows tags the legacy way; production
    // takes only versions matching a regex.
    create_rule(
        &server,
        "multi",
        "development",
        json!({"type": "update", "artefacts_filter": [web], "exclude_artefacts_filter": true}),
    );
    create_rule(
        &server,
        "multi",
        "staging",
        json!({"type": "update", "update_to": "tag", "match": "^v"}),
    );
    create_rule(
        &server,
        "multi",
        "production",
        json!({"type": "update", "version_policy": {"type": "regex", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"}}),
    );
    register(&server, web, "v2.0.0", "refs/tags/v2.0.0");
    let decided = |env: &str| {
        poll(&format!("a decision in {env}"), || {
            log(&server, "multi", env)
                .into_iter()
                .find(|e| e["version"] == "v2.0.0" && e["outcome"] != "queued")
        })
    };
    assert_eq!(decided("development")["code"], "filter");
    assert_eq!(
        decided("staging")["code"],
        "deployed",
        "legacy tag rule with match ^v"
    );
    assert_eq!(
        decided("production")["code"],
        "policy",
        "v2.0.0 does not match the regex"
    );
    register(&server, web, "2.0.1", "refs/heads/main");
    assert_eq!(
        poll("staging's decision on a branch build", || {
            log(&server, "multi", "staging")
                .into_iter()
                .find(|e| e["version"] == "2.0.1" && e["outcome"] != "queued")
        })["code"],
        "ref",
        "update_to tag ignores branch builds"
    );
    assert_eq!(
        poll("production's decision", || {
            log(&server, "multi", "production")
                .into_iter()
                .find(|e| e["version"] == "2.0.1" && e["outcome"] != "queued")
        })["code"],
        "deployed"
    );
}
