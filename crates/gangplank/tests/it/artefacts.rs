//! Artefact versions as CI sends them (seeds 000 and 004), and what can be done with them.

use std::process::Command;

use serde_json::json;

use crate::support::{ADMIN, SHA64, SHA64_B, Server, error_message};

const APP1: &str = "667740703053.dkr.ecr.ca-central-1.amazonaws.com/app1";
const APP2: &str = "667740703053.dkr.ecr.ca-central-1.amazonaws.com/app2";

fn version(name: &str, tag: &str) -> serde_json::Value {
    json!({"name": name, "type": "container", "commit": tag, "version": tag, "ref": "refs/heads/main"})
}

#[test]
fn seed_000_versions_are_recorded_and_listed() {
    let server = Server::start();
    for name in [APP1, APP2] {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/artefact-versions",
            Some(ADMIN),
            Some(version(name, SHA64)),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], name);
        assert_eq!(body["commit"], SHA64);
        assert_eq!(body["digest"], "");
        assert_eq!(body["archived"], false);
    }
    let (status, list) = server.call("GET", "/orgs/default/artefact-versions", Some(ADMIN), None);
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [APP2, APP1], "newest first");
    let (_, artefacts) = server.call(
        "GET",
        "/orgs/default/artefacts?type=container",
        Some(ADMIN),
        None,
    );
    assert_eq!(artefacts.as_array().unwrap().len(), 2);
}

