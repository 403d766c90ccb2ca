//! Tables for the version rule and the promotion and rollback plans.

use super::*;

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| (*t).to_owned()).collect()
}

#[test]
fn versions_parse_as_decimal_components() {
    for (tag, expected) in [
        ("0.1", Some((0, 1, None))),
        ("0.10", Some((0, 10, None))),
        ("0.09", Some((0, 9, None))),
        ("1.2.3", Some((1, 2, Some(3)))),
        ("010.08", Some((10, 8, None))),
        ("latest", None),
        ("v1.2", None),
        ("1", None),
        ("1.2.3.4", None),
        ("1..2", None),
        ("1.2-rc", None),
        (".1", None),
        ("1.", None),
        ("", None),
        ("99999999999999999999.1", None),
    ] {
        let parsed = Version::parse(tag).map(|v| (v.major, v.minor, v.patch));
        assert_eq!(parsed, expected, "{tag}");
    }
}

#[test]
fn the_next_version_is_one_minor_above_the_highest() {
    for (list, next) in [
        (&[][..], "0.1"),
        (&["latest"][..], "0.1"),
        (&["latest", "build-7", "v3.1"][..], "0.1"),
        (&["0.1", "latest"][..], "0.2"),
        (&["0.9", "0.2", "0.10", "latest"][..], "0.11"),
        (&["0.8"][..], "0.9"),
        (&["0.9"][..], "0.10"),
        (&["0.09"][..], "0.10"),
        (&["0.08", "0.1"][..], "0.9"),
        (&["1.2.3", "1.2"][..], "1.3"),
        (&["0.14", "1.0.0"][..], "1.1"),
        (&["2.0", "10.0"][..], "10.1"),
    ] {
        assert_eq!(Version::next_after(&tags(list)), next, "{list:?}");
    }
}

#[test]
fn ordering_is_numeric_per_component() {
    let mut list: Vec<Version> = ["0.10", "0.9", "0.2", "1.2.1", "1.2", "1.2.0", "0.09"]
        .iter()
        .filter_map(|t| Version::parse(t))
        .collect();
    list.sort();
    let order: Vec<&str> = list.iter().map(|v| v.tag.as_str()).collect();
    assert_eq!(
        order,
        ["0.2", "0.09", "0.9", "0.10", "1.2", "1.2.0", "1.2.1"]
    );
}

#[test]
fn promotion_plans() {
    let empty = tags(&[]);
    assert_eq!(
        plan_promotion(&PromotionInput {
            source_digest: "sha256:b",
            tags: &empty,
            live_digest: None,
        }),
        PromotionPlan::Promote {
            archive: None,
            version_before: None,
            version_after: "0.1".into(),
        },
        "first promotion into an empty repository numbers nothing"
    );
    let only_latest = tags(&["latest"]);
    assert_eq!(
        plan_promotion(&PromotionInput {
            source_digest: "sha256:b",
            tags: &only_latest,
            live_digest: Some("sha256:a"),
        }),
        PromotionPlan::Promote {
            archive: Some(Archive {
                tag: "0.1".into(),
                digest: "sha256:a".into(),
            }),
            version_before: Some("0.1".into()),
            version_after: "0.2".into(),
        },
        "only latest: the live image becomes 0.1, never latest.1"
    );
    let nine = tags(&["0.8", "0.9", "latest"]);
    assert_eq!(
        plan_promotion(&PromotionInput {
            source_digest: "sha256:c",
            tags: &nine,
            live_digest: Some("sha256:b"),
        }),
        PromotionPlan::Promote {
            archive: Some(Archive {
                tag: "0.10".into(),
                digest: "sha256:b".into(),
            }),
            version_before: Some("0.10".into()),
            version_after: "0.11".into(),
        }
    );
    assert_eq!(
        plan_promotion(&PromotionInput {
            source_digest: "sha256:b",
            tags: &nine,
            live_digest: Some("sha256:b"),
        }),
        PromotionPlan::AlreadyLive
    );
    let untagged_versions = tags(&["0.1"]);
    assert_eq!(
        plan_promotion(&PromotionInput {
            source_digest: "sha256:b",
            tags: &untagged_versions,
            live_digest: None,
        }),
        PromotionPlan::Promote {
            archive: None,
            version_before: None,
            version_after: "0.2".into(),
        },
        "no live tag: nothing to archive, whatever versions exist"
    );
}

