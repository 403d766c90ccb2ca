//! Table tests for the ID pattern.

use super::is_valid_id;

#[test]
fn id_pattern_matches_humanitec() {
    let cases = [
        ("development", true),
        ("my-app-2", true),
        ("a1", true),
        ("a", false),
        ("-app", false),
        ("app-", false),
        ("my--app", false),
        ("My-App", false),
        ("my_app", false),
        ("app.x", false),
        ("", false),
        (&*"a".repeat(50), true),
        (&*"a".repeat(51), false),
        ("ünïcode", false),
    ];
    for (input, expected) in cases {
        assert_eq!(is_valid_id(input), expected, "{input:?}");
    }
}
