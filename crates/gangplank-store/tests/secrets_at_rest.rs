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
    let refused = store.delete_token("admin", "bootstrap").await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    // An expired token is no way in.
    store
        .create_token(token("admin", "old", Some(1)))
        .await
        .unwrap();
    let refused = store.delete_token("admin", "bootstrap").await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    store.delete_token("admin", "old").await.unwrap();
    // Another administrator who can sign in frees the first one's tokens.
    store
        .create_service_user("acme", "admin2", "admin2", "", "administrator")
        .await
        .unwrap();
    let refused = store.delete_token("admin", "bootstrap").await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "without a token the second administrator does not count: {refused:?}"
    );
    store
        .create_token(token("admin2", "ci", None))
        .await
        .unwrap();
    store.delete_token("admin", "bootstrap").await.unwrap();
    // Now the second is the last; removing or demoting them is refused as well.
    let refused = store.delete_token("admin2", "ci").await;
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
    let missing = store.delete_token("admin2", "nope").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn two_administrators_deleting_their_only_tokens_at_once_keep_one() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    store
        .create_service_user("acme", "admin2", "admin2", "", "administrator")
        .await
        .unwrap();
    store
        .create_token(NewToken {
            user_id: "admin2".into(),
            id: "ci".into(),
            token_hash: "h1:admin2-ci".into(),
            description: String::new(),
            created_by: "admin2".into(),
            expires_at: None,
        })
        .await
        .unwrap();
    // Neither is the last administrator before the deletes, so no check outside the
    // deleting transaction would stop either.
    let (first, second) = tokio::join!(
        store.delete_token("admin", "bootstrap"),
        store.delete_token("admin2", "ci")
    );
    let refused = [&first, &second]
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Refused(_))))
        .count();
    assert_eq!(refused, 1, "{first:?} {second:?}");
    assert!(first.is_ok() || second.is_ok(), "{first:?} {second:?}");
}

#[tokio::test]
async fn members_change_roles_when_no_administrator_can_sign_in() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    let expires_at = gangplank_store::now_millis() + 300;
    store
        .create_token(NewToken {
            user_id: "admin".into(),
            id: "short".into(),
            token_hash: "h1:admin-short".into(),
            description: String::new(),
            created_by: "admin".into(),
            expires_at: Some(expires_at),
        })
        .await
        .unwrap();
    store.delete_token("admin", "bootstrap").await.unwrap();
    for user in ["m1", "m2"] {
        store
            .create_service_user("acme", user, user, "", "member")
            .await
            .unwrap();
    }
    // Wait for the clock, not for another task: the only usable admin token expires.
    while gangplank_store::now_millis() <= expires_at {
        tokio::task::yield_now().await;
    }
    store.set_org_role("acme", "m1", "orgViewer").await.unwrap();
    store.remove_member("acme", "m2").await.unwrap();
    // Changing or removing an administrator is still checked.
    let refused = store.set_org_role("acme", "admin", "member").await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    let refused = store.remove_member("acme", "admin").await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
}
