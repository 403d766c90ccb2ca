//! Token parsing, the keyed hash, and the upgrade of unkeyed hashes on first use.

use axum::http::{HeaderMap, HeaderValue, header};
use gangplank_store::{Bootstrap, Store};

use super::{TokenHasher, authenticate, bearer_token, legacy_hash};
use crate::error::ApiError;

fn headers(values: &[&str]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for value in values {
        map.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    }
    map
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_the_header_single() {
    for value in ["Bearer tok", "bearer tok", "BEARER tok", "bEaReR   tok "] {
        assert_eq!(bearer_token(&headers(&[value])).unwrap(), "tok", "{value}");
    }
    for value in ["Basic dG9rOg==", "Bearer", "Bearer ", "Bearertok", "tok"] {
        assert!(
            matches!(
                bearer_token(&headers(&[value])),
                Err(ApiError::Unauthorized(_))
            ),
            "{value}"
        );
    }
    assert!(matches!(
        bearer_token(&HeaderMap::new()),
        Err(ApiError::Unauthorized(_))
    ));
    assert!(matches!(
        bearer_token(&headers(&["Bearer a", "Bearer a"])),
        Err(ApiError::Invalid(_))
    ));
}

#[test]
fn tokens_are_random_and_hashes_keyed() {
    let (a, b) = (super::generate_token(), super::generate_token());
    assert_ne!(a, b);
    assert!(a.starts_with("gp_") && a.len() == 46, "{a}");
    let hasher = TokenHasher::new(&[7; 32], false);
    assert_eq!(hasher.hash("x"), hasher.hash("x"));
    assert!(hasher.hash("x").starts_with("h1:") && hasher.hash("x").len() == 67);
    assert!(!hasher.hash("x").contains(&legacy_hash("x")));
    assert_ne!(
        hasher.hash("x"),
        TokenHasher::new(&[8; 32], false).hash("x"),
        "the key matters"
    );
}

#[tokio::test]
async fn an_unkeyed_hash_is_upgraded_when_its_token_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db").display());
    let store = Store::connect(&url).await.unwrap();
    let token = "operator-chosen-bootstrap";
    store
        .bootstrap(Bootstrap {
            org_id: "default".to_owned(),
            admin_user_id: "admin".to_owned(),
            admin_name: "admin".to_owned(),
            token_hash: legacy_hash(token),
            env_types: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(store.legacy_token_hashes().await.unwrap(), 1);
    let hasher = TokenHasher::new(&[1; 32], true);
    assert!(authenticate(&store, &hasher, "wrong").await.is_err());
    let caller = authenticate(&store, &hasher, token).await.unwrap();
    assert_eq!(caller.user_id, "admin");
    assert_eq!(store.legacy_token_hashes().await.unwrap(), 0, "rewritten");
    assert!(
        store
            .find_principal(&legacy_hash(token))
            .await
            .unwrap()
            .is_none()
    );
    let found = store.find_principal(&hasher.hash(token)).await.unwrap();
    assert_eq!(found.map(|p| p.user_id).as_deref(), Some("admin"));
    // A hasher that no longer looks for unkeyed hashes still knows the upgraded token.
    let later = TokenHasher::new(&[1; 32], false);
    assert_eq!(
        authenticate(&store, &later, token).await.unwrap().user_id,
        "admin"
    );
    store.close().await;
}