#[test]
fn identical_repost_returns_the_stored_version_and_a_moved_tag_is_new() {
    let server = Server::start();
    let (_, first) = server.call(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        Some(version(APP1, SHA64)),
    );
    let (_, again) = server.call(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        Some(version(APP1, SHA64)),
    );
    assert_eq!(first, again);
    let mut moved = version(APP1, SHA64);
    moved["digest"] = json!(format!("sha256:{SHA64_B}"));
    let (status, moved) = server.call(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        Some(moved),
    );
    assert_eq!(status, 200);
    assert_ne!(moved["id"], first["id"]);
    assert_eq!(moved["artefact_id"], first["artefact_id"]);
    let reference = format!("{APP1}:{SHA64}");
    let (_, current) = server.call(
        "GET",
        &format!("/orgs/default/artefact-versions?reference={reference}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(
        current[0]["id"], moved["id"],
        "the moved tag is the current version"
    );
    assert_eq!(current.as_array().unwrap().len(), 2);
    let (status, body) = server.call(
        "GET",
        &format!("/orgs/default/artefact-versions?reference={reference}&name={APP1}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 400, "{body}");
}

/// Seed 004's documented calls, made by the real curl and wget.
#[test]
fn seed_004_curl_wget_and_multipart_workload() {
    let server = Server::start();
    let url = format!("{}/orgs/default/artefact-versions", server.base);
    let payload = r#"{"name": "registry.example.com/project/my-image", "version": "0.3.2-rc5", "type": "container", "commit": "2f0c9b1e77", "ref": "refs/tags/0.3.2-rc5"}"#;
    let auth = format!("Authorization: Bearer {ADMIN}");
    let curl = Command::new("curl")
        .args([
            "--fail",
            "-s",
            "--request",
            "POST",
            &url,
            "--header",
            &auth,
            "--header",
            "Content-Type: application/json",
            "--data-raw",
            payload,
        ])
        .output()
        .expect("curl is installed (cargo xtask test installs it)");
    assert!(
        curl.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&curl.stdout).unwrap();
    assert_eq!(body["version"], "0.3.2-rc5");

    let payload = payload.replace("0.3.2-rc5", "0.3.3");
    let wget = Command::new("wget")
        .args([
            "--quiet",
            "-O",
            "-",
            "--method",
            "POST",
            "--timeout=10",
            "--header",
            &auth,
            "--header",
            "Content-Type: application/json",
            "--body-data",
            &payload,
            &url,
        ])
        .output()
        .expect("wget is installed (cargo xtask test installs it)");
    assert!(
        wget.status.success(),
        "wget: {}",
        String::from_utf8_lossy(&wget.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&wget.stdout).unwrap();
    assert_eq!(body["version"], "0.3.3");

    let dir = tempfile::tempdir().unwrap();
    let score = dir.path().join("score.yaml");
    std::fs::write(&score, "apiVersion: score.dev/v1b1\nmetadata:\n  name: hello-world\ncontainers:\n  hello:\n    image: busybox\n    command: [\"/bin/sh\"]\n").unwrap();
    let form = Command::new("curl")
        .args([
            "--fail",
            "-s",
            &url,
            "-H",
            &auth,
            "-F",
            "type=workload",
            "-F",
            "name=myProject/myWorkloadArtefact",
            "-F",
        ])
        .arg(format!("spec=@{}", score.display()))
        .args(["-F", "ref=refs/heads/main", "-F", "version=1.2.3"])
        .output()
        .unwrap();
    assert!(
        form.status.success(),
        "curl -F: {}",
        String::from_utf8_lossy(&form.stderr)
    );
    let workload: serde_json::Value = serde_json::from_slice(&form.stdout).unwrap();
    assert_eq!(workload["type"], "workload");
    assert!(
        workload.get("digest").is_none(),
        "workloads carry no digest: {workload}"
    );
    let id = workload["id"].as_str().unwrap();

    let (status, spec) = server.call(
        "GET",
        &format!("/orgs/default/artefact-versions/{id}/workload-spec"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(spec["containers"]["hello"]["command"], json!(["/bin/sh"]));
    let yaml = server
        .http
        .get(format!("{url}/{id}/workload-spec"))
        .bearer_auth(ADMIN)
        .header("accept", "application/x-yaml")
        .send()
        .unwrap();
    assert_eq!(yaml.headers()["content-type"], "application/x-yaml");
    assert!(yaml.text().unwrap().contains("name: hello-world"));

    let (_, list) = server.call(
        "GET",
        "/orgs/default/artefact-versions?type=workload",
        Some(ADMIN),
        None,
    );
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, body) = server.call(
        "GET",
        &format!(
            "/orgs/default/artefact-versions/{}/workload-spec",
            list[0]["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn dry_run_vcs_archive_and_delete() {
    let server = Server::start();
    let (status, body) = server.call(
        "POST",
        "/orgs/default/artefact-versions?dry_run=true",
        Some(ADMIN),
        Some(version(APP1, SHA64)),
    );
    assert_eq!((status, body), (204, serde_json::Value::Null));
    let (_, list) = server.call("GET", "/orgs/default/artefact-versions", Some(ADMIN), None);
    assert_eq!(list, json!([]), "a dry run stores nothing");

    let mut svn = version(APP1, SHA64);
    svn["ref"] = json!("trunk");
    let (status, body) = server.call(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        Some(svn.clone()),
    );
    assert_eq!(status, 400);
    assert!(error_message(&body).starts_with("ref:"), "{body}");
    let (status, stored) = server.call(
        "POST",
        "/orgs/default/artefact-versions?vcs=svn",
        Some(ADMIN),
        Some(svn),
    );
    assert_eq!(status, 200, "{stored}");

    let artefact = stored["artefact_id"].as_str().unwrap();
    let path = format!(
        "/orgs/default/artefacts/{artefact}/versions/{}",
        stored["id"].as_str().unwrap()
    );
    let (status, archived) =
        server.call("PATCH", &path, Some(ADMIN), Some(json!({"archived": true})));
    assert_eq!((status, archived["archived"].clone()), (200, json!(true)));
    let (_, hidden) = server.call("GET", "/orgs/default/artefact-versions", Some(ADMIN), None);
    assert_eq!(hidden, json!([]), "archived versions are hidden by default");
    let (_, all) = server.call(
        "GET",
        &format!("/orgs/default/artefacts/{artefact}/versions?archived=true"),
        Some(ADMIN),
        None,
    );
    assert_eq!(all.as_array().unwrap().len(), 1);

    let (status, _) = server.call(
        "DELETE",
        &format!("/orgs/default/artefacts/{artefact}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    let (status, _) = server.call(
        "GET",
        &format!("/orgs/default/artefacts/{artefact}/versions"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 404);
}
