//! Small formatting helpers the pages share: ages, times, status classes, links.

/// "just now", "5 min ago", "3 h ago", "2 d ago".
pub fn age(now_ms: i64, then_ms: i64) -> String {
    let seconds = (now_ms - then_ms).max(0) / 1000;
    match seconds {
        0..=9 => "just now".to_owned(),
        10..=59 => format!("{seconds} s ago"),
        60..=3599 => format!("{} min ago", seconds / 60),
        3600..=86_399 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

/// A moment as `2026-12-02 05:40 UTC`, and its RFC 3339 form for `<time datetime>`.
pub fn when(ms: i64) -> (String, String) {
    let full = gangplank_core::timestamp::format_millis(ms);
    let short = format!("{} UTC", full.get(..16).unwrap_or(&full).replace('T', " "));
    (short, full)
}

/// The CSS class of a deployment status.
pub fn status_class(status: &str) -> &'static str {
    match status {
        "succeeded" => "ok",
        "failed" | "cancelled" => "bad",
        "pending" | "in progress" => "busy",
        _ => "muted",
    }
}

/// The query string that keeps the organization on every link.
pub fn org_query(org: &str) -> String {
    format!(
        "?org={}",
        form_urlencoded::byte_serialize(org.as_bytes()).collect::<String>()
    )
}

/// Percent-encodes one path segment.
pub fn segment(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        let now = 10_000_000;
        assert_eq!(age(now, now - 3_000), "just now");
        assert_eq!(age(now, now - 42_000), "42 s ago");
        assert_eq!(age(now, now - 300_000), "5 min ago");
        assert_eq!(age(now, now - 7_200_000), "2 h ago");
        assert_eq!(age(now + 2 * 86_400_000, now), "2 d ago");
        assert_eq!(age(now, now + 5_000), "just now");
    }

    #[test]
    fn times_are_shortened() {
        assert_eq!(
            when(0),
            (
                "1970-01-01 00:00 UTC".to_owned(),
                "1970-01-01T00:00:00.000Z".to_owned()
            )
        );
    }
}
