//! Table tests for repository-name parsing and normalisation.

use super::RepositoryName;

#[test]
fn normalisation_makes_docker_hub_spellings_equal() {
    let cases = [
        ("nginx", "docker.io/library/nginx"),
        ("docker.io/library/nginx", "docker.io/library/nginx"),
        ("index.docker.io/nginx", "docker.io/library/nginx"),
        (
            "registry-1.docker.io/library/nginx",
            "docker.io/library/nginx",
        ),
        (
            "registry.hub.docker.com/my-organization/app",
            "docker.io/my-organization/app",
        ),
        ("team/app", "docker.io/team/app"),
        ("localhost/app", "localhost/app"),
        ("localhost:5000/a/b__c", "localhost:5000/a/b__c"),
        ("127.0.0.1:5000/demo/busybox", "127.0.0.1:5000/demo/busybox"),
        ("[::1]:5000/app", "[::1]:5000/app"),
        (
            "667740703053.dkr.ecr.ca-central-1.amazonaws.com/app1",
            "667740703053.dkr.ecr.ca-central-1.amazonaws.com/app1",
        ),
        ("Registry.Example.com/app", "registry.example.com/app"),
    ];
    for (input, expected) in cases {
        let parsed = RepositoryName::parse(input).map(|name| name.to_string());
        assert_eq!(parsed.as_deref(), Ok(expected), "{input}");
    }
}

#[test]
fn invalid_names_are_rejected() {
    for input in [
        "",
        "nginx:latest",
        "nginx@sha256:00",
        "UPPER",
        "reg.io/a//b",
        "reg.io/-a",
        "reg.io/a-",
        "reg.io/a..b",
        "reg.io/a___b",
        "reg.io:port/a",
        "reg..io/a",
        "a b",
        "reg.io/a/",
        &"a".repeat(256),
    ] {
        assert!(
            RepositoryName::parse(input).is_err(),
            "{input:?} should be rejected"
        );
    }
}
