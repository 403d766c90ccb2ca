//! Rule validation and judging, environment vetoes, debounced batches: table-driven.

use serde_json::json;

use super::*;

fn input() -> RuleInput {
    RuleInput {
        kind: "update".to_owned(),
        ..RuleInput::default()
    }
}

fn compiled(input: RuleInput) -> CompiledRule {
    Rule::validate(input).unwrap().compile().unwrap()
}

const NAME: &str = "registry.test/team/app1";

fn candidate<'a>(version: &'a str, git_ref: &'a str) -> Candidate<'a> {
    Candidate {
        name: NAME,
        version,
        git_ref,
    }
}

#[test]
fn validation_rejects_what_the_reference_rejects() {
    let cases: Vec<(RuleInput, &str)> = vec![
        (
            RuleInput {
                kind: "deploy".into(),
                ..input()
            },
            "type",
        ),
        (
            RuleInput {
                images_filter: Some(vec![]),
                artefacts_filter: Some(vec![]),
                ..input()
            },
            "images_filter",
        ),
        (
            RuleInput {
                exclude_images_filter: Some(true),
                exclude_artefacts_filter: Some(true),
                ..input()
            },
            "exclude_images_filter",
        ),
        (
            RuleInput {
                legacy_match: Some("main".into()),
                match_ref: Some("refs/heads/main".into()),
                ..input()
            },
            "match_ref",
        ),
        (
            RuleInput {
                update_to: Some("tag".into()),
                match_ref: Some("x".into()),
                ..input()
            },
            "match_ref",
        ),
        (
            RuleInput {
                update_to: Some("commit".into()),
                ..input()
            },
            "update_to",
        ),
        (
            RuleInput {
                match_ref: Some("refs/(heads".into()),
                ..input()
            },
            "match_ref",
        ),
        (
            RuleInput {
                legacy_match: Some("[".into()),
                ..input()
            },
            "match",
        ),
        (
            RuleInput {
                version_policy: Some(VersionPolicy::Semver {
                    constraint: "not semver".into(),
                    include_prerelease: false,
                }),
                ..input()
            },
            "version_policy.constraint",
        ),
        (
            RuleInput {
                version_policy: Some(VersionPolicy::Regex {
                    pattern: "(".into(),
                }),
                ..input()
            },
            "version_policy.pattern",
        ),
    ];
    for (case, field) in cases {
        let err = Rule::validate(case.clone()).unwrap_err();
        assert_eq!(err.field, field, "{case:?}: {err}");
    }
    let rule = Rule::validate(input()).unwrap();
    assert!(rule.active, "active defaults to true");
}

