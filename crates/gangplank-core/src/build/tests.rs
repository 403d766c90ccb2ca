//! Table tests for builds: every lifecycle transition, the branch filter, tag templates, and
//! the definition rules.

use std::collections::BTreeMap;

use super::*;

const COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";

#[test]
fn every_transition_is_decided() {
    use BuildEvent::*;
    use BuildStatus::*;
    let allowed = [
        (Queued, Start, Running),
        (Running, Succeed, Succeeded),
        (Running, Fail, Failed),
        (Queued, Error, Errored),
        (Running, Error, Errored),
        (Queued, Cancel, Cancelled),
        (Running, Cancel, Cancelled),
        (Queued, Supersede, Superseded),
    ];
    for from in BuildStatus::ALL {
        for event in [Start, Succeed, Fail, Error, Cancel, Supersede] {
            let expected = allowed
                .iter()
                .find(|(f, e, _)| *f == from && *e == event)
                .map(|(_, _, to)| *to);
            match (from.next(event), expected) {
                (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} + {event:?}"),
                (Err(e), None) => {
                    assert!(e.to_string().starts_with("a build that is "), "{e}");
                }
                (got, want) => panic!("{from:?} + {event:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn only_queued_and_running_are_open_and_statuses_round_trip() {
    for status in BuildStatus::ALL {
        assert_eq!(
            status.is_terminal(),
            !matches!(status, BuildStatus::Queued | BuildStatus::Running)
        );
        assert_eq!(status.as_str().parse::<BuildStatus>(), Ok(status));
    }
    assert!("done".parse::<BuildStatus>().is_err());
}

#[test]
fn the_branch_filter_reads_names_and_full_refs() {
    let branches = vec!["main".to_owned(), "refs/heads/release/1".to_owned()];
    assert!(branch_matches(&branches, "refs/heads/main"));
    assert!(branch_matches(&branches, "refs/heads/release/1"));
    assert!(!branch_matches(&branches, "refs/heads/dev"));
    assert!(!branch_matches(&branches, "refs/tags/main"));
    assert!(!branch_matches(&branches, "main"));
}

#[test]
fn tags_render_from_the_commit_and_ref() {
    let templates: Vec<String> = ["${commit}", "latest", "${branch}-${short_commit}", "${ref}"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        render_tags(&templates, COMMIT, "refs/heads/feature/x").unwrap(),
        vec![
            COMMIT.to_owned(),
            "latest".to_owned(),
            "feature-x-89abcde".to_owned(),
            "refs-heads-feature-x".to_owned()
        ]
    );
    let twice = vec!["latest".to_owned(), "latest".to_owned()];
    assert_eq!(
        render_tags(&twice, COMMIT, "refs/heads/main").unwrap(),
        ["latest"]
    );
    for bad in ["${sha}", "${commit", "v${branch}!", "-${commit}", ""] {
        assert!(
            render_tags(&[bad.to_owned()], COMMIT, "refs/heads/main").is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn commits_and_refs_are_checked() {
    assert!(check_commit(COMMIT).is_ok());
    assert!(check_commit(&"a".repeat(64)).is_ok());
    for bad in [
        "",
        "89abcde",
        &COMMIT.to_uppercase(),
        &format!("{COMMIT}0"),
        "--upload-pack=x",
    ] {
        assert!(check_commit(bad).is_err(), "{bad:?}");
    }
    assert!(check_ref("refs/heads/main").is_ok());
    for bad in [
        "main",
        "refs/heads/a..b",
        "refs/heads/x.lock",
        "refs/heads/",
        "refs/heads/a b",
        "refs/heads/a:b",
        "-refs/x",
    ] {
        assert!(check_ref(bad).is_err(), "{bad:?}");
    }
}

fn input<'a>(args: &'a BTreeMap<String, String>) -> DefinitionInput<'a> {
    DefinitionInput {
        clone_url: "http://git.example/shop.git",
        image: "registry.example:5000/shop/web",
        builder: "http://builder:8686/",
        build_args: args,
        ..DefinitionInput::default()
    }
}

#[test]
fn a_definition_gets_its_defaults() {
    let args = BTreeMap::new();
    let definition = check_definition(&input(&args)).unwrap();
    assert_eq!(definition.branches, ["main"]);
    assert_eq!(definition.dockerfile, "Dockerfile");
    assert_eq!(definition.context, ".");
    assert_eq!(definition.tags, ["${commit}", "latest"]);
    assert_eq!(definition.builder, "http://builder:8686");
    assert_eq!(definition.timeout_seconds, DEFAULT_BUILD_TIMEOUT_SECONDS);
    assert_eq!(definition.image, "registry.example:5000/shop/web");
}

#[test]
fn a_bad_definition_names_its_field() {
    let args = BTreeMap::new();
    let bad_args = BTreeMap::from([("1X".to_owned(), "v".to_owned())]);
    let branches = vec!["a..b".to_owned()];
    let tags = vec!["${nope}".to_owned()];
    let cases: Vec<(DefinitionInput<'_>, &str)> = vec![
        (
            DefinitionInput {
                clone_url: "ftp://x/y",
                ..input(&args)
            },
            "clone_url",
        ),
        (
            DefinitionInput {
                clone_url: "https://user:pw@git/x",
                ..input(&args)
            },
            "clone_url",
        ),
        (
            DefinitionInput {
                builder: "builder:8686",
                ..input(&args)
            },
            "builder",
        ),
        (
            DefinitionInput {
                dockerfile: Some("../Dockerfile"),
                ..input(&args)
            },
            "dockerfile",
        ),
        (
            DefinitionInput {
                context: Some("/etc"),
                ..input(&args)
            },
            "context",
        ),
        (
            DefinitionInput {
                image: "registry.example/shop:1",
                ..input(&args)
            },
            "image",
        ),
        (
            DefinitionInput {
                branches: &branches,
                ..input(&args)
            },
            "branches[0]",
        ),
        (
            DefinitionInput {
                tags: &tags,
                ..input(&args)
            },
            "tags",
        ),
        (
            DefinitionInput {
                timeout_seconds: Some(0),
                ..input(&args)
            },
            "timeout_seconds",
        ),
        (input(&bad_args), "build_args.1X"),
    ];
    for (case, field) in cases {
        let error = check_definition(&case).unwrap_err();
        assert_eq!(error.field, field, "{case:?}: {error}");
    }
}

#[test]
fn kept_lines_are_redacted_and_bounded() {
    assert_eq!(
        keep_line("token s3cr3t ok s3cr3t", &["s3cr3t", ""]),
        "token [redacted] ok [redacted]"
    );
    let long = "é".repeat(MAX_LOG_LINE);
    let kept = keep_line(&long, &[]);
    assert!(kept.len() <= MAX_LOG_LINE && kept.len() >= MAX_LOG_LINE - 1);
}

#[test]
fn clone_urls_match_with_or_without_dot_git() {
    assert!(same_repository(
        "https://GitHub.com/acme/shop.git",
        "https://github.com/acme/shop"
    ));
    assert!(same_repository(
        "http://127.0.0.1:9/r.git/",
        "http://127.0.0.1:9/r"
    ));
    assert!(!same_repository(
        "https://github.com/acme/shop",
        "https://github.com/acme/shop2"
    ));
    assert!(!same_repository(
        "https://github.com/Acme/shop",
        "https://github.com/acme/shop"
    ));
}

#[test]
fn an_agent_build_request_is_checked_field_by_field() {
    let args = BTreeMap::from([("VERSION".to_owned(), "1".to_owned())]);
    let tags = vec!["${commit}".to_owned(), "latest".to_owned()];
    let good = AgentBuildInput {
        id: "b-1",
        clone_url: "http://127.0.0.1:9/shop.git",
        git_ref: "refs/heads/main",
        commit: Some(COMMIT),
        dockerfile: "docker/Dockerfile",
        context: ".",
        build_args: &args,
        image: "127.0.0.1:5000/shop/web",
        tags: &tags,
        registry_id: Some("local"),
        timeout_seconds: 60,
    };
    assert_eq!(check_agent_build(&good), Ok(()));
    let no_tags: Vec<String> = Vec::new();
    let bad_tags = vec!["${nope}".to_owned()];
    let bad_args = BTreeMap::from([("1X".to_owned(), "v".to_owned())]);
    let cases: Vec<(AgentBuildInput<'_>, &str)> = vec![
        (AgentBuildInput { id: "-x", ..good }, "id"),
        (AgentBuildInput { id: "../x", ..good }, "id"),
        (
            AgentBuildInput {
                git_ref: "main",
                ..good
            },
            "ref",
        ),
        (
            AgentBuildInput {
                git_ref: "refs/heads/a..b",
                ..good
            },
            "ref",
        ),
        (
            AgentBuildInput {
                commit: Some("HEAD"),
                ..good
            },
            "commit",
        ),
        (
            AgentBuildInput {
                commit: Some("--upload-pack=x"),
                ..good
            },
            "commit",
        ),
        (
            AgentBuildInput {
                clone_url: "file:///etc",
                ..good
            },
            "clone_url",
        ),
        (
            AgentBuildInput {
                clone_url: "http://u:p@h/r.git",
                ..good
            },
            "clone_url",
        ),
        (
            AgentBuildInput {
                dockerfile: "../Dockerfile",
                ..good
            },
            "dockerfile",
        ),
        (
            AgentBuildInput {
                dockerfile: "/etc/passwd",
                ..good
            },
            "dockerfile",
        ),
        (
            AgentBuildInput {
                context: "a/../..",
                ..good
            },
            "context",
        ),
        (
            AgentBuildInput {
                context: "-q",
                ..good
            },
            "context",
        ),
        (
            AgentBuildInput {
                build_args: &bad_args,
                ..good
            },
            "build_args.1X",
        ),
        (
            AgentBuildInput {
                image: "--push",
                ..good
            },
            "image",
        ),
        (
            AgentBuildInput {
                image: "web:1",
                ..good
            },
            "image",
        ),
        (
            AgentBuildInput {
                tags: &no_tags,
                ..good
            },
            "tags",
        ),
        (
            AgentBuildInput {
                tags: &bad_tags,
                ..good
            },
            "tags",
        ),
        (
            AgentBuildInput {
                registry_id: Some("a/b"),
                ..good
            },
            "registry_id",
        ),
        (
            AgentBuildInput {
                timeout_seconds: 0,
                ..good
            },
            "timeout_seconds",
        ),
    ];
    for (input, field) in cases {
        let error = check_agent_build(&input).expect_err(field);
        assert_eq!(error.field, field, "{input:?}: {error}");
    }
}
