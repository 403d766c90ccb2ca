//! The SQLite group-commit writer on a real file: concurrent writes that share a transaction
//! keep their own fates (a conflicting one is undone alone), every acknowledged write survives
//! closing and reopening, and an in-memory database is refused.

mod support;

use gangplank_store::{NewApp, Store, StoreError};

fn app(id: &str) -> NewApp {
    NewApp {
        org_id: "acme".into(),
        id: id.into(),
        name: id.into(),
        created_by: "admin".into(),
        env: None,
    }
}

#[tokio::test]
async fn concurrent_writes_fail_alone_and_acknowledged_ones_are_durable() {
    let (_dir, store, url) = support::bootstrapped_store().await;

    // 40 distinct apps, each created twice at once: the second of each pair conflicts, most
    // likely inside the same transaction as other apps' successful creations.
    let mut tasks = Vec::new();
    for n in 0..80 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.create_app(app(&format!("app-{}", n % 40))).await
        }));
    }
    let (mut created, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::Conflict(message)) => {
                assert!(message.contains("already exists"), "{message}");
                conflicts += 1;
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((created, conflicts), (40, 40));

    store.close().await;
    let reopened = Store::connect(&url).await.unwrap();
    let mut ids: Vec<String> = reopened
        .list_apps(
            "acme",
            None,
            &gangplank_core::page::PageRequest {
                per_page: 100,
                after: None,
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|row| row.id)
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..40).map(|n| format!("app-{n}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn an_in_memory_database_is_refused() {
    let error = Store::connect("sqlite::memory:").await.unwrap_err();
    assert!(error.to_string().contains("in-memory"), "{error}");
}
