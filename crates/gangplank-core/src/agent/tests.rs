//! Table tests of the agent decisions: body decoding, claims, health, overrides, plans and
//! applies.

use serde_json::{Map, Value, json};

use super::*;

fn b64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(text)
        .into_bytes()
}

#[test]
fn bodies_decode_like_the_seed() {
    let ok = |service: &str, image: Option<&str>| DeployBody {
        service: service.to_owned(),
        image: image.map(str::to_owned),
        ..DeployBody::default()
    };
    let cases: Vec<(Vec<u8>, Result<DeployBody, BodyError>)> = vec![
        (b"eyJzZXJ2aWNlIjoid2ViIn0=".to_vec(), Ok(ok("web", None))),
        (
            b"  eyJzZXJ2aWNlIjoid2ViIn0=\n".to_vec(),
            Ok(ok("web", None)),
        ),
        // GNU base64 wraps at 76 columns; Go skips the line breaks.
        (
            b"eyJzZXJ2aWNl\r\nIjoid2ViIn0=".to_vec(),
            Ok(ok("web", None)),
        ),
        (b64(r#"{"SERVICE":"web"}"#), Ok(ok("web", None))),
        (b64(r#"{"service":"a","Service":"b"}"#), Ok(ok("b", None))),
        (
            b64(r#"{"service":"web","image":"r/web:2","extra":[1,{"x":2}]}"#),
            Ok(ok("web", Some("r/web:2"))),
        ),
        (
            b64(r#"{"service":null,"image":""}"#),
            Err(BodyError::ServiceRequired),
        ),
        (b64(r#"{"service":"   "}"#), Err(BodyError::ServiceRequired)),
        (b64("null"), Err(BodyError::ServiceRequired)),
        (b64("{}"), Err(BodyError::ServiceRequired)),
        // Padding is required, as in Go's StdEncoding.
        (b"eyJzZXJ2aWNlIjoid2ViIn0".to_vec(), Err(BodyError::Base64)),
        (b"not base64!".to_vec(), Err(BodyError::Base64)),
        (b"".to_vec(), Err(BodyError::Json)),
        (b64("[]"), Err(BodyError::Json)),
        (b64(r#"{"service":5}"#), Err(BodyError::Json)),
        (b64("{\"service\":\"web\""), Err(BodyError::Json)),
    ];
    for (raw, expected) in cases {
        assert_eq!(
            decode_deploy_body(&raw, false),
            expected,
            "{}",
            String::from_utf8_lossy(&raw)
        );
    }
}

#[test]
fn json_bodies_carry_gangplank_fields() {
    let body = decode_deploy_body(
        br#"{"id":"d1-web","service":"web","image":"r/web@sha256:00","project":"shop"}"#,
        true,
    )
    .unwrap();
    assert_eq!(body.id.as_deref(), Some("d1-web"));
    assert_eq!(body.project.as_deref(), Some("shop"));
    assert_eq!(body.image.as_deref(), Some("r/web@sha256:00"));
    // The seed's clients may label base64 as JSON: it is still read as base64.
    assert_eq!(
        decode_deploy_body(b"eyJzZXJ2aWNlIjoid2ViIn0=", true).map(|b| b.service),
        Ok("web".to_owned())
    );
    assert_eq!(
        decode_deploy_body(b"{\"service\":", true),
        Err(BodyError::Json)
    );
}

fn claims(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn claims_policy() {
    let now = 1_700_000_000;
    let open = ClaimsPolicy::default();
    let strict = ClaimsPolicy {
        audience: Some("agent-1".to_owned()),
        issuers: vec!["gangplank".to_owned()],
        require_jti: true,
    };
    let cases = [
        (
            json!({"iss": "github-actions", "exp": now + 300}),
            &open,
            Ok((None, now + 300)),
        ),
        (
            json!({"iss": "x", "exp": now + 900, "jti": "j"}),
            &open,
            Ok((Some("j".to_owned()), now + 900)),
        ),
        (json!({"iss": "x"}), &open, Err(ClaimsError::MissingExp)),
        (
            json!({"iss": "x", "exp": "soon"}),
            &open,
            Err(ClaimsError::Malformed("exp")),
        ),
        (
            json!({"iss": "x", "exp": now}),
            &open,
            Err(ClaimsError::Expired(now)),
        ),
        (
            json!({"iss": "x", "exp": now + 901}),
            &open,
            Err(ClaimsError::TooLong(now + 901)),
        ),
        (
            json!({"iss": "x", "exp": now + 60, "nbf": now + 10}),
            &open,
            Err(ClaimsError::NotYetValid(now + 10)),
        ),
        (
            json!({"exp": now + 60}),
            &open,
            Err(ClaimsError::MissingIssuer),
        ),
        (
            json!({"iss": 7, "exp": now + 60}),
            &open,
            Err(ClaimsError::MissingIssuer),
        ),
        (
            json!({"iss": "x", "exp": now + 60, "jti": 3}),
            &open,
            Err(ClaimsError::Malformed("jti")),
        ),
        (
            json!({"iss": "gangplank", "exp": now + 60, "aud": ["agent-1"], "jti": "j"}),
            &strict,
            Ok((Some("j".to_owned()), now + 60)),
        ),
        (
            json!({"iss": "gangplank", "exp": now + 60, "aud": "agent-2", "jti": "j"}),
            &strict,
            Err(ClaimsError::Audience("agent-1".to_owned())),
        ),
        (
            json!({"iss": "ci", "exp": now + 60, "aud": "agent-1", "jti": "j"}),
            &strict,
            Err(ClaimsError::Issuer("ci".to_owned())),
        ),
        (
            json!({"iss": "gangplank", "exp": now + 60, "aud": "agent-1"}),
            &strict,
            Err(ClaimsError::MissingJti),
        ),
    ];
    for (value, policy, expected) in cases {
        assert_eq!(
            check_claims(&claims(value.clone()), policy, now),
            expected,
            "{value}"
        );
    }
}

fn state(status: &str, health: Option<&str>, running_for_ms: i64, restarts: i64) -> ContainerState {
    ContainerState {
        status: status.to_owned(),
        health: health.map(str::to_owned),
        running_for_ms,
        restart_count: restarts,
    }
}

#[test]
fn health_verdicts() {
    use HealthVerdict::*;
    let grace = 5_000;
    let timeout = 60_000;
    let cases = [
        (state("running", Some("healthy"), 100, 0), 100, Healthy),
        (state("running", Some("starting"), 100, 0), 100, Waiting),
        (
            state("running", Some("starting"), 100, 0),
            60_000,
            Unhealthy("the container was not healthy within 60 s".to_owned()),
        ),
        (
            state("running", Some("unhealthy"), 100, 0),
            100,
            Unhealthy("the container's healthcheck failed".to_owned()),
        ),
        (state("running", None, 4_999, 0), 4_999, Waiting),
        (state("running", None, 5_000, 0), 5_000, Healthy),
        (
            state("exited", None, 0, 0),
            10,
            Unhealthy("the container exited".to_owned()),
        ),
        (
            state("restarting", None, 0, 1),
            10,
            Unhealthy("the container restarted".to_owned()),
        ),
        (state("created", None, 0, 0), 10, Waiting),
    ];
    for (s, elapsed, expected) in cases {
        assert_eq!(
            judge_health(&s, grace, elapsed, timeout, 0),
            expected,
            "{s:?}"
        );
    }
}

#[test]
fn override_documents() {
    let empty = json!({});
    let one = with_image(&empty, Some("3.8"), "web", Some("r/web:2@sha256:aa"));
    assert_eq!(
        one,
        json!({"version": "3.8", "services": {"web": {"image": "r/web:2@sha256:aa"}}})
    );
    let two = with_image(&one, None, "api", Some("r/api:1"));
    assert_eq!(override_image(&two, "web"), Some("r/web:2@sha256:aa"));
    assert_eq!(override_image(&two, "api"), Some("r/api:1"));
    assert!(two.get("version").is_none());
    let unpinned = with_image(&two, None, "web", None);
    assert_eq!(override_image(&unpinned, "web"), None);
    assert_eq!(override_image(&unpinned, "api"), Some("r/api:1"));
}

fn set_of(modules: Value) -> crate::set::Set {
    serde_json::from_value(json!({ "modules": modules })).unwrap()
}

#[test]
fn plans_send_every_mapped_workload() {
    let set = set_of(json!({
        "web": {"spec": {"containers": {"main": {"image": "r/web:2@sha256:aa"}}}},
        "api": {"spec": {"containers": {"api": {"image": "r/api:1"}, "sidecar": {"image": "r/side:2"}}}},
        "two": {"spec": {"containers": {"a": {"image": "r/a:1"}, "b": {"image": "r/b:1"}}}},
    }));
    let services: std::collections::BTreeMap<String, String> = [
        ("web", "frontend"),
        ("api", "api"),
        ("api/sidecar", "side"),
        ("two", "two"),
        ("absent", "absent"),
        ("web/nope", "x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (desired, problems) = plan_services(&set, &services);
    let sent: Vec<(&str, &str, &str)> = desired
        .iter()
        .map(|u| (u.workload.as_str(), u.service.as_str(), u.image.as_str()))
        .collect();
    // Unchanged images are sent too: the agent, not the server, knows what runs.
    assert_eq!(
        sent,
        [
            ("api", "api", "r/api:1"),
            ("api/sidecar", "side", "r/side:2"),
            ("web", "frontend", "r/web:2@sha256:aa"),
        ]
    );
    let failed: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.workload.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            (
                "two",
                "workload two has 2 containers: map two/<container> to the service"
            ),
            ("web/nope", "workload web has no container web/nope"),
        ]
    );
    // The same set planned twice is the same desired state (what a rollback sends).
    assert_eq!(plan_services(&set, &services).0, desired);
    let (nothing, none) = plan_services(&set_of(json!({})), &services);
    assert!(nothing.is_empty() && none.is_empty());
}

#[test]
fn apply_requests_are_checked() {
    let services = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let web = services(&[("web", "r/web:1")]);
    let long_id = "a".repeat(129);
    let many: std::collections::BTreeMap<String, String> = (0..=MAX_APPLY_SERVICES)
        .map(|n| (format!("s{n}"), "r/x:1".to_owned()))
        .collect();
    let cases = [
        ("0190a-b.c_d:e", web.clone(), Ok(())),
        ("", web.clone(), Err(ApplyRequestError::Id)),
        (long_id.as_str(), web.clone(), Err(ApplyRequestError::Id)),
        ("a/b", web.clone(), Err(ApplyRequestError::Id)),
        ("a b", web.clone(), Err(ApplyRequestError::Id)),
        ("d1", services(&[]), Err(ApplyRequestError::NoServices)),
        ("d1", many, Err(ApplyRequestError::TooMany)),
        (
            "d1",
            services(&[("web", "")]),
            Err(ApplyRequestError::Image("web".into())),
        ),
        (
            "d1",
            services(&[("web", "r/web:1 --rm")]),
            Err(ApplyRequestError::Image("web".into())),
        ),
        (
            "d1",
            services(&[("web", "r/web:1\n")]),
            Err(ApplyRequestError::Image("web".into())),
        ),
        (
            "d1",
            services(&[("web", "r/web:1\u{7}")]),
            Err(ApplyRequestError::Image("web".into())),
        ),
    ];
    for (id, services, expected) in cases {
        assert_eq!(
            check_apply_request(id, &services),
            expected,
            "{id:?} {services:?}"
        );
    }
    assert_eq!(apply_record_id("d1", "web"), "d1-web");
}

#[test]
fn each_service_of_an_apply_is_unchanged_only_when_it_runs_the_image_and_nothing_is_queued() {
    let digests = vec!["r/web@sha256:aa".to_owned()];
    let running = ObservedService {
        pinned: Some("r/web:1"),
        running_image: Some("r/web:1"),
        running_digests: &digests,
        state: "running",
        health: "healthy",
    };
    let exited = ObservedService {
        state: "exited",
        ..running
    };
    let cases = [
        (Some(running), false, ServiceAction::Unchanged),
        (Some(running), true, ServiceAction::Run(RunReason::Busy)),
        (None, false, ServiceAction::Run(RunReason::NotObserved)),
        (
            Some(exited),
            false,
            ServiceAction::Run(RunReason::Diverged(Divergence::NotRunning {
                state: "exited".into(),
            })),
        ),
    ];
    for (observed, busy, expected) in cases {
        assert_eq!(
            decide_service("r/web:1", observed.as_ref(), busy),
            expected,
            "{observed:?} busy={busy}"
        );
    }
    assert_eq!(
        decide_service("r/web:2", Some(&running), false),
        ServiceAction::Run(RunReason::Diverged(Divergence::NotPinned {
            pinned: Some("r/web:1".into())
        }))
    );
    assert_eq!(
        RunReason::Busy.to_string(),
        "a run of the service is queued or running"
    );
}

#[test]
fn waits_are_bounded() {
    for (asked, expected) in [
        (None, 0),
        (Some(0), 0),
        (Some(5), 5),
        (Some(30), 30),
        (Some(31), 30),
        (Some(u64::MAX), 30),
    ] {
        assert_eq!(wait_seconds(asked), expected, "{asked:?}");
    }
}

#[test]
fn agents_results_sum_to_the_deployments() {
    use AgentResult::*;
    let cases: &[(&[AgentResult], bool, AgentResult)] = &[
        (&[], false, Succeeded),
        (&[], true, Failed),
        (&[Succeeded, Succeeded], false, Succeeded),
        (&[Succeeded], true, Failed),
        (&[Succeeded, Failed], false, Failed),
        (&[Failed, TimedOut], false, TimedOut),
        (&[TimedOut, Succeeded], true, TimedOut),
        (&[Failed, TimedOut, Cancelled], false, Cancelled),
        (&[Succeeded, Cancelled], false, Cancelled),
    ];
    for (results, problems, expected) in cases {
        assert_eq!(
            sum_agent_results(results, *problems),
            *expected,
            "{results:?} {problems}"
        );
    }
}
