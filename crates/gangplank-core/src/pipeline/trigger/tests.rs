//! Artefact matching and deployment-request routing, as tables.

use super::*;

fn trigger(include: &[&str], exclude: &[&str], tags: &[&str]) -> ArtefactTrigger {
    of_kind(ArtefactKind::Container, include, exclude, tags)
}

fn of_kind(
    kind: ArtefactKind,
    include: &[&str],
    exclude: &[&str],
    tags: &[&str],
) -> ArtefactTrigger {
    let own = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    ArtefactTrigger {
        kind,
        include: own(include),
        exclude: own(exclude),
        tags: own(tags),
    }
}

fn event<'a>(kind: &'a str, name: &'a str, version: &'a str) -> ArtefactEvent<'a> {
    ArtefactEvent {
        version_id: "v1",
        kind,
        name,
        version,
        digest: "",
        registrant: "ci",
    }
}

#[test]
fn artefact_trigger_table() {
    let dev = r"^registry\.example/ecr-dev/repo-1$";
    let cases = [
        // (trigger, kind, name, version, starts)
        (
            trigger(&[dev], &[], &[]),
            "container",
            "registry.example/ecr-dev/repo-1",
            "abc",
            true,
        ),
        (
            trigger(&[dev], &[], &["latest"]),
            "container",
            "registry.example/ecr-dev/repo-1",
            "latest",
            true,
        ),
        (
            trigger(&[dev], &[], &["latest"]),
            "container",
            "registry.example/ecr-dev/repo-1",
            "0.3",
            false,
        ),
        (
            trigger(&[dev], &[], &[]),
            "workload",
            "registry.example/ecr-dev/repo-1",
            "1",
            false,
        ),
        (
            trigger(&[dev], &[], &[]),
            "container",
            "registry.example/ecr-dev/repo-10",
            "1",
            false,
        ),
        (
            trigger(&["ecr-dev/"], &[], &[]),
            "container",
            "registry.example/ecr-dev/repo-10",
            "1",
            true,
        ),
        (
            trigger(&["ecr-dev/"], &["repo-1$"], &[]),
            "container",
            "registry.example/ecr-dev/repo-1",
            "1",
            false,
        ),
        (
            trigger(&["ecr-dev/"], &["repo-1$"], &[]),
            "container",
            "registry.example/ecr-dev/repo-2",
            "1",
            true,
        ),
        (
            trigger(&["(unclosed"], &[], &[]),
            "container",
            "(unclosed",
            "1",
            false,
        ),
        (trigger(&[], &[], &[]), "container", "anything", "1", false),
        // A workload trigger fires for workload versions only, by the same rules.
        (
            of_kind(ArtefactKind::Workload, &["^team/"], &[], &[]),
            "workload",
            "team/web",
            "1.2.3",
            true,
        ),
        (
            of_kind(ArtefactKind::Workload, &["^team/"], &[], &["1.2.3"]),
            "workload",
            "team/web",
            "1.2.4",
            false,
        ),
        (
            of_kind(ArtefactKind::Workload, &["^team/"], &["/db$"], &[]),
            "workload",
            "team/db",
            "1",
            false,
        ),
        (
            of_kind(ArtefactKind::Workload, &["^team/"], &[], &[]),
            "container",
            "team/web",
            "1",
            false,
        ),
    ];
    for (trigger, kind, name, version, starts) in cases {
        assert_eq!(
            artefact_matches(&trigger, &event(kind, name, version)),
            starts,
            "{trigger:?} {kind} {name}:{version}"
        );
    }
}

#[test]
fn artefact_inputs_name_the_version() {
    let mut e = event("container", "reg/a", "latest");
    e.digest = "sha256:00";
    assert_eq!(
        artefact_inputs(&e),
        json!({"artefact_name": "reg/a", "image": "reg/a", "version": "latest",
               "digest": "sha256:00", "artefact_version_id": "v1", "registrant": "ci"})
    );
    // A workload is no image: nothing for the runner to pin, nothing for a step to default to.
    let workload = event("workload", "team/web", "1.2.3");
    assert_eq!(
        artefact_inputs(&workload),
        json!({"artefact_name": "team/web", "image": "", "version": "1.2.3",
               "digest": "", "artefact_version_id": "v1", "registrant": "ci"})
    );
    assert_eq!(artefact_idempotency_key("v1"), "artefact:v1");
}

fn criteria<'a>(
    pipeline: &'a str,
    env_type: &'a str,
    env_id: &'a str,
    deployment_type: &'a str,
) -> Criteria<'a> {
    Criteria {
        id: pipeline,
        pipeline_id: pipeline,
        env_type,
        app_id: "",
        env_id,
        deployment_type,
    }
}

fn request<'a>(env_id: &'a str, env_type: &'a str, kind: &'a str) -> DeploymentRequest<'a> {
    DeploymentRequest {
        app_id: "shop",
        env_id,
        env_type,
        deployment_type: kind,
    }
}

#[test]
fn deployment_requests_route_to_the_most_specific_criteria() {
    let all = [
        criteria("any", "*", "", ""),
        criteria("prod-type", "production", "", ""),
        criteria("prod-env", "", "prod", ""),
        criteria("prod-redeploy", "", "prod", "re-deploy"),
    ];
    let cases = [
        (request("dev", "development", "deploy"), Ok("any")),
        (request("live", "production", "deploy"), Ok("prod-type")),
        (
            request("prod", "production", "deploy"),
            Err(vec!["prod-env", "prod-type"]),
        ),
        (
            request("prod", "production", "redeploy"),
            Ok("prod-redeploy"),
        ),
    ];
    for (request, expected) in cases {
        let got = route_deployment_request(&all, &request).map_err(|e| match e {
            CriteriaError::Ambiguous { pipelines } => pipelines,
            other => panic!("{other}"),
        });
        let expected = expected.map_err(|p: Vec<&str>| p.iter().map(|s| s.to_string()).collect());
        assert_eq!(got, expected, "{request:?}");
    }
    let none = route_deployment_request(&all[1..3], &request("dev", "development", "deploy"));
    assert_eq!(
        none.unwrap_err().to_string(),
        "no pipeline criteria match a deploy to environment dev"
    );
}

#[test]
fn deployment_request_inputs_keep_what_was_given() {
    assert_eq!(
        deployment_request_inputs(
            "prod",
            &[
                ("delta_id", Some("d1")),
                ("set_id", None),
                ("comment", Some("go"))
            ]
        ),
        json!({"env_id": "prod", "delta_id": "d1", "comment": "go"})
    );
}
