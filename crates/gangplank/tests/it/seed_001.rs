//! Issue 13's acceptance, end to end on real parts: seed 001's dev → test → prod promotion as a
//! pipeline on a docker-registry with htpasswd auth, started by registering the dev image,
//! gated by approvals (announced to a webhook receiver, the registrant's own refused), with an
//! `http` smoke test against a receiver on 127.0.0.1 and a `run` step on a real `gangplank
//! agent` with Docker; three promotions, the real CLI's rollback, and its write starting no
//! run. Then the same across two registries with other credentials.

use std::process::Command;

use gangplank_testkit::{Auth, Registry};
use serde_json::{Value, json};

use crate::agent_docker::{build_image, require_docker};
use crate::agents::Agent;
use crate::pipeline_runs::{approval_path, create_pipeline, runs_path, wait_run};
use crate::receivers::{PyReceiver, whsec};
use crate::support::{ADMIN, Server, admin_cli, error_message, poll};

pub const USER: &str = "seed-robot";
pub const PASSWORD: &str = "seed-registry-password-41";
pub const CREDS: Option<(&str, &str)> = Some((USER, PASSWORD));
pub const PIPELINE: &str = "repo-1-promotion";

/// The seed's world: one registry holding dev, test and prod, a server that knows it, an app
/// `shop` with environments `test` (whose compose agent runs the `run` step) and `prod`, a
/// receiver for webhooks and the smoke test, and an approver who is not the registrant.
pub struct Seed {
    pub registry: Registry,
    pub server: Server,
    pub receiver: PyReceiver,
    pub approver: String,
    pub approver_id: String,
    _agent: Agent,
    /// The busybox image the `run` step runs, pinned by digest.
    pub busybox: String,
    _dir: tempfile::TempDir,
    _cleanup: RemoveImages,
}

impl Seed {
    /// Starts everything; `receiver_statuses` are the receiver's first answers (then 204).
    pub fn start(receiver_statuses: &str) -> Seed {
        require_docker();
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start_with(Auth::Htpasswd(USER, PASSWORD));
        let host = registry.host();
        let receiver = PyReceiver::start(receiver_statuses, 0);
        let server = Server::start_with(&[
            ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
            ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
        ]);
        let (status, body) = server.call(
            "POST",
            "/orgs/default/registries",
            Some(ADMIN),
            Some(
                json!({"id": "ecr", "registry": host, "type": "basic", "insecure": true,
                        "creds": {"username": USER, "password": PASSWORD}}),
            ),
        );
        assert_eq!(status, 201, "{body}");
        server.create_app("shop");
        for env in ["test", "prod"] {
            let (status, body) = server.call(
                "POST",
                "/orgs/default/apps/shop/envs",
                Some(ADMIN),
                Some(json!({"id": env, "type": "development"})),
            );
            assert_eq!(status, 201, "{body}");
        }
        let (approver_id, approver) = server.user("member");
        let (status, body) = server.call(
            "POST",
            "/orgs/default/apps/shop/users",
            Some(ADMIN),
            Some(json!({"id": approver_id, "role": "owner"})),
        );
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.call(
            "POST",
            "/orgs/default/apps/shop/webhooks",
            Some(ADMIN),
            Some(
                json!({"id": "approvals", "url": receiver.url(), "secret": whsec(),
                        "triggers": [{"scope": "pipeline.approval", "type": "requested"}],
                        "payload": {"event": "${event}", "approval_id": "${approval_id}",
                                    "env_id": "${env_id}", "approve_path": "${approve_path}"}}),
            ),
        );
        assert_eq!(status, 201, "{body}");

        // The `run` step's image, pushed with the agent's own docker login and removed locally
        // so the agent really pulls it.
        let tag = std::process::id().to_string();
        let image = format!("{host}/tools/busybox:{tag}");
        build_image(dir.path(), &image, "1", true);
        let docker_config = dir.path().join("agent-docker");
        docker_login(&docker_config, &host);
        crate::agents::run(
            "docker",
            &["--config", docker_config.to_str().unwrap(), "push", &image],
        );
        crate::agents::run("docker", &["rmi", &image]);
        let digest = registry.skopeo_digest("tools/busybox", &tag, CREDS);
        let busybox = format!("{host}/tools/busybox@{digest}");
        std::fs::write(
            dir.path().join("compose.yml"),
            "services:\n  web:\n    image: unused:1\n",
        )
        .unwrap();
        let agent = Agent::start(
            dir.path(),
            &format!(
                "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ndocker_config = \"{}\"\n[auth]\njwks_url = \"{}/.well-known/jwks.json\"\n[[project]]\nname = \"shop\"\nfiles = [\"{}\"]\nservices = [\"web\"]\n",
                dir.path().join("state").display(),
                docker_config.display(),
                server.base,
                dir.path().join("compose.yml").display()
            ),
        );
        let (status, body) = server.call(
            "PUT",
            "/orgs/default/apps/shop/envs/test/target",
            Some(ADMIN),
            Some(json!({"type": "compose", "agents": [{"url": agent.base, "services": {"web": "web"}}]})),
        );
        assert_eq!(status, 200, "{body}");
        Seed {
            registry,
            server,
            receiver,
            approver,
            approver_id,
            _agent: agent,
            _cleanup: RemoveImages(vec![busybox.clone()]),
            busybox,
            _dir: dir,
        }
    }

