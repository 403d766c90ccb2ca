//! Webhook delivery against real receivers: retries with one webhook-id, no retry on 410,
//! deliveries surviving SIGKILL, Debian's `webhook` verifying X-Hub-Signature-256, the SSRF
//! guard, and template validation.

use serde_json::{Value, json};

use crate::receivers::{AdnanhWebhook, PyReceiver, free_port, whsec};
use crate::support::{ADMIN, Server, error_message, poll};

fn private_server() -> Server {
    Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
    ])
}

/// An app `hooks` with a webhook `h` on environment creation pointing at `url`.
fn hook_on_env_created(server: &Server, url: &str) {
    server.create_app("hooks");
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/hooks/webhooks",
        Some(ADMIN),
        Some(json!({"id": "hook", "url": url, "secret": whsec(), "triggers": [{"scope": "environment", "type": "created"}],
                    "payload": {"env": "${env_id}", "by": "${triggered_by}"}})),
    );
    assert_eq!(status, 201, "{body}");
}

fn create_env(server: &Server, id: &str) {
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/hooks/envs",
        Some(ADMIN),
        Some(json!({"id": id, "name": id})),
    );
    assert_eq!(status, 201, "{body}");
}

fn deliveries(server: &Server) -> Vec<Value> {
    let (status, body) = server.call(
        "GET",
        "/orgs/default/apps/hooks/webhooks/hook/deliveries",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[test]
fn retries_keep_one_webhook_id_until_the_receiver_accepts() {
    let server = private_server();
    let receiver = PyReceiver::start("500,500", 0);
    hook_on_env_created(&server, &receiver.url());
    create_env(&server, "staging");
    let records = receiver.wait_for(3);
    let ids: Vec<&Value> = records
        .iter()
        .map(|r| &r["headers"]["webhook-id"])
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id throughout: {ids:?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r["standard_ok"] == true && r["hub_ok"] == true)
    );
    let body: Value = serde_json::from_str(records[2]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["env"], "staging");
    let delivery = poll("the delivery to be recorded as succeeded", || {
        deliveries(&server)
            .into_iter()
            .find(|d| d["state"] == "succeeded")
    });
    assert_eq!(delivery["id"], *ids[0]);
    let codes: Vec<&Value> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, vec![&json!(500), &json!(500), &json!(204)]);
}

