//! Registries over the API: write-only sealed credentials, prefix clashes after
//! normalisation, CI credentials by role and `enable_ci`, and the fetch audit.

use serde_json::json;

use gangplank_testkit::Registry;

use crate::support::{ADMIN, Server, error_message};

const PASSWORD: &str = "s3cret-registry-password-4711";

#[test]
fn registries_keep_credentials_sealed_and_hand_them_only_to_ci() {
    let server = Server::start_with(&[("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN), ("RUST_LOG", "info")]);
    let (status, created) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(
            json!({"id": "acme-hub", "registry": "index.docker.io/acme", "type": "basic",
                    "creds": {"username": "robot", "password": PASSWORD}}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["registry"], "docker.io/acme",
        "the prefix is normalised"
    );
    assert_eq!(created["has_creds"], true);
    assert!(
        !created.to_string().contains(PASSWORD),
        "credentials are write-only: {created}"
    );
    let (_, listed) = server.call("GET", "/orgs/default/registries", Some(ADMIN), None);
    assert!(!listed.to_string().contains(PASSWORD));

    for (body, status_wanted, field) in [
        (
            json!({"id": "acme-hub", "registry": "ghcr.io/x", "type": "basic"}),
            409,
            "",
        ),
        (
            json!({"id": "other", "registry": "registry-1.docker.io/acme", "type": "basic"}),
            409,
            "",
        ),
        (
            json!({"id": "x", "registry": "ghcr.io/x", "type": "basic"}),
            400,
            "id",
        ),
        (
            json!({"id": "ftp-reg", "registry": "ghcr.io/x", "type": "ftp"}),
            400,
            "type",
        ),
        (json!({"id": "no-prefix", "type": "basic"}), 400, "registry"),
    ] {
        let (status, answer) = server.call(
            "POST",
            "/orgs/default/registries",
            Some(ADMIN),
            Some(body.clone()),
        );
        assert_eq!(status, status_wanted, "{body} → {answer}");
        assert!(error_message(&answer).starts_with(field), "{answer}");
    }

    // Not CI-enabled yet: even an administrator gets 403.
    let (status, body) = server.call(
        "GET",
        "/orgs/default/registries/acme-hub/creds",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 403, "{body}");
    let (status, _) = server.call(
        "PATCH",
        "/orgs/default/registries/acme-hub",
        Some(ADMIN),
        Some(json!({"enable_ci": true})),
    );
    assert_eq!(status, 200);

    let (ci_user, ci_token) = server.user("artefactContributor");
    let (status, creds) = server.call(
        "GET",
        "/orgs/default/registries/acme-hub/creds",
        Some(&ci_token),
        None,
    );
    assert_eq!(status, 200, "{creds}");
    assert_eq!(
        creds,
        json!({"registry": "docker.io/acme", "username": "robot", "password": PASSWORD, "expires": null})
    );
    for role in ["member", "orgViewer"] {
        let (_, token) = server.user(role);
        let (status, body) = server.call(
            "GET",
            "/orgs/default/registries/acme-hub/creds",
            Some(&token),
            None,
        );
        assert_eq!(status, 403, "{role}: {body}");
        let (status, _) = server.call(
            "POST",
            "/orgs/default/registries",
            Some(&token),
            Some(json!({"id": "mine", "registry": "r.io", "type": "public"})),
        );
        assert_eq!(status, 403, "{role} cannot create registries");
    }
    let (status, audit) = server.call(
        "GET",
        "/orgs/default/registries/acme-hub/creds-audit",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit[0]["user_id"], ci_user.as_str());

    // Google's JSON keys log in as _json_key.
    let (status, _) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(json!({"id": "gar", "registry": "europe-docker.pkg.dev/proj", "type": "google_artifact_registry",
                    "enable_ci": true, "creds": {"username": "", "password": "{\"type\":\"service_account\"}"}})),
    );
    assert_eq!(status, 201);
    let (status, creds) = server.call(
        "GET",
        "/orgs/default/registries/gar/creds",
        Some(&ci_token),
        None,
    );
    assert_eq!(
        (status, creds["username"].as_str()),
        (200, Some("_json_key"))
    );
    let log = server.log();
    assert!(
        log.contains("registry credentials fetched"),
        "the fetch is logged (at info): {log}"
    );
    assert!(!log.contains(PASSWORD), "the password is never logged");
    // Sealed at rest: the password is in no file of the data dir.
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "{} holds the password",
            path.display()
        );
    }
    let (status, _) = server.call(
        "DELETE",
        "/orgs/default/registries/acme-hub",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    let (status, _) = server.call(
        "GET",
        "/orgs/default/registries/acme-hub",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn rotate_key_reseals_everything_and_the_server_starts_on_the_new_key() {
    // A fixed address: the build definition's builder is the server itself (which has no
    // /builds, so a build fails saying so, once its clone token has been opened).
    let port = gangplank_testkit::free_port();
    let mut server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_LISTEN", &format!("127.0.0.1:{port}")),
    ]);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(
            json!({"id": "local", "registry": "localhost:5000", "type": "basic", "enable_ci": true,
                    "creds": {"username": "ci", "password": PASSWORD}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    // An inbound hook's secret and a build definition's clone token are sealed too.
    let hook_secret = "rotation-hook-secret-0123456789";
    let (status, body) = server.call(
        "POST",
        "/orgs/default/inbound-hooks",
        Some(ADMIN),
        Some(json!({"id": "gh", "kind": "github", "secret": hook_secret})),
    );
    assert_eq!(status, 201, "{body}");
    server.create_app("shop");
    let (status, body) = server.call(
        "PUT",
        "/orgs/default/apps/shop/build-definition",
        Some(ADMIN),
        Some(json!({"clone_url": "https://git.example/shop.git", "clone_token": "rotation-clone-token",
            "image": "localhost:5000/shop/web", "builder": server.base})),
    );
    assert_eq!(status, 200, "{body}");
    let key_file = server.data_dir().join("master-key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    let (status, stderr) = server.kill_and_run(&["admin", "rotate-key"]);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("re-sealed every secret"), "{stderr}");
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after, "a new key");
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("master-key.old")).unwrap(),
        before
    );
    server.crash_and_restart();
    let (status, creds) = server.call(
        "GET",
        "/orgs/default/registries/local/creds",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{creds}");
    assert_eq!(
        creds["password"], PASSWORD,
        "the credentials open under the new key"
    );
    // The hook's secret still verifies GitHub's signature.
    let ping = br#"{"zen":"Design for failure.","hook_id":1}"#;
    let response = server
        .http
        .post(format!("{}/hooks/default/gh", server.base))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "rotation-ping")
        .header(
            "x-hub-signature-256",
            crate::support::github_signature(hook_secret, ping),
        )
        .body(ping.to_vec())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text());
    // The clone token opens: the build gets as far as its builder (which does not build).
    let (status, build) = server.call(
        "POST",
        "/orgs/default/apps/shop/builds",
        Some(ADMIN),
        Some(json!({})),
    );
    assert_eq!(status, 201, "{build}");
    let path = format!(
        "/orgs/default/apps/shop/builds/{}",
        build["id"].as_str().unwrap()
    );
    let ended = crate::support::poll("the build to end", || {
        let (_, b) = server.call("GET", &path, Some(ADMIN), None);
        (b["status"] != "queued" && b["status"] != "running").then_some(b)
    });
    assert_eq!(ended["status"], "failed", "{ended}");
    assert!(
        ended["message"]
            .as_str()
            .unwrap()
            .contains("does not build"),
        "{ended}"
    );
}

#[test]
fn ci_credentials_really_log_in_to_the_registry() {
    let registry = Registry::start(Some(("robot", PASSWORD)));
    assert!(
        !registry.skopeo_login("robot", "wrong-password"),
        "the registry checks passwords"
    );
    let server = Server::start();
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(json!({"id": "local", "registry": format!("127.0.0.1:{}", registry.port), "type": "basic",
                    "insecure": true, "enable_ci": true, "creds": {"username": "robot", "password": PASSWORD}})),
    );
    assert_eq!(status, 201, "{body}");
    let (_, ci_token) = server.user("artefactContributor");
    let (status, creds) = server.call(
        "GET",
        "/orgs/default/registries/local/creds",
        Some(&ci_token),
        None,
    );
    assert_eq!(status, 200, "{creds}");
    assert!(
        registry.skopeo_login(
            creds["username"].as_str().unwrap(),
            creds["password"].as_str().unwrap()
        ),
        "skopeo logs in with what Gangplank handed to CI"
    );
}

/// moto's server with signature checking on after three free calls, which create an IAM user
/// with an access key allowed to call ECR; returns (moto, key id, secret).
pub(crate) fn moto_with_an_ecr_user() -> (std::process::Child, u16, String, String) {
    let port = gangplank_testkit::free_port();
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 with moto[server] (cargo xtask test installs it)");
    gangplank_testkit::poll("moto to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    });
    let setup = r#"
import boto3, json, sys
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="ci")
iam.put_user_policy(UserName="ci", PolicyName="ecr", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}]}))
key = iam.create_access_key(UserName="ci")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", setup, &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let (id, secret) = text.trim().split_once(' ').unwrap();
    (child, port, id.to_owned(), secret.to_owned())
}

