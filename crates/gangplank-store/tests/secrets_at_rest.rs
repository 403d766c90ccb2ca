//! Sealed values the server's key check and `rotate-key` must see (webhook headers, server
//! secrets), the plain webhook headers left to seal, and the token delete that would lock an
//! organization out.

mod support;

use gangplank_store::{NewApp, NewToken, StoreError, WebhookRow};

#[tokio::test]
async fn webhook_headers_and_server_secrets_are_sealed_values() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    store
        .create_app(NewApp {
            org_id: "acme".into(),
            id: "shop".into(),
            name: "shop".into(),
            created_by: "admin".into(),
            env: None,
        })
        .await
        .unwrap();
    let hook = |id: &str, headers: &str| WebhookRow {
        id: id.into(),
        app_id: "shop".into(),
        url: "https://hooks.example.com/x".into(),
        disabled: false,
        headers: headers.into(),
        payload: "{}".into(),
        triggers: "[]".into(),
        secret_sealed: "k1:aaaaaaaa:c2VjcmV0".into(),
        created_at: 0,
        created_by: "admin".into(),
    };
    store
        .create_webhook("acme", hook("sealed", "k1:bbbbbbbb:aGVhZGVycw=="))
        .await
        .unwrap();
    store
        .create_webhook("acme", hook("plain", r#"{"X-Key":"v"}"#))
        .await
        .unwrap();
    store
        .create_webhook("acme", hook("none", "{}"))
        .await
        .unwrap();
    let stored = store
        .add_server_secret("token-hmac", "k1:cccccccc:a2V5")
        .await
        .unwrap();
    assert_eq!(stored, "k1:cccccccc:a2V5");
    assert_eq!(
        store
            .add_server_secret("token-hmac", "k1:dddddddd:b3RoZXI=")
            .await
            .unwrap(),
        stored,
        "the first stored secret stays"
    );

    let prefixes = store.sealed_prefixes().await.unwrap();
    for id in ["aaaaaaaa", "bbbbbbbb", "cccccccc"] {
        assert!(
            prefixes.iter().any(|p| p.starts_with(&format!("k1:{id}"))),
            "{id} in {prefixes:?}"
        );
    }
    assert!(!prefixes.iter().any(|p| p.starts_with('{')), "{prefixes:?}");

    let mut values = store.sealed_values().await.unwrap();
    let kinds: Vec<(&str, &str)> = values.iter().map(|v| (v.kind, v.id.as_str())).collect();
    assert!(kinds.contains(&("webhook-headers", "sealed")), "{kinds:?}");
    assert!(
        kinds.contains(&("server-secret", "token-hmac")),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&("webhook-headers", "plain")), "{kinds:?}");
    for value in &mut values {
        value.sealed = format!("k1:eeeeeeee:{}", value.id);
    }
    store.reseal(values).await.unwrap();
    let prefixes = store.sealed_prefixes().await.unwrap();
    assert_eq!(
        prefixes,
        ["k1:eeeeeeee:"],
        "every sealed value was re-sealed"
    );

    let plain = store.plain_webhook_headers().await.unwrap();
    assert_eq!(
        plain,
        [("acme".into(), "plain".into(), r#"{"X-Key":"v"}"#.into())]
    );
    // Sealing compares and sets: a row changed meanwhile is left alone.
    store
        .seal_webhook_headers("acme", "plain", "{}", "k1:ffffffff:eA==")
        .await
        .unwrap();
    assert_eq!(store.plain_webhook_headers().await.unwrap().len(), 1);
    store
        .seal_webhook_headers("acme", "plain", r#"{"X-Key":"v"}"#, "k1:ffffffff:eA==")
        .await
        .unwrap();
    assert!(store.plain_webhook_headers().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_last_administrator_who_can_sign_in_keeps_a_token() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    let token = |user: &str, id: &str, expires_at| NewToken {
        user_id: user.into(),
        id: id.into(),
        token_hash: format!("h1:{user}-{id}"),
        description: String::new(),
        created_by: user.into(),
        expires_at,
    };
    assert_eq!(
        store.last_administrator_of("admin").await.unwrap(),
        ["acme"]
    );
    let refused = store.delete_token("admin", "bootstrap", true).await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    // An expired token is no way in.
    store
        .create_token(token("admin", "old", Some(1)))
        .await
        .unwrap();
    let refused = store.delete_token("admin", "bootstrap", true).await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    store.delete_token("admin", "old", true).await.unwrap();
    // Another administrator who can sign in frees the first one's tokens.
    store
        .create_service_user("acme", "admin2", "admin2", "", "administrator")
        .await
        .unwrap();
    assert_eq!(
        store.last_administrator_of("admin").await.unwrap(),
        ["acme"],
        "without a token the second administrator does not count"
    );
    store
        .create_token(token("admin2", "ci", None))
        .await
        .unwrap();
    assert!(
        store
            .last_administrator_of("admin")
            .await
            .unwrap()
            .is_empty()
    );
    store
        .delete_token("admin", "bootstrap", true)
        .await
        .unwrap();
    // Now the second is the last; removing or demoting them is refused as well.
    let refused = store.delete_token("admin2", "ci", true).await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    let refused = store.set_org_role("acme", "admin2", "member").await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    let refused = store.remove_member("acme", "admin2").await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    let missing = store.delete_token("admin2", "nope", true).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}
