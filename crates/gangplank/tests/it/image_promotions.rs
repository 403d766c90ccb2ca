//! Image promotion records and the registry rollback over the API and the CLI, on a real
//! docker-registry with htpasswd auth: the seed's `rollback.sh` (live tag back to the highest
//! version, that version dropped, "Rollback from vX to vY"), the hold it leaves and its resume,
//! and the clear 4xx answers.

use serde_json::json;

use gangplank_testkit::{Auth, Registry};

use crate::pipeline_runs::{create_pipeline, start_run, wait_run};
use crate::support::{ADMIN, Server, admin_cli, error_message};

const USER: &str = "prod-robot";
const PASSWORD: &str = "prod-registry-password-77";

#[test]
fn registry_rollback_moves_latest_back_and_holds_automatic_promotion() {
    let registry = Registry::start_with(Auth::Htpasswd(USER, PASSWORD));
    let creds = Some((USER, PASSWORD));
    let server = Server::start_with(&[("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN)]);
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(
            json!({"id": "prod", "registry": registry.host(), "type": "basic", "insecure": true,
                    "creds": {"username": USER, "password": PASSWORD}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    server.create_app("shop");
    server.create_app("other");
    let repository = format!("{}/ecr-prod/repo-1", registry.host());
    let home = tempfile::tempdir().unwrap();

    // Three promotions by the app's pipeline: 0.1 and 0.2 archived, the third live.
    let yaml = format!(
        "id: promote\nname: Promote\non:\n  pipeline_call:\n    inputs:\n      source: {{type: string, required: true}}\njobs:\n  copy:\n    steps:\n      - uses: actions/gangplank/promote-image\n        with: {{source: \"${{{{ inputs.source }}}}\", destination: \"{repository}\"}}\n"
    );
    create_pipeline(&server, "shop", &yaml);
    let mut digests = Vec::new();
    for content in ["one", "two", "three"] {
        let digest = registry.push_tiny_image_as("ecr-dev/repo-1", "latest", content, creds);
        let source = format!("{}/ecr-dev/repo-1@{digest}", registry.host());
        let run = start_run(
            &server,
            ADMIN,
            "shop",
            "promote",
            json!({ "source": source }),
        );
        let run = wait_run(&server, "shop", &run, "finished", |r| {
            matches!(
                r["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        });
        assert_eq!(run["status"], "succeeded", "{run}");
        digests.push(digest);
    }
    let (first, second, third) = (digests[0].clone(), digests[1].clone(), digests[2].clone());

    // Another app cannot roll back (nor resume) what this app promoted.
    let (status, answer) = server.call(
        "POST",
        "/orgs/default/apps/other/image-promotions/rollback",
        Some(ADMIN),
        Some(json!({"repository": repository})),
    );
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        registry.skopeo_digest("ecr-prod/repo-1", "latest", creds),
        third
    );

    // Not on a terminal, the repository must be named (no menu to pick from).
    admin_cli(&server, home.path())
        .args(["--app", "shop", "registry", "rollback", "--yes"])
        .assert()
        .failure();

    // `--to` must name a version tag the repository has, other than the live image: 0.3 is the
    // version live now (it carries only `latest`), `latest` is no version, 0.7 does not exist.
    // Each refusal is one line, and touches nothing.
    for (to, says) in [
        ("0.3", "version 0.3 is live already"),
        ("v0.3", "version 0.3 is live already"),
        (
            "latest",
            "latest is not a version: name a version tag, MAJOR.MINOR such as 0.14",
        ),
        (
            "0.7",
            "the repository has no version 0.7 (its versions: 0.1, 0.2)",
        ),
    ] {
        let output = admin_cli(&server, home.path())
            .args([
                "--app",
                "shop",
                "registry",
                "rollback",
                &repository,
                "--to",
                to,
                "--yes",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--to {to}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "--to {to}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(&format!("{repository}: {says}")),
            "--to {to}: {stderr}"
        );
    }
    assert_eq!(
        registry.skopeo_digest("ecr-prod/repo-1", "latest", creds),
        third
    );
    let (_, list) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions",
        Some(ADMIN),
        None,
    );
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "promote"),
        "a refused rollback records nothing: {list}"
    );

    let output = admin_cli(&server, home.path())
        .args([
            "--app",
            "shop",
            "registry",
            "rollback",
            &repository,
            "--yes",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Rollback from v0.3 to v0.2"), "{stdout}");
    assert_eq!(
        registry.skopeo_digest("ecr-prod/repo-1", "latest", creds),
        second,
        "latest is 0.2's image again, same digest"
    );
    let tags = std::process::Command::new("skopeo")
        .args([
            "list-tags",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ])
        .arg(format!("docker://{repository}"))
        .output()
        .unwrap();
    let tags: serde_json::Value = serde_json::from_slice(&tags.stdout).unwrap();
    let mut tags: Vec<&str> = tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        ["0.1", "0.2", "latest", "rolled-back-0.3"],
        "docker-registry cannot drop 0.2 by tag, and the image rolled back from keeps a tag"
    );

    let (status, list) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{list}");
    let record = &list[0];
    assert_eq!(record["action"], "rollback");
    assert_eq!(record["status"], "applied");
    assert_eq!(record["destination"], repository.as_str());
    assert_eq!(
        (
            record["version_before"].as_str(),
            record["version_after"].as_str()
        ),
        (Some("0.3"), Some("0.2"))
    );
    assert_eq!(record["previous_live_digest"], third.as_str());
    assert_eq!(record["new_live_digest"], second.as_str());
    assert_eq!(record["dropped_tag"], "0.2");

    // The CLI lists it.
    let output = admin_cli(&server, home.path())
        .args(["--app", "shop", "get", "image-promotions"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains(record["id"].as_str().unwrap()));

    // Clear 4xx answers: no such version, not a version, the live image (0.2's tag is still on
    // it: docker-registry kept it), a bad repository, a caller without Deploy.
    for (to, says) in [
        (
            "0.7",
            "the repository has no version 0.7 (its versions: 0.1, 0.2)",
        ),
        ("rolled-back-0.3", "rolled-back-0.3 is not a version"),
        ("0.2", "version 0.2 is live already"),
        ("0.3", "the repository has no version 0.3"),
    ] {
        let (status, answer) = server.call(
            "POST",
            "/orgs/default/apps/shop/image-promotions/rollback",
            Some(ADMIN),
            Some(json!({"repository": repository, "to_version": to})),
        );
        assert_eq!(status, 400, "{to} → {answer}");
        assert!(
            error_message(&answer).starts_with(&format!("{repository}: {says}")),
            "{to} → {answer}"
        );
    }
    assert_eq!(
        registry.skopeo_digest("ecr-prod/repo-1", "latest", creds),
        second
    );
    for (body, status_wanted, field) in [
        (
            json!({"repository": repository, "to_version": ""}),
            400,
            "to_version",
        ),
        (json!({"repository": "UPPER//x"}), 400, "repository"),
        (
            json!({"repository": repository, "live_tag": "-bad"}),
            400,
            "live_tag",
        ),
        (json!({"repository": "unknown.example/x/y"}), 400, ""),
    ] {
        let (status, answer) = server.call(
            "POST",
            "/orgs/default/apps/shop/image-promotions/rollback",
            Some(ADMIN),
            Some(body.clone()),
        );
        assert_eq!(status, status_wanted, "{body} → {answer}");
        assert!(error_message(&answer).starts_with(field), "{answer}");
    }
    let (_, member) = server.user("member");
    let (status, answer) = server.call(
        "POST",
        "/orgs/default/apps/shop/image-promotions/rollback",
        Some(&member),
        Some(json!({"repository": repository})),
    );
    assert_eq!(status, 403, "{answer}");

    // Once more, to the last version: then nothing is left.
    let (status, again) = server.call(
        "POST",
        "/orgs/default/apps/shop/image-promotions/rollback",
        Some(ADMIN),
        Some(json!({"repository": repository, "comment": "bad release"})),
    );
    assert_eq!(status, 201, "{again}");
    assert_eq!(
        (
            again["version_before"].as_str(),
            again["version_after"].as_str()
        ),
        (Some("0.2"), Some("0.1"))
    );
    assert_eq!(
        registry.skopeo_digest("ecr-prod/repo-1", "latest", creds),
        first
    );
    let (status, answer) = server.call(
        "POST",
        "/orgs/default/apps/shop/image-promotions/rollback",
        Some(ADMIN),
        Some(json!({"repository": repository})),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        error_message(&answer).contains("no version to roll back to"),
        "{answer}"
    );

    // Pages of one, newest first.
    let (status, page) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions?per_page=1",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["id"], again["id"]);

    // A malformed query is a JSON 400.
    let (status, answer) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions?repository=a&repository=b",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_value", "{answer}");

    // The hold the rollbacks left, lifted once, and only by this app.
    let resume = |app: &str| {
        server.call(
            "POST",
            &format!("/orgs/default/apps/{app}/image-promotions/resume"),
            Some(ADMIN),
            Some(json!({"repository": repository})),
        )
    };
    assert_eq!(resume("other").0, 404);
    assert_eq!(resume("shop").0, 204);
    let (status, answer) = resume("shop");
    assert_eq!(status, 404, "{answer}");
}