#[test]
fn judging_filters_refs_and_policies() {
    let semver = |c: &str, pre: bool| VersionPolicy::Semver {
        constraint: c.into(),
        include_prerelease: pre,
    };
    let table: Vec<(RuleInput, &str, &str, Result<(), &str>)> = vec![
        (input(), "1.0.0", "refs/heads/main", Ok(())),
        (
            RuleInput {
                active: Some(false),
                ..input()
            },
            "1",
            "refs/heads/main",
            Err("inactive"),
        ),
        (
            RuleInput {
                artefacts_filter: Some(vec![NAME.into()]),
                ..input()
            },
            "1",
            "",
            Ok(()),
        ),
        (
            RuleInput {
                artefacts_filter: Some(vec!["other".into()]),
                ..input()
            },
            "1",
            "",
            Err("filter"),
        ),
        (
            RuleInput {
                artefacts_filter: Some(vec![NAME.into()]),
                exclude_artefacts_filter: Some(true),
                ..input()
            },
            "1",
            "",
            Err("filter"),
        ),
        (
            RuleInput {
                artefacts_filter: Some(vec!["other".into()]),
                exclude_artefacts_filter: Some(true),
                ..input()
            },
            "1",
            "",
            Ok(()),
        ),
        (
            RuleInput {
                match_ref: Some("^refs/heads/main$".into()),
                ..input()
            },
            "1",
            "refs/heads/main",
            Ok(()),
        ),
        (
            RuleInput {
                match_ref: Some("^refs/heads/main$".into()),
                ..input()
            },
            "1",
            "refs/heads/dev",
            Err("ref"),
        ),
        (
            RuleInput {
                match_ref: Some("pr-[0-9]+".into()),
                ..input()
            },
            "1",
            "refs/heads/pr-12-x",
            Ok(()),
        ),
        (
            RuleInput {
                legacy_match: Some("^rel".into()),
                update_to: Some("branch".into()),
                ..input()
            },
            "1",
            "refs/heads/release",
            Ok(()),
        ),
        (
            RuleInput {
                legacy_match: Some("^rel".into()),
                update_to: Some("branch".into()),
                ..input()
            },
            "1",
            "refs/tags/release",
            Err("ref"),
        ),
        (
            RuleInput {
                update_to: Some("tag".into()),
                ..input()
            },
            "1",
            "refs/tags/v1",
            Ok(()),
        ),
        (
            RuleInput {
                update_to: Some("tag".into()),
                ..input()
            },
            "1",
            "refs/heads/main",
            Err("ref"),
        ),
        (
            RuleInput {
                version_policy: Some(semver("^1.2", false)),
                ..input()
            },
            "1.4.0",
            "",
            Ok(()),
        ),
        (
            RuleInput {
                version_policy: Some(semver("^1.2", false)),
                ..input()
            },
            "v1.2.9",
            "",
            Ok(()),
        ),
        (
            RuleInput {
                version_policy: Some(semver("^1.2", false)),
                ..input()
            },
            "2.0.0",
            "",
            Err("policy"),
        ),
        (
            RuleInput {
                version_policy: Some(semver("^1.2", false)),
                ..input()
            },
            "1.3.0-rc.1",
            "",
            Err("policy"),
        ),
        (
            RuleInput {
                version_policy: Some(semver("^1.2", true)),
                ..input()
            },
            "1.3.0-rc.1",
            "",
            Ok(()),
        ),
        (
            RuleInput {
                version_policy: Some(semver(">=2, <3", false)),
                ..input()
            },
            "2.5.1",
            "",
            Ok(()),
        ),
        (
            RuleInput {
                version_policy: Some(semver(">=2, <3", false)),
                ..input()
            },
            "3.0.0",
            "",
            Err("policy"),
        ),
        (
            RuleInput {
                version_policy: Some(semver("^1", false)),
                ..input()
            },
            "latest",
            "",
            Err("policy"),
        ),
        (
            RuleInput {
                version_policy: Some(VersionPolicy::Regex {
                    pattern: "^main-[0-9a-f]{7}$".into(),
                }),
                ..input()
            },
            "main-abc1234",
            "",
            Ok(()),
        ),
        (
            RuleInput {
                version_policy: Some(VersionPolicy::Regex {
                    pattern: "^main-".into(),
                }),
                ..input()
            },
            "dev-abc1234",
            "",
            Err("policy"),
        ),
    ];
    for (rule, version, git_ref, expected) in table {
        let got = compiled(rule.clone()).judge(&candidate(version, git_ref));
        assert_eq!(
            got.map_err(|skip| skip.code()),
            expected,
            "{rule:?} on {version} {git_ref}"
        );
    }
}

#[test]
fn filters_compare_normalised_repositories() {
    assert!(same_artefact("nginx", "docker.io/library/nginx"));
    assert!(same_artefact("index.docker.io/library/nginx", "nginx"));
    assert!(!same_artefact("nginx", "registry.test/nginx"));
}

#[test]
fn environment_facts_can_veto_a_firing_rule() {
    let rules = vec![
        (
            "strict".to_owned(),
            compiled(RuleInput {
                match_ref: Some("^refs/tags/".into()),
                ..input()
            }),
        ),
        (
            "main".to_owned(),
            compiled(RuleInput {
                match_ref: Some("refs/heads/main".into()),
                ..input()
            }),
        ),
    ];
    let c = candidate("2", "refs/heads/main");
    let facts = EnvFacts {
        uses_image: true,
        held: false,
        running: Some((5, format!("{NAME}:1"))),
    };
    let deploy = Decision::Deploy {
        rule_id: "main".into(),
    };
    assert_eq!(decide(&rules, &c, 9, &facts), deploy, "second rule fires");
    let code = |d: Decision| match d {
        Decision::Skip { reason, .. } => reason.code(),
        Decision::Deploy { .. } => "deploy",
    };
    assert_eq!(code(decide(&rules, &c, 4, &facts)), "downgrade");
    assert_eq!(
        code(decide(
            &rules,
            &c,
            9,
            &EnvFacts {
                held: true,
                ..facts.clone()
            }
        )),
        "held"
    );
    assert_eq!(
        code(decide(
            &rules,
            &c,
            9,
            &EnvFacts {
                uses_image: false,
                ..facts.clone()
            }
        )),
        "no_workload"
    );
    assert_eq!(
        code(decide(&rules, &candidate("2", "refs/heads/dev"), 9, &facts)),
        "ref"
    );
    assert_eq!(code(decide(&[], &c, 9, &facts)), "no_rule");
}

