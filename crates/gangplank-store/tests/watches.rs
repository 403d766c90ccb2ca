//! Registry watches: due watches by their durable schedule, seen tags kept across a reopen
//! (a restart), a poll recorded on a deleted watch ignored, and deletion taking the seen tags.

mod support;

use gangplank_store::{PollRecord, Store, StoreError, WatchRow};

fn watch(id: &str, next_poll_at: i64) -> WatchRow {
    WatchRow {
        org_id: "acme".into(),
        id: id.into(),
        image: "registry.example.com/team/app".into(),
        filter_kind: "semver".into(),
        filter_pattern: ">=1".into(),
        interval_seconds: 300,
        next_poll_at,
        last_polled_at: 0,
        last_error: String::new(),
        created_at: 1,
        created_by: "admin".into(),
    }
}

#[tokio::test]
async fn schedules_and_seen_tags_survive_a_reopen() {
    let (_dir, store, url) = support::bootstrapped_store().await;
    store.create_watch(watch("w1", 100)).await.unwrap();
    store.create_watch(watch("w2", 500)).await.unwrap();
    assert!(matches!(
        store.create_watch(watch("w1", 100)).await,
        Err(StoreError::Conflict(_))
    ));
    let due: Vec<String> = store
        .due_watches(200, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(due, ["w1"]);
    assert_eq!(store.next_watch_due(0).await.unwrap(), Some(100));
    assert_eq!(store.next_watch_due(100).await.unwrap(), Some(500));

    store
        .record_poll(
            "acme",
            "w1",
            PollRecord {
                polled_at: Some(200),
                next_poll_at: 300_200,
                error: String::new(),
                seen: vec![
                    ("1.0.0".into(), String::new()),
                    ("1.1.0".into(), "sha256:aa".into()),
                ],
            },
        )
        .await
        .unwrap();
    // Seen again (a repeated record after a crash) is not an error; a put-off keeps
    // last_polled_at.
    store
        .record_poll(
            "acme",
            "w1",
            PollRecord {
                polled_at: None,
                next_poll_at: 400_000,
                error: "registry answered 429".into(),
                seen: vec![("1.1.0".into(), "sha256:aa".into())],
            },
        )
        .await
        .unwrap();
    drop(store);

    let store = Store::connect(&url).await.unwrap();
    let w1 = store.get_watch("acme", "w1").await.unwrap();
    assert_eq!(
        (w1.last_polled_at, w1.next_poll_at, w1.last_error.as_str()),
        (200, 400_000, "registry answered 429")
    );
    assert_eq!(
        store.seen_tags("acme", "w1").await.unwrap(),
        ["1.0.0", "1.1.0"]
    );
    assert_eq!(store.next_watch_due(0).await.unwrap(), Some(500));

    store.delete_watch("acme", "w1").await.unwrap();
    assert!(store.seen_tags("acme", "w1").await.unwrap().is_empty());
    assert!(matches!(
        store.delete_watch("acme", "w1").await,
        Err(StoreError::NotFound(_))
    ));
    // A poll that ends after its watch was deleted records nothing.
    store
        .record_poll(
            "acme",
            "w1",
            PollRecord {
                polled_at: Some(300),
                next_poll_at: 1,
                error: String::new(),
                seen: vec![("2.0.0".into(), String::new())],
            },
        )
        .await
        .unwrap();
    assert!(store.seen_tags("acme", "w1").await.unwrap().is_empty());
    let page = store
        .list_watches("acme", &gangplank_core::page::PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}
