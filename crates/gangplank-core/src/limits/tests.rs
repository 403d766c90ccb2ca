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
        (
            "auto_heal_after_seconds",
            MAX_AUTO_HEAL_AFTER_SECONDS as usize,
            Box::new(|n| check_auto_heal_after(n as u64)),
        ),
    ];
    for (field, max, check) in cases {
        assert_eq!(check(max), Ok(()), "{field} at its maximum");
        let error = check(max + 1).unwrap_err();
        assert_eq!(error.field, field);
    }
    assert!(check_target_timeout(0).is_err());
    assert!(check_target_timeout(u64::MAX).is_err());
    assert!(check_auto_heal_after(0).is_err());
    assert!(check_auto_heal_after(u64::MAX).is_err());
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
    let unit = format!("{}x{}, ", "{a: ".repeat(126), "}".repeat(126));
    let wide = format!("[{}]", unit.repeat(1_000_000 / unit.len()));
    let error = check_document_depth("spec", wide.as_bytes()).unwrap_err();
    assert!(error.message.contains("too deeply to parse"), "{error}");
}

#[test]
fn docs_table_lists_every_bound_with_its_value() {
    let doc = include_str!("../../../../docs/limits.md");
    let bounds: [(&str, String); 28] = [
        ("MAX_DOCUMENT_NODES", MAX_DOCUMENT_NODES.to_string()),
        ("MAX_DOCUMENT_DEPTH", MAX_DOCUMENT_DEPTH.to_string()),
        ("MAX_DOCUMENT_WORK", MAX_DOCUMENT_WORK.to_string()),
        ("MAX_NAME_LEN", MAX_NAME_LEN.to_string()),
        ("MAX_TEXT_LEN", MAX_TEXT_LEN.to_string()),
        ("MAX_REF_LEN", MAX_REF_LEN.to_string()),
        ("MAX_URL_LEN", MAX_URL_LEN.to_string()),
        (
            "MAX_TARGET_TIMEOUT_SECONDS",
            MAX_TARGET_TIMEOUT_SECONDS.to_string(),
        ),
        (
            "MAX_AUTO_HEAL_AFTER_SECONDS",
            MAX_AUTO_HEAL_AFTER_SECONDS.to_string(),
        ),
        ("MAX_TARGET_AGENTS", MAX_TARGET_AGENTS.to_string()),
        ("MAX_AGENT_SERVICES", MAX_AGENT_SERVICES.to_string()),
        ("MAX_SERVICE_NAME_LEN", MAX_SERVICE_NAME_LEN.to_string()),
        ("MAX_WEBHOOK_HEADERS", MAX_WEBHOOK_HEADERS.to_string()),
        ("MAX_HEADER_NAME_LEN", MAX_HEADER_NAME_LEN.to_string()),
        ("MAX_HEADER_VALUE_LEN", MAX_HEADER_VALUE_LEN.to_string()),
        ("MAX_WEBHOOK_TRIGGERS", MAX_WEBHOOK_TRIGGERS.to_string()),
        ("MAX_RULE_FILTERS", MAX_RULE_FILTERS.to_string()),
        ("MAX_PATTERN_LEN", MAX_PATTERN_LEN.to_string()),
        ("MAX_TOKEN_LIFETIME_MS", MAX_TOKEN_LIFETIME_MS.to_string()),
        ("MAX_DELTA_PATCHES", MAX_DELTA_PATCHES.to_string()),
        ("MAX_DELTA_ENTRIES", MAX_DELTA_ENTRIES.to_string()),
        ("MAX_REGISTRY_SECRETS", MAX_REGISTRY_SECRETS.to_string()),
        ("MAX_CREDENTIAL_LEN", MAX_CREDENTIAL_LEN.to_string()),
        ("MAX_RUN_INPUTS", MAX_RUN_INPUTS.to_string()),
        (
            "MAX_PIPELINE_DEFINITION_BYTES",
            MAX_PIPELINE_DEFINITION_BYTES.to_string(),
        ),
        ("MAX_PIPELINE_JOBS", MAX_PIPELINE_JOBS.to_string()),
        ("MAX_JOB_STEPS", MAX_JOB_STEPS.to_string()),
        (
            "MAX_PIPELINE_TIMEOUT_MINUTES",
            MAX_PIPELINE_TIMEOUT_MINUTES.to_string(),
        ),
    ];
    for (name, value) in &bounds {
        let row = format!("| `{name}` | {value} |");
        assert!(doc.contains(&row), "docs/limits.md lacks the row {row}");
    }
    let rows = doc.lines().filter(|l| l.starts_with("| `MAX_")).count();
    assert_eq!(
        rows,
        bounds.len(),
        "docs/limits.md has a row for a bound this test does not know"
    );
}