#[test]
fn debounced_batches_and_their_delta() {
    assert!(batch_due(1000, 0, 1000));
    assert!(!batch_due(1000, 2000, 2999));
    assert!(batch_due(1000, 2000, 3000));
    let set: Set = serde_json::from_value(json!({"modules": {
        "app1": {"spec": {"containers": {"main": {"image": "registry.test/team/app1:old"}}}},
        "app2": {"spec": {"containers": {"main": {"image": "registry.test/team/app2:old"}, "proxy": {"image": "nginx:1"}}}}
    }}))
    .unwrap();
    let pending = |name: &str, version: &str, digest: &str| PendingVersion {
        name: name.into(),
        version: version.into(),
        digest: digest.into(),
    };
    let versions = vec![
        pending("registry.test/team/app1", "v1", ""),
        pending("registry.test/team/app2", "v2", "sha256:abc"),
        pending("registry.test/team/app1", "v3", ""),
        pending("docker.io/library/nginx", "1.27", ""),
    ];
    assert_eq!(
        automated_comment(&versions[..2]),
        "Automated Deployment: registry.test/team/app1:v1 registry.test/team/app2:v2"
    );
    let delta = image_update_delta(&set, &versions);
    let next = delta.apply_to(&set).unwrap();
    let image = |w: &str, c: &str| next.modules[w]["spec"]["containers"][c]["image"].clone();
    assert_eq!(
        image("app1", "main"),
        "registry.test/team/app1:v3",
        "later version wins"
    );
    assert_eq!(
        image("app2", "main"),
        "registry.test/team/app2:v2@sha256:abc",
        "pinned by digest"
    );
    assert_eq!(
        image("app2", "proxy"),
        "docker.io/library/nginx:1.27",
        "nginx ≡ docker.io/library/nginx"
    );
    assert!(image_update_delta(&set, &[pending("registry.test/unused", "1", "")]).is_empty());
}

#[test]
fn explanations_state_how_the_deployment_ended() {
    let failed = FirstError {
        code: "GP-AGENT-FAILED",
        summary: "web: not healthy\nhealthcheck:\nconnection refused",
    };
    let long = "x".repeat(200);
    let cases: Vec<(&str, &str, &str, Option<FirstError<'_>>, String)> = vec![
        (
            "deployed",
            "d1",
            "failed",
            Some(failed),
            "deployed in deployment d1 (failed: GP-AGENT-FAILED web: not healthy)".into(),
        ),
        (
            "deployed",
            "d1",
            "succeeded",
            None,
            "deployed in deployment d1 (succeeded)".into(),
        ),
        (
            "deployed",
            "d1",
            "in progress",
            None,
            "deployed in deployment d1 (in progress)".into(),
        ),
        (
            "deployed",
            "d1",
            "pending",
            None,
            "deployed in deployment d1 (pending)".into(),
        ),
        (
            "deployed",
            "d1",
            "cancelled",
            None,
            "deployed in deployment d1 (cancelled)".into(),
        ),
        (
            "deployed",
            "d1",
            "failed",
            None,
            "deployed in deployment d1 (failed)".into(),
        ),
        (
            "deployed",
            "d1",
            "failed",
            Some(FirstError {
                code: "",
                summary: "the target said no",
            }),
            "deployed in deployment d1 (failed: the target said no)".into(),
        ),
        (
            "deployed",
            "d1",
            "failed",
            Some(FirstError {
                code: "GP-SET",
                summary: "",
            }),
            "deployed in deployment d1 (failed: GP-SET)".into(),
        ),
        (
            "deployed",
            "d1",
            "failed",
            Some(FirstError {
                code: "GP-X",
                summary: &long,
            }),
            format!(
                "deployed in deployment d1 (failed: GP-X {}…)",
                "x".repeat(120)
            ),
        ),
        (
            "deployed",
            "d1",
            "",
            None,
            "deployed in deployment d1 (the deployment no longer exists)".into(),
        ),
        // Entries that went into no deployment keep their reason.
        ("skipped", "", "", None, "deployed in deployment d1".into()),
        ("queued", "", "", None, "deployed in deployment d1".into()),
        ("deployed", "", "", None, "deployed in deployment d1".into()),
    ];
    for (outcome, deploy_id, status, error, expected) in cases {
        assert_eq!(
            explained_reason(
                outcome,
                "deployed in deployment d1",
                deploy_id,
                status,
                error
            ),
            expected,
            "{outcome} {deploy_id} {status:?} {error:?}"
        );
    }
    assert_eq!(
        error_line(FirstError {
            code: "GP-AGENT-TIMEOUT",
            summary: "agent http://h did not finish web in time"
        }),
        "GP-AGENT-TIMEOUT agent http://h did not finish web in time"
    );
    assert_eq!(deployed_reason("d9", 1), "deployed in deployment d9");
    assert_eq!(
        deployed_reason("d9", 3),
        "merged with 2 other version(s) into deployment d9"
    );
    assert_eq!(
        resumed_reason(&deployed_reason("d9", 1)),
        "re-evaluated after resume: deployed in deployment d9"
    );
}

