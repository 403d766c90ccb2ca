//! Table tests for page sizes, cursor round trips and the refusal of foreign tokens.

use super::*;

fn position(number: i64, text: &str) -> Position {
    Position {
        number,
        text: text.to_owned(),
    }
}

#[test]
fn per_page_defaults_to_50_and_accepts_1_to_100() {
    let parse = |value: Option<&str>| PageRequest::parse("l", value, None).map(|r| r.per_page);
    assert_eq!(parse(None), Ok(50));
    assert_eq!(parse(Some("1")), Ok(1));
    assert_eq!(parse(Some("100")), Ok(100));
    for bad in [
        "0",
        "101",
        "-1",
        "abc",
        "",
        "1.5",
        "99999999999999999999999",
    ] {
        let error = parse(Some(bad)).unwrap_err();
        assert_eq!(error.field, "per_page", "{bad:?}");
        assert!(error.message.contains("1 to 100"), "{bad:?}: {error}");
    }
}

#[test]
fn cursors_round_trip() {
    let cases = [
        position(0, ""),
        position(i64::MAX, ""),
        position(i64::MIN, "x"),
        position(1_764_000_000_000, "my-app"),
        position(-1, "registry.example.com/team/app:ünïcode"),
        position(42, &"n".repeat(700)),
    ];
    for case in cases {
        let token = encode_cursor("/orgs/{org}/apps", &case);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "URL-safe: {token}"
        );
        assert_eq!(decode_cursor("/orgs/{org}/apps", &token), Ok(case.clone()));
        let request = PageRequest::parse("/orgs/{org}/apps", Some("7"), Some(&token)).unwrap();
        assert_eq!(request.after, Some(case));
        assert_eq!(request.fetch_limit(), 8);
    }
}

#[test]
fn garbage_forged_and_foreign_tokens_are_refused() {
    let good = encode_cursor("/a", &position(5, "id-5"));
    let mut edited = URL_SAFE_NO_PAD.decode(&good).unwrap();
    edited[8] ^= 1; // the number, without fixing the checksum
    let edited = URL_SAFE_NO_PAD.encode(edited);
    let mut future = URL_SAFE_NO_PAD.decode(&good).unwrap();
    future[0] = 2;
    let future = URL_SAFE_NO_PAD.encode(future);
    let truncated = &good[..10];
    let padded = format!("{good}==");
    let long = "A".repeat(2000);
    let cases = [
        "",
        "AAAAAAAAAA==",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "not base64!",
        "%2F%2F",
        truncated,
        &edited,
        &future,
        &padded,
        &long,
    ];
    for token in cases {
        let error = decode_cursor("/a", token).unwrap_err();
        assert_eq!(error.field, "page", "{token:?}");
    }
    // A token of another list is not one of this list.
    assert_eq!(decode_cursor("/b", &good).unwrap_err().field, "page");
    assert_eq!(
        PageRequest::parse("/a", None, Some("AAAA"))
            .unwrap_err()
            .field,
        "page"
    );
}

#[test]
fn the_extra_row_becomes_the_next_cursor_only_when_it_came() {
    let rows = |n: i64| (1..=n).map(|i| (position(i, ""), i)).collect::<Vec<_>>();
    let full = Page::from_rows(rows(3), 2);
    assert_eq!(full.items, [1, 2]);
    assert_eq!(full.next, Some(position(2, "")));
    let last = Page::from_rows(rows(2), 2);
    assert_eq!(last.items, [1, 2]);
    assert_eq!(last.next, None);
    let empty = Page::<i64>::from_rows(Vec::new(), 2);
    assert!(empty.items.is_empty() && empty.next.is_none());
}

#[test]
fn a_fixed_table_pages_by_index() {
    let all = ["a", "b", "c", "d", "e"];
    let mut request = PageRequest {
        per_page: 2,
        after: None,
    };
    let mut seen = Vec::new();
    loop {
        let page = page_of_slice(&all, &request);
        seen.extend(page.items);
        match page.next {
            Some(next) => request.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, all);
    request.after = Some(position(i64::MAX, ""));
    assert!(page_of_slice(&all, &request).items.is_empty());
    request.after = Some(position(-5, ""));
    assert!(page_of_slice(&all, &request).items.is_empty());
}

#[test]
fn a_cap_shrinks_the_page() {
    let request = PageRequest::default();
    assert_eq!(cap(&request, 5).per_page, 5);
    assert_eq!(cap(&request, 500).per_page, 50);
}