#[test]
fn rollback_plans() {
    let three = tags(&["0.1", "0.2", "latest"]);
    assert_eq!(
        plan_rollback(&RollbackInput {
            tags: &three,
            to: None,
        }),
        Ok(RollbackPlan {
            restore_tag: "0.2".into(),
            version_before: "0.3".into(),
            version_after: "0.2".into(),
        })
    );
    assert_eq!(
        plan_rollback(&RollbackInput {
            tags: &three,
            to: Some("v0.1"),
        }),
        Ok(RollbackPlan {
            restore_tag: "0.1".into(),
            version_before: "0.3".into(),
            version_after: "0.1".into(),
        })
    );
    let fourteen = tags(&["0.9", "0.14", "0.10", "latest"]);
    assert_eq!(
        plan_rollback(&RollbackInput {
            tags: &fourteen,
            to: None,
        })
        .map(|p| (p.version_before, p.version_after)),
        Ok(("0.15".into(), "0.14".into()))
    );
    assert_eq!(
        plan_rollback(&RollbackInput {
            tags: &three,
            to: Some("0.7"),
        }),
        Err(RollbackError::NoSuchVersion {
            to: "0.7".into(),
            versions: vec!["0.1".into(), "0.2".into()]
        })
    );
    for list in [&["latest"][..], &[][..], &["v1.0", "stable"][..]] {
        assert_eq!(
            plan_rollback(&RollbackInput {
                tags: &tags(list),
                to: None,
            }),
            Err(RollbackError::NothingToRollBack),
            "{list:?}"
        );
    }
    let patch = tags(&["1.2.3", "1.2", "latest"]);
    assert_eq!(
        plan_rollback(&RollbackInput {
            tags: &patch,
            to: None,
        })
        .map(|p| (p.restore_tag, p.version_before)),
        Ok(("1.2.3".into(), "1.3".into()))
    );
}

#[test]
fn rollback_targets() {
    // Tags after promotions of 0.1 to 0.14 (0.15 live) and a rollback's safety tag.
    let mut repo: Vec<String> = (1..=14).map(|m| format!("0.{m}")).collect();
    repo.extend([
        "latest".to_owned(),
        "rolled-back-0.16".to_owned(),
        "1.2.3".to_owned(),
    ]);
    // (to, the version live now, the tag restored or the refusal's text)
    for (to, live, expect) in [
        ("0.14", "0.15", Ok("0.14")),
        ("v0.3", "0.15", Ok("0.3")),
        ("1.2.3", "0.15", Ok("1.2.3")),
        // A version tag that exists is the caller's to judge by digest, even the live number.
        ("0.14", "0.14", Ok("0.14")),
        ("0.15", "0.15", Err("version 0.15 is live already")),
        ("v0.15", "0.15", Err("version 0.15 is live already")),
        (
            "0.16",
            "0.15",
            Err(
                "the repository has no version 0.16 (its versions: …, 0.6, 0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14, 1.2.3)",
            ),
        ),
        ("0.03", "0.15", Err("the repository has no version 0.03 (")),
        (
            "latest",
            "0.15",
            Err("latest is not a version: name a version tag, MAJOR.MINOR such as 0.14"),
        ),
        (
            "rolled-back-0.16",
            "0.15",
            Err("rolled-back-0.16 is not a version"),
        ),
        ("1", "0.15", Err("1 is not a version")),
        ("", "0.15", Err(" is not a version")),
        ("0.1-rc", "0.15", Err("0.1-rc is not a version")),
    ] {
        let got = rollback_to(to, &repo, live).map_err(|e| e.to_string());
        match (&got, expect) {
            (Ok(tag), Ok(wanted)) => assert_eq!(tag, wanted, "{to}"),
            (Err(message), Err(start)) => assert!(message.starts_with(start), "{to}: {message}"),
            _ => panic!("{to} (live {live}): {got:?}, expected {expect:?}"),
        }
    }
    assert_eq!(
        rollback_to("0.2", &tags(&["latest"]), "0.1")
            .unwrap_err()
            .to_string(),
        "the repository has no version 0.2 (it has none)"
    );
}
