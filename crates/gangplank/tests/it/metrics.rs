//! `/metrics` worth scraping: real deployments, automation decisions, webhook deliveries and
//! digest resolutions move their families (with HELP lines and bounded labels), queue depths
//! are reported, and a separate metrics listener takes `/metrics` off the API listener.

use serde_json::{Value, json};

use gangplank_testkit::Registry;

use crate::receivers::{PyReceiver, free_port, whsec};
use crate::support::{ADMIN, SHA64, Server, error_message, poll};

/// The value of the sample `name{labels…}` (labels in any order, others allowed), if present.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labelset, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| {
                labelset
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            })
            .then(|| value.trim().parse().ok())?
    })
}

/// Labels a sample must carry.
type Labels<'a> = &'a [(&'a str, &'a str)];

/// Polls `scrape` until every `(name, labels, at least)` holds; returns the last text.
fn wait_for_samples(scrape: impl Fn() -> String, wanted: &[(&str, Labels<'_>, f64)]) -> String {
    poll("the metrics to move", || {
        let text = scrape();
        wanted
            .iter()
            .all(|(name, labels, least)| sample(&text, name, labels).is_some_and(|v| v >= *least))
            .then_some(text)
    })
}

fn assert_described(text: &str, families: &[&str]) {
    for family in families {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP line for {family}:\n{text}"
        );
    }
}

fn scrape(server: &Server, url: &str) -> String {
    let response = server.http.get(url).send().expect("scrape");
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.text().unwrap()
}

fn create(server: &Server, path: &str, body: Value, wanted: u16) -> Value {
    let (status, answer) = server.call("POST", path, Some(ADMIN), Some(body));
    assert_eq!(status, wanted, "{path}: {answer}");
    answer
}

fn register(server: &Server, name: &str, version: &str, git_ref: &str) {
    create(
        server,
        "/orgs/default/artefact-versions",
        json!({"type": "container", "name": name, "version": version, "commit": SHA64, "ref": git_ref}),
        200,
    );
}

#[test]
fn deployments_automation_and_webhooks_move_their_families() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("GANGPLANK_AUTOMATION_DEBOUNCE", "0"),
    ]);
    let metrics_url = format!("{}/metrics", server.base);
    let before = scrape(&server, &metrics_url);
    for family in [
        "gangplank_deployments_finished_total",
        "gangplank_automation_decisions_total",
        "gangplank_webhook_delivery_attempts_total",
    ] {
        assert_eq!(sample(&before, family, &[]), None, "fresh server: {before}");
    }

    // The first answer is a 500, so one attempt is retried and the next delivered.
    let receiver = PyReceiver::start("500", 0);
    create(&server, "/orgs/default/apps", json!({"id": "shop"}), 201);
    create(
        &server,
        "/orgs/default/apps/shop/webhooks",
        json!({"id": "done", "url": receiver.url(), "secret": whsec(),
               "triggers": [{"scope": "deployment", "type": "finished"}]}),
        201,
    );
    let name = "registry.test/acme/web";
    register(&server, name, "1.0.0", "refs/heads/main");
    let delta = create(
        &server,
        "/orgs/default/apps/shop/deltas",
        json!({"modules": {"add": {"web": {"spec": {"containers": {"main": {"image": format!("{name}:1.0.0")}}}}}}}),
        200,
    );
    // Through the `none` target, the default of a new environment.
    let deploy = create(
        &server,
        "/orgs/default/apps/shop/envs/development/deploys",
        json!({"delta_id": delta["id"]}),
        201,
    );
    let finished = crate::support::wait_deploy_final(
        &server,
        "shop",
        "development",
        deploy["id"].as_str().unwrap(),
    );
    assert_eq!(finished["status"], "succeeded", "{finished}");

    // A rule deploys the next version from main and skips one from another branch.
    create(
        &server,
        "/orgs/default/apps/shop/envs/development/rules",
        json!({"type": "update", "match_ref": "^refs/heads/main$"}),
        201,
    );
    register(&server, name, "2.0.0", "refs/heads/main");
    register(&server, name, "3.0.0", "refs/heads/feature");

    let succeeded: Labels<'_> = &[("status", "succeeded")];
    let text = wait_for_samples(
        || scrape(&server, &metrics_url),
        &[
            ("gangplank_deployments_finished_total", succeeded, 2.0),
            (
                "gangplank_deployment_duration_seconds_count",
                succeeded,
                2.0,
            ),
            (
                "gangplank_automation_decisions_total",
                &[("outcome", "queued")],
                1.0,
            ),
            (
                "gangplank_automation_decisions_total",
                &[("outcome", "ref")],
                1.0,
            ),
            (
                "gangplank_automation_batches_total",
                &[("outcome", "deployed")],
                1.0,
            ),
            (
                "gangplank_webhook_delivery_attempts_total",
                &[("outcome", "retrying")],
                1.0,
            ),
            (
                "gangplank_webhook_delivery_attempts_total",
                &[("outcome", "delivered")],
                2.0,
            ),
            (
                "gangplank_webhook_delivery_duration_seconds_count",
                &[("outcome", "delivered")],
                2.0,
            ),
        ],
    );
    assert_eq!(
        receiver.records().len(),
        3,
        "one retried and two delivered requests"
    );
    assert_eq!(
        sample(&text, "gangplank_deployments_running", &[]),
        Some(0.0),
        "every deployment that started has ended"
    );
    for queue in [
        "deploy_jobs",
        "webhook_outbox",
        "automation_inbox",
        "digest_resolution",
    ] {
        assert!(
            sample(&text, "gangplank_queue_depth", &[("queue", queue)]).is_some(),
            "no depth for {queue}:\n{text}"
        );
    }
    assert!(
        text.contains("# TYPE gangplank_deployment_duration_seconds histogram")
            && text.contains(
                "gangplank_deployment_duration_seconds_bucket{status=\"succeeded\",le=\"900\"}"
            ),
        "deployment durations use their own buckets, up to the runner's deadline:\n{text}"
    );
    assert_described(
        &text,
        &[
            "gangplank_deployments_finished_total",
            "gangplank_deployment_duration_seconds",
            "gangplank_deployments_running",
            "gangplank_automation_decisions_total",
            "gangplank_automation_batches_total",
            "gangplank_webhook_delivery_attempts_total",
            "gangplank_webhook_delivery_duration_seconds",
            "gangplank_queue_depth",
        ],
    );
    for unbounded in [deploy["id"].as_str().unwrap(), "2.0.0", "127.0.0.1"] {
        assert!(
            !text.contains(unbounded),
            "{unbounded:?} must not be a label value:\n{text}"
        );
    }
}

