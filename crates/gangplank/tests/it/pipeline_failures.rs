//! Issue 13's failure and validation acceptance on the seed's pipeline: a deny fails the run,
//! cancel stops a waiting one, an approval expires, a failing `http` or `run` step stops the
//! promotion to prod (its `latest` untouched), and refusals are clear 4xx with the JSON error.

use serde_json::{Value, json};

use crate::pipeline_runs::{approval_path, create_pipeline, runs_path, start_run, wait_run};
use crate::seed_001::{CREDS, Seed};
use crate::support::{ADMIN, Server, error_message, poll};

fn run_path(run: &Value) -> String {
    format!(
        "{}/{}",
        runs_path("shop", run["pipeline_id"].as_str().unwrap()),
        run["id"].as_str().unwrap()
    )
}

/// The one approval request of `run`, whatever its status.
fn approval_of(server: &Server, run: &Value) -> Value {
    let (status, body) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/shop/approvals?run={}",
            run["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    body[0].clone()
}

/// Asserts a 400 with the JSON error body whose message contains `text`.
fn refused(answer: (u16, Value), text: &str) {
    let (status, body) = answer;
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains(text), "{body}");
}

#[test]
fn deny_fails_the_run_and_cancel_stops_a_waiting_one() {
    let seed = Seed::start("");
    let server = &seed.server;
    let test_before =
        seed.registry
            .push_tiny_image_as("ecr-test/repo-1", "latest", "test-0", CREDS);
    seed.create_pipeline(204, "true");

    let (_, run) = seed.push_and_register("denied");
    let request = seed.waiting(&run, "to-test");
    let (status, body) = server.call(
        "POST",
        &approval_path(&request, "deny"),
        Some(&seed.approver),
        Some(json!({"comment": "not this one"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "denied");
    let failed = wait_run(server, "shop", &run, "failed", |r| r["status"] == "failed");
    assert!(failed["completed_at"].is_string(), "{failed}");
    assert_eq!(
        seed.registry
            .skopeo_digest("ecr-test/repo-1", "latest", CREDS),
        test_before,
        "nothing was promoted"
    );
    // A denied request takes no approval.
    refused(
        server.call(
            "POST",
            &approval_path(&request, "approve"),
            Some(&seed.approver),
            None,
        ),
        "",
    );

    // The next image waits; cancelling the run cancels its request.
    let (_, run) = seed.push_and_register("cancelled");
    let request = seed.waiting(&run, "to-test");
    let (status, body) = server.call(
        "POST",
        &format!("{}/cancel", run_path(&run)),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204, "{body}");
    wait_run(server, "shop", &run, "cancelled", |r| {
        r["status"] == "cancelled"
    });
    assert_eq!(approval_of(server, &run)["status"], "cancelled");
    refused(
        server.call(
            "POST",
            &approval_path(&request, "approve"),
            Some(&seed.approver),
            None,
        ),
        "",
    );
    assert_eq!(
        seed.registry
            .skopeo_digest("ecr-test/repo-1", "latest", CREDS),
        test_before
    );
}

#[test]
fn an_expired_approval_fails_the_run() {
    let server = Server::start();
    server.create_app("shop");
    create_pipeline(
        &server,
        "shop",
        "id: short\nname: Short\non:\n  pipeline_call: {}\njobs:\n  gate:\n    steps:\n      - uses: actions/humanitec/approve@v1\n        with: {env_id: development, message: Quick?, expires_in_seconds: 1}\n      - uses: actions/humanitec/log\n        with: {message: passed}\n",
    );
    let (_, approver) = server.user("administrator");
    let run = start_run(&server, ADMIN, "shop", "short", json!({}));
    let failed = wait_run(&server, "shop", &run, "failed", |r| r["status"] == "failed");
    assert!(failed["completed_at"].is_string(), "{failed}");
    let request = approval_of(&server, &run);
    assert_eq!(request["status"], "cancelled", "{request}");
    // Humanitec's `message` stays the step's text; the reason is the run's.
    assert_eq!(request["message"], "Quick?", "{request}");
    assert!(
        failed["status_message"]
            .as_str()
            .is_some_and(|m| m.contains("approval expired")),
        "{failed}"
    );
    assert!(request["approved_by"].is_null(), "{request}");
    // Settled at its expiry, not at the runner's next idle recheck (5 s).
    let millis = |field: &str| {
        let at = time::OffsetDateTime::parse(
            request[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
    };
    let late = millis("approved_at") - millis("expires_at");
    assert!(
        (0..3_000).contains(&late),
        "expired {late} ms late: {request}"
    );
    refused(
        server.call(
            "POST",
            &approval_path(&request, "approve"),
            Some(&approver),
            None,
        ),
        "",
    );
    // The step after the gate never ran.
    let (_, job) = server.call(
        "GET",
        &format!("{}/jobs/gate", run_path(&run)),
        Some(ADMIN),
        None,
    );
    assert_ne!(job["steps"][1]["status"], "succeeded", "{job}");
}

#[test]
fn a_failing_smoke_test_or_container_stops_the_promotion_to_prod() {
    let seed = Seed::start("");
    let server = &seed.server;
    let prod_before =
        seed.registry
            .push_tiny_image_as("ecr-prod/repo-1", "latest", "prod-0", CREDS);

    // The receiver answers 204 where the smoke test expects 200.
    seed.create_pipeline_as("smoke-fails", 200, "true");
    let (digest, run) = seed.push_and_register_for("smoke-fails", "smoke");
    seed.approve(&seed.waiting(&run, "to-test"));
    wait_run(server, "shop", &run, "failed", |r| r["status"] == "failed");
    let job = seed.job(&run, "to-test");
    assert_eq!(job["steps"][1]["status"], "succeeded", "{job}");
    assert_eq!(job["steps"][2]["status"], "failed", "{job}");
    assert_ne!(job["steps"][3]["status"], "succeeded", "{job}");
    assert_eq!(
        seed.registry
            .skopeo_digest("ecr-test/repo-1", "latest", CREDS),
        digest,
        "test got the image before its smoke test"
    );
    assert_eq!(
        seed.registry
            .skopeo_digest("ecr-prod/repo-1", "latest", CREDS),
        prod_before
    );
    let (status, body) = server.call(
        "DELETE",
        "/orgs/default/apps/shop/pipelines/smoke-fails",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204, "{body}");

    // The container on the agent exits 3.
    seed.create_pipeline_as("e2e-fails", 204, "echo e2e broke; exit 3");
    let (_, run) = seed.push_and_register_for("e2e-fails", "e2e");
    seed.approve(&seed.waiting(&run, "to-test"));
    wait_run(server, "shop", &run, "failed", |r| r["status"] == "failed");
    let job = seed.job(&run, "to-test");
    assert_eq!(job["steps"][2]["status"], "succeeded", "{job}");
    assert_eq!(job["steps"][3]["status"], "failed", "{job}");
    assert!(
        job["steps"][3]["status_message"]
            .as_str()
            .unwrap_or_default()
            .contains("exit code 3"),
        "{job}"
    );
    let log = seed.step_log(&run, "to-test", 3);
    assert!(log.iter().any(|l| l.contains("e2e broke")), "{log:?}");
    assert_eq!(
        seed.registry
            .skopeo_digest("ecr-prod/repo-1", "latest", CREDS),
        prod_before,
        "prod's latest untouched"
    );
    let (_, approvals) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/shop/approvals?run={}",
            run["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert!(
        approvals
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["job_id"] == "to-test"),
        "prod was never asked: {approvals}"
    );
}

#[test]
fn refusals_are_clear_4xx_with_the_json_error() {
    let server = Server::start();
    server.create_app("shop");
    let post = |yaml: &str| {
        server.raw(
            "POST",
            "/orgs/default/apps/shop/pipelines",
            Some(ADMIN),
            "application/x-yaml",
            yaml.as_bytes().to_vec(),
        )
    };
    let head = "id: bad\nname: Bad\non:\n  pipeline_call: {}\njobs:\n";
    refused(
        post(&format!(
            "{head}  only:\n    steps:\n      - uses: actions/gangplank/teleport\n        with: {{}}\n"
        )),
        "line ",
    );
    refused(post("id: bad\nname: [unclosed\n"), "definition");
    let cycle = format!(
        "{head}  a:\n    needs: [b]\n    steps:\n      - uses: actions/humanitec/log\n        with: {{message: a}}\n  b:\n    needs: [a]\n    steps:\n      - uses: actions/humanitec/log\n        with: {{message: b}}\n"
    );
    let (status, body) = post(&cycle);
    assert_eq!(status, 400, "{body}");
    let message = error_message(&body);
    assert!(
        message.contains("line ") && message.contains("cycle"),
        "{message}"
    );

    // Approving twice, and approving a cancelled request.
    create_pipeline(
        &server,
        "shop",
        "id: two\nname: Two\non:\n  pipeline_call: {}\njobs:\n  gate:\n    steps:\n      - uses: actions/humanitec/approve@v1\n        with: {env_id: development, message: Two?, min_approvals: 2}\n",
    );
    let (_, first) = server.user("administrator");
    let (_, second) = server.user("administrator");
    let run = start_run(&server, ADMIN, "shop", "two", json!({}));
    let request = crate::pipeline_runs::waiting_approval(&server, "shop", &run);
    let approve = approval_path(&request, "approve");
    let (status, body) = server.call("POST", &approve, Some(&first), None);
    assert_eq!(status, 200, "{body}");
    refused(server.call("POST", &approve, Some(&first), None), "already");
    let (status, _) = server.call(
        "POST",
        &format!("{}/cancel", run_path(&run)),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    wait_run(&server, "shop", &run, "cancelled", |r| {
        r["status"] == "cancelled"
    });
    refused(
        server.call("POST", &approve, Some(&second), None),
        "cancelled",
    );
}

#[test]
fn cancel_stops_a_run_step_and_its_container() {
    let seed = Seed::start("");
    let server = &seed.server;
    // This test's container is the one whose command names this process.
    let marker = format!("started-by-{}", std::process::id());
    seed.create_pipeline(204, &format!("echo {marker}; sleep 3017"));
    let (_, run) = seed.push_and_register("hangs");
    seed.approve(&seed.waiting(&run, "to-test"));
    let containers = || {
        let listed = crate::agents::run(
            "docker",
            &["ps", "--no-trunc", "--format", "{{.Names}} {{.Command}}"],
        );
        listed
            .lines()
            .filter(|l| l.starts_with("gangplank-run-gp-") && l.contains(&marker))
            .count()
    };
    poll("the run step's container to run", || {
        let job = seed.job(&run, "to-test");
        (job["steps"][3]["status"] == "executing" && containers() == 1).then_some(())
    });
    let (status, body) = server.call(
        "POST",
        &format!("{}/cancel", run_path(&run)),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204, "{body}");
    let cancelled = wait_run(server, "shop", &run, "cancelled", |r| {
        r["status"] == "cancelled"
    });
    assert!(cancelled["completed_at"].is_string(), "{cancelled}");
    poll("the container to be removed", || {
        (containers() == 0).then_some(())
    });
    let job = seed.job(&run, "to-test");
    assert_ne!(job["steps"][3]["status"], "succeeded", "{job}");
    let (_, approvals) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/shop/approvals?run={}",
            run["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(
        approvals.as_array().unwrap().len(),
        1,
        "prod was never asked: {approvals}"
    );
}
