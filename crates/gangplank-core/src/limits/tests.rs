//! Each bound at its maximum passes and one past it fails, naming the field.

use super::*;

#[test]
fn each_bound_accepts_its_maximum_and_refuses_one_more() {
    type Check = Box<dyn Fn(usize) -> Result<(), ValidationError>>;
    let cases: Vec<(&str, usize, Check)> = vec![
        (
            "name",
            MAX_NAME_LEN,
            Box::new(|n| check_len("name", &"a".repeat(n), MAX_NAME_LEN)),
        ),
        (
            "headers",
            MAX_WEBHOOK_HEADERS,
            Box::new(|n| check_count("headers", n, MAX_WEBHOOK_HEADERS)),
        ),
        (
            "comment",
            MAX_TEXT_LEN,
            Box::new(|n| check_opt_len("comment", Some(&"a".repeat(n)), MAX_TEXT_LEN)),
        ),
        (
            "timeout_seconds",
            MAX_TARGET_TIMEOUT_SECONDS as usize,
            Box::new(|n| check_target_timeout(n as u64)),
        ),
    ];
    for (field, max, check) in cases {
        assert_eq!(check(max), Ok(()), "{field} at its maximum");
        let error = check(max + 1).unwrap_err();
        assert_eq!(error.field, field);
    }
    assert!(check_target_timeout(0).is_err());
    assert!(check_target_timeout(u64::MAX).is_err());
    assert!(check_opt_len("x", None, 0).is_ok());
}

#[test]
fn token_expiry_is_at_most_ten_years_ahead() {
    let now = 1_700_000_000_000;
    assert!(check_token_expiry("expires_at", now + MAX_TOKEN_LIFETIME_MS, now).is_ok());
    let error = check_token_expiry("expires_at", now + MAX_TOKEN_LIFETIME_MS + 1, now);
    assert_eq!(error.unwrap_err().field, "expires_at");
    assert!(check_token_expiry("expires_at", i64::MAX, now).is_err());
}

#[test]
fn document_depth_is_bounded_at_the_json_limit() {
    let at = format!(
        "{}{}",
        "[".repeat(MAX_DOCUMENT_DEPTH - 1),
        "]".repeat(MAX_DOCUMENT_DEPTH - 1)
    );
    assert!(check_document_depth("spec", at.as_bytes()).is_ok());
    let over = format!(
        "{}{}",
        "[".repeat(MAX_DOCUMENT_DEPTH),
        "]".repeat(MAX_DOCUMENT_DEPTH)
    );
    let error = check_document_depth("spec", over.as_bytes()).unwrap_err();
    assert_eq!(error.field, "spec");
}
