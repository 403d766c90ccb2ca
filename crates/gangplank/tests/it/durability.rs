//! Data survives a crash, and no token's plaintext is ever written to the data dir.

use serde_json::json;

use crate::support::{ADMIN, SHA64, Server};

fn read_all_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

#[test]
fn a_crash_loses_nothing_that_was_acknowledged() {
    let mut server = Server::start();
    server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "shop", "name": "Shop"})),
    );
    let (_, user_token) = server.user("artefactContributor");
    for n in 0..20 {
        let body = json!({"type": "container", "name": "reg.io/team/app", "version": format!("1.0.{n}"), "commit": SHA64});
        let (status, _) = server.call(
            "POST",
            "/orgs/default/artefact-versions",
            Some(&user_token),
            Some(body),
        );
        assert_eq!(status, 200);
    }
    server.crash_and_restart();
    let (_, versions) = server.call(
        "GET",
        "/orgs/default/artefact-versions",
        Some(&user_token),
        None,
    );
    assert_eq!(versions.as_array().unwrap().len(), 20);
    let (status, app) = server.call("GET", "/orgs/default/apps/shop", Some(ADMIN), None);
    assert_eq!(
        (status, app["envs"][0]["id"].clone()),
        (200, json!("development"))
    );
}

#[test]
fn no_token_plaintext_in_the_data_dir() {
    let server = Server::start_with(&[]);
    let admin = std::fs::read_to_string(server.data_dir().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let (_, user) = server.call(
        "POST",
        "/orgs/default/users",
        Some(&admin),
        Some(json!({"name": "ci", "role": "artefactContributor"})),
    );
    let (_, token) = server.call(
        "POST",
        &format!("/users/{}/tokens", user["id"].as_str().unwrap()),
        Some(&admin),
        Some(json!({"id": "ci", "type": "static"})),
    );
    let ci_token = token["token"].as_str().unwrap().to_owned();
    assert_eq!(
        server.call("GET", "/current-user", Some(&ci_token), None).0,
        200
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir().join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    for (path, bytes) in read_all_files(server.data_dir()) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&ci_token), "{path} holds the CI token");
        if !path.ends_with("admin-token") {
            assert!(!text.contains(&admin), "{path} holds the admin token");
        }
    }
}

/// Runs SQL on the stopped server's database: with psql on PostgreSQL, else with Python's
/// sqlite3 module on the data dir's file.
fn run_sql(data_dir: &std::path::Path, database_url: Option<&str>, sql: &str) {
    if let Some(url) = database_url {
        let status = std::process::Command::new("psql")
            .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .status()
            .unwrap();
        assert!(status.success());
        return;
    }
    let db = data_dir.join("gangplank.db");
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
            db.to_str().unwrap(),
            sql,
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn deployments_in_flight_at_a_crash_resume_or_fail_with_a_reason() {
    let mut server = Server::start();
    server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "shop"})),
    );
    server.call(
        "POST",
        "/orgs/default/apps/shop/envs",
        Some(ADMIN),
        Some(json!({"id": "staging", "name": "staging"})),
    );
    let mut ids = Vec::new();
    for env in ["development", "staging"] {
        let (_, delta) = server.call(
            "POST",
            "/orgs/default/apps/shop/deltas",
            Some(ADMIN),
            Some(json!({"modules": {"add": {"web": {"spec": {"containers": {"main": {"image": "registry.test/web:1"}}}}}}})),
        );
        let (status, deploy) = server.call(
            "POST",
            &format!("/orgs/default/apps/shop/envs/{env}/deploys"),
            Some(ADMIN),
            Some(json!({"delta_id": delta["id"]})),
        );
        assert_eq!(status, 201, "{deploy}");
        ids.push((env, deploy["id"].as_str().unwrap().to_owned()));
    }
    let status_of = |server: &Server, env: &str, id: &str| {
        let (_, d) = server.call(
            "GET",
            &format!("/orgs/default/apps/shop/envs/{env}/deploys/{id}"),
            Some(ADMIN),
            None,
        );
        d["status"].as_str().unwrap().to_owned()
    };
    for (env, id) in &ids {
        crate::support::poll("the deployment to finish", || {
            (status_of(&server, env, id) == "succeeded").then_some(())
        });
    }
    // Make the stopped database look as if a dead process had claimed both deployments: one
    // for the first time, one for the third (the limit). On SQLite the leases are far in the
    // future (a restart releases them: this process is the only user); on PostgreSQL, where
    // other replicas may hold live leases, they have lapsed, as a dead replica's would.
    let (dev, staging) = (&ids[0].1, &ids[1].1);
    let database_url = server.database_url();
    let lease = if database_url.is_some() {
        0
    } else {
        9_999_999_999_999_i64
    };
    server.crash_and_restart_after(|dir| {
        run_sql(
            dir,
            database_url.as_deref(),
            &format!(
                "UPDATE deploys SET status = 'in progress' WHERE id IN ('{dev}', '{staging}');
                 INSERT INTO work_queue (kind, org_id, app_id, subject_id, attempts, lease_until)
                   VALUES ('deploy', 'default', 'shop', '{dev}', 1, {lease}),
                          ('deploy', 'default', 'shop', '{staging}', 3, {lease});"
            ),
        );
    });
    crate::support::poll("the interrupted deployment to resume", || {
        (status_of(&server, "development", dev) == "succeeded").then_some(())
    });
    crate::support::poll("the thrice-interrupted deployment to fail", || {
        (status_of(&server, "staging", staging) == "failed").then_some(())
    });
    let (_, errors) = server.call(
        "GET",
        &format!("/orgs/default/apps/shop/envs/staging/deploys/{staging}/errors"),
        Some(ADMIN),
        None,
    );
    assert_eq!(errors[0]["code"], "GP-INTERRUPTED", "{errors}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{errors}"
    );
}

#[test]
fn a_different_master_key_refuses_to_start_with_a_clear_message() {
    use base64::Engine;
    let mut server = Server::start();
    server.call(
        "POST",
        "/orgs/default/apps",
        Some(ADMIN),
        Some(json!({"id": "shop"})),
    );
    let (status, body) = server.call(
        "POST",
        "/orgs/default/apps/shop/webhooks",
        Some(ADMIN),
        Some(json!({"id": "notify", "url": "https://hooks.example.com/x"})),
    );
    assert_eq!(status, 201, "{body}");
    let key_file = server.data_dir().join("master-key");
    assert!(key_file.exists());
    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    std::fs::write(&key_file, other).unwrap();
    let (status, stderr) = server.kill_and_serve_once();
    assert!(!status.success(), "must not start: {stderr}");
    assert!(stderr.contains("sealed with master key"), "{stderr}");
}
