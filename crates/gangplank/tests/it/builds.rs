//! Build definitions and builds through the API, without a builder that builds: who may
//! define builds, the token never shown, each field's refusal; GitHub pushes (signed with
//! `openssl`, JSON and form-encoded) queueing builds by repository and branch, once per
//! delivery; a builder URL that is a real `gangplank agent` without `[builder]`, so every
//! build ends `failed` saying why, with `build.started`/`build.finished` sent to a real
//! receiver. Builds on a real builder are in `seed_002.rs`.

use serde_json::{Value, json};

use crate::agents::Agent;
use crate::receivers::{PyReceiver, whsec};
use crate::support::{ADMIN, Server, error_message, github_form, github_signature, poll};

const SECRET: &str = "github-secret-for-builds-0123";
const TOKEN: &str = "clone-token-s3cr3t-7781";
const REPO: &str = "https://github.com/acme/shop";

fn push_body(git_ref: &str, after: &str) -> String {
    json!({"ref": git_ref, "before": "0".repeat(40), "after": after,
        "repository": {"full_name": "acme/shop", "clone_url": format!("{REPO}.git")},
        "pusher": {"name": "octo-dev"}})
    .to_string()
}

/// Sends a GitHub push delivery; `form` sends it as `payload=` form data.
fn deliver(server: &Server, delivery: &str, body: &str, form: bool, sign: bool) -> (u16, Value) {
    let (content_type, body) = if form {
        ("application/x-www-form-urlencoded", github_form(body))
    } else {
        ("application/json", body.to_owned())
    };
    let signature = if sign {
        github_signature(SECRET, body.as_bytes())
    } else {
        "sha256=00".to_owned()
    };
    let response = server
        .http
        .post(format!("{}/hooks/default/gh", server.base))
        .header("content-type", content_type)
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn builds(server: &Server) -> Vec<Value> {
    let (status, list) = server.call(
        "GET",
        "/orgs/default/apps/shop/builds?per_page=100",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

fn definition(builder: &str) -> Value {
    json!({"clone_url": REPO, "clone_token": TOKEN, "branches": ["main"],
        "image": "registry.example:5000/acme/shop", "builder": builder})
}

#[test]
fn only_administrators_define_builds_and_the_token_is_never_shown() {
    let server = Server::start();
    server.create_app("shop");
    let path = "/orgs/default/apps/shop/build-definition";
    let (status, body) = server.call("GET", path, Some(ADMIN), None);
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/shop/builds",
        Some(ADMIN),
        Some(json!({})),
    );
    assert_eq!(status, 404, "no definition: {body}");

    let (_, manager) = server.user("manager");
    let (status, body) = server.call("PUT", path, Some(&manager), Some(definition("http://b:1")));
    assert_eq!(status, 403, "{body}");

    let (status, body) = server.call("PUT", path, Some(ADMIN), Some(definition("http://b:1/")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["has_clone_token"], true);
    assert_eq!(body["tags"], json!(["${commit}", "latest"]));
    assert_eq!(body["dockerfile"], "Dockerfile");
    assert_eq!(body["builder"], "http://b:1");
    let (_, shown) = server.call("GET", path, Some(ADMIN), None);
    assert!(!shown.to_string().contains(TOKEN), "{shown}");
    // Left out, the token stays; sent empty, it goes.
    let mut without = definition("http://b:1");
    without.as_object_mut().unwrap().remove("clone_token");
    let (_, kept) = server.call("PUT", path, Some(ADMIN), Some(without));
    assert_eq!(kept["has_clone_token"], true, "{kept}");
    let mut emptied = definition("http://b:1");
    emptied["clone_token"] = json!("");
    let (_, gone) = server.call("PUT", path, Some(ADMIN), Some(emptied));
    assert_eq!(gone["has_clone_token"], false, "{gone}");
    // The token is sealed at rest: not in the database file.
    let database = std::fs::read_dir(server.data_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("sqlite"))
        .map(|e| std::fs::read(e.path()).unwrap_or_default())
        .any(|bytes| bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
    assert!(!database, "the clone token is stored in the clear");

    for (field, value, named) in [
        (
            "clone_url",
            json!("https://user:pw@github.com/acme/shop"),
            "clone_url",
        ),
        (
            "clone_url",
            json!("git@github.com:acme/shop.git"),
            "clone_url",
        ),
        ("dockerfile", json!("../Dockerfile"), "dockerfile"),
        ("context", json!("/etc"), "context"),
        ("image", json!("shop"), "image"),
        ("tags", json!(["${sha}"]), "tags"),
        ("branches", json!(["a..b"]), "branches[0]"),
        ("builder", json!("ftp://b"), "builder"),
        ("timeout_seconds", json!(0), "timeout_seconds"),
        ("build_args", json!({"1X": "v"}), "build_args.1X"),
    ] {
        let mut body = definition("http://b:1");
        body[field] = value;
        let (status, answer) = server.call("PUT", path, Some(ADMIN), Some(body));
        assert_eq!(status, 400, "{field}: {answer}");
        assert!(
            error_message(&answer).starts_with(named),
            "{field}: {answer}"
        );
    }
    let (status, answer) = server.call(
        "POST",
        "/orgs/default/apps/shop/builds",
        Some(ADMIN),
        Some(json!({"commit": "abc"})),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(error_message(&answer).starts_with("commit"), "{answer}");
    let (status, _) = server.call("DELETE", path, Some(ADMIN), None);
    assert_eq!(status, 204);
    let (status, _) = server.call("DELETE", path, Some(ADMIN), None);
    assert_eq!(status, 404);
}

#[test]
fn github_pushes_queue_builds_once_per_delivery_for_their_branch() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
    ]);
    server.create_app("shop");
    // A real agent without [builder]: it refuses builds, so each ends failed saying why.
    let dir = tempfile::tempdir().unwrap();
    let compose = dir.path().join("compose.yaml");
    std::fs::write(&compose, "services:\n  web:\n    image: scratch\n").unwrap();
    let agent = Agent::start(
        dir.path(),
        &format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[auth]\njwks_url = \"{}/.well-known/jwks.json\"\n\
             [[project]]\nname = \"shop\"\nfiles = [\"{}\"]\n",
            dir.path().join("state").display(),
            server.base,
            compose.display()
        ),
    );
    let (status, body) = server.call(
        "PUT",
        "/orgs/default/apps/shop/build-definition",
        Some(ADMIN),
        Some(definition(&agent.base)),
    );
    assert_eq!(status, 200, "{body}");
    let receiver = PyReceiver::start("", 0);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/shop/webhooks",
        Some(ADMIN),
        Some(json!({"id": "builds", "url": receiver.url(), "secret": whsec(),
            "triggers": [{"scope": "build", "type": "started"}, {"scope": "build", "type": "finished"}],
            "payload": {"event": "${event}", "status": "${status}", "commit": "${commit}",
                "build_id": "${build_id}", "message": "${message}"}})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.call(
        "POST",
        "/orgs/default/inbound-hooks",
        Some(ADMIN),
        Some(json!({"id": "gh", "kind": "github", "secret": SECRET})),
    );
    assert_eq!(status, 201, "{body}");

    let first = "a".repeat(40);
    let (status, receipt) = deliver(
        &server,
        "d-1",
        &push_body("refs/heads/main", &first),
        false,
        true,
    );
    assert_eq!(
        (status, &receipt["verdict"]),
        (200, &json!("accepted")),
        "{receipt}"
    );
    // Redelivered: acknowledged, nothing twice.
    let (status, _) = deliver(
        &server,
        "d-1",
        &push_body("refs/heads/main", &first),
        false,
        true,
    );
    assert_eq!(status, 200);
    // Another branch, a bad signature: nothing.
    let (status, receipt) = deliver(
        &server,
        "d-2",
        &push_body("refs/heads/dev", &"b".repeat(40)),
        false,
        true,
    );
    assert_eq!(
        (status, &receipt["verdict"]),
        (200, &json!("ignored")),
        "{receipt}"
    );
    assert!(
        receipt["message"]
            .as_str()
            .unwrap()
            .contains("refs/heads/dev is not one of its branches"),
        "{receipt}"
    );
    let (status, _) = deliver(
        &server,
        "d-3",
        &push_body("refs/heads/main", &"c".repeat(40)),
        false,
        false,
    );
    assert_eq!(status, 401);
    // Form-encoded, as GitHub sends when the hook's content type says so.
    let second = "d".repeat(40);
    let (status, receipt) = deliver(
        &server,
        "d-4",
        &push_body("refs/heads/main", &second),
        true,
        true,
    );
    assert_eq!(
        (status, &receipt["verdict"]),
        (200, &json!("accepted")),
        "{receipt}"
    );

    let ended = poll("both builds to end", || {
        let list = builds(&server);
        (list.len() == 2
            && list
                .iter()
                .all(|b| b["status"] != "queued" && b["status"] != "running"))
        .then_some(list)
    });
    let commits: Vec<&str> = ended
        .iter()
        .map(|b| b["commit"].as_str().unwrap())
        .collect();
    assert_eq!(commits, [second.as_str(), first.as_str()], "newest first");
    for build in &ended {
        assert_eq!(build["status"], "failed", "{build}");
        assert_eq!(build["trigger"], "github");
        assert_eq!(build["ref"], "refs/heads/main");
        assert!(
            build["message"]
                .as_str()
                .unwrap()
                .contains("is it a gangplank agent with [builder]?"),
            "{build}"
        );
        assert!(build["started_at"].is_string() && build["finished_at"].is_string());
    }
    // Each build announced its start and end, with its status and commit.
    let records = receiver.wait_for(4);
    let events: Vec<Value> = records
        .iter()
        .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
        .collect();
    let finished: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "build.finished")
        .collect();
    assert_eq!(finished.len(), 2, "{events:?}");
    assert!(
        finished.iter().all(|e| e["status"] == "failed"),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "build.started")
            .count(),
        2
    );

    // A finished build cannot be cancelled; its log is readable.
    let id = ended[0]["id"].as_str().unwrap();
    let (status, body) = server.call(
        "POST",
        &format!("/orgs/default/apps/shop/builds/{id}/cancel"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 409, "{body}");
    let (status, log) = server.call(
        "GET",
        &format!("/orgs/default/apps/shop/builds/{id}/logs"),
        Some(ADMIN),
        None,
    );
    assert_eq!((status, &log["status"]), (200, &json!("failed")), "{log}");
    // The clone token went nowhere it can be read back.
    assert!(!server.log().contains(TOKEN));
    assert!(!agent.log().contains(TOKEN));
}