#[test]
fn ecr_keys_become_a_registry_login_through_a_signed_call() {
    let (mut moto, port, key_id, secret) = moto_with_an_ecr_user();
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("AWS_ENDPOINT_URL_ECR", endpoint.as_str()),
        ("RUST_LOG", "debug"),
    ]);
    for (id, secret) in [("ecr", secret.as_str()), ("ecr-wrong", "not-the-secret")] {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/registries",
            Some(ADMIN),
            Some(json!({"id": id, "registry": format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{id}"), "type": "amazon_ecr",
                        "enable_ci": true, "creds": {"username": key_id, "password": secret}})),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (_, ci_token) = server.user("artefactContributor");
    let (status, creds) = server.call(
        "GET",
        "/orgs/default/registries/ecr/creds",
        Some(&ci_token),
        None,
    );
    assert_eq!(status, 200, "{creds}");
    assert_eq!(creds["username"], "AWS");
    assert!(creds["expires"].is_string(), "{creds}");
    let (status, body) = server.call(
        "GET",
        "/orgs/default/registries/ecr-wrong/creds",
        Some(&ci_token),
        None,
    );
    assert_eq!(status, 502, "{body}");
    let message = error_message(&body);
    assert!(
        message.contains("ecr-wrong") && message.contains("SignatureDoesNotMatch"),
        "{message}"
    );
    assert!(!message.contains("not-the-secret"));
    assert!(
        !server.log().contains(&secret) && !server.log().contains("not-the-secret"),
        "no AWS secret in the log"
    );
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the AWS secret",
            path.display()
        );
    }
    // The token logs in to a real registry that knows it (as ECR would).
    let password = creds["password"].as_str().unwrap();
    let registry = Registry::start(Some(("AWS", password)));
    assert!(registry.skopeo_login("AWS", password));
    let _ = moto.kill();
    let _ = moto.wait();
}

