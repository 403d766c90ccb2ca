//! Table tests of the watch decisions: filters, new tags, image and interval rules, the budget.

use std::collections::BTreeSet;

use super::*;

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| (*t).to_owned()).collect()
}

#[test]
fn filters_accept_what_they_say() {
    let cases: &[(&str, &str, &str, bool)] = &[
        ("all", "", "anything", true),
        ("semver", ">=1.2, <2", "1.2.0", true),
        ("semver", ">=1.2, <2", "v1.9.9", true),
        ("semver", ">=1.2, <2", "2.0.0", false),
        ("semver", ">=1.2, <2", "1.1.9", false),
        ("semver", ">=1.2, <2", "1.3.0-rc.1", false),
        ("semver", ">=1.2, <2", "latest", false),
        ("semver", ">=1.2, <2", "1.3", false),
        ("regex", "^main-[0-9a-f]{7}$", "main-abc1234", true),
        ("regex", "^main-[0-9a-f]{7}$", "dev-abc1234", false),
        ("regex", "rc", "1.0-rc1", true),
    ];
    for (kind, pattern, tag, expected) in cases {
        let filter = TagFilter::parse(kind, pattern).unwrap();
        assert_eq!(
            filter.accepts(tag),
            *expected,
            "{kind} {pattern:?} on {tag}"
        );
    }
}

#[test]
fn bad_filters_name_their_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("semver", "not a range", "semver"),
        ("regex", "(", "regex"),
        ("regex", "", "regex"),
        ("all", "x", "filter"),
        ("newest", "", "filter"),
    ];
    for (kind, pattern, field) in cases {
        let error = TagFilter::parse(kind, pattern).unwrap_err();
        assert_eq!(error.field, *field, "{kind} {pattern:?}");
    }
    let long = "a".repeat(MAX_PATTERN_LEN + 1);
    assert_eq!(TagFilter::parse("regex", &long).unwrap_err().field, "regex");
    // A pattern whose compiled form is huge fails to compile rather than eating memory.
    let error = TagFilter::parse("regex", "\\w{1000}\\w{1000}").unwrap_err();
    assert_eq!(error.field, "regex");
}

#[test]
fn new_tags_are_listed_minus_seen_in_order() {
    let seen: BTreeSet<String> = tags(&["1.0.0", "1.1.0"]).into_iter().collect();
    let semver = TagFilter::parse("semver", ">=1").unwrap();
    let all = TagFilter::parse("all", "").unwrap();
    let listed = tags(&["1.10.0", "1.0.0", "1.1.0", "1.2.0", "latest", "1.2.0"]);
    let cases: &[(&TagFilter, bool, &[&str], &[&str])] = &[
        // By version for semver (1.2.0 before 1.10.0), duplicates once.
        (&semver, false, &["1.2.0", "1.10.0"], &[]),
        (&all, false, &["1.10.0", "1.2.0", "latest"], &[]),
        // The first poll registers nothing: what it finds becomes the baseline.
        (&semver, true, &[], &["1.2.0", "1.10.0"]),
    ];
    for (filter, first, register, baseline) in cases {
        let found = new_tags(filter, &listed, &seen, *first);
        assert_eq!(found.register, tags(register), "{filter:?} first={first}");
        assert_eq!(found.baseline, tags(baseline), "{filter:?} first={first}");
    }
    assert_eq!(
        new_tags(&all, &[], &seen, false).register,
        Vec::<String>::new()
    );
}

#[test]
fn images_and_intervals_are_checked() {
    assert_eq!(
        parse_image("127.0.0.1:5000/team/app").unwrap().to_string(),
        "127.0.0.1:5000/team/app"
    );
    assert_eq!(
        parse_image("docker.io/nginx").unwrap().to_string(),
        "docker.io/library/nginx"
    );
    for bad in ["nginx", "team/app", "reg.io/app:1.0", "reg.io/App", ""] {
        assert_eq!(parse_image(bad).unwrap_err().field, "image", "{bad}");
    }
    assert_eq!(check_interval(30, 30), Ok(30));
    assert_eq!(check_interval(1, 1), Ok(1));
    assert!(check_interval(29, 30).is_err());
    assert!(check_interval(MAX_INTERVAL_SECONDS + 1, 30).is_err());
}

#[test]
fn one_budget_per_host_and_back_off_holds_every_watch() {
    let mut budget = RegistryBudget::new(2);
    assert_eq!(budget.admit("a", 1_000), Admission::Go);
    assert_eq!(budget.admit("a", 2_000), Admission::Go);
    assert_eq!(budget.admit("a", 3_000), Admission::Spent(61_000));
    assert_eq!(
        budget.admit("b", 3_000),
        Admission::Go,
        "hosts are separate"
    );
    assert_eq!(budget.admit("a", 61_000), Admission::Go, "a new window");
    budget.back_off("b", 90_000);
    assert_eq!(budget.admit("b", 70_000), Admission::BackedOff(90_000));
    budget.back_off("b", 80_000);
    assert_eq!(
        budget.admit("b", 85_000),
        Admission::BackedOff(90_000),
        "an earlier back-off does not shorten a later one"
    );
    assert_eq!(budget.admit("b", 90_000), Admission::Go);
}