    pub fn repo(&self, stage: &str) -> String {
        format!("{}/ecr-{stage}/repo-1", self.registry.host())
    }

    /// Creates promotion.md §5.4's pipeline: the smoke test expects `smoke_status` from the
    /// receiver and the `run` step runs `e2e` (a shell command) in busybox.
    pub fn create_pipeline(&self, smoke_status: u16, e2e: &str) {
        self.create_pipeline_as(PIPELINE, smoke_status, e2e);
    }

    /// [`Seed::create_pipeline`] with another id.
    pub fn create_pipeline_as(&self, id: &str, smoke_status: u16, e2e: &str) {
        let include = regex_escape(&self.repo("dev"));
        let yaml = format!(
            r#"id: {id}
name: repo-1 dev → test → prod
on:
  artefact:
    type: container
    include: ['^{include}$']
    tags: [latest]
concurrency: repo-1
jobs:
  to-test:
    steps:
      - uses: actions/humanitec/approve@v1
        with: {{env_id: test, message: Promote to test?}}
      - id: promote
        uses: actions/gangplank/promote-image@v1
        with:
          source: '${{{{ inputs.image }}}}@${{{{ inputs.digest }}}}'
          destination: {test}
          live_tag: latest
          version_tags: major.minor
      - id: smoke
        uses: actions/gangplank/http@v1
        with:
          method: POST
          url: http://127.0.0.1:{port}/smoke
          body: {{digest: '${{{{ steps.promote.outputs.digest }}}}'}}
          expect_status: {smoke_status}
      - id: e2e
        uses: actions/gangplank/run@v1
        with:
          env_id: test
          image: {busybox}
          command: [sh, -c, '{e2e}']
          env: {{DIGEST: '${{{{ steps.promote.outputs.digest }}}}'}}
          timeout_seconds: 120
  to-prod:
    needs: [to-test]
    steps:
      - uses: actions/humanitec/approve@v1
        with: {{env_id: prod, message: Promote to prod?}}
      - uses: actions/gangplank/promote-image@v1
        with:
          source: '{test}@${{{{ inputs.digest }}}}'
          destination: {prod}
"#,
            test = self.repo("test"),
            prod = self.repo("prod"),
            port = self.receiver.port,
            busybox = self.busybox,
        );
        create_pipeline(&self.server, "shop", &yaml);
    }

    /// Pushes a new dev image as `ecr-dev/repo-1:latest` and registers it as the
    /// administrator (the registrant); returns (digest, the run it started).
    pub fn push_and_register(&self, content: &str) -> (String, Value) {
        self.push_and_register_for(PIPELINE, content)
    }

    /// [`Seed::push_and_register`], the run of pipeline `pipeline`.
    pub fn push_and_register_for(&self, pipeline: &str, content: &str) -> (String, Value) {
        let digest = self
            .registry
            .push_tiny_image_as("ecr-dev/repo-1", "latest", content, CREDS);
        let version = register(&self.server, &self.repo("dev"), "latest", &digest);
        let run = poll("the artefact run to start", || {
            let (_, runs) =
                self.server
                    .call("GET", &runs_path("shop", pipeline), Some(ADMIN), None);
            runs.as_array()?
                .iter()
                .find(|r| r["inputs"]["artefact_version_id"] == version.as_str())
                .cloned()
        });
        (digest, run)
    }

