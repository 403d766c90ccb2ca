//! Authentication and secrets at rest: the Bearer scheme and the one Authorization header,
//! private database files, keyed token hashes (and the upgrade of unkeyed ones), and sealed,
//! redacted webhook headers that survive a key rotation.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::receivers::{PyReceiver, whsec};
use crate::support::{ADMIN, Server, error_message};

/// Hex SHA-256 of [`ADMIN`]: how tokens were stored before hashes were keyed.
const ADMIN_SHA256: &str = "7793197d170a65cbc98536b08b8f4209e9c3a4db2ee8365870583a351a6bf8dd";

/// `GET /current-user` with the given Authorization header values, as (status, body).
fn current_user(server: &Server, authorizations: &[String]) -> (u16, serde_json::Value) {
    let mut request = server.http.get(format!("{}/current-user", server.base));
    for value in authorizations {
        request = request.header("authorization", value);
    }
    let response = request.send().expect("request");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or_default())
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_the_header_single() {
    let server = Server::start();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, body) = current_user(&server, &[format!("{scheme} {ADMIN}")]);
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    let (status, body) = current_user(&server, &[format!("Basic {ADMIN}")]);
    assert_eq!(status, 401, "{body}");
    error_message(&body);
    for second in [format!("Bearer {ADMIN}"), "Bearer someone-else".to_owned()] {
        let (status, body) = current_user(&server, &[format!("Bearer {ADMIN}"), second]);
        assert_eq!(status, 400, "two Authorization headers: {body}");
        assert!(error_message(&body).contains("Authorization"), "{body}");
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    metadata.permissions().mode() & 0o777
}

#[test]
fn database_files_and_the_data_dir_are_private() {
    let server = Server::start();
    // A write, so the SQLite write-ahead log certainly exists.
    server.create_app("shop");
    assert_eq!(mode(server.data_dir()), 0o700, "the data dir");
    assert_eq!(mode(&server.data_dir().join("master-key")), 0o600);
    if server.database_url().is_some() {
        return; // PostgreSQL keeps its own files.
    }
    for name in ["gangplank.db", "gangplank.db-wal", "gangplank.db-shm"] {
        assert_eq!(mode(&server.data_dir().join(name)), 0o600, "{name}");
    }
}

/// Every byte of the server's database, by source: its files on SQLite, a dump on PostgreSQL.
fn database_bytes(server: &Server) -> Vec<(String, Vec<u8>)> {
    match server.database_url() {
        Some(url) => {
            let dump = Command::new("pg_dump").arg(&url).output().expect("pg_dump");
            assert!(dump.status.success(), "pg_dump {url}");
            vec![(format!("pg_dump {url}"), dump.stdout)]
        }
        None => std::fs::read_dir(server.data_dir())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file() && !path.ends_with("master-key"))
            .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
            .collect(),
    }
}

/// Asserts that no byte sequence of the database is `needle`.
fn assert_not_stored(server: &Server, needle: &str, what: &str) {
    let sources = database_bytes(server);
    assert!(!sources.is_empty());
    for (source, bytes) in sources {
        let found = bytes
            .windows(needle.len())
            .position(|window| window == needle.as_bytes());
        if let Some(at) = found {
            let end = (at + needle.len() + 50).min(bytes.len());
            let context = String::from_utf8_lossy(&bytes[at.saturating_sub(200)..end]);
            panic!("{source} holds {what}: {context:?}");
        }
    }
}

