//! Approval requests: Humanitec's rule (the caller may deploy to the environment) plus the
//! step's policy (distinct approvers, no self-approval), every response recorded with its
//! comment, deny fails the run, and answering a settled request is refused.

use serde_json::{Value, json};

use crate::pipeline_runs::{approval_path, create_pipeline, start_run, wait_run, waiting_approval};
use crate::support::{ADMIN, Server, error_message};

/// A member with `role` on `app`: (user id, token).
fn app_user(server: &Server, app: &str, role: &str) -> (String, String) {
    let (id, token) = server.user("member");
    let (status, body) = server.call(
        "POST",
        &format!("/orgs/default/apps/{app}/users"),
        Some(ADMIN),
        Some(json!({"id": id, "role": role})),
    );
    assert_eq!(status, 200, "{body}");
    (id, token)
}

fn pipeline(min_approvals: u32) -> String {
    format!(
        "id: gate\nname: Gate\non:\n  pipeline_call: {{}}\njobs:\n  to-prod:\n    steps:\n      - uses: actions/humanitec/approve@v1\n        with: {{env_id: development, message: \"Promote?\", min_approvals: {min_approvals}}}\n      - uses: actions/humanitec/log\n        with: {{message: promoted}}\n"
    )
}

#[test]
fn eligible_distinct_users_approve_and_the_run_goes_on() {
    let server = Server::start();
    server.create_app("shop");
    create_pipeline(&server, "shop", &pipeline(2));
    let (author, author_token) = app_user(&server, "shop", "developer");
    let (_, viewer) = app_user(&server, "shop", "viewer");
    let (first, first_token) = app_user(&server, "shop", "developer");
    let (_, second_token) = app_user(&server, "shop", "owner");
    let run = start_run(&server, &author_token, "shop", "gate", json!({}));
    assert_eq!(run["created_by"], author.as_str());
    let request = waiting_approval(&server, "shop", &run);
    assert_eq!(request["env_id"], "development");
    assert_eq!(request["message"], "Promote?");
    assert_eq!(request["required_approvals"], 2);
    let approve = approval_path(&request, "approve");

    // A viewer may not deploy; the run's creator may not approve it.
    let (status, body) = server.call("POST", &approve, Some(&viewer), None);
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.call("POST", &approve, Some(&author_token), None);
    assert_eq!(status, 403, "{body}");
    assert!(error_message(&body).contains("may not approve"), "{body}");

    // First approval, with a comment: recorded, still waiting.
    let (status, body) = server.call(
        "POST",
        &approve,
        Some(&first_token),
        Some(json!({"comment": "looks good"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "waiting");
    assert_eq!(body["responses"][0]["user"], first.as_str());
    assert_eq!(body["responses"][0]["action"], "approve");
    assert_eq!(body["responses"][0]["comment"], "looks good");
    // The same user again does not count twice.
    let (status, body) = server.call("POST", &approve, Some(&first_token), None);
    assert_eq!(status, 400, "{body}");
    // A body that is not JSON is refused; none at all is fine.
    let (status, _) = server.raw(
        "POST",
        &approve,
        Some(&second_token),
        "text/plain",
        b"yes".to_vec(),
    );
    assert_eq!(status, 415);
    let (status, body) = server.call("POST", &approve, Some(&second_token), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "approved");
    assert!(
        body["approved_by"].is_string() && body["approved_at"].is_string(),
        "{body}"
    );
    let (status, got) = server.call(
        "GET",
        approval_path(&request, "").trim_end_matches('/'),
        Some(&viewer),
        None,
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["responses"].as_array().unwrap().len(), 2);

    wait_run(&server, "shop", &run, "succeeded", |r| {
        r["status"] == "succeeded"
    });
    // Settled: neither approve nor deny is taken any more.
    let (status, body) = server.call(
        "POST",
        &approval_path(&request, "deny"),
        Some(&second_token),
        None,
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn one_deny_fails_the_run() {
    let server = Server::start();
    server.create_app("shop");
    create_pipeline(&server, "shop", &pipeline(1));
    let (_, approver) = app_user(&server, "shop", "developer");
    let run = start_run(&server, ADMIN, "shop", "gate", json!({}));
    let request = waiting_approval(&server, "shop", &run);
    let long = "c".repeat(gangplank_core::limits::MAX_TEXT_LEN + 1);
    let (status, body) = server.call(
        "POST",
        &approval_path(&request, "deny"),
        Some(&approver),
        Some(json!({ "comment": long })),
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).starts_with("comment:"), "{body}");
    let (status, body) = server.call(
        "POST",
        &approval_path(&request, "deny"),
        Some(&approver),
        Some(json!({"comment": "not today"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "denied");
    let failed = wait_run(&server, "shop", &run, "failed", |r| r["status"] == "failed");
    assert!(failed["completed_at"].is_string(), "{failed}");
    let (status, body) = server.call(
        "POST",
        &approval_path(&request, "approve"),
        Some(&approver),
        None,
    );
    assert_eq!(status, 400, "{body}");
    // Unknown requests are 404, also under another run's path.
    let mut other: Value = request.clone();
    other["id"] = json!("no-such-approval");
    let (status, _) = server.call(
        "POST",
        &approval_path(&other, "approve"),
        Some(&approver),
        None,
    );
    assert_eq!(status, 404);
    let (status, body) = server.call(
        "GET",
        "/orgs/default/apps/shop/approvals?status=denied",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    let (status, _) = server.call(
        "GET",
        "/orgs/default/apps/shop/approvals?status=maybe",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 400);
}
