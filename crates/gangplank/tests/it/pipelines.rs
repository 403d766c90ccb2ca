//! Pipelines over HTTP (issue 13, item 1): YAML definitions validated at create time with the
//! line named, versions, `Etag`/`If-Match`, dry runs, the definition back as YAML or JSON, the
//! format's JSON Schema, criteria, and paged lists.

use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::support::{ADMIN, Server, error_message};

const PIPELINE: &str = "id: promote
name: Promote
on:
  pipeline_call:
    inputs:
      env_id: {type: string, required: true}
  deployment_request: {}
jobs:
  approve:
    steps:
      - uses: actions/humanitec/approve@v1
        with: {env_id: '${{ inputs.env_id }}', message: Go?}
  announce:
    needs: [approve]
    steps:
      - uses: actions/humanitec/log
        with: {message: done}
";

/// Sends `body` as YAML with extra headers; returns status, headers and body text.
fn send(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server
        .http
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/x-yaml")
            .body(body.to_owned());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response: Response = request.send().unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

const PIPELINES: &str = "/orgs/default/apps/shop/pipelines";

#[test]
fn create_read_update_and_delete_with_etags() {
    let server = Server::start();
    server.create_app("shop");
    let (status, headers, body) = send(&server, "POST", PIPELINES, &[], Some(PIPELINE));
    assert_eq!(status, 201, "{body}");
    let created = json_of(&body);
    assert_eq!(created["id"], "promote");
    assert_eq!(created["name"], "Promote");
    assert_eq!(created["status"], "active");
    assert_eq!(
        created["trigger_types"],
        json!(["pipeline_call", "deployment_request"])
    );
    let etag = created["etag"].as_str().unwrap().to_owned();
    assert_eq!(headers["etag"].to_str().unwrap(), format!("\"{etag}\""));

    let (status, _, body) = send(&server, "POST", PIPELINES, &[], Some(PIPELINE));
    assert_eq!(status, 409, "{body}");

    let one = format!("{PIPELINES}/promote");
    let (status, headers, body) = send(&server, "GET", &one, &[], None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body), created);
    assert_eq!(headers["etag"].to_str().unwrap(), format!("\"{etag}\""));

    let renamed = PIPELINE.replace("name: Promote", "name: Promote twice");
    let (status, _, body) = send(
        &server,
        "PATCH",
        &one,
        &[("if-match", "\"stale\"")],
        Some(&renamed),
    );
    assert_eq!(status, 412, "{body}");
    assert_eq!(json_of(&body)["error"], "precondition_failed");
    let quoted = format!("\"{etag}\"");
    let (status, _, body) = send(
        &server,
        "PATCH",
        &one,
        &[("if-match", &quoted)],
        Some(&renamed),
    );
    assert_eq!(status, 200, "{body}");
    let updated = json_of(&body);
    assert_eq!(updated["name"], "Promote twice");
    assert_ne!(updated["etag"], created["etag"]);
    assert_ne!(updated["version"], created["version"]);

    let other_id = renamed.replace("id: promote", "id: other");
    let (status, _, body) = send(&server, "PATCH", &one, &[], Some(&other_id));
    assert_eq!(status, 400, "{body}");

    // Versions, newest first; the first version is still readable.
    let (status, _, body) = send(&server, "GET", &format!("{one}/versions"), &[], None);
    assert_eq!(status, 200, "{body}");
    let versions = json_of(&body);
    let ids: Vec<&Value> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["id"])
        .collect();
    assert_eq!(ids, [&updated["version"], &created["version"]]);
    assert_eq!(versions[0]["created_by"], versions[1]["created_by"]);
    let first = created["version"].as_str().unwrap();
    let (status, _, body) = send(
        &server,
        "GET",
        &format!("{one}/schema?version={first}"),
        &[],
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body, PIPELINE);
    let (_, _, body) = send(&server, "GET", &format!("{one}?version={first}"), &[], None);
    assert_eq!(json_of(&body)["version"], created["version"]);

    // The current definition as YAML (Humanitec's media type) or as JSON.
    let (status, headers, body) = send(&server, "GET", &format!("{one}/schema"), &[], None);
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-type"],
        "application/x.humanitec-pipelines-v1.0+yaml"
    );
    assert_eq!(body, renamed);
    let (status, _, body) = send(
        &server,
        "GET",
        &format!("{one}/schema"),
        &[("accept", "application/json")],
        None,
    );
    assert_eq!(status, 200, "{body}");
    let as_json = json_of(&body);
    assert_eq!(as_json["name"], "Promote twice");
    assert_eq!(as_json["jobs"]["announce"]["needs"], json!(["approve"]));

    let (status, _, body) = send(&server, "DELETE", &one, &[("if-match", "nope")], None);
    assert_eq!(status, 412, "{body}");
    let (status, _, body) = send(&server, "DELETE", &one, &[], None);
    assert_eq!(status, 204, "{body}");
    let (status, _, body) = send(&server, "GET", &one, &[], None);
    assert_eq!(status, 404);
    error_message(&json_of(&body));
}