    /// The waiting approval request of `run`'s job `job`.
    pub fn waiting(&self, run: &Value, job: &str) -> Value {
        let path = format!(
            "/orgs/default/apps/shop/approvals?run={}&status=waiting",
            run["id"].as_str().unwrap()
        );
        poll(&format!("the approval of {job} to open"), || {
            let (status, body) = self.server.call("GET", &path, Some(ADMIN), None);
            assert_eq!(status, 200, "{body}");
            body.as_array()?
                .iter()
                .find(|a| a["job_id"] == job)
                .cloned()
        })
    }

    /// Approves `request` as the approver.
    pub fn approve(&self, request: &Value) -> Value {
        let (status, body) = self.server.call(
            "POST",
            &approval_path(request, "approve"),
            Some(&self.approver),
            Some(json!({"comment": "ship it"})),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "approved", "{body}");
        body
    }

    /// Tags of `ecr-STAGE/repo-1` and their digests, sorted by tag.
    pub fn tags(&self, stage: &str) -> Vec<(String, String)> {
        let repository = format!("ecr-{stage}/repo-1");
        let mut tags: Vec<String> = list_tags(&self.registry, &repository, CREDS);
        tags.sort();
        tags.into_iter()
            .map(|t| {
                let digest = self.registry.skopeo_digest(&repository, &t, CREDS);
                (t, digest)
            })
            .collect()
    }

