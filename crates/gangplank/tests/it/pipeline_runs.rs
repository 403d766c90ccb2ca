//! Pipeline runs through the API and the CLI: inputs checked and frozen, `dry_run`,
//! `Idempotency-Key`, `Etag`/`If-Match`, cancel, restart, delete, jobs and step logs, the
//! org-wide list and its filters, and the `deployment_request` and `artefact` triggers.

use reqwest::header;
use serde_json::{Value, json};

use crate::support::{ADMIN, SHA64, SHA64_B, Server, admin_cli, error_message, poll};

/// Creates pipeline `yaml` in `app` as the administrator and returns its id.
pub fn create_pipeline(server: &Server, app: &str, yaml: &str) -> String {
    let (status, body) = server.raw(
        "POST",
        &format!("/orgs/default/apps/{app}/pipelines"),
        Some(ADMIN),
        "application/x-yaml",
        yaml.as_bytes().to_vec(),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// `…/pipelines/{pipeline}/runs`.
pub fn runs_path(app: &str, pipeline: &str) -> String {
    format!("/orgs/default/apps/{app}/pipelines/{pipeline}/runs")
}

/// Starts a run of `pipeline` with `inputs` as `token`'s user; panics unless 201.
pub fn start_run(server: &Server, token: &str, app: &str, pipeline: &str, inputs: Value) -> Value {
    let (status, run) = server.call(
        "POST",
        &runs_path(app, pipeline),
        Some(token),
        Some(json!({ "inputs": inputs })),
    );
    assert_eq!(status, 201, "{run}");
    run
}

/// The run, once `done` holds for it.
pub fn wait_run(
    server: &Server,
    app: &str,
    run: &Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!(
        "{}/{}",
        runs_path(app, run["pipeline_id"].as_str().unwrap()),
        run["id"].as_str().unwrap()
    );
    poll(&format!("run {} to be {what}", run["id"]), || {
        let (status, body) = server.call("GET", &path, Some(ADMIN), None);
        (status == 200 && done(&body)).then_some(body)
    })
}

/// The waiting approval request of `run`, once it is open.
pub fn waiting_approval(server: &Server, app: &str, run: &Value) -> Value {
    let path = format!(
        "/orgs/default/apps/{app}/approvals?run={}&status=waiting",
        run["id"].as_str().unwrap()
    );
    poll("an approval request to open", || {
        let (status, body) = server.call("GET", &path, Some(ADMIN), None);
        assert_eq!(status, 200, "{body}");
        body.as_array().and_then(|a| a.first().cloned())
    })
}

/// `…/approvals/{id}/{verb}` of `approval`.
pub fn approval_path(approval: &Value, verb: &str) -> String {
    format!(
        "/orgs/default/apps/{}/pipelines/{}/runs/{}/jobs/{}/approvals/{}/{verb}",
        approval["app_id"].as_str().unwrap(),
        approval["pipeline_id"].as_str().unwrap(),
        approval["run_id"].as_str().unwrap(),
        approval["job_id"].as_str().unwrap(),
        approval["id"].as_str().unwrap()
    )
}

/// A pipeline that logs, then waits for an approval, then logs again.
const GATED: &str = r#"
id: gated
name: Gated
on:
  pipeline_call:
    inputs:
      env_id: {type: string, required: true}
      count: {type: number, default: 1}
concurrency:
  group: gated-${{ inputs.env_id }}
jobs:
  ship:
    steps:
      - name: hello
        uses: actions/humanitec/log@v1
        with: {message: "shipping to ${{ inputs.env_id }}"}
      - uses: actions/humanitec/approve@v1
        with: {env_id: "${{ inputs.env_id }}", message: "Ship it?"}
      - uses: actions/humanitec/log
        with: {message: done}
"#;

#[test]
fn runs_are_created_checked_listed_cancelled_restarted_and_deleted() {
    let server = Server::start();
    server.create_app("shop");
    let pipeline = create_pipeline(&server, "shop", GATED);
    let path = runs_path("shop", &pipeline);

    // Inputs are checked against the definition; nothing is stored for a refusal or dry run.
    let (status, body) = server.call("POST", &path, Some(ADMIN), Some(json!({"inputs": {}})));
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("env_id"), "{body}");
    let (status, body) = server.call(
        "POST",
        &path,
        Some(ADMIN),
        Some(json!({"inputs": {"env_id": "development", "count": "three"}})),
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.call(
        "POST",
        &format!("{path}?dry_run=true"),
        Some(ADMIN),
        Some(json!({"inputs": {"env_id": "development"}})),
    );
    assert_eq!(status, 204);
    let (_, listed) = server.call("GET", &path, Some(ADMIN), None);
    assert_eq!(listed, json!([]));

    // One run per Idempotency-Key.
    let send = |key: &str| {
        let response = server
            .http
            .post(format!("{}{path}", server.base))
            .bearer_auth(ADMIN)
            .header("Idempotency-Key", key)
            .json(&json!({"inputs": {"env_id": "development"}}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().unwrap()
    };
    let run = send("k-1");
    assert_eq!(send("k-1")["id"], run["id"]);
    assert_eq!(run["trigger"], "pipeline_call");
    assert_eq!(run["inputs"], json!({"env_id": "development", "count": 1}));
    assert_eq!(run["concurrency_group"], "gated-development");
    assert_eq!(run["env_ids"], json!(["development"]));
    let run_path = format!("{path}/{}", run["id"].as_str().unwrap());

    // It runs up to the approval: the first step's log, the job waiting.
    let executing = wait_run(&server, "shop", &run, "waiting", |r| {
        r["status"] == "executing" && !r["waiting_for"].as_object().unwrap().is_empty()
    });
    let (status, jobs) = server.call("GET", &format!("{run_path}/jobs"), Some(ADMIN), None);
    assert_eq!(status, 200, "{jobs}");
    assert_eq!(jobs[0]["id"], "ship");
    let (status, job) = server.call("GET", &format!("{run_path}/jobs/ship"), Some(ADMIN), None);
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["steps"][0]["status"], "succeeded");
    assert_eq!(job["steps"][1]["uses"], "actions/humanitec/approve");
    let (status, logs) = server.call(
        "GET",
        &format!("{run_path}/jobs/ship/steps/0/logs"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{logs}");
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "shipping to development"),
        "{logs}"
    );
    let (status, _) = server.call(
        "GET",
        &format!("{run_path}/jobs/ship/steps/9/logs"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 404);

    // The org-wide list and its filters.
    let (_, by_status) = server.call(
        "GET",
        "/orgs/default/pipeline-runs?app=shop&status=executing",
        Some(ADMIN),
        None,
    );
    assert_eq!(by_status.as_array().unwrap().len(), 1, "{by_status}");
    let (_, done) = server.call(
        "GET",
        "/orgs/default/pipeline-runs?completed=true",
        Some(ADMIN),
        None,
    );
    assert_eq!(done, json!([]));
    let (status, body) = server.call(
        "GET",
        "/orgs/default/pipeline-runs?status=running",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 400, "{body}");

    // GET answers the Etag; a stale If-Match is refused with 412; a delete waits for the end.
    let response = server
        .http
        .get(format!("{}{run_path}", server.base))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(etag, format!("\"{}\"", executing["etag"].as_str().unwrap()));
    let stale = server
        .http
        .post(format!("{}{run_path}/cancel", server.base))
        .bearer_auth(ADMIN)
        .header(header::IF_MATCH, "\"not-the-etag\"")
        .send()
        .unwrap();
    assert_eq!(stale.status(), 412);
    let (status, body) = server.call("DELETE", &run_path, Some(ADMIN), None);
    assert_eq!(status, 409, "{body}");

    // Cancel: 204, the run ends cancelled and its approval with it; again: 204.
    let cancel = server
        .http
        .post(format!("{}{run_path}/cancel", server.base))
        .bearer_auth(ADMIN)
        .header(header::IF_MATCH, etag)
        .send()
        .unwrap();
    assert_eq!(cancel.status(), 204);
    let cancelled = wait_run(&server, "shop", &run, "cancelled", |r| {
        r["status"] == "cancelled"
    });
    assert!(cancelled["completed_at"].is_string(), "{cancelled}");
    let (_, approvals) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/shop/approvals?run={}",
            run["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(approvals[0]["status"], "cancelled", "{approvals}");
    let (status, _) = server.call("POST", &format!("{run_path}/cancel"), Some(ADMIN), None);
    assert_eq!(status, 204);

    // Restart: a new run with the same inputs.
    let (status, again) = server.call("POST", &format!("{run_path}/restart"), Some(ADMIN), None);
    assert_eq!(status, 201, "{again}");
    assert_ne!(again["id"], run["id"]);
    assert_eq!(again["inputs"], run["inputs"]);
    assert_eq!(again["pipeline_version"], run["pipeline_version"]);

    // Delete the completed one.
    let (status, _) = server.call("DELETE", &run_path, Some(ADMIN), None);
    assert_eq!(status, 204);
    let (status, _) = server.call("GET", &run_path, Some(ADMIN), None);
    assert_eq!(status, 404);
}

#[test]
fn a_deployment_request_runs_the_pipeline_its_criteria_pick() {
    let server = Server::start();
    server.create_app("shop");
    let pipeline = create_pipeline(
        &server,
        "shop",
        "id: gate\nname: Gate\non:\n  deployment_request: {}\njobs:\n  only:\n    steps:\n      - uses: actions/humanitec/log\n        with: {message: \"deploying ${{ inputs.delta_id }}\"}\n",
    );
    let (status, body) = server.call(
        "POST",
        &format!("/orgs/default/apps/shop/pipelines/{pipeline}/criteria"),
        Some(ADMIN),
        Some(json!({"trigger": "deployment_request", "env_id": "development"})),
    );
    assert_eq!(status, 201, "{body}");
    let path = "/orgs/default/apps/shop/pipeline-runs";
    let request = json!({"trigger": "deployment_request", "env_id": "development", "delta_id": "d-1", "comment": "go"});
    let (status, _) = server.call(
        "POST",
        &format!("{path}?dry_run=true"),
        Some(ADMIN),
        Some(request.clone()),
    );
    assert_eq!(status, 204);
    let (status, run) = server.call("POST", path, Some(ADMIN), Some(request));
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["pipeline_id"], pipeline.as_str());
    assert_eq!(run["trigger"], "deployment_request");
    assert_eq!(
        run["inputs"],
        json!({"env_id": "development", "delta_id": "d-1", "comment": "go"})
    );
    wait_run(&server, "shop", &run, "succeeded", |r| {
        r["status"] == "succeeded"
    });

    // No criteria for this environment; two sources at once; a foreign trigger.
    let (status, _) = server.call(
        "POST",
        "/orgs/default/apps/shop/envs",
        Some(ADMIN),
        Some(json!({"id": "staging", "type": "development"})),
    );
    assert_eq!(status, 201);
    for (body, code) in [
        (
            json!({"trigger": "deployment_request", "env_id": "staging"}),
            422,
        ),
        (
            json!({"trigger": "deployment_request", "env_id": "nowhere"}),
            400,
        ),
        (
            json!({"trigger": "deployment_request", "env_id": "development", "delta_id": "a", "set_id": "b"}),
            400,
        ),
        (
            json!({"trigger": "pipeline_call", "env_id": "development"}),
            400,
        ),
    ] {
        let (status, answer) = server.call("POST", path, Some(ADMIN), Some(body.clone()));
        assert_eq!(status, code, "{body} → {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
}

#[test]
fn a_registered_version_starts_each_matching_pipeline_once() {
    let server = Server::start();
    server.create_app("shop");
    server.create_app("billing");
    let yaml = |id: &str| {
        format!(
            "id: {id}\nname: {id}\non:\n  artefact:\n    type: container\n    include: ['^registry\\.example/team/app$']\n    tags: [latest]\njobs:\n  note:\n    steps:\n      - uses: actions/humanitec/log\n        with: {{message: \"got ${{{{ inputs.image }}}}:${{{{ inputs.version }}}}\"}}\n"
        )
    };
    let shop = create_pipeline(&server, "shop", &yaml("promote"));
    let billing = create_pipeline(&server, "billing", &yaml("promote-too"));
    let register = |name: &str, version: &str, digest: &str| {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/artefact-versions",
            Some(ADMIN),
            Some(json!({"type": "container", "name": name, "version": version, "digest": format!("sha256:{digest}")})),
        );
        assert!(status == 200 || status == 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    let latest = register("registry.example/team/app", "latest", SHA64);
    let runs_of = |app: &str, pipeline: &str| {
        let (_, runs) = server.call("GET", &runs_path(app, pipeline), Some(ADMIN), None);
        runs.as_array().unwrap().clone()
    };
    let run = poll("the artefact runs to start", || {
        let (a, b) = (runs_of("shop", &shop), runs_of("billing", &billing));
        (a.len() == 1 && b.len() == 1).then(|| a[0].clone())
    });
    assert_eq!(run["trigger"], "artefact");
    assert_eq!(run["inputs"]["artefact_version_id"], latest.as_str());
    assert_eq!(run["inputs"]["image"], "registry.example/team/app");
    assert_eq!(run["inputs"]["version"], "latest");
    assert_eq!(run["inputs"]["registrant"], run["created_by"]);
    // Another tag and another image start nothing; a marker version proves the inbox moved on.
    register("registry.example/team/app", "1.2.3", SHA64);
    register("registry.example/team/other", "latest", SHA64);
    // The same version again is the same version: nothing new starts for it.
    assert_eq!(
        register("registry.example/team/app", "latest", SHA64),
        latest
    );
    // A new push of `latest` (another digest) is a new version.
    let marker = register("registry.example/team/app", "latest", SHA64_B);
    poll("the marker's runs", || {
        let (a, b) = (runs_of("shop", &shop), runs_of("billing", &billing));
        (a.len() == 2 && b.len() == 2).then_some(())
    });
    let inputs: Vec<Value> = runs_of("shop", &shop)
        .iter()
        .map(|r| r["inputs"]["artefact_version_id"].clone())
        .collect();
    assert_eq!(inputs, [json!(marker), json!(latest)]);
}

#[test]
fn a_workload_version_starts_its_workload_pipelines_only() {
    let server = Server::start();
    server.create_app("shop");
    let yaml = |id: &str, kind: &str| {
        format!(
            "id: {id}\nname: {id}\non:\n  artefact:\n    type: {kind}\n    include: ['^team/']\njobs:\n  note:\n    steps:\n      - uses: actions/humanitec/log\n        with: {{message: \"got ${{{{ inputs.artefact_name }}}}:${{{{ inputs.version }}}}\"}}\n"
        )
    };
    let workloads = create_pipeline(&server, "shop", &yaml("on-workload", "workload"));
    let containers = create_pipeline(&server, "shop", &yaml("on-container", "container"));
    let register = |body: Value| {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/artefact-versions",
            Some(ADMIN),
            Some(body),
        );
        assert!(status == 200 || status == 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    let spec = json!({"apiVersion": "score.dev/v1b1", "metadata": {"name": "web"},
                      "containers": {"web": {"image": "busybox"}}});
    let web =
        register(json!({"type": "workload", "name": "team/web", "version": "1.2.3", "spec": spec}));
    let runs_of = |pipeline: &str| {
        let (_, runs) = server.call("GET", &runs_path("shop", pipeline), Some(ADMIN), None);
        runs.as_array().unwrap().clone()
    };
    let run = poll("the workload's run to start", || {
        runs_of(&workloads).first().cloned()
    });
    assert_eq!(run["trigger"], "artefact");
    assert_eq!(run["inputs"]["artefact_version_id"], web.as_str());
    assert_eq!(run["inputs"]["artefact_name"], "team/web");
    assert_eq!(run["inputs"]["version"], "1.2.3");
    // A workload is no image: the runner pins nothing, so the run goes on to succeed.
    assert_eq!(run["inputs"]["image"], "");
    assert_eq!(run["inputs"]["digest"], "");
    let done = wait_run(&server, "shop", &run, "finished", |r| {
        matches!(
            r["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    });
    assert_eq!(done["status"], "succeeded", "{done}");
    let (status, logs) = server.call(
        "GET",
        &format!(
            "{}/{}/jobs/note/steps/0/logs",
            runs_path("shop", &workloads),
            run["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{logs}");
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "got team/web:1.2.3"),
        "{logs}"
    );
    // A container version starts the container pipeline only; once it has, the workload
    // version has long been judged, and started nothing there.
    register(
        json!({"type": "container", "name": "team/app", "version": "latest",
                    "digest": format!("sha256:{SHA64}")}),
    );
    poll("the container's run to start", || {
        (runs_of(&containers).len() == 1).then_some(())
    });
    assert_eq!(runs_of(&workloads).len(), 1);
    assert_eq!(runs_of(&containers)[0]["inputs"]["image"], "team/app");
}

#[test]
fn the_cli_runs_approves_shows_logs_and_cancels() {
    let server = Server::start();
    server.create_app("shop");
    create_pipeline(&server, "shop", GATED);
    let home = tempfile::tempdir().unwrap();
    let cli = || {
        let mut command = admin_cli(&server, home.path());
        command.args(["--app", "shop", "-o", "json"]);
        command
    };
    let out = cli()
        .args([
            "run",
            "pipeline",
            "gated",
            "--input",
            "env_id=development",
            "--input",
            "count:=2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["inputs"], json!({"env_id": "development", "count": 2}));
    let run_id = run["id"].as_str().unwrap();
    waiting_approval(&server, "shop", &run);
    let out = cli().args(["get", "approvals"]).output().unwrap();
    let approvals: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(approvals[0]["run_id"], run_id);
    let out = cli().args(["get", "runs"]).output().unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["id"], run_id);

    // The administrator started the run: approving it is self-approval, refused.
    let out = cli()
        .args(["approve", run_id, "-m", "mine"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cli()
        .args(["logs", "run", run_id, "--step", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("shipping to development"));

    let out = cli().args(["cancel", "run", run_id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_run(&server, "shop", &run, "cancelled", |r| {
        r["status"] == "cancelled"
    });
    let out = cli().args(["deny", run_id]).output().unwrap();
    assert!(!out.status.success(), "nothing waits any more");
    let out = cli()
        .args(["run", "pipeline", "gated", "--input", "bad"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_cli_shows_a_run_with_its_jobs_and_steps_and_starts_runs_idempotently() {
    let server = Server::start();
    server.create_app("shop");
    create_pipeline(&server, "shop", GATED);
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let mut command = admin_cli(&server, home.path());
        command.args(args).output().unwrap()
    };
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let start = |key: &str| -> Value {
        let out = cli(&[
            "--app",
            "shop",
            "-o",
            "json",
            "run",
            "pipeline",
            "gated",
            "--input",
            "env_id=development",
            "--idempotency-key",
            key,
        ]);
        serde_json::from_str(&ok(&out)).unwrap()
    };

    // The same key twice: one run, answered twice. Another key: another run.
    let run = start("ci-build-42");
    let run_id = run["id"].as_str().unwrap();
    assert_eq!(start("ci-build-42")["id"], run_id);
    let other = start("ci-build-43");
    assert_ne!(other["id"], run_id);
    let (status, runs) = server.call("GET", &runs_path("shop", "gated"), Some(ADMIN), None);
    assert_eq!(status, 200, "{runs}");
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    // A key no header can carry is the caller's mistake; a reserved one the server refuses.
    let out = cli(&[
        "--app",
        "shop",
        "run",
        "pipeline",
        "gated",
        "--idempotency-key",
        "a\nb",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = cli(&[
        "--app",
        "shop",
        "run",
        "pipeline",
        "gated",
        "-i",
        "env_id=development",
        "--idempotency-key",
        "artefact:1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: 400") && stderr.contains("Idempotency-Key"),
        "{stderr}"
    );

    // One run, its jobs and their steps: JSON (with or without --app), YAML and a table.
    let approval = waiting_approval(&server, "shop", &run);
    for args in [
        &["--app", "shop", "-o", "json", "get", "runs", run_id][..],
        &["-o", "json", "get", "run", run_id][..],
    ] {
        let shown: Value = serde_json::from_str(&ok(&cli(args))).unwrap();
        assert_eq!(shown["id"], run_id, "{shown}");
        assert_eq!(shown["status"], "executing", "{shown}");
        assert_eq!(
            shown["inputs"],
            json!({"env_id": "development", "count": 1})
        );
        let job = &shown["jobs"][0];
        assert_eq!(shown["jobs"].as_array().unwrap().len(), 1, "{shown}");
        assert_eq!(job["id"], "ship", "{shown}");
        assert_eq!(
            job["waiting_for"],
            format!("approval({})", approval["id"].as_str().unwrap()).as_str()
        );
        let steps = job["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2, "the third has not started: {shown}");
        assert_eq!(
            (&steps[0]["name"], &steps[0]["status"]),
            (&json!("hello"), &json!("succeeded"))
        );
        assert_eq!(steps[1]["status"], "executing", "{shown}");
        assert!(
            steps[1]["uses"].as_str().unwrap().contains("approve"),
            "{shown}"
        );
    }
    let yaml = ok(&cli(&[
        "--app", "shop", "-o", "yaml", "get", "runs", run_id,
    ]));
    let shown: Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(shown["id"], run_id, "{yaml}");
    assert_eq!(
        shown["jobs"][0]["steps"][0]["status"], "succeeded",
        "{yaml}"
    );
    let table = ok(&cli(&[
        "--app", "shop", "-o", "table", "get", "runs", run_id,
    ]));
    let lines: Vec<&str> = table.lines().collect();
    let row = |start: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(start))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no line starting {start:?}:\n{table}"))
    };
    assert_eq!(row("ID")[..3], ["ID", "PIPELINE", "STATUS"], "{table}");
    assert_eq!(
        row(run_id)[..4],
        [run_id, "gated", "executing", "pipeline_call"],
        "{table}"
    );
    assert_eq!(row("JOB  ")[..2], ["JOB", "STATUS"], "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("JOB   STEP") || l.starts_with("JOB  STEP")),
        "{table}"
    );
    let ship: Vec<Vec<&str>> = lines
        .iter()
        .filter(|l| l.starts_with("ship "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(ship.len(), 3, "a job row and two step rows: {table}");
    assert_eq!(ship[0][..2], ["ship", "executing"], "{table}");
    assert_eq!(ship[1][..3], ["ship", "0", "hello"], "{table}");
    assert!(ship[1].contains(&"succeeded"), "{table}");

    // An unknown run: one line, a usage error.
    let out = cli(&["--app", "shop", "get", "runs", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no pipeline run nope in app shop\n"
    );
}

#[test]
fn run_bodies_are_bounded() {
    let server = Server::start();
    server.create_app("shop");
    let max = gangplank_core::limits::MAX_RUN_INPUTS;
    let declared: String = (0..=max)
        .map(|i| format!("      i{i}: {{type: string}}\n"))
        .collect();
    let yaml = format!(
        "id: wide\nname: Wide\non:\n  pipeline_call:\n    inputs:\n{declared}jobs:\n  only:\n    steps:\n      - uses: actions/humanitec/log\n        with: {{message: hi}}\n"
    );
    create_pipeline(&server, "shop", &yaml);
    let inputs = |n: usize| -> Value {
        Value::Object((0..n).map(|i| (format!("i{i}"), json!("v"))).collect())
    };
    let path = format!("{}?dry_run=true", runs_path("shop", "wide"));
    let (status, body) = server.call(
        "POST",
        &path,
        Some(ADMIN),
        Some(json!({"inputs": inputs(max)})),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.call(
        "POST",
        &path,
        Some(ADMIN),
        Some(json!({"inputs": inputs(max + 1)})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).starts_with("inputs:"), "{body}");
    // The Idempotency-Key header is bounded too.
    let response = server
        .http
        .post(format!("{}{path}", server.base))
        .bearer_auth(ADMIN)
        .header(
            "Idempotency-Key",
            "k".repeat(gangplank_core::limits::MAX_REF_LEN + 1),
        )
        .json(&json!({"inputs": {}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    // The artefact trigger's keys are reserved: a client taking one would stop the run the
    // version's registration starts.
    let response = server
        .http
        .post(format!("{}{}", server.base, runs_path("shop", "wide")))
        .bearer_auth(ADMIN)
        .header(
            "Idempotency-Key",
            "artefact:0190b4a0-0000-7000-8000-000000000001",
        )
        .json(&json!({"inputs": {}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().unwrap();
    assert!(
        error_message(&body).starts_with("Idempotency-Key"),
        "{body}"
    );
}

#[test]
fn a_run_list_takes_many_values_of_a_filter() {
    let server = Server::start();
    // Eleven values or more: each must bind its own parameter (`?1` is not the start of `?10`).
    let query: Vec<String> = (0..12).map(|i| format!("app=app-{i}")).collect();
    let statuses = ["queued", "executing", "succeeded", "failed", "cancelled"]
        .iter()
        .cycle()
        .take(12)
        .map(|s| format!("status={s}"))
        .collect::<Vec<_>>();
    let (status, body) = server.call(
        "GET",
        &format!(
            "/orgs/default/pipeline-runs?{}&{}",
            query.join("&"),
            statuses.join("&")
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!([]));
}
