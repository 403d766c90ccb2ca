//! Inbound hooks and their deliveries as the store keeps them: a redelivery (the same sender
//! delivery id) is recorded once, deliveries list newest first, only the newest refused
//! deliveries are kept, and deleting a hook removes its deliveries.

mod support;

use gangplank_core::page::PageRequest;
use gangplank_store::{DeliveryClaim, IN_PROGRESS, InboundDeliveryRow, InboundHookRow, StoreError};

fn delivery(id: &str, sender_id: &str) -> InboundDeliveryRow {
    InboundDeliveryRow {
        id: id.into(),
        hook_id: "gh".into(),
        received_at: 1,
        delivery_id: sender_id.into(),
        headers: "{}".into(),
        body_sha256: "00".into(),
        verdict: "accepted".into(),
        message: String::new(),
        caused: "{}".into(),
    }
}

#[tokio::test]
async fn a_redelivery_is_recorded_once() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    let hook = InboundHookRow {
        id: "gh".into(),
        kind: "github".into(),
        secret_sealed: "sealed".into(),
        watches: "[]".into(),
        registry: String::new(),
        disabled: false,
        created_at: 1,
        created_by: "admin".into(),
    };
    store
        .create_inbound_hook("acme", hook.clone())
        .await
        .unwrap();
    assert!(matches!(
        store.create_inbound_hook("acme", hook.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    let record = |row| store.record_inbound_delivery("acme", row, 0);
    assert_eq!(
        record(delivery("d1", "x")).await.unwrap(),
        DeliveryClaim::New
    );
    assert_eq!(
        record(delivery("d2", "x")).await.unwrap(),
        DeliveryClaim::Redelivery
    );
    // Senders without delivery ids are all recorded.
    assert_eq!(
        record(delivery("d3", "")).await.unwrap(),
        DeliveryClaim::New
    );
    assert_eq!(
        record(delivery("d4", "")).await.unwrap(),
        DeliveryClaim::New
    );
    // A delivery whose processing never finished (received at 1) passes its claim on once
    // it is stale, and only once.
    let mut unfinished = delivery("d5", "y");
    unfinished.message = IN_PROGRESS.into();
    assert_eq!(record(unfinished).await.unwrap(), DeliveryClaim::New);
    let mut retry = delivery("d6", "y");
    retry.received_at = 100;
    assert_eq!(
        record(retry.clone()).await.unwrap(),
        DeliveryClaim::Redelivery
    );
    let take = store
        .record_inbound_delivery("acme", retry.clone(), 50)
        .await
        .unwrap();
    assert_eq!(take, DeliveryClaim::Unfinished { id: "d5".into() });
    assert_eq!(
        store
            .record_inbound_delivery("acme", retry, 50)
            .await
            .unwrap(),
        DeliveryClaim::Redelivery
    );
    store
        .finish_inbound_delivery("acme", "gh", "d5", "accepted", "done", "{}", false)
        .await
        .unwrap();
    store
        .finish_inbound_delivery("acme", "gh", "d4", "ignored", "why", "{}", false)
        .await
        .unwrap();
    let page = store
        .list_inbound_deliveries(
            "acme",
            "gh",
            &PageRequest {
                per_page: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["d5", "d4", "d3", "d1"]);
    assert_eq!(page.items[1].verdict, "ignored");

    let mut changed = hook.clone();
    changed.watches = r#"["acme/"]"#.into();
    changed.disabled = true;
    let updated = store.update_inbound_hook("acme", changed).await.unwrap();
    assert!(updated.disabled);
    assert!(!format!("{updated:?}").contains("sealed\""), "{updated:?}");

    store.delete_inbound_hook("acme", "gh").await.unwrap();
    assert!(matches!(
        store.get_inbound_hook("acme", "gh").await,
        Err(StoreError::NotFound(_))
    ));
    let page = store
        .list_inbound_deliveries(
            "acme",
            "gh",
            &PageRequest {
                per_page: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    assert!(page.items.is_empty());
}

#[tokio::test]
async fn only_the_newest_refused_deliveries_are_kept() {
    use gangplank_core::inbound::MAX_REFUSED_DELIVERIES;
    let (_dir, store, _url) = support::bootstrapped_store().await;
    let hook = InboundHookRow {
        id: "gh".into(),
        kind: "github".into(),
        secret_sealed: "sealed".into(),
        watches: "[]".into(),
        registry: String::new(),
        disabled: false,
        created_at: 1,
        created_by: "admin".into(),
    };
    store.create_inbound_hook("acme", hook).await.unwrap();
    store
        .record_inbound_delivery("acme", delivery("accepted", "sender-1"), 0)
        .await
        .unwrap();
    let extra = 5;
    for n in 0..MAX_REFUSED_DELIVERIES + extra {
        let mut refused = delivery(&format!("r{n}"), "");
        refused.verdict = "refused".into();
        store
            .record_inbound_delivery("acme", refused, 0)
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    let mut page = PageRequest {
        per_page: 100,
        after: None,
    };
    loop {
        let listed = store
            .list_inbound_deliveries("acme", "gh", &page)
            .await
            .unwrap();
        ids.extend(listed.items.iter().map(|d| d.id.clone()));
        match listed.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let refused: Vec<&String> = ids.iter().filter(|id| id.starts_with('r')).collect();
    assert_eq!(refused.len() as i64, MAX_REFUSED_DELIVERIES);
    assert!(!ids.contains(&"r4".to_owned()) && ids.contains(&"r5".to_owned()));
    assert!(
        ids.contains(&"accepted".to_owned()),
        "accepted deliveries stay"
    );
}
