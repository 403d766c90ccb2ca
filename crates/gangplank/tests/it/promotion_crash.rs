//! Pipeline runs survive SIGKILL of the real `gangplank serve`: a promotion killed between its
//! archive tag and the live tag's move (held there by the test-only `GANGPLANK_TEST_HOLD_AT`)
//! finishes after a restart without doubling or skipping a version; a run killed while it waits
//! for an approval continues from its last completed step once approved; and a pipeline with
//! an unfinished run cannot be deleted (409).

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};

use gangplank_testkit::{Auth, Registry};

use crate::pipeline_runs::{approval_path, create_pipeline, start_run, wait_run, waiting_approval};
use crate::support::{ADMIN, Server, error_message, poll};

const USER: &str = "crash-robot";
const PASSWORD: &str = "crash-registry-password-31";
const CREDS: Option<(&str, &str)> = Some((USER, PASSWORD));
const HOLD: &str = "GANGPLANK_TEST_HOLD_AT";

/// Registers `registry` in Gangplank with the test credentials.
fn register(server: &Server, registry: &Registry) {
    let (status, body) = server.call(
        "POST",
        "/orgs/default/registries",
        Some(ADMIN),
        Some(
            json!({"id": "local", "registry": registry.host(), "type": "basic", "insecure": true,
                    "creds": {"username": USER, "password": PASSWORD}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
}

/// Every tag of `repository` and the digest it names, as skopeo (not Gangplank) sees them.
fn tags(registry: &Registry, repository: &str) -> BTreeMap<String, String> {
    let output = Command::new("skopeo")
        .args([
            "list-tags",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ])
        .arg(format!("docker://{}/{repository}", registry.host()))
        .output()
        .expect("skopeo is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let tag = t.as_str().unwrap().to_owned();
            let digest = registry.skopeo_digest(repository, &tag, CREDS);
            (tag, digest)
        })
        .collect()
}

/// Rows of `sql` on the server's database (tab-separated columns): with psql on PostgreSQL,
/// else with Python's sqlite3 module on the data dir's file (read-only).
fn select(server: &Server, sql: &str) -> Vec<String> {
    let output = match server.database_url() {
        Some(url) => Command::new("psql")
            .args([
                url.as_str(),
                "-qAt",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output(),
        None => Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
                 for row in c.execute(sys.argv[2]): print('\\t'.join(str(v) for v in row))",
                server.data_dir().join("gangplank.db").to_str().unwrap(),
                sql,
            ])
            .output(),
    }
    .expect("run the query");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn promote_pipeline(destination: &str) -> String {
    format!(
        r#"
id: promote
name: Promote
on:
  pipeline_call:
    inputs:
      source: {{type: string, required: true}}
jobs:
  to-test:
    steps:
      - uses: actions/gangplank/promote-image
        with: {{source: "${{{{ inputs.source }}}}", destination: "{destination}"}}
"#
    )
}

/// A server that holds at `promote.archived` (writing `marker`), with a promote pipeline into
/// `ecr-test/repo-1`, which serves `first` as latest, never versioned: the promotion numbers
/// it. `images`: three dev images, `first`, `second` and `third`, by digest.
struct Held {
    registry: Registry,
    server: Server,
    _marker_dir: tempfile::TempDir,
    marker: std::path::PathBuf,
    pipeline: String,
    images: [String; 3],
}

impl Held {
    fn start() -> Held {
        let registry = Registry::start_with(Auth::Htpasswd(USER, PASSWORD));
        let images = [("1", "first"), ("2", "second"), ("3", "third")].map(|(tag, content)| {
            registry.push_tiny_image_as("ecr-dev/repo-1", tag, content, CREDS)
        });
        registry.push_tiny_image_as("ecr-test/repo-1", "latest", "first", CREDS);
        let marker_dir = tempfile::tempdir().unwrap();
        let marker = marker_dir.path().join("held");
        let hold = format!("promote.archived:{}", marker.display());
        let server = Server::start_with(&[("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN), (HOLD, &hold)]);
        register(&server, &registry);
        server.create_app("shop");
        let destination = format!("{}/ecr-test/repo-1", registry.host());
        let pipeline = create_pipeline(&server, "shop", &promote_pipeline(&destination));
        Held {
            registry,
            server,
            _marker_dir: marker_dir,
            marker,
            pipeline,
            images,
        }
    }
}

#[test]
fn sigkill_between_the_archive_tag_and_the_live_move_resumes_without_doubling_a_version() {
    let Held {
        registry,
        mut server,
        _marker_dir,
        marker,
        pipeline: _,
        images: [first, second, third],
    } = Held::start();
    let source = |digest: &str| format!("{}/ecr-dev/repo-1@{digest}", registry.host());

    let run = start_run(
        &server,
        ADMIN,
        "shop",
        "promote",
        json!({"source": source(&second)}),
    );
    // The server is held right after the archive tag's journal entry is done; the live move
    // was journalled `planned` with the plan, before either tag write.
    let held = poll("the promotion to reach its hold point", || {
        std::fs::read_to_string(&marker).ok()
    });
    let (promotion_id, archive_tag) = held.split_once(' ').unwrap();
    assert_eq!(archive_tag, "0.1", "{held}");
    let at_kill = tags(&registry, "ecr-test/repo-1");
    assert_eq!(
        at_kill,
        BTreeMap::from([
            ("0.1".into(), first.clone()),
            ("latest".into(), first.clone())
        ]),
        "held between the archive tag and the live move"
    );
    let journal = |server: &Server| {
        select(
            server,
            &format!(
                "SELECT seq, op, tag, digest_before, digest_after, state FROM image_tag_ops \
                 WHERE promotion_id = '{promotion_id}' ORDER BY seq"
            ),
        )
    };
    assert_eq!(
        journal(&server),
        [
            format!("1\tcopy_blobs\t{second}\t\t{second}\tdone"),
            format!("2\tput_tag\t0.1\t\t{first}\tdone"),
            format!("3\tput_tag\tlatest\t{first}\t{second}\tplanned"),
        ]
    );

    server.crash_and_restart_without(HOLD);
    let finished = wait_run(&server, "shop", &run, "finished", |r| {
        matches!(
            r["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    });
    assert_eq!(
        finished["status"],
        "succeeded",
        "{finished}\n{}",
        server.log()
    );
    assert_eq!(
        tags(&registry, "ecr-test/repo-1"),
        BTreeMap::from([
            ("0.1".into(), first.clone()),
            ("latest".into(), second.clone())
        ]),
        "the old image is 0.1 once; the promoted one is live"
    );
    assert_eq!(
        journal(&server),
        [
            format!("1\tcopy_blobs\t{second}\t\t{second}\tdone"),
            format!("2\tput_tag\t0.1\t\t{first}\tdone"),
            format!("3\tput_tag\tlatest\t{first}\t{second}\tdone"),
        ]
    );
    let (status, records) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{records}");
    assert_eq!(
        records.as_array().unwrap().len(),
        1,
        "one record: {records}"
    );
    let record = &records[0];
    assert_eq!(record["id"], promotion_id);
    assert_eq!(record["status"], "applied");
    assert_eq!(record["run_id"], run["id"]);
    assert_eq!(
        (
            record["version_before"].as_str(),
            record["version_after"].as_str()
        ),
        (Some("0.1"), Some("0.2")),
        "{record}"
    );
    assert_eq!(record["previous_live_digest"], first.as_str());
    assert_eq!(record["new_live_digest"], second.as_str());

    // The next promotion numbers on from there: 0.2 is the image the crash left live.
    let next = start_run(
        &server,
        ADMIN,
        "shop",
        "promote",
        json!({"source": source(&third)}),
    );
    let next = wait_run(&server, "shop", &next, "finished", |r| {
        r["status"] != "queued" && r["status"] != "executing"
    });
    assert_eq!(next["status"], "succeeded", "{next}");
    assert_eq!(
        tags(&registry, "ecr-test/repo-1"),
        BTreeMap::from([
            ("0.1".into(), first),
            ("0.2".into(), second),
            ("latest".into(), third),
        ])
    );
}

#[test]
fn a_run_cancelled_at_the_hold_frees_its_repository_and_numbers_the_old_image_once() {
    let Held {
        registry,
        mut server,
        _marker_dir,
        marker,
        pipeline,
        images: [first, second, third],
    } = Held::start();
    let source = |digest: &str| format!("{}/ecr-dev/repo-1@{digest}", registry.host());
    let run = start_run(
        &server,
        ADMIN,
        "shop",
        "promote",
        json!({"source": source(&second)}),
    );
    poll("the promotion to reach its hold point", || {
        std::fs::read_to_string(&marker).ok()
    });
    // Cancelled while the step is in flight: recorded, honoured at the next step boundary,
    // which after the crash comes before the step runs again.
    let (status, body) = server.call(
        "POST",
        &format!(
            "/orgs/default/apps/shop/pipelines/{pipeline}/runs/{}/cancel",
            run["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204, "{body}");
    server.crash_and_restart_without(HOLD);
    let ended = wait_run(&server, "shop", &run, "finished", |r| {
        r["status"] != "queued" && r["status"] != "executing"
    });
    assert_eq!(ended["status"], "cancelled", "{ended}");
    let (_, records) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions",
        Some(ADMIN),
        None,
    );
    assert_eq!(records[0]["status"], "failed", "{records}");
    assert!(
        records[0]["status_message"]
            .as_str()
            .unwrap()
            .contains("the run ended before the promotion finished"),
        "{records}"
    );
    assert_eq!(
        tags(&registry, "ecr-test/repo-1"),
        BTreeMap::from([
            ("0.1".into(), first.clone()),
            ("latest".into(), first.clone())
        ]),
        "the archive tag was written; latest never moved"
    );

    // The next run is not kept out by the cancelled run's lock, and the old image, numbered
    // 0.1 already, gets no second number.
    let next = start_run(
        &server,
        ADMIN,
        "shop",
        "promote",
        json!({"source": source(&third)}),
    );
    let next = wait_run(&server, "shop", &next, "finished", |r| {
        r["status"] != "queued" && r["status"] != "executing"
    });
    assert_eq!(next["status"], "succeeded", "{next}");
    assert_eq!(
        tags(&registry, "ecr-test/repo-1"),
        BTreeMap::from([
            ("0.1".into(), first.clone()),
            ("latest".into(), third.clone())
        ])
    );
    let (_, records) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions",
        Some(ADMIN),
        None,
    );
    let latest = &records[0];
    assert_eq!(latest["status"], "applied", "{records}");
    assert_eq!(latest["archive_tag"], "", "{latest}");
    assert_eq!(latest["previous_live_digest"], first.as_str());
    assert_eq!(
        (
            latest["version_before"].as_str(),
            latest["version_after"].as_str()
        ),
        (Some("0.1"), Some("0.2")),
        "{latest}"
    );
}

/// A member of `app` with `role`: (user id, token).
fn app_user(server: &Server, app: &str, role: &str) -> (String, String) {
    let (id, token) = server.user("member");
    let (status, body) = server.call(
        "POST",
        &format!("/orgs/default/apps/{app}/users"),
        Some(ADMIN),
        Some(json!({"id": id, "role": role})),
    );
    assert_eq!(status, 200, "{body}");
    (id, token)
}

const GATED: &str = r#"
id: gated
name: Gated
on:
  pipeline_call: {}
jobs:
  ship:
    steps:
      - uses: actions/humanitec/log
        with: {message: before the gate}
      - uses: actions/humanitec/approve
        with: {env_id: development, message: "Ship it?"}
      - uses: actions/humanitec/log
        with: {message: after the gate}
"#;

/// The messages logged by step `index` of the run at `run_path`.
fn step_messages(server: &Server, run_path: &str, index: usize) -> Vec<String> {
    let (status, logs) = server.call(
        "GET",
        &format!("{run_path}/jobs/ship/steps/{index}/logs"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{logs}");
    logs.as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sigkill_while_waiting_for_an_approval_continues_from_the_last_completed_step() {
    let mut server = Server::start();
    server.create_app("shop");
    let pipeline = create_pipeline(&server, "shop", GATED);
    let (_, approver) = app_user(&server, "shop", "developer");
    let run = start_run(&server, ADMIN, "shop", "gated", json!({}));
    let run_path = format!(
        "/orgs/default/apps/shop/pipelines/{pipeline}/runs/{}",
        run["id"].as_str().unwrap()
    );
    let request = waiting_approval(&server, "shop", &run);
    let (_, before) = server.call("GET", &format!("{run_path}/jobs/ship"), Some(ADMIN), None);
    assert_eq!(before["steps"][0]["status"], "succeeded", "{before}");
    let delete = |server: &Server| {
        server.call(
            "DELETE",
            &format!("/orgs/default/apps/shop/pipelines/{pipeline}"),
            Some(ADMIN),
            None,
        )
    };
    let (status, body) = delete(&server);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict", "{body}");
    assert!(error_message(&body).contains("unfinished"), "{body}");

    server.crash_and_restart();
    // Still waiting on the same request after the restart: none other was opened.
    let again = waiting_approval(&server, "shop", &run);
    assert_eq!(again["id"], request["id"]);
    let (status, body) = delete(&server);
    assert_eq!(status, 409, "{body}");
    let (status, body) = server.call(
        "POST",
        &approval_path(&request, "approve"),
        Some(&approver),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "approved", "{body}");
    let finished = wait_run(&server, "shop", &run, "finished", |r| {
        r["status"] != "queued" && r["status"] != "executing"
    });
    assert_eq!(finished["status"], "succeeded", "{finished}");

    // The step completed before the crash did not run again: same row, one log line.
    let (_, after) = server.call("GET", &format!("{run_path}/jobs/ship"), Some(ADMIN), None);
    assert_eq!(after["steps"][0], before["steps"][0], "{after}");
    assert_eq!(step_messages(&server, &run_path, 0), ["before the gate"]);
    assert_eq!(after["steps"][1]["status"], "succeeded", "{after}");
    assert_eq!(after["steps"][2]["status"], "succeeded", "{after}");
    assert_eq!(step_messages(&server, &run_path, 2), ["after the gate"]);
    let (_, requests) = server.call(
        "GET",
        &format!(
            "/orgs/default/apps/shop/approvals?run={}",
            run["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(requests.as_array().unwrap().len(), 1, "{requests}");

    // Finished: the pipeline can go.
    assert_eq!(delete(&server).0, 204);
}

#[test]
fn a_pipeline_with_a_queued_or_executing_run_is_not_deleted() {
    let server = Server::start();
    server.create_app("shop");
    let pipeline = create_pipeline(&server, "shop", GATED);
    let run = start_run(&server, ADMIN, "shop", "gated", json!({}));
    let path = format!("/orgs/default/apps/shop/pipelines/{pipeline}");
    let (status, body) = server.call("DELETE", &path, Some(ADMIN), None);
    assert_eq!(status, 409, "{body}");
    assert!(error_message(&body).contains("1 unfinished run"), "{body}");
    // Refused before anything is removed: the pipeline and its versions are all there.
    assert_eq!(server.call("GET", &path, Some(ADMIN), None).0, 200);
    assert_eq!(
        server
            .call("GET", &format!("{path}/versions"), Some(ADMIN), None)
            .0,
        200
    );
    let (status, _) = server.call(
        "POST",
        &format!("{path}/runs/{}/cancel", run["id"].as_str().unwrap()),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    wait_run(&server, "shop", &run, "cancelled", |r| {
        r["status"] == "cancelled"
    });
    assert_eq!(server.call("DELETE", &path, Some(ADMIN), None).0, 204);
    assert_eq!(server.call("GET", &path, Some(ADMIN), None).0, 404);
}
