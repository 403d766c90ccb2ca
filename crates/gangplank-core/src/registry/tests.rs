//! Registry prefix normal form and longest-prefix matching: a table.

use super::{RegistryType, check_id, longest_prefix_match, normalise_prefix, registry_host};

#[test]
fn prefixes_normalise() {
    for (input, expected) in [
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io/acme", "docker.io/acme"),
        ("registry.hub.docker.com/library", "docker.io/library"),
        ("REG.IO:5000/team", "reg.io:5000/team"),
        ("https://ghcr.io/acme/", "ghcr.io/acme"),
        ("localhost:5000", "localhost:5000"),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        ),
    ] {
        assert_eq!(normalise_prefix(input).unwrap(), expected, "{input}");
    }
    for bad in ["", "  ", "reg.io:port", "reg.io/Team"] {
        assert!(normalise_prefix(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn longest_prefix_wins_on_whole_components() {
    let prefixes: Vec<String> = [
        "docker.io",
        "docker.io/library",
        "docker.io/acme",
        "reg.io",
        "reg.io/team",
        "reg.io/team/sub",
        "reg.io:5000",
        "ghcr.io/acme",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "[::1]:5000",
    ]
    .iter()
    .map(|p| normalise_prefix(p).unwrap())
    .collect();
    let table: &[(&str, Option<&str>)] = &[
        ("nginx", Some("docker.io/library")),
        ("nginx:1.25", Some("docker.io/library")),
        ("library/nginx", Some("docker.io/library")),
        (
            "docker.io/library/nginx@sha256:aa",
            Some("docker.io/library"),
        ),
        ("index.docker.io/library/nginx", Some("docker.io/library")),
        ("registry-1.docker.io/acme/web:2", Some("docker.io/acme")),
        ("registry.hub.docker.com/other/web", Some("docker.io")),
        ("acme/web", Some("docker.io/acme")),
        ("acmes/web", Some("docker.io")),
        ("reg.io/app", Some("reg.io")),
        ("reg.io/team/app", Some("reg.io/team")),
        ("reg.io/team/sub/app:1", Some("reg.io/team/sub")),
        ("reg.io/teamwork/app", Some("reg.io")),
        ("reg.io/team", Some("reg.io/team")),
        ("reg.io:5000/team/app", Some("reg.io:5000")),
        ("reg.io:5001/team/app", None),
        ("REG.IO/team/app", Some("reg.io/team")),
        ("ghcr.io/acme/web", Some("ghcr.io/acme")),
        ("ghcr.io/acmeco/web", None),
        ("ghcr.io/other/web", None),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app1:90254ccc",
            Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
        ),
        ("123456789012.dkr.ecr.eu-west-2.amazonaws.com/app1", None),
        ("[::1]:5000/x/y", Some("[::1]:5000")),
        ("not a reference", None),
    ];
    for (image, expected) in table {
        let got = longest_prefix_match(image, &prefixes).map(|i| prefixes[i].as_str());
        assert_eq!(got, *expected, "{image}");
    }
}

#[test]
fn types_and_ids() {
    for t in RegistryType::ALL {
        assert_eq!(RegistryType::parse(t.as_str()).unwrap(), t);
    }
    assert_eq!(RegistryType::parse("ftp").unwrap_err().field, "type");
    assert_eq!(RegistryType::GoogleGcr.fixed_username(), Some("_json_key"));
    assert!(!RegistryType::Public.needs_creds());
    for ok in ["abc", "my-registry", "r2d2"] {
        assert!(check_id(ok).is_ok(), "{ok}");
    }
    for bad in ["ab", "-ab", "ab-", "Abc", "a_b", ""] {
        assert!(check_id(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_host_is_the_first_component() {
    for (registry, host) in [
        ("registry.example.com/acme", "registry.example.com"),
        ("reg.io:5000/team/app", "reg.io:5000"),
        ("ghcr.io", "ghcr.io"),
        ("ghcr.io/org/team", "ghcr.io"),
        ("localhost:5000", "localhost:5000"),
        ("", ""),
    ] {
        assert_eq!(registry_host(registry), host, "{registry}");
    }
}
