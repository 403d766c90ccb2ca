//! Unit tests of JSON body parsing.

use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize, PartialEq)]
struct Limits {
    timeout_seconds: u64,
    offset: i64,
    ratio: f64,
}

#[test]
fn integral_floats_are_integers_as_json_schema_says() {
    let parsed: Limits =
        parse_json(br#"{"timeout_seconds": 60.0, "offset": -3.0, "ratio": 0.5}"#).unwrap();
    assert_eq!(
        parsed,
        Limits {
            timeout_seconds: 60,
            offset: -3,
            ratio: 0.5
        }
    );
}

#[test]
fn fractional_floats_still_name_the_field() {
    let error =
        parse_json::<Limits>(br#"{"timeout_seconds": 1.5, "offset": 0, "ratio": 1}"#).unwrap_err();
    let ApiError::Unprocessable(message) = error else {
        panic!("{error:?}")
    };
    assert!(message.starts_with("timeout_seconds: "), "{message}");
}
