//! Inbound hooks against real senders and a real registry: docker-registry's own
//! notifications after a `skopeo copy`, forged events that name a tag the registry does not
//! have, GitHub deliveries signed with `openssl` (JSON and form-encoded, redelivered, forged,
//! oversized), and Docker Hub, Harbor, Quay and ECR (EventBridge) payloads verified against a
//! local registry standing in for theirs.

use gangplank_testkit::{Auth, Registry, poll};
use serde_json::{Value, json};

use crate::support::{ADMIN, Server, github_form, github_signature};

const USER: &str = "ci-bot";
const PASSWORD: &str = "registry-pass-4711";
const TOKEN: &str = "distribution-token-0123456789";
const SECRET: &str = "github-secret-0123456789";

/// Creates a hook, returning its secret (shown once).
fn create_hook(server: &Server, body: Value) -> String {
    let (status, created) = server.call(
        "POST",
        "/orgs/default/inbound-hooks",
        Some(ADMIN),
        Some(body),
    );
    assert_eq!(status, 201, "{created}");
    created["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned()
}

fn deliveries(server: &Server, hook: &str) -> Vec<Value> {
    let (status, list) = server.call(
        "GET",
        &format!("/orgs/default/inbound-hooks/{hook}/deliveries?per_page=100"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

/// The container versions registered under `name`.
fn versions(server: &Server, name: &str) -> Vec<Value> {
    let (status, list) = server.call(
        "GET",
        &format!("/orgs/default/artefact-versions?name={name}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

fn post(
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = server
        .http
        .post(format!("{}{path}", server.base))
        .header("content-type", content_type)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().expect("request");
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn registry_notifications_register_verified_versions() {
    let server = Server::start();
    create_hook(
        &server,
        json!({"id": "reg", "kind": "distribution", "watches": ["demo/app"], "secret": TOKEN}),
    );
    let registry = Registry::start_notifying(
        Auth::Htpasswd(USER, PASSWORD),
        &format!("{}/hooks/default/reg", server.base),
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    let host = registry.host();
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(
            json!({"id": "local", "registry": host, "type": "basic", "insecure": true,
                    "creds": {"username": USER, "password": PASSWORD}}),
        ),
    );
    assert_eq!(status, 201, "{body}");

    // (a) A push into a watched repository: the registry's own notification registers it
    // with the digest skopeo reports.
    let creds = Some((USER, PASSWORD));
    let digest = registry.push_tiny_image_as("demo/app", "v1", "one", creds);
    let name = format!("{host}/demo/app");
    let version = poll("the pushed version to be registered", || {
        versions(&server, &name)
            .into_iter()
            .find(|v| v["version"] == "v1")
    });
    assert_eq!(version["digest"], digest.as_str(), "{version}");
    assert_eq!(version["created_by"], "hook:reg", "{version}");

    // A pull is recorded as ignored and registers nothing.
    assert_eq!(registry.skopeo_digest("demo/app", "v1", creds), digest);
    poll("the pull to be recorded as ignored", || {
        deliveries(&server, "reg").into_iter().find(|d| {
            d["verdict"] == "ignored"
                && d["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("pull of demo/app")
        })
    });
    // A push into a repository the hook does not watch registers nothing.
    registry.push_tiny_image_as("other/app", "v1", "other", creds);
    poll("the unwatched push to be recorded", || {
        deliveries(&server, "reg").into_iter().find(|d| {
            d["message"]
                .as_str()
                .unwrap_or_default()
                .contains("other/app is not watched")
        })
    });
    assert!(versions(&server, &format!("{host}/other/app")).is_empty());
    let recorded = deliveries(&server, "reg");
    assert!(
        !recorded.iter().any(|d| d.to_string().contains(TOKEN)),
        "the token is never recorded"
    );

    // (b) A forged event with the right token naming a tag the registry does not have:
    // refused, nothing registered. One naming a real tag with a forged digest registers
    // nothing new: the registry's digest is what counts.
    let forged = |tag: &str, digest: &str, id: &str| {
        json!({"events": [{"id": id, "action": "push", "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
            "repository": "demo/app", "tag": tag,
            "url": format!("http://{host}/v2/demo/app/manifests/{digest}")},
            "request": {"host": host, "method": "PUT"}}]})
        .to_string()
        .into_bytes()
    };
    let fake = format!("sha256:{}", "ab".repeat(32));
    let bearer = format!("Bearer {TOKEN}");
    let (status, receipt) = post(
        &server,
        "/hooks/default/reg",
        &[("authorization", &bearer)],
        "application/vnd.docker.distribution.events.v1+json",
        forged("v999", &fake, "forged-1"),
    );
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["verdict"], "refused", "{receipt}");
    assert!(
        versions(&server, &name)
            .iter()
            .all(|v| v["version"] != "v999")
    );
    let (status, receipt) = post(
        &server,
        "/hooks/default/reg",
        &[("authorization", &bearer)],
        "application/vnd.docker.distribution.events.v1+json",
        forged("v1", &fake, "forged-2"),
    );
    assert_eq!(status, 200, "{receipt}");
    let listed = versions(&server, &name);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["digest"], digest.as_str());
    // The wrong token: 401, recorded as refused, nothing else.
    let (status, receipt) = post(
        &server,
        "/hooks/default/reg",
        &[("authorization", "Bearer wrong-token-000000000")],
        "application/json",
        forged("v2", &fake, "forged-3"),
    );
    assert_eq!(status, 401, "{receipt}");
    assert_eq!(receipt["error"], "unauthorized");

    // (d) Docker Hub, Harbor, Quay and ECR payloads, as documented, naming tags pushed to the
    // local registry that stands in for theirs.
    let hub_secret = create_hook(
        &server,
        json!({"id": "hub", "kind": "dockerhub", "registry": host}),
    );
    let harbor_secret = create_hook(&server, json!({"id": "harbor", "kind": "harbor"}));
    let quay_secret = create_hook(
        &server,
        json!({"id": "quay", "kind": "quay", "watches": ["stand/"]}),
    );
    let ecr_secret = create_hook(
        &server,
        json!({"id": "ecr", "kind": "ecr", "registry": host}),
    );
    // Artifact Registry through a Pub/Sub push subscription: the data names the image fully
    // qualified, under Google's host; the hook's `registry` puts it under the stand-in.
    let gar_secret = create_hook(
        &server,
        json!({"id": "gar", "kind": "gar", "registry": host}),
    );
    let gar_data = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(
            json!({"action": "INSERT",
                   "digest": format!("us-east1-docker.pkg.dev/stand/gar@{fake}"),
                   "tag": "us-east1-docker.pkg.dev/stand/gar:g1"})
            .to_string(),
        )
    };
    let generic_secret = create_hook(&server, json!({"id": "generic", "kind": "generic"}));
    let secrets = [
        &hub_secret,
        &harbor_secret,
        &quay_secret,
        &ecr_secret,
        &gar_secret,
        &generic_secret,
    ];
    let cases = [
        (
            "gar",
            "stand/gar",
            format!("/hooks/default/gar?token={gar_secret}"),
            vec![],
            json!({"message": {"attributes": {}, "data": gar_data, "messageId": "7311540123",
                               "message_id": "7311540123",
                               "publishTime": "2026-01-05T10:04:05.678Z"},
                   "subscription": "projects/acme-prod/subscriptions/orchestrator-push"}),
            "g1",
        ),
        (
            "generic",
            "stand/generic",
            "/hooks/default/generic".to_owned(),
            vec![("authorization", format!("Bearer {generic_secret}"))],
            json!({"image": format!("{host}/stand/generic"), "tag": "x1"}),
            "x1",
        ),
        (
            "hub",
            "stand/hub",
            format!("/hooks/default/hub?token={hub_secret}"),
            vec![],
            json!({"callback_url": "https://registry.hub.docker.com/u/stand/hub/hook/00aa/",
                   "push_data": {"pushed_at": 1767607323, "pusher": "acmeci", "tag": "h1"},
                   "repository": {"repo_name": "stand/hub", "name": "hub", "namespace": "stand",
                                  "owner": "stand", "is_private": true, "status": "Active"}}),
            "h1",
        ),
        (
            "harbor",
            "stand/harbor",
            "/hooks/default/harbor".to_owned(),
            vec![("authorization", harbor_secret.clone())],
            json!({"type": "PUSH_ARTIFACT", "occur_at": 1767607400, "operator": "robot$acme+ci",
                   "event_data": {"resources": [{"digest": fake, "tag": "r1",
                       "resource_url": format!("{host}/stand/harbor:r1")}],
                   "repository": {"name": "harbor", "namespace": "stand",
                       "repo_full_name": "stand/harbor", "repo_type": "private"}}}),
            "r1",
        ),
        (
            "quay",
            "stand/quay",
            format!("/hooks/default/quay?token={quay_secret}"),
            vec![],
            json!({"repository": "stand/quay", "namespace": "stand", "name": "quay",
                   "docker_url": format!("{host}/stand/quay"),
                   "homepage": format!("https://{host}/repository/stand/quay"),
                   "updated_tags": ["q1"]}),
            "q1",
        ),
        (
            "ecr",
            "stand/ecr",
            "/hooks/default/ecr".to_owned(),
            vec![("x-gangplank-hook-token", ecr_secret.clone())],
            json!({"version": "0", "id": "4e5f6a7b-8c9d-0e1f-2a3b-4c5d6e7f8a9b",
                   "detail-type": "ECR Image Action", "source": "aws.ecr",
                   "account": "210987654321", "time": "2026-01-05T10:02:03Z",
                   "region": "eu-west-1", "resources": [],
                   "detail": {"result": "SUCCESS", "repository-name": "stand/ecr",
                              "image-digest": fake, "action-type": "PUSH", "image-tag": "e1"}}),
            "e1",
        ),
    ];
    for (hook, repository, path, headers, payload, tag) in cases {
        let pushed = registry.push_tiny_image_as(repository, tag, hook, creds);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        // Without the token: 401.
        let (status, _) = post(
            &server,
            &format!("/hooks/default/{hook}"),
            &[],
            "application/json",
            payload.to_string().into_bytes(),
        );
        assert_eq!(status, 401, "{hook}");
        let (status, receipt) = post(
            &server,
            &path,
            &headers,
            "application/json",
            payload.to_string().into_bytes(),
        );
        assert_eq!(status, 200, "{hook}: {receipt}");
        assert_eq!(receipt["verdict"], "accepted", "{hook}: {receipt}");
        let listed = versions(&server, &format!("{host}/{repository}"));
        let version = listed
            .iter()
            .find(|v| v["version"] == tag)
            .unwrap_or_else(|| panic!("{hook}: {listed:?}"));
        assert_eq!(version["digest"], pushed.as_str(), "{hook}");
        assert_eq!(version["created_by"], format!("hook:{hook}"), "{hook}");
        let recorded = deliveries(&server, hook);
        assert!(
            !recorded
                .iter()
                .any(|d| secrets.iter().any(|s| d.to_string().contains(s.as_str()))),
            "{hook}"
        );
    }
}

#[test]
fn github_deliveries_are_verified_recorded_once_and_bounded() {
    let server = Server::start();
    create_hook(
        &server,
        json!({"id": "gh", "kind": "github", "secret": SECRET}),
    );
    let send = |event: &str, delivery: &str, content_type: &str, body: &[u8], signature: &str| {
        post(
            &server,
            "/hooks/default/gh",
            &[
                ("x-github-event", event),
                ("x-github-delivery", delivery),
                ("x-hub-signature-256", signature),
                ("user-agent", "GitHub-Hookshot/a1b2c3d"),
            ],
            content_type,
            body.to_vec(),
        )
    };
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":4242,"hook":{"type":"Repository","id":4242,"name":"web","active":true,"events":["push"]},"repository":{"id":1001,"name":"shop","full_name":"acme/shop"},"sender":{"login":"octo-dev","id":7}}"#;
    let (status, receipt) = send(
        "ping",
        "d-ping",
        "application/json",
        ping,
        &github_signature(SECRET, ping),
    );
    assert_eq!(status, 200, "{receipt}");

    let push = json!({"ref": "refs/heads/main", "before": "1".repeat(40), "after": "2".repeat(40),
        "repository": {"full_name": "acme/shop", "clone_url": "https://github.com/acme/shop.git"},
        "pusher": {"name": "octo-dev"}})
    .to_string();
    let (status, receipt) = send(
        "push",
        "d-json",
        "application/json",
        push.as_bytes(),
        &github_signature(SECRET, push.as_bytes()),
    );
    assert_eq!(status, 200, "{receipt}");
    // No application builds from that repository: read, recorded, and nothing done.
    assert_eq!(receipt["verdict"], "ignored");
    assert_eq!(
        receipt["message"],
        "no build definition clones https://github.com/acme/shop.git"
    );
    let form = github_form(&push);
    let (status, receipt) = send(
        "push",
        "d-form",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
        &github_signature(SECRET, form.as_bytes()),
    );
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["verdict"], "ignored", "{receipt}");
    // GitHub redelivers with the same X-GitHub-Delivery: acknowledged, recorded once.
    let (status, _) = send(
        "push",
        "d-json",
        "application/json",
        push.as_bytes(),
        &github_signature(SECRET, push.as_bytes()),
    );
    assert_eq!(status, 200);
    // A wrong signature: 401, recorded as refused, and it cannot claim a delivery id.
    let (status, receipt) = send(
        "push",
        "d-forged",
        "application/json",
        push.as_bytes(),
        &github_signature("not-the-secret", push.as_bytes()),
    );
    assert_eq!(status, 401, "{receipt}");
    let (status, _) = send(
        "push",
        "d-unsigned",
        "application/json",
        push.as_bytes(),
        "",
    );
    assert_eq!(status, 401);
    // Over 1 MiB: 413, as JSON.
    let big = vec![b' '; 1024 * 1024 + 1];
    let (status, receipt) = send(
        "push",
        "d-big",
        "application/json",
        &big,
        &github_signature(SECRET, &big),
    );
    assert_eq!(status, 413, "{receipt}");
    assert_eq!(receipt["error"], "payload_too_large");

    let recorded = deliveries(&server, "gh");
    let count = |id: &str| recorded.iter().filter(|d| d["delivery_id"] == id).count();
    assert_eq!(count("d-json"), 1, "{recorded:?}");
    assert_eq!(count("d-form"), 1);
    assert_eq!(count("d-ping"), 1);
    let refused: Vec<&Value> = recorded
        .iter()
        .filter(|d| d["verdict"] == "refused")
        .collect();
    assert_eq!(refused.len(), 2, "{recorded:?}");
    assert!(
        refused
            .iter()
            .all(|d| d["headers"]["x-github-delivery"] != ""
                && d["headers"].get("x-hub-signature-256").is_none())
    );
    let verdicts = |verdict: &str| recorded.iter().filter(|d| d["verdict"] == verdict).count();
    assert_eq!(verdicts("accepted"), 1, "the ping: {recorded:?}");
    assert_eq!(verdicts("ignored"), 2, "JSON push, form push: {recorded:?}");
    let json_push = recorded
        .iter()
        .find(|d| d["delivery_id"] == "d-json")
        .unwrap();
    assert_eq!(json_push["caused"]["push"]["after"], "2".repeat(40));

    // The secret was shown once: never again.
    let (_, hook) = server.call("GET", "/orgs/default/inbound-hooks/gh", Some(ADMIN), None);
    assert!(
        hook.get("secret").is_none() && !hook.to_string().contains(SECRET),
        "{hook}"
    );
    let (_, list) = server.call("GET", "/orgs/default/inbound-hooks", Some(ADMIN), None);
    assert!(!list.to_string().contains(SECRET), "{list}");
    // Unknown hooks and kinds.
    let (status, _) = post(
        &server,
        "/hooks/default/nope",
        &[],
        "application/json",
        b"{}".to_vec(),
    );
    assert_eq!(status, 404);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/inbound-hooks",
        Some(ADMIN),
        Some(json!({"id": "gl", "kind": "gitlab"})),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.call(
        "PATCH",
        "/orgs/default/inbound-hooks/gh",
        Some(ADMIN),
        Some(json!({"disabled": true})),
    );
    assert_eq!((status, &body["disabled"]), (200, &json!(true)), "{body}");
    let (status, receipt) = send(
        "push",
        "d-disabled",
        "application/json",
        push.as_bytes(),
        &github_signature(SECRET, push.as_bytes()),
    );
    assert_eq!(
        (status, &receipt["verdict"]),
        (200, &json!("ignored")),
        "{receipt}"
    );
    let (status, _) = server.call(
        "DELETE",
        "/orgs/default/inbound-hooks/gh",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    let (status, _) = server.call(
        "GET",
        "/orgs/default/inbound-hooks/gh/deliveries",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn the_cli_creates_hooks_and_lists_their_deliveries() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = crate::support::admin_cli(&server, home.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let created = run(&[
        "create",
        "inbound-hook",
        "--kind",
        "quay",
        "--watch",
        "acme/",
        "--secret",
        SECRET,
    ]);
    assert!(
        created.contains(SECRET) && created.contains("/hooks/default/quay"),
        "{created}"
    );
    let listed = run(&["get", "inbound-hooks"]);
    assert!(
        listed.contains("quay") && !listed.contains(SECRET),
        "{listed}"
    );
    let body = json!({"repository": "other/web", "docker_url": "quay.io/other/web", "updated_tags": ["1"]});
    let (status, receipt) = post(
        &server,
        &format!("/hooks/default/quay?token={SECRET}"),
        &[],
        "application/json",
        body.to_string().into_bytes(),
    );
    assert_eq!(
        (status, &receipt["verdict"]),
        (200, &json!("ignored")),
        "{receipt}"
    );
    let recorded = run(&["get", "deliveries", "quay"]);
    assert!(
        recorded.contains("ignored") && recorded.contains("not watched"),
        "{recorded}"
    );
}