#[test]
fn a_separate_listener_serves_registry_and_resolution_metrics_and_the_api_does_not() {
    let registry = Registry::start(None);
    let pushed = registry.push_tiny_image("team/web", "1.0", "one");
    let metrics_port = free_port();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let listen = format!("127.0.0.1:{metrics_port}");
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_METRICS_LISTEN", listen.as_str()),
    ]);
    let (status, body) = server.call("GET", "/metrics", None, None);
    assert_eq!(
        status, 404,
        "the API listener does not serve /metrics: {body}"
    );
    error_message(&body);
    let (status, _) = server.call("GET", "/health", None, None);
    assert_eq!(status, 200);
    let other = server
        .http
        .get(format!("http://127.0.0.1:{metrics_port}/health"))
        .send()
        .unwrap();
    assert_eq!(
        other.status().as_u16(),
        404,
        "the metrics listener serves nothing of the API"
    );

    let down = format!("127.0.0.1:{}", free_port());
    for (id, prefix) in [("local", registry.host()), ("down", down.clone())] {
        create(
            &server,
            "/orgs/default/registries",
            json!({"id": id, "registry": prefix, "type": "public", "insecure": true}),
            201,
        );
    }
    let image = format!("{}/team/web", registry.host());
    let created = create(
        &server,
        "/orgs/default/artefact-versions",
        json!({"type": "container", "name": image, "version": "1.0"}),
        200,
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let resolved = poll("the digest to be resolved", || {
        let (_, v) = server.call(
            "GET",
            &format!("/orgs/default/artefact-versions/{id}"),
            Some(ADMIN),
            None,
        );
        (v["digest_status"] == "resolved").then_some(v)
    });
    assert_eq!(resolved["digest"], pushed.as_str());
    create(
        &server,
        "/orgs/default/artefact-versions",
        json!({"type": "container", "name": format!("{down}/team/api"), "version": "2.0"}),
        200,
    );

    let ok: Labels<'_> = &[
        ("org", "default"),
        ("registry", "local"),
        ("operation", "resolve_digest"),
        ("outcome", "ok"),
    ];
    let unreachable: Labels<'_> = &[
        ("org", "default"),
        ("registry", "down"),
        ("operation", "resolve_digest"),
        ("outcome", "unreachable"),
    ];
    let text = wait_for_samples(
        || scrape(&server, &metrics_url),
        &[
            ("gangplank_registry_requests_total", ok, 1.0),
            ("gangplank_registry_requests_total", unreachable, 1.0),
            (
                "gangplank_registry_request_duration_seconds_count",
                &[("registry", "local"), ("operation", "resolve_digest")],
                1.0,
            ),
            (
                "gangplank_digest_resolutions_total",
                &[("outcome", "resolved")],
                1.0,
            ),
            (
                "gangplank_digest_resolutions_total",
                &[("outcome", "failed")],
                1.0,
            ),
            // The unreachable registry's version waits for its retry.
            (
                "gangplank_queue_depth",
                &[("queue", "digest_resolution")],
                1.0,
            ),
            (
                "gangplank_http_requests_total",
                &[
                    ("route", "/orgs/{org}/artefact-versions"),
                    ("method", "POST"),
                ],
                2.0,
            ),
        ],
    );
    assert_described(
        &text,
        &[
            "gangplank_registry_requests_total",
            "gangplank_registry_request_duration_seconds",
            "gangplank_digest_resolutions_total",
        ],
    );
    assert!(
        !text.contains(&registry.host()) && !text.contains(&down),
        "registry addresses are not labels:\n{text}"
    );
}