#[test]
fn resume_deploys_the_newest_accepted_version_per_repository() {
    let deploy = |rule: &str| Decision::Deploy {
        rule_id: rule.into(),
    };
    let skip = |reason: Skip| Decision::Skip {
        rule_id: Some("r".into()),
        reason,
    };
    let item = |repository: &str, seq: i64, decision: Decision| Reevaluated {
        repository: repository.into(),
        seq,
        label: format!("{repository}:{seq}"),
        decision,
    };
    let superseded = |rule: &str, newer: &str| Decision::Skip {
        rule_id: Some(rule.into()),
        reason: Skip::Superseded {
            newer: newer.into(),
        },
    };
    let downgrade = || {
        skip(Skip::Downgrade {
            running: "web:9".into(),
        })
    };
    let cases: Vec<(Vec<Reevaluated>, Vec<Decision>)> = vec![
        (vec![], vec![]),
        // One accepted version deploys.
        (vec![item("web", 3, deploy("r"))], vec![deploy("r")]),
        // The newest accepted one wins, whatever the order given.
        (
            vec![
                item("web", 5, deploy("r")),
                item("web", 3, deploy("r")),
                item("web", 4, deploy("r")),
            ],
            vec![
                deploy("r"),
                superseded("r", "web:5"),
                superseded("r", "web:5"),
            ],
        ),
        // A newer version the rules refuse now does not block an older accepted one.
        (
            vec![
                item("web", 3, deploy("r")),
                item(
                    "web",
                    4,
                    skip(Skip::PolicyMismatch {
                        version: "4".into(),
                        policy: "p".into(),
                    }),
                ),
            ],
            vec![
                deploy("r"),
                skip(Skip::PolicyMismatch {
                    version: "4".into(),
                    policy: "p".into(),
                }),
            ],
        ),
        // No-downgrade vetoes keep their reason; nothing deploys.
        (
            vec![item("web", 3, downgrade()), item("web", 4, downgrade())],
            vec![downgrade(), downgrade()],
        ),
        // Repositories are chosen independently.
        (
            vec![
                item("web", 3, deploy("r")),
                item("api", 4, deploy("a")),
                item("web", 6, deploy("r")),
                item("api", 2, deploy("a")),
            ],
            vec![
                superseded("r", "web:6"),
                deploy("a"),
                deploy("r"),
                superseded("a", "api:4"),
            ],
        ),
    ];
    for (items, expected) in cases {
        assert_eq!(after_resume(&items), expected, "{items:?}");
    }
    assert_eq!(
        Skip::Superseded {
            newer: "web:5".into()
        }
        .code(),
        "superseded"
    );
}
