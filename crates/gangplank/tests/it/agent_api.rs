//! The agent's HTTP contract without Docker: the compose command is a script that records its
//! arguments, so each test can assert exactly which compose commands ran (and that none did).
//! The Docker engine is exercised in `agent_docker`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::agents::{Agent, b64, key_pair, now, sign};
use crate::support::poll;

pub fn recording_compose(dir: &Path) -> (String, std::path::PathBuf) {
    let ran = dir.join("ran.log");
    let script = dir.join("compose.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\necho ok\n", ran.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script.display().to_string(), ran)
}

fn ran(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_jwt_matrix_and_bad_bodies_run_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let (compose, ran_log) = recording_compose(dir);
    std::fs::write(
        dir.join("compose.yml"),
        "services:\n  web:\n    image: example.test/web:1\n  api:\n    image: example.test/api:1\n",
    )
    .unwrap();
    let (rsa, rsa_pub) = key_pair(dir, "rsa", "rsa");
    let (ec, ec_pub) = key_pair(dir, "ec", "ec");
    let (ed, ed_pub) = key_pair(dir, "ed", "ed25519");
    let (wrong, wrong_pub) = key_pair(dir, "wrong", "rsa");
    let agent = Agent::start(
        dir,
        &format!(
            r#"
listen = "127.0.0.1:0"
state_dir = "{state}"
compose_command = "{compose}"
[auth]
public_keys = ["{rsa_pub}", "{ec_pub}", "{ed_pub}"]
[[project]]
name = "shop"
files = ["{file}"]
services = ["web"]
health_timeout = "0s"
"#,
            state = dir.join("state").display(),
            file = dir.join("compose.yml").display(),
            rsa_pub = rsa_pub.display(),
            ec_pub = ec_pub.display(),
            ed_pub = ed_pub.display(),
        ),
    );
    let web = b64(r#"{"service":"web"}"#);
    let seed_claims = json!({"iss": "github-actions", "exp": now() + 300});

    // The seed's own request: RS256 with {"iss","exp"} (go-jwt's claims), no image.
    let (status, text) =
        agent.deploy_text(Some(&sign("RS256", &rsa, &seed_claims, None)), web.clone());
    assert_eq!(
        (status, text.as_str()),
        (200, "deploy request successful for service web\n")
    );
    let override_file = dir.join("state/shop.override.json");
    let files = format!(
        "-p shop -f {} -f {}",
        dir.join("compose.yml").display(),
        override_file.display()
    );
    assert_eq!(
        ran(&ran_log),
        [
            format!("{files} pull web"),
            format!("{files} up -d --no-deps web")
        ]
    );

    // ES256 and EdDSA keys verify too (with jti, as Gangplank's own server sends).
    for (alg, key) in [("ES256", &ec), ("EdDSA", &ed)] {
        let claims = json!({"iss": "ci", "exp": now() + 60, "jti": format!("ok-{alg}")});
        let (status, text) = agent.deploy_text(Some(&sign(alg, key, &claims, None)), web.clone());
        assert_eq!(status, 200, "{alg}: {text}");
    }
    let runs_after_valid = ran(&ran_log).len();
    assert_eq!(runs_after_valid, 6);

    // Every refused token: 401 `unauthorized`, and no compose command runs.
    let replayed = sign(
        "ES256",
        &ec,
        &json!({"iss": "ci", "exp": now() + 60, "jti": "once"}),
        None,
    );
    assert_eq!(agent.deploy_text(Some(&replayed), web.clone()).0, 200);
    let runs_before_refusals = ran(&ran_log).len();
    let good = sign("RS256", &rsa, &seed_claims, None);
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = crate::agents::b64(r#"{"iss":"github-actions","exp":9999999999}"#)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    let tampered = parts.join(".");
    let refused: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("wrong key", Some(sign("RS256", &wrong, &seed_claims, None))),
        (
            "expired",
            Some(sign(
                "RS256",
                &rsa,
                &json!({"iss": "ci", "exp": now() - 5}),
                None,
            )),
        ),
        (
            "missing exp",
            Some(sign("RS256", &rsa, &json!({"iss": "ci"}), None)),
        ),
        (
            "exp beyond 15 minutes",
            Some(sign(
                "RS256",
                &rsa,
                &json!({"iss": "ci", "exp": now() + 3600}),
                None,
            )),
        ),
        (
            "missing iss",
            Some(sign("RS256", &rsa, &json!({"exp": now() + 60}), None)),
        ),
        ("alg none", Some(sign("none", &rsa, &seed_claims, None))),
        (
            "HS256 with the public key",
            Some(sign("HS256", &rsa_pub, &seed_claims, None)),
        ),
        (
            "RS256 header on an EC signature",
            Some(sign("ES256", &ec, &seed_claims, Some(r#"{"alg":"RS256"}"#))),
        ),
        ("replayed jti", Some(replayed)),
        ("tampered payload", Some(tampered)),
        ("two spaces after Bearer", Some(format!(" {good}"))),
    ];
    for (case, token) in refused {
        let (status, text) = agent.deploy_text(token.as_deref(), web.clone());
        assert_eq!((status, text.as_str()), (401, "unauthorized\n"), "{case}");
    }
    assert_eq!(
        ran(&ran_log).len(),
        runs_before_refusals,
        "a refused token ran compose"
    );

    // Bad bodies with valid tokens: the seed's messages, and nothing runs.
    let token = || sign("RS256", &rsa, &seed_claims, None);
    let bad: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("bad base64", b"%%%".to_vec(), 400, "invalid base64\n"),
        ("bad json", b64("{nope").into_bytes(), 400, "invalid json\n"),
        (
            "empty service",
            b64(r#"{"service":"  "}"#).into_bytes(),
            400,
            "service is required\n",
        ),
        (
            "service not allowed",
            b64(r#"{"service":"api"}"#).into_bytes(),
            400,
            "service \"api\" may not be deployed by this agent\n",
        ),
    ];
    for (case, body, want_status, want_text) in bad {
        let (status, text) = agent.deploy_text(Some(&token()), body);
        assert_eq!((status, text.as_str()), (want_status, want_text), "{case}");
    }
    // A 10 MB body is refused before it is read. curl, unlike reqwest's blocking client, reads
    // an answer that arrives while it is still sending.
    let big = dir.join("big.txt");
    std::fs::write(&big, vec![b'A'; 10 * 1024 * 1024]).unwrap();
    let answer = crate::agents::run(
        "curl",
        &[
            "-s",
            "-w",
            "%{http_code}",
            "-H",
            &format!("Authorization: Bearer {}", token()),
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            &format!("@{}", big.display()),
            &format!("{}/deploy", agent.base),
        ],
    );
    assert_eq!(answer, "request body too large (limit 1048576 bytes)\n413");
    assert_eq!(
        ran(&ran_log).len(),
        runs_before_refusals,
        "a bad body ran compose"
    );

    // The seed's other endpoints.
    let get = |path: &str| {
        let r = agent
            .http
            .get(format!("{}{path}", agent.base))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(get("/health"), (200, "deployer healthy\n".to_owned()));
    assert_eq!(get("/version").0, 200);
    assert_eq!(get("/nope"), (404, "404 page not found\n".to_owned()));
    let (status, config) = get("/config");
    assert_eq!(status, 200);
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["debug_mode"], false);
    assert_eq!(config["jwt_public_key_path"], rsa_pub.display().to_string());
    let post = |path: &str| {
        let r = agent
            .http
            .post(format!("{}{path}", agent.base))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(post("/health"), (405, "method not allowed\n".to_owned()));
    // /logout exists only in debug mode.
    assert_eq!(post("/logout"), (401, "unauthorized\n".to_owned()));

    // Gangplank's own request: JSON with an id and a pinned image, 202 and a status URL.
    let json_deploy = |id: &str| {
        let token = sign(
            "ES256",
            &ec,
            &json!({"iss": "gangplank", "exp": now() + 60, "jti": format!("j-{id}-{}", uuid())}),
            None,
        );
        agent
            .http
            .post(format!("{}/deploy", agent.base))
            .bearer_auth(token)
            .json(&json!({"id": id, "service": "web", "image": "example.test/web:2@sha256:00aa"}))
            .send()
            .unwrap()
    };
    let first = json_deploy("d1-web");
    assert_eq!(first.status(), 202);
    assert_eq!(first.headers()["location"], "/deploys/d1-web");
    let record = poll("the JSON deployment to finish", || {
        let token = sign(
            "ES256",
            &ec,
            &json!({"iss": "gangplank", "exp": now() + 60}),
            None,
        );
        let record: Value = agent
            .http
            .get(format!("{}/deploys/d1-web", agent.base))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        (record["status"] == "succeeded").then_some(record)
    });
    assert_eq!(record["image"], "example.test/web:2@sha256:00aa");
    let pinned: Value = serde_json::from_slice(&std::fs::read(&override_file).unwrap()).unwrap();
    assert_eq!(
        pinned["services"]["web"]["image"],
        "example.test/web:2@sha256:00aa"
    );
    let runs = ran(&ran_log).len();
    // The same id again is answered from the record, and runs nothing.
    let again = json_deploy("d1-web");
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().unwrap()["status"], "succeeded");
    assert_eq!(ran(&ran_log).len(), runs);
    // Status reads need a valid token too.
    let unauthenticated = agent
        .http
        .get(format!("{}/deploys/d1-web", agent.base))
        .send()
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert!(!agent.log().contains("BEGIN"), "a key leaked into the log");

    // Key rotation without a restart: the PEM file is re-read when it changes.
    std::fs::copy(&wrong_pub, &rsa_pub).unwrap();
    let old_key = sign("RS256", &rsa, &seed_claims, None);
    assert_eq!(agent.deploy_text(Some(&old_key), web.clone()).0, 401);
    let new_key = sign("RS256", &wrong, &seed_claims, None);
    assert_eq!(agent.deploy_text(Some(&new_key), web.clone()).0, 200);
}

fn uuid() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