fn version(server: &Server, id: &str) -> serde_json::Value {
    let (status, body) = server.call(
        "GET",
        &format!("/orgs/default/artefact-versions/{id}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn tags_are_resolved_to_digests_and_automation_pins_them() {
    let registry = Registry::start(None);
    let pushed = registry.push_tiny_image("team/web", "1.0", "one");
    assert_eq!(registry.skopeo_digest("team/web", "1.0", None), pushed);
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_AUTOMATION_DEBOUNCE", "0"),
    ]);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(
            json!({"id": "local", "registry": registry.host(), "type": "public", "insecure": true}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    let name = format!("{}/team/web", registry.host());
    let register = |tag: &str| {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/artefact-versions",
            Some(ADMIN),
            Some(json!({"type": "container", "name": name, "version": tag, "ref": "refs/heads/main"})),
        );
        assert_eq!(status, 200, "{body}");
        body
    };
    let first = register("1.0");
    assert_eq!(first["digest_status"], "pending", "{first}");
    let id = first["id"].as_str().unwrap();
    let resolved = gangplank_testkit::poll("the digest to be resolved", || {
        let v = version(&server, id);
        (v["digest_status"] == "resolved").then_some(v)
    });
    assert_eq!(
        resolved["digest"],
        pushed.as_str(),
        "the digest skopeo reports"
    );
    let again = register("1.0");
    assert_eq!(
        again["id"], first["id"],
        "an identical re-post is still the same version"
    );

    // Automation deploys the new tag pinned by the digest it resolved.
    server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "web"})),
    );
    let (_, delta) = server.call(
        "POST",
        "/orgs/default/apps/web/deltas",
        Some(ADMIN),
        Some(json!({"modules": {"add": {"web": {"spec": {"containers": {"main": {"image": format!("{name}:1.0")}}}}}}})),
    );
    let (status, _) = server.call(
        "POST",
        "/orgs/default/apps/web/envs/development/deploys",
        Some(ADMIN),
        Some(json!({"delta_id": delta["id"]})),
    );
    assert_eq!(status, 201);
    let (status, _) = server.call(
        "POST",
        "/orgs/default/apps/web/envs/development/rules",
        Some(ADMIN),
        Some(json!({"type": "update"})),
    );
    assert_eq!(status, 201);
    let next = registry.push_tiny_image("team/web", "1.1", "two");
    register("1.1");
    let deploy = gangplank_testkit::poll("the automated deployment", || {
        let (_, list) = server.call(
            "GET",
            "/orgs/default/apps/web/envs/development/deploys",
            Some(ADMIN),
            None,
        );
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| {
                d["triggered_by"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("rule/")
            })
            .cloned()
    });
    let (_, set) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/web/sets/{}",
            deploy["set_id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(
        set["modules"]["web"]["spec"]["containers"]["main"]["image"],
        format!("{name}:1.1@{next}").as_str()
    );
}

#[test]
fn an_unreachable_registry_leaves_a_visible_status_and_retries() {
    let server = Server::start();
    let host = format!("127.0.0.1:{}", gangplank_testkit::free_port());
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(json!({"id": "down", "registry": host, "type": "public", "insecure": true})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, created) = server.call(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        Some(json!({"type": "container", "name": format!("{host}/team/api"), "version": "2.0"})),
    );
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap();
    let failed = gangplank_testkit::poll("a failed attempt", || {
        let v = version(&server, id);
        (v["digest_status"] == "retrying").then_some(v)
    });
    let error = failed["digest_error"].as_str().unwrap();
    assert!(error.contains(&host), "names the registry: {error}");
    assert!(failed.get("digest").is_none_or(|d| d == ""), "{failed}");
}