#[test]
fn refusals_name_the_line_and_store_nothing() {
    let server = Server::start();
    server.create_app("shop");
    let cases = [
        (
            PIPELINE.replace("actions/humanitec/log", "actions/humanitec/nope"),
            "line 16: unknown action `actions/humanitec/nope`",
        ),
        (
            PIPELINE.replace("needs: [approve]", "needs: [announce]"),
            "line 14: `needs` forms a cycle: announce → announce",
        ),
        (
            PIPELINE.replace("'${{ inputs.env_id }}'", "'${{ inputs.env_id'"),
            "line 12: bad expression: unterminated",
        ),
        (
            PIPELINE.replace(
                "    steps:\n      - uses: actions/humanitec/log",
                "    steps: [\n",
            ),
            "line 18: invalid YAML",
        ),
        (
            PIPELINE.replace("name: Promote", "name: Promote\nowner: me"),
            "line 3: unknown key `owner`",
        ),
        // Runs are not given roles: a permission is refused, not silently ignored.
        (
            PIPELINE.replace(
                "name: Promote",
                "name: Promote\npermissions:\n  application: developer",
            ),
            "line 4: `permissions.application` is not supported",
        ),
    ];
    for (yaml, expected) in cases {
        for path in [PIPELINES.to_owned(), format!("{PIPELINES}?dry_run=true")] {
            let (status, _, body) = send(&server, "POST", &path, &[], Some(&yaml));
            assert_eq!(status, 400, "{expected}: {body}");
            let message = error_message(&json_of(&body)).to_owned();
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }
    // A dry run of a valid definition answers 204 and stores nothing; empty permissions
    // are valid (they delegate nothing).
    for yaml in [
        PIPELINE.to_owned(),
        PIPELINE.replace("name: Promote", "name: Promote\npermissions: {}"),
    ] {
        let (status, _, body) = send(
            &server,
            "POST",
            &format!("{PIPELINES}?dry_run=true"),
            &[],
            Some(&yaml),
        );
        assert_eq!((status, body.as_str()), (204, ""));
    }
    let (_, _, body) = send(&server, "GET", PIPELINES, &[], None);
    assert_eq!(json_of(&body), json!([]));

    let (status, body) = server.raw(
        "POST",
        PIPELINES,
        Some(ADMIN),
        "application/json",
        b"{}".to_vec(),
    );
    assert_eq!(status, 415, "{body}");
    let huge = format!("{PIPELINE}#{}\n", "x".repeat(300 * 1024));
    let (status, _, body) = send(&server, "POST", PIPELINES, &[], Some(&huge));
    assert!(status == 413, "{status} {body}");
    let (status, body) = server.raw(
        "POST",
        PIPELINES,
        Some(ADMIN),
        "application/x-yaml",
        vec![0xff, 0xfe],
    );
    assert_eq!(status, 400, "{body}");
    let (_, _, body) = send(&server, "GET", PIPELINES, &[], None);
    assert_eq!(json_of(&body), json!([]));

    // Only app developers and above may define pipelines.
    let (_, viewer) = server.user("member");
    let response = server
        .http
        .post(format!("{}{PIPELINES}", server.base))
        .bearer_auth(viewer)
        .header("content-type", "application/x-yaml")
        .body(PIPELINE)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

#[test]
fn schema_lists_batches_and_criteria() {
    let server = Server::start();
    server.create_app("shop");
    let (status, _, body) = send(
        &server,
        "GET",
        "/orgs/default/pipeline-schemas/latest",
        &[],
        None,
    );
    assert_eq!(status, 200);
    let schema = json_of(&body);
    assert_eq!(schema["required"], json!(["name", "on", "jobs"]));
    assert!(schema["$defs"]["step"]["properties"]["uses"]["pattern"].is_string());

    // Three pipelines without ids (generated), one of them with metadata; pages of two.
    for (i, meta) in ["", "metadata: {team: blue}\n", ""].iter().enumerate() {
        let yaml = format!(
            "name: p{i}\n{meta}on: {{artefact: {{type: container, include: ['^x$']}}}}\njobs: {{a: {{steps: [{{uses: actions/humanitec/log, with: {{message: m}}}}]}}}}\n"
        );
        let (status, _, body) = send(&server, "POST", PIPELINES, &[], Some(&yaml));
        assert_eq!(status, 201, "{body}");
    }
    let (status, _, body) = send(&server, "POST", PIPELINES, &[], Some(PIPELINE));
    assert_eq!(status, 201, "{body}");
    let (status, headers, body) = send(
        &server,
        "GET",
        &format!("{PIPELINES}?per_page=2"),
        &[],
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(json_of(&body).as_array().unwrap().len(), 2);
    let link = headers["link"].to_str().unwrap().to_owned();
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let (_, headers, body) = send(&server, "GET", &next, &[], None);
    assert_eq!(json_of(&body).as_array().unwrap().len(), 2);
    assert!(headers.get("link").is_none());
    let (_, _, body) = send(
        &server,
        "GET",
        &format!("{PIPELINES}?trigger=artefact"),
        &[],
        None,
    );
    assert_eq!(json_of(&body).as_array().unwrap().len(), 3);
    let (_, _, body) = send(
        &server,
        "GET",
        "/orgs/default/pipelines?metadata[team]=blue&app=shop",
        &[],
        None,
    );
    let found = json_of(&body);
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["name"], "p1");
    let (status, _, _) = send(
        &server,
        "GET",
        &format!("{PIPELINES}?colour=red"),
        &[],
        None,
    );
    assert_eq!(status, 400);

    let (status, _, body) = send(
        &server,
        "GET",
        &format!("{PIPELINES}/promote/batches/artefact"),
        &[],
        None,
    );
    assert_eq!(status, 404);
    error_message(&json_of(&body));

    // Criteria route deployment requests; two may not match the same requests.
    let criteria = format!("{PIPELINES}/promote/criteria");
    let body = json!({"trigger": "deployment_request", "env_id": "production", "deployment_type": "re-deploy"});
    let (status, made) = server.call("POST", &criteria, Some(ADMIN), Some(body.clone()));
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["pipeline_name"], "Promote");
    assert_eq!(made["app_id"], "shop");
    assert_eq!(made["deployment_type"], "redeploy");
    let (status, clash) = server.call("POST", &criteria, Some(ADMIN), Some(body));
    assert_eq!(status, 409, "{clash}");
    let (status, bad) = server.call(
        "POST",
        &criteria,
        Some(ADMIN),
        Some(json!({"trigger": "artefact"})),
    );
    assert_eq!(status, 400, "{bad}");
    let first = json_of(
        &send(
            &server,
            "GET",
            &format!("{PIPELINES}?per_page=1"),
            &[],
            None,
        )
        .2,
    );
    let no_trigger = format!("{PIPELINES}/{}/criteria", first[0]["id"].as_str().unwrap());
    let (status, bad) = server.call(
        "POST",
        &no_trigger,
        Some(ADMIN),
        Some(json!({"trigger": "deployment_request"})),
    );
    assert_eq!(status, 400, "{bad}");
    assert!(error_message(&bad).contains("no deployment_request trigger"));

    let list = "/orgs/default/apps/shop/pipeline-criteria";
    let (status, listed) = server.call(
        "GET",
        &format!("{list}?match[env_id]=production"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(listed, json!([made]));
    let (_, listed) = server.call(
        "GET",
        &format!("{list}?match[env_id]=test"),
        Some(ADMIN),
        None,
    );
    assert_eq!(listed, json!([]));
    let one = format!("{criteria}/{}", made["id"].as_str().unwrap());
    let (status, got) = server.call("GET", &one, Some(ADMIN), None);
    assert_eq!((status, &got), (200, &made));
    let (status, _) = server.call("DELETE", &one, Some(ADMIN), None);
    assert_eq!(status, 204);
    let (status, _) = server.call("GET", &one, Some(ADMIN), None);
    assert_eq!(status, 404);
}

#[test]
fn the_cli_creates_validates_and_lists_pipelines() {
    let server = Server::start();
    server.create_app("shop");
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("pipeline.yaml");
    std::fs::write(&file, PIPELINE).unwrap();
    let path = file.to_str().unwrap();

    let dry = crate::support::admin_cli(&server, home.path())
        .args([
            "--app",
            "shop",
            "create",
            "pipeline",
            "-f",
            path,
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let (_, _, body) = send(&server, "GET", PIPELINES, &[], None);
    assert_eq!(json_of(&body), json!([]));

    let created = crate::support::admin_cli(&server, home.path())
        .args(["--app", "shop", "create", "pipeline", "-f", path])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("promote"));

    let listed = crate::support::admin_cli(&server, home.path())
        .args(["--app", "shop", "get", "pipelines"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.status.success());
    assert!(
        table.contains("promote") && table.contains("Promote"),
        "{table}"
    );

    std::fs::write(
        &file,
        PIPELINE.replace("needs: [approve]", "needs: [nobody]"),
    )
    .unwrap();
    let refused = crate::support::admin_cli(&server, home.path())
        .args(["--app", "shop", "create", "pipeline", "-f", path])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 14: job `announce` needs unknown job `nobody`"),
        "{stderr}"
    );
}