#[test]
fn ecr_token_exchanges_are_counted_by_registry_and_outcome() {
    let (mut moto, port, key_id, secret) = crate::registries::moto_with_an_ecr_user();
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("AWS_ENDPOINT_URL_ECR", endpoint.as_str()),
    ]);
    for (id, secret) in [("ecr", secret.as_str()), ("ecr-wrong", "not-the-secret")] {
        create(
            &server,
            "/orgs/default/registries",
            json!({"id": id, "registry": format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{id}"),
                   "type": "amazon_ecr", "enable_ci": true, "creds": {"username": key_id, "password": secret}}),
            201,
        );
    }
    for (id, wanted) in [("ecr", 200), ("ecr-wrong", 502)] {
        let (status, body) = server.call(
            "GET",
            &format!("/orgs/default/registries/{id}/creds"),
            Some(ADMIN),
            None,
        );
        assert_eq!(status, wanted, "{id}: {body}");
    }
    let text = scrape(&server, &format!("{}/metrics", server.base));
    let exchanges = |registry: &str, outcome: &str| {
        sample(
            &text,
            "gangplank_registry_requests_total",
            &[
                ("org", "default"),
                ("registry", registry),
                ("operation", "ecr_token"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(exchanges("ecr", "ok"), Some(1.0), "{text}");
    assert_eq!(exchanges("ecr-wrong", "error"), Some(1.0), "{text}");
    assert!(
        !text.contains(&key_id) && !text.contains("amazonaws.com"),
        "no key id or registry address in the metrics:\n{text}"
    );
    let _ = moto.kill();
    let _ = moto.wait();
}
