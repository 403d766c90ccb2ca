//! Image promotion records on a real SQLite file: a step's record is begun once, expected
//! registry writes are consumed once by exact identity, repository locks exclude other holders
//! until their lease lapses, holds are lifted once, and the list pages newest first.

mod support;

use gangplank_core::page::PageRequest;
use gangplank_store::{ExpectedWrite, HoldRow, PromotionRow, TagOpRow};

fn expected(id: &str, image: &str, digest: &str, expires_at: i64) -> ExpectedWrite {
    ExpectedWrite {
        id: id.into(),
        org_id: "acme".into(),
        image_name: image.into(),
        tag: "latest".into(),
        digest: digest.into(),
        expires_at,
    }
}

#[tokio::test]
async fn an_expected_write_is_consumed_once_by_exact_identity() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    let image = "localhost:5000/ecr-prod/repo-1";
    store
        .expect_registry_write(expected("w1", image, "sha256:aa", 10_000), 1_000)
        .await
        .unwrap();
    let consume = |tag: &'static str, digest: &'static str, consumer: &'static str, now: i64| {
        let store = store.clone();
        async move {
            store
                .consume_expected_write("acme", image, tag, digest, consumer, now)
                .await
                .unwrap()
        }
    };
    assert!(
        !consume("latest", "sha256:bb", "v1", 2_000).await,
        "another digest"
    );
    assert!(
        !consume("0.1", "sha256:aa", "v2", 2_000).await,
        "another tag"
    );
    assert!(
        !store
            .consume_expected_write("other", image, "latest", "sha256:aa", "v3", 2_000)
            .await
            .unwrap(),
        "another org"
    );
    assert!(consume("latest", "sha256:aa", "v4", 2_000).await);
    assert!(
        consume("latest", "sha256:aa", "v4", 2_100).await,
        "the same registration evaluated again (after a crash) is still Gangplank's write"
    );
    assert!(
        !consume("latest", "sha256:aa", "v5", 2_001).await,
        "consumed once"
    );

    // A step resumed after a crash records its expectation again: nothing changes.
    store
        .expect_registry_write(expected("w1", image, "sha256:aa", 10_000), 2_200)
        .await
        .unwrap();
    assert!(
        !consume("latest", "sha256:aa", "v6", 2_300).await,
        "recording again does not make the expectation new"
    );

    store
        .expect_registry_write(expected("w2", image, "sha256:aa", 3_000), 2_500)
        .await
        .unwrap();
    assert!(
        !consume("latest", "sha256:aa", "v7", 3_000).await,
        "expired"
    );
    assert!(
        !consume("latest", "", "v8", 2_600).await,
        "no digest, no match"
    );
}

#[tokio::test]
async fn a_step_begins_its_promotion_once() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    let row = PromotionRow {
        id: "p1".into(),
        org_id: "acme".into(),
        app_id: "shop".into(),
        step_key: "r1/to-test/1".into(),
        action: "promote".into(),
        dest_image: "localhost:5000/ecr-test/repo-1".into(),
        live_tag: "latest".into(),
        archive_tag: "0.3".into(),
        status: "planned".into(),
        created_at: 5,
        ..PromotionRow::default()
    };
    let first = store.begin_promotion(row.clone()).await.unwrap();
    let again = store
        .begin_promotion(PromotionRow {
            id: "p2".into(),
            archive_tag: "0.4".into(),
            ..row.clone()
        })
        .await
        .unwrap();
    assert_eq!(again.id, "p1", "the step's recorded plan, not a second one");
    assert_eq!(again.archive_tag, "0.3");
    assert_eq!(first, again);

    for (seq, state) in [(1, "planned"), (1, "done"), (2, "planned")] {
        store
            .journal_tag_op(
                "p1",
                TagOpRow {
                    seq,
                    op: "put_tag".into(),
                    repository: "ecr-test/repo-1".into(),
                    tag: "0.3".into(),
                    digest_before: String::new(),
                    digest_after: "sha256:aa".into(),
                    state: state.into(),
                    at: 7,
                },
            )
            .await
            .unwrap();
    }
    let ops = store.tag_ops("p1").await.unwrap();
    let states: Vec<(i64, &str)> = ops.iter().map(|o| (o.seq, o.state.as_str())).collect();
    assert_eq!(states, [(1, "done"), (2, "planned")]);

    let mut applied = again.clone();
    applied.status = "applied".into();
    applied.new_live_digest = "sha256:bb".into();
    store.update_promotion(applied).await.unwrap();
    let found = store
        .applied_promotion_of(
            "acme",
            "localhost:5000/ecr-test/repo-1",
            "latest",
            "sha256:bb",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "p1");
    store.mark_rolled_back("acme", "p1", "rb1").await.unwrap();
    let after = store.get_promotion("acme", "p1").await.unwrap();
    assert_eq!(
        (after.status.as_str(), after.rolled_back_by.as_str()),
        ("rolled_back", "rb1")
    );
}