#[test]
fn gone_is_not_retried() {
    let server = private_server();
    let receiver = PyReceiver::start("410", 0);
    hook_on_env_created(&server, &receiver.url());
    create_env(&server, "staging");
    let delivery = poll("the delivery to fail", || {
        deliveries(&server)
            .into_iter()
            .find(|d| d["state"] == "failed")
    });
    assert_eq!(
        delivery["attempts"].as_array().unwrap().len(),
        1,
        "{delivery}"
    );
    assert!(delivery["last_error"].as_str().unwrap().contains("410"));
    assert_eq!(receiver.records().len(), 1, "exactly one request");
    // A redelivery sends it again, with the same id.
    let id = delivery["id"].as_str().unwrap();
    let (status, _) = server.call(
        "POST",
        &format!("/orgs/default/apps/hooks/webhooks/hook/deliveries/{id}/redeliver"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 202);
    let records = receiver.wait_for(2);
    assert_eq!(records[1]["headers"]["webhook-id"], id);
}

#[test]
fn pending_deliveries_survive_sigkill() {
    let mut server = private_server();
    let port = free_port();
    hook_on_env_created(&server, &format!("http://127.0.0.1:{port}/hook"));
    create_env(&server, "staging");
    // Nothing listens yet: the delivery fails, is retried, and stays pending.
    let pending = poll("a failed attempt", || {
        deliveries(&server)
            .into_iter()
            .find(|d| d["state"] == "pending" && !d["attempts"].as_array().unwrap().is_empty())
    });
    server.crash_and_restart();
    let receiver = PyReceiver::start("", port);
    let records = receiver.wait_for(1);
    assert_eq!(
        records[0]["headers"]["webhook-id"], pending["id"],
        "the same delivery, after the restart"
    );
    assert_eq!(records[0]["standard_ok"], true);
}

#[test]
fn debian_webhook_accepts_deliveries_and_rejects_altered_bodies() {
    let server = private_server();
    let adnanh = AdnanhWebhook::start();
    hook_on_env_created(&server, &adnanh.url());
    create_env(&server, "staging");
    let delivery = poll("the delivery to settle", || {
        deliveries(&server)
            .into_iter()
            .find(|d| d["state"] != "pending")
    });
    assert_eq!(
        delivery["state"], "succeeded",
        "webhook verified X-Hub-Signature-256: {delivery}"
    );

    // Replay what Gangplank sent (captured by the Python receiver) with one byte changed.
    let receiver = PyReceiver::start("", 0);
    let (status, _) = server.call(
        "PATCH",
        "/orgs/default/apps/hooks/webhooks/hook",
        Some(ADMIN),
        Some(json!({"url": receiver.url()})),
    );
    assert_eq!(status, 200);
    create_env(&server, "production");
    let record = &receiver.wait_for(1)[0];
    let signature = record["headers"]["x-hub-signature-256"].as_str().unwrap();
    let body = record["body"].as_str().unwrap();
    let send = |body: &str| {
        reqwest::blocking::Client::new()
            .post(adnanh.url())
            .header("content-type", "application/json")
            .header("X-Hub-Signature-256", signature)
            .body(body.to_owned())
            .send()
            .unwrap()
    };
    let original = send(body);
    assert_eq!(
        original.status().as_u16(),
        200,
        "the original body verifies"
    );
    assert_eq!(original.text().unwrap(), "verified", "and the hook ran");
    // webhook 2.8 answers a signature mismatch with 500 ("error evaluating hook rules"), later
    // versions with the mismatch code; either way the hook does not run.
    let altered = send(&body.replace("production", "productioN"));
    assert!(
        altered.status().as_u16() >= 400,
        "an altered body is rejected: {}",
        altered.status()
    );
    assert_ne!(altered.text().unwrap(), "verified");
}

#[test]
fn targets_must_be_public_https_unless_allowed() {
    let server = Server::start();
    server.create_app("hooks");
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.8/x",
        "https://[::1]/x",
        "https://localhost/x",
        "ftp://x",
    ] {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/apps/hooks/webhooks",
            Some(ADMIN),
            Some(json!({"id": "hook", "url": url})),
        );
        assert_eq!(status, 400, "{url}: {body}");
        assert!(error_message(&body).starts_with("url"), "{body}");
    }
    let (status, created) = server.call(
        "POST",
        "/orgs/default/apps/hooks/webhooks",
        Some(ADMIN),
        Some(json!({"id": "hook", "url": "https://hooks.example.com/x"})),
    );
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_"),
        "a generated secret is shown once: {created}"
    );
    assert_eq!(
        created["payload"]["event"], "${event}",
        "Humanitec's default payload"
    );
    let (_, again) = server.call(
        "GET",
        "/orgs/default/apps/hooks/webhooks/hook",
        Some(ADMIN),
        None,
    );
    assert!(again.get("secret").is_none(), "and never again: {again}");
    let (status, _) = server.call(
        "POST",
        "/orgs/default/apps/hooks/webhooks",
        Some(ADMIN),
        Some(json!({"id": "hook", "url": "https://hooks.example.com/y"})),
    );
    assert_eq!(status, 409, "ids are unique in the organization");
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/hooks/webhooks",
        Some(ADMIN),
        Some(json!({"id": "typo", "url": "https://hooks.example.com/x", "triggers": [{"scope": "deployment", "type": "finished"}], "payload": {"x": "${stauts}"}})),
    );
    assert_eq!(status, 400);
    assert!(error_message(&body).contains("${stauts}"), "{body}");
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/hooks/webhooks",
        Some(ADMIN),
        Some(json!({"id": "forger", "url": "https://hooks.example.com/x", "headers": {"X-Hub-Signature-256": "sha256=00"}})),
    );
    assert_eq!(status, 400, "signature headers cannot be forged: {body}");
    assert!(error_message(&body).starts_with("headers"), "{body}");
    let (status, events) = server.call("GET", "/orgs/default/events", Some(ADMIN), None);
    assert_eq!(status, 200);
    let names: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}.{}",
                e["scope"].as_str().unwrap(),
                e["type"].as_str().unwrap()
            )
        })
        .collect();
    for name in [
        "environment.created",
        "environment.deleted",
        "deployment.started",
        "deployment.finished",
        "artefact-version.created",
        "automation.skipped",
    ] {
        assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    // The secret is sealed at rest: not in any file of the data dir.
    let raw = secret.trim_start_matches("whsec_");
    for entry in walk(server.data_dir()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(raw.len()).any(|w| w == raw.as_bytes()),
            "{} holds the secret",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