    /// The log lines of `run`'s step `index` of `job`.
    pub fn step_log(&self, run: &Value, job: &str, index: usize) -> Vec<String> {
        let (status, logs) = self.server.call(
            "GET",
            &format!(
                "{}/{}/jobs/{job}/steps/{index}/logs",
                runs_path("shop", run["pipeline_id"].as_str().unwrap()),
                run["id"].as_str().unwrap()
            ),
            Some(ADMIN),
            None,
        );
        assert_eq!(status, 200, "{logs}");
        logs.as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The job `job` of `run`.
    pub fn job(&self, run: &Value, job: &str) -> Value {
        let (status, body) = self.server.call(
            "GET",
            &format!(
                "{}/{}/jobs/{job}",
                runs_path("shop", run["pipeline_id"].as_str().unwrap()),
                run["id"].as_str().unwrap()
            ),
            Some(ADMIN),
            None,
        );
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// Registers container version `name:version@digest` as the administrator; its id.
pub fn register(server: &Server, name: &str, version: &str, digest: &str) -> String {
    let (status, body) = server.call(
        "POST",
        "/orgs/default/artefact-versions",
        Some(ADMIN),
        Some(json!({"type": "container", "name": name, "version": version, "digest": digest})),
    );
    assert!(status == 200 || status == 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// `text` with the regex metacharacters of a registry host and path escaped.
pub fn regex_escape(text: &str) -> String {
    text.replace('.', "\\.")
}

/// The tags of `repository` on `registry`, by skopeo.
pub fn list_tags(
    registry: &Registry,
    repository: &str,
    creds: Option<(&str, &str)>,
) -> Vec<String> {
    let mut command = Command::new("skopeo");
    command.args(["list-tags", "--tls-verify=false"]);
    if let Some((user, password)) = creds {
        command.args(["--creds", &format!("{user}:{password}")]);
    }
    let output = command
        .arg(format!("docker://{}/{repository}", registry.host()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tags: Value = serde_json::from_slice(&output.stdout).unwrap();
    tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect()
}

fn docker_login(config: &std::path::Path, host: &str) {
    let mut login = Command::new("docker")
        .args(["--config", config.to_str().unwrap(), "login", "-u", USER])
        .args(["--password-stdin", host])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), PASSWORD.as_bytes()).unwrap();
    assert!(login.wait().unwrap().success(), "docker login");
}

/// Removes the test's images from the engine.
struct RemoveImages(Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .arg("rmi")
            .arg("-f")
            .args(&self.0)
            .output();
    }
}

fn pair(tag: &str, digest: &str) -> (String, String) {
    (tag.to_owned(), digest.to_owned())
}

#[test]
fn seed_001_promotes_dev_to_test_to_prod_with_approvals_and_rolls_back() {
    let seed = Seed::start("");
    let server = &seed.server;
    // Test already runs an image: the first promotion archives it as 0.1. Prod starts empty.
    let test_before =
        seed.registry
            .push_tiny_image_as("ecr-test/repo-1", "latest", "test-0", CREDS);
    seed.create_pipeline(204, "echo e2e passed for $DIGEST");

    let mut promoted: Vec<String> = Vec::new();
    for n in 1..=3 {
        let (digest, run) = seed.push_and_register(&format!("release-{n}"));
        assert_eq!(run["trigger"], "artefact");
        assert_eq!(run["inputs"]["digest"], digest.as_str(), "{run}");
        let request = seed.waiting(&run, "to-test");
        assert_eq!(request["env_id"], "test");
        if n == 1 {
            // The webhook receiver is told, with the path that approves.
            let records = seed.receiver.wait_for(1);
            let event: Value = serde_json::from_str(records[0]["body"].as_str().unwrap()).unwrap();
            assert_eq!(event["event"], "pipeline.approval.requested", "{event}");
            assert_eq!(event["approval_id"], request["id"], "{event}");
            assert_eq!(
                event["approve_path"].as_str(),
                Some(approval_path(&request, "approve").as_str())
            );
            assert!(records[0]["standard_ok"].as_bool().unwrap(), "signed");
            // The registrant (here the administrator) may not approve their own image.
            let (status, body) = server.call(
                "POST",
                &approval_path(&request, "approve"),
                Some(ADMIN),
                None,
            );
            assert_eq!(status, 403, "{body}");
            assert!(error_message(&body).contains("may not approve"), "{body}");
        }
        seed.approve(&request);
        let to_prod = seed.waiting(&run, "to-prod");

        // In test: the same digest live, the image it replaced under the next version; the
        // smoke test and the container on the agent passed.
        let test = seed.tags("test");
        assert!(test.contains(&pair("latest", &digest)), "{test:?}");
        let archived = if n == 1 {
            test_before.clone()
        } else {
            promoted[n - 2].clone()
        };
        assert!(
            test.contains(&pair(&format!("0.{n}"), &archived)),
            "{test:?}"
        );
        let to_test = seed.job(&run, "to-test");
        let statuses: Vec<&str> = to_test["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["succeeded"; 4], "{to_test}");
        let smoke = seed
            .receiver
            .records()
            .into_iter()
            .filter(|r| r["path"] == "/smoke")
            .collect::<Vec<_>>();
        assert_eq!(smoke.len(), n, "one smoke request per promotion");
        let sent: Value = serde_json::from_str(smoke[n - 1]["body"].as_str().unwrap()).unwrap();
        assert_eq!(sent, json!({"digest": digest}));
        let e2e = seed.step_log(&run, "to-test", 3);
        assert!(
            e2e.iter()
                .any(|l| l.contains(&format!("e2e passed for {digest}"))),
            "{e2e:?}"
        );

        seed.approve(&to_prod);
        wait_run(server, "shop", &run, "succeeded", |r| {
            r["status"] == "succeeded"
        });
        assert_eq!(
            seed.registry
                .skopeo_digest("ecr-prod/repo-1", "latest", CREDS),
            digest
        );
        promoted.push(digest);
    }
    // Prod: 0.1, 0.2 and latest on the three images, in order.
    assert_eq!(
        seed.tags("prod"),
        [
            pair("0.1", &promoted[0]),
            pair("0.2", &promoted[1]),
            pair("latest", &promoted[2])
        ]
    );
    let (status, records) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{records}");
    let newest = &records[0];
    assert_eq!(
        newest["destination"],
        seed.repo("prod").as_str(),
        "{newest}"
    );
    assert_eq!(newest["archive_tag"], "0.2", "{newest}");
    assert_eq!(newest["bytes_moved"], 0, "same registry: blobs mounted");
    assert_eq!(newest["source"]["digest"], promoted[2].as_str(), "{newest}");
    assert!(
        newest["approvals"].to_string().contains(&seed.approver_id),
        "who approved is recorded: {newest}"
    );

    // A pipeline watching prod, to show which registrations start runs.
    let watch = format!(
        "id: prod-watch\nname: prod watch\non:\n  artefact:\n    type: container\n    include: ['^{}$']\n    tags: [latest]\njobs:\n  note:\n    steps:\n      - uses: actions/humanitec/log\n        with: {{message: 'prod moved'}}\n",
        regex_escape(&seed.repo("prod"))
    );
    create_pipeline(server, "shop", &watch);

    // The real CLI rolls prod back.
    let home = tempfile::tempdir().unwrap();
    let output = admin_cli(server, home.path())
        .args(["--app", "shop", "registry", "rollback"])
        .arg(seed.repo("prod"))
        .arg("--yes")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Rollback from v0.3 to v0.2"), "{stdout}");
    // `latest` is back on the image numbered 0.2. docker-registry deletes no tag (ECR would
    // drop 0.2 as the seed does), so 0.2 stays; the rolled-back-from image stays reachable.
    assert_eq!(
        seed.tags("prod"),
        [
            pair("0.1", &promoted[0]),
            pair("0.2", &promoted[1]),
            pair("latest", &promoted[1]),
            pair("rolled-back-0.3", &promoted[2]),
        ]
    );

    // Registering what the rollback wrote starts nothing; a push Gangplank did not make does
    // (and, registered after it, proves the first was judged).
    register(server, &seed.repo("prod"), "latest", &promoted[1]);
    let hotfix = seed
        .registry
        .push_tiny_image_as("ecr-prod/repo-1", "hotfix", "hotfix", CREDS);
    let marker = register(server, &seed.repo("prod"), "latest", &hotfix);
    let runs = poll("the marker's run to start", || {
        let (_, runs) = server.call("GET", &runs_path("shop", "prod-watch"), Some(ADMIN), None);
        let runs = runs.as_array()?.clone();
        runs.iter()
            .any(|r| r["inputs"]["artefact_version_id"] == marker.as_str())
            .then_some(runs)
    });
    assert_eq!(runs.len(), 1, "only the marker started a run: {runs:?}");
}

#[test]
fn a_pipeline_promotes_across_registries_with_other_credentials() {
    let dev = Registry::start_with(Auth::Htpasswd("dev-robot", "dev-password-19"));
    let prod = Registry::start_with(Auth::Htpasswd("prod-robot", "prod-password-83"));
    let (dev_login, prod_login) = (
        ("dev-robot", "dev-password-19"),
        ("prod-robot", "prod-password-83"),
    );
    let (dev_creds, prod_creds) = (Some(dev_login), Some(prod_login));
    let server = Server::start();
    for (id, registry, (user, password)) in [("dev", &dev, dev_login), ("prod", &prod, prod_login)]
    {
        let (status, body) = server.call(
            "POST",
            "/orgs/default/registries",
            Some(ADMIN),
            Some(
                json!({"id": id, "registry": registry.host(), "type": "basic", "insecure": true,
                        "creds": {"username": user, "password": password}}),
            ),
        );
        assert_eq!(status, 201, "{body}");
    }
    server.create_app("shop");
    let source = format!("{}/ecr-dev/repo-1", dev.host());
    let destination = format!("{}/ecr-prod/repo-1", prod.host());
    let yaml = format!(
        "id: across\nname: across\non:\n  artefact:\n    type: container\n    include: ['^{}$']\n    tags: [latest]\njobs:\n  to-prod:\n    steps:\n      - id: promote\n        uses: actions/gangplank/promote-image\n        with: {{destination: {destination}}}\n",
        regex_escape(&source)
    );
    create_pipeline(&server, "shop", &yaml);
    let before = prod.push_tiny_image_as("ecr-prod/repo-1", "latest", "old-prod", prod_creds);
    let digest = dev.push_tiny_image_as("ecr-dev/repo-1", "latest", "across-1", dev_creds);
    let version = register(&server, &source, "latest", &digest);
    let run = poll("the artefact run to start", || {
        let (_, runs) = server.call("GET", &runs_path("shop", "across"), Some(ADMIN), None);
        runs.as_array()?.first().cloned()
    });
    assert_eq!(run["inputs"]["artefact_version_id"], version.as_str());
    wait_run(&server, "shop", &run, "succeeded", |r| {
        r["status"] == "succeeded"
    });
    assert_eq!(
        prod.skopeo_digest("ecr-prod/repo-1", "latest", prod_creds),
        digest,
        "the digest is preserved"
    );
    assert_eq!(
        prod.skopeo_digest("ecr-prod/repo-1", "0.1", prod_creds),
        before
    );
    let (status, records) = server.call(
        "GET",
        "/orgs/default/apps/shop/image-promotions",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{records}");
    let record = &records[0];
    assert_eq!(record["destination"], destination.as_str(), "{record}");
    assert_eq!(record["run_id"], run["id"], "{record}");
    assert!(
        record["bytes_moved"].as_u64().unwrap() > 0,
        "across registries the blobs stream: {record}"
    );
}
