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