/// Runs one SQL statement on the server's database (stopped or not) and returns what it
/// printed: psql on PostgreSQL, Python's sqlite3 on SQLite (no sqlite3 CLI needed).
fn sql(database_url: Option<&str>, data_dir: &Path, statement: &str) -> String {
    let output = match database_url {
        Some(url) => Command::new("psql")
            .args([url, "-tA", "-v", "ON_ERROR_STOP=1", "-c", statement])
            .output()
            .expect("psql"),
        None => Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 db = sqlite3.connect(sys.argv[1])\n\
                 for row in db.execute(sys.argv[2]): print('|'.join(map(str, row)))\n\
                 db.commit()",
                data_dir.join("gangplank.db").to_str().unwrap(),
                statement,
            ])
            .output()
            .expect("python3"),
    };
    assert!(
        output.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_copied_database_reveals_neither_the_bootstrap_token_nor_its_sha256() {
    let server = Server::start();
    let (_, member_token) = server.user("member");
    let (status, _) = server.call("GET", "/current-user", Some(&member_token), None);
    assert_eq!(status, 200);
    assert_not_stored(&server, ADMIN, "the bootstrap token");
    assert_not_stored(
        &server,
        ADMIN_SHA256,
        "the bootstrap token's unkeyed SHA-256",
    );
    assert_not_stored(&server, &member_token, "a generated token");
    let hashes = sql(
        server.database_url().as_deref(),
        server.data_dir(),
        "SELECT token_hash FROM tokens",
    );
    assert_eq!(hashes.lines().count(), 2, "{hashes}");
    assert!(hashes.lines().all(|h| h.starts_with("h1:")), "{hashes}");
}

#[test]
fn unkeyed_hashes_of_before_are_upgraded_when_their_token_is_used() {
    let mut server = Server::start();
    let url = server.database_url();
    server.crash_and_restart_after(|data_dir| {
        sql(
            url.as_deref(),
            data_dir,
            &format!("UPDATE tokens SET token_hash = '{ADMIN_SHA256}' WHERE id = 'bootstrap'"),
        );
    });
    let (status, body) = server.call("GET", "/current-user", Some(ADMIN), None);
    assert_eq!(status, 200, "a token stored before still works: {body}");
    let stored = sql(
        url.as_deref(),
        server.data_dir(),
        "SELECT token_hash FROM tokens WHERE id = 'bootstrap'",
    );
    assert!(
        stored.trim().starts_with("h1:"),
        "rewritten keyed: {stored}"
    );
    server.crash_and_restart();
    let (status, body) = server.call("GET", "/current-user", Some(ADMIN), None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.call("GET", "/current-user", Some("gp_wrong"), None);
    assert_eq!(status, 401);
}

#[test]
fn webhook_headers_are_sealed_redacted_and_sent_after_a_key_rotation() {
    const CREDENTIAL: &str = "Bearer receiver-credential-6f1d2a";
    let mut server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
    ]);
    let receiver = PyReceiver::start("", 0);
    server.create_app("hooks");
    let (status, created) = server.call(
        "POST",
        "/orgs/default/apps/hooks/webhooks",
        Some(ADMIN),
        Some(
            json!({"id": "hook", "url": receiver.url(), "secret": whsec(),
                    "triggers": [{"scope": "environment", "type": "created"}],
                    "headers": {"Authorization": CREDENTIAL, "X-Env": "env-${env_id}"}}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    let redacted = json!({"Authorization": "***", "X-Env": "***"});
    assert_eq!(created["headers"], redacted, "{created}");
    let path = "/orgs/default/apps/hooks/webhooks/hook";
    let (_, shown) = server.call("GET", path, Some(ADMIN), None);
    assert_eq!(shown["headers"], redacted, "{shown}");
    let (_, listed) = server.call(
        "GET",
        "/orgs/default/apps/hooks/webhooks",
        Some(ADMIN),
        None,
    );
    assert_eq!(listed[0]["headers"], redacted, "{listed}");
    assert_not_stored(&server, "receiver-credential", "a webhook header value");

    // Sent back redacted, a value is kept; a redacted value with nothing stored is refused.
    let (status, body) = server.call(
        "PATCH",
        path,
        Some(ADMIN),
        Some(json!({"headers": {"Authorization": "***", "X-Env": "${env_id}", "X-Extra": "1"}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["X-Extra"], "***", "{body}");
    let (status, body) = server.call(
        "PATCH",
        path,
        Some(ADMIN),
        Some(json!({"headers": {"X-Unknown": "***"}})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).starts_with("headers"), "{body}");

    let create_env = |server: &Server, id: &str| {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/apps/hooks/envs",
            Some(ADMIN),
            Some(json!({"id": id, "name": id})),
        );
        assert_eq!(status, 201, "{body}");
    };
    create_env(&server, "qa");
    let sent = &receiver.wait_for(1)[0]["headers"];
    assert_eq!(sent["authorization"], CREDENTIAL, "{sent}");
    assert_eq!(sent["x-env"], "qa", "{sent}");
    assert_eq!(sent["x-extra"], "1", "{sent}");

    // Rotation re-seals the headers: after it, deliveries still carry the real value.
    let (status, stderr) = server.kill_and_run(&["admin", "rotate-key"]);
    assert!(status.success(), "{stderr}");
    server.crash_and_restart();
    create_env(&server, "prod");
    // Deliveries are at least once: the kill may come before the first attempt was recorded,
    // so `qa` can arrive again. Wait for the `prod` one.
    let prod = gangplank_testkit::poll("the prod delivery to arrive", || {
        receiver
            .records()
            .into_iter()
            .find(|r| r["headers"]["x-env"] == "prod")
    });
    let sent = &prod["headers"];
    assert_eq!(sent["authorization"], CREDENTIAL, "{sent}");
    assert_eq!(sent["x-env"], "prod", "{sent}");
    assert_not_stored(&server, "receiver-credential", "a webhook header value");
}

#[test]
fn stored_webhook_headers_are_not_sent_to_a_new_url() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
    ]);
    server.create_app("hooks");
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/hooks/webhooks",
        Some(ADMIN),
        Some(json!({"id": "hook", "url": "http://127.0.0.1:9/receiver",
                    "headers": {"Authorization": "Bearer stored-credential"}})),
    );
    assert_eq!(status, 201, "{body}");
    let path = "/orgs/default/apps/hooks/webhooks/hook";
    let elsewhere = "http://127.0.0.1:9/attacker";
    // Sent back redacted with a new URL, or left out, the stored value would follow the URL.
    for body in [
        json!({"url": elsewhere, "headers": {"Authorization": "***"}}),
        json!({"url": elsewhere}),
    ] {
        let (status, answer) = server.call("PATCH", path, Some(ADMIN), Some(body.clone()));
        assert_eq!(status, 400, "{body} → {answer}");
        assert!(error_message(&answer).starts_with("headers"), "{answer}");
        assert!(error_message(&answer).contains("url"), "{answer}");
    }
    let (_, shown) = server.call("GET", path, Some(ADMIN), None);
    assert_eq!(shown["url"], "http://127.0.0.1:9/receiver", "{shown}");
    // The same URL keeps a redacted value; a new URL takes the values given again.
    let (status, body) = server.call(
        "PATCH",
        path,
        Some(ADMIN),
        Some(json!({"url": "http://127.0.0.1:9/receiver", "headers": {"Authorization": "***"}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.call(
        "PATCH",
        path,
        Some(ADMIN),
        Some(json!({"url": elsewhere, "headers": {"X-Other": "1"}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"], json!({"X-Other": "***"}), "{body}");
}
