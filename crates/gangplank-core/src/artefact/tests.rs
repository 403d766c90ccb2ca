//! Table tests for artefact-version validation.

use super::{ArtefactReference, ArtefactVersionFields, ArtefactVersionInput};

fn container<'a>(name: &'a str) -> ArtefactVersionInput<'a> {
    ArtefactVersionInput {
        kind: "container",
        name,
        ..Default::default()
    }
}

/// Renders the outcome so a table can state expectations as text.
fn check(input: ArtefactVersionInput<'_>) -> String {
    match ArtefactVersionFields::parse(&input) {
        Ok(fields) => format!(
            "ok {} {} v={} ref={} commit={} digest={}",
            fields.kind, fields.name, fields.version, fields.git_ref, fields.commit, fields.digest
        ),
        Err(error) => format!("err {error}"),
    }
}

const SHA64: &str = "90254ccc7352e1a5c8d1e4cdab2a032cefac9fd5d4d632ca003a2943c9a9b0a3";

#[test]
fn seed_000_container_version_is_valid() {
    let name = "667740703053.dkr.ecr.ca-central-1.amazonaws.com/app1";
    let input = ArtefactVersionInput {
        version: Some(SHA64),
        commit: Some(SHA64),
        git_ref: Some("refs/heads/main"),
        ..container(name)
    };
    assert_eq!(
        check(input),
        format!("ok container {name} v={SHA64} ref=refs/heads/main commit={SHA64} digest=")
    );
}

#[test]
fn field_rules() {
    let digest = format!("sha256:{SHA64}");
    let long_commit = "a".repeat(65);
    let cases: Vec<(ArtefactVersionInput<'_>, &str)> = vec![
        (
            ArtefactVersionInput {
                kind: "image",
                name: "x",
                ..Default::default()
            },
            "err type: must be \"container\" or \"workload\"",
        ),
        (container(""), "err name: is required"),
        (
            container("Registry.io/UPPER"),
            "err name: path component \"UPPER\" must be lower-case alphanumerics separated by ., _, __ or -",
        ),
        (
            container("nginx:1.2"),
            "err name: must not include a tag or digest",
        ),
        (
            ArtefactVersionInput {
                commit: Some("abcd"),
                ..container("nginx")
            },
            "err commit: must be 5 to 64 hexadecimal characters",
        ),
        (
            ArtefactVersionInput {
                commit: Some("ABCDEF1"),
                ..container("nginx")
            },
            "ok container nginx v= ref= commit=abcdef1 digest=",
        ),
        (
            ArtefactVersionInput {
                commit: Some(&long_commit),
                ..container("nginx")
            },
            "err commit: must be 5 to 64 hexadecimal characters",
        ),
        (
            ArtefactVersionInput {
                commit: Some("xyz12"),
                ..container("nginx")
            },
            "err commit: must be 5 to 64 hexadecimal characters",
        ),
        (
            ArtefactVersionInput {
                git_ref: Some("main"),
                ..container("nginx")
            },
            "err ref: must start with \"refs/\" when vcs is git (e.g. refs/heads/main)",
        ),
        (
            ArtefactVersionInput {
                git_ref: Some("main"),
                vcs: Some("svn"),
                ..container("nginx")
            },
            "ok container nginx v= ref=main commit= digest=",
        ),
        (
            ArtefactVersionInput {
                digest: Some("sha256:abc"),
                ..container("nginx")
            },
            "err digest: must be sha256: followed by 64 lower-case hex characters",
        ),
        (
            ArtefactVersionInput {
                digest: Some(&digest),
                ..container("nginx")
            },
            "ok container nginx v= ref= commit= digest=sha256:90254ccc7352e1a5c8d1e4cdab2a032cefac9fd5d4d632ca003a2943c9a9b0a3",
        ),
        (
            ArtefactVersionInput {
                version: Some("-bad"),
                ..container("nginx")
            },
            "err version: must be a valid image tag for type container ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",
        ),
        (
            ArtefactVersionInput {
                version: Some("1.0 beta"),
                ..container("nginx")
            },
            "err version: must not contain whitespace or control characters",
        ),
        (
            ArtefactVersionInput {
                has_spec: true,
                ..container("nginx")
            },
            "err spec: only allowed for type workload",
        ),
        (
            ArtefactVersionInput {
                workload_fields: vec!["image"],
                ..container("nginx")
            },
            "err image: only allowed for type workload",
        ),
        (
            ArtefactVersionInput {
                kind: "workload",
                name: "myProject/myWorkload",
                ..Default::default()
            },
            "err spec: is required for type workload",
        ),
        (
            ArtefactVersionInput {
                kind: "workload",
                name: "myProject/myWorkload",
                has_spec: true,
                version: Some("1.2.3"),
                ..Default::default()
            },
            "ok workload myProject/myWorkload v=1.2.3 ref= commit= digest=",
        ),
        (
            ArtefactVersionInput {
                kind: "workload",
                name: "w",
                has_spec: true,
                digest: Some(&digest),
                ..Default::default()
            },
            "err digest: only allowed for type container",
        ),
    ];
    for (input, expected) in cases {
        let rendered = format!("{input:?}");
        assert_eq!(check(input), expected, "{rendered}");
    }
}

#[test]
fn references_split_at_the_last_path_component() {
    let cases = [
        (
            "reg.io:5000/team/app",
            Some(("reg.io:5000/team/app", None, None)),
        ),
        (
            "reg.io:5000/team/app:1.2",
            Some(("reg.io:5000/team/app", Some("1.2"), None)),
        ),
        (
            "app@sha256:90254ccc7352e1a5c8d1e4cdab2a032cefac9fd5d4d632ca003a2943c9a9b0a3",
            Some((
                "app",
                None,
                Some("sha256:90254ccc7352e1a5c8d1e4cdab2a032cefac9fd5d4d632ca003a2943c9a9b0a3"),
            )),
        ),
        (
            "app:1@sha256:90254ccc7352e1a5c8d1e4cdab2a032cefac9fd5d4d632ca003a2943c9a9b0a3",
            Some((
                "app",
                Some("1"),
                Some("sha256:90254ccc7352e1a5c8d1e4cdab2a032cefac9fd5d4d632ca003a2943c9a9b0a3"),
            )),
        ),
        ("app@sha256:zz", None),
        ("app:", None),
        (":1", None),
    ];
    for (input, expected) in cases {
        let parsed = ArtefactReference::parse("reference", input).ok();
        let parsed = parsed
            .as_ref()
            .map(|r| (r.name.as_str(), r.version.as_deref(), r.digest.as_deref()));
        assert_eq!(parsed, expected, "{input}");
    }
}