#[tokio::test]
async fn locks_exclude_other_holders_until_their_lease_lapses() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    let image = "localhost:5000/ecr-prod/repo-1";
    assert!(
        store
            .lock_repository("acme", image, "a", "r1", 0, 100)
            .await
            .unwrap()
    );
    assert!(
        !store
            .lock_repository("acme", image, "b", "r2", 50, 150)
            .await
            .unwrap()
    );
    assert!(
        store
            .lock_repository("acme", image, "a", "r1", 60, 200)
            .await
            .unwrap(),
        "renewal"
    );
    let lock = store
        .repository_lock("acme", image, 70)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((lock.holder.as_str(), lock.run_id.as_str()), ("a", "r1"));
    assert!(
        store
            .repository_lock("acme", image, 200)
            .await
            .unwrap()
            .is_none(),
        "lapsed"
    );
    assert!(
        store
            .lock_repository("acme", image, "b", "r2", 200, 300)
            .await
            .unwrap()
    );
    store.unlock_repository("acme", image, "a").await.unwrap();
    assert!(
        store
            .repository_lock("acme", image, 250)
            .await
            .unwrap()
            .is_some(),
        "not a's"
    );
    store.unlock_repository("acme", image, "b").await.unwrap();
    assert!(
        store
            .repository_lock("acme", image, 250)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_hold_stands_until_resumed() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    let image = "localhost:5000/ecr-prod/repo-1";
    assert!(
        store
            .promotion_hold("acme", image, "latest")
            .await
            .unwrap()
            .is_none()
    );
    store
        .hold_promotion(
            "acme",
            HoldRow {
                image_name: image.into(),
                live_tag: "latest".into(),
                app_id: "shop".into(),
                promotion_id: "rb1".into(),
                held_by: "admin".into(),
                held_at: 9,
            },
        )
        .await
        .unwrap();
    let hold = store
        .promotion_hold("acme", image, "latest")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hold.promotion_id, "rb1");
    assert!(
        !store
            .resume_promotion("acme", "other-app", image, "latest")
            .await
            .unwrap(),
        "only the app whose rollback holds it lifts the hold"
    );
    assert!(
        store
            .resume_promotion("acme", "shop", image, "latest")
            .await
            .unwrap()
    );
    assert!(
        !store
            .resume_promotion("acme", "shop", image, "latest")
            .await
            .unwrap()
    );
    assert!(
        store
            .promotion_hold("acme", image, "latest")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_list_pages_newest_first() {
    let (_dir, store, _url) = support::bootstrapped_store().await;
    for (i, dest) in ["a/x", "a/y", "a/x", "a/x"].iter().enumerate() {
        store
            .begin_promotion(PromotionRow {
                id: format!("p{i}"),
                org_id: "acme".into(),
                app_id: "shop".into(),
                step_key: format!("k{i}"),
                dest_image: format!("localhost:5000/{dest}"),
                created_at: 100 + i as i64,
                ..PromotionRow::default()
            })
            .await
            .unwrap();
    }
    let request = PageRequest {
        per_page: 2,
        after: None,
    };
    let first = store
        .list_promotions("acme", "shop", "", &request)
        .await
        .unwrap();
    let ids: Vec<&str> = first.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["p3", "p2"]);
    let next = PageRequest {
        per_page: 2,
        after: first.next.clone(),
    };
    let second = store
        .list_promotions("acme", "shop", "", &next)
        .await
        .unwrap();
    let ids: Vec<&str> = second.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["p1", "p0"]);
    assert!(second.next.is_none());
    let only_x = store
        .list_promotions(
            "acme",
            "shop",
            "localhost:5000/a/x",
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(only_x.items.len(), 3);
}
