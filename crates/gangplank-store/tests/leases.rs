//! The deployment queue's leases on a real SQLite file: a claim hides a job until its lease
//! lapses, renewal pushes that out, and a lapsed job is claimed again as a further attempt.

mod support;

use gangplank_core::deploy::ClaimStanding;
use gangplank_store::{NewApp, NewDeploy, NewEnv, Store};

async fn store_with_a_queued_deploy() -> (tempfile::TempDir, Store) {
    let (dir, store, _url) = support::bootstrapped_store().await;
    store
        .create_app(NewApp {
            org_id: "acme".into(),
            id: "shop".into(),
            name: "shop".into(),
            created_by: "admin".into(),
            env: Some(NewEnv {
                id: "dev".into(),
                name: "dev".into(),
                from_deploy_id: String::new(),
                env_type: "development".into(),
            }),
        })
        .await
        .unwrap();
    store
        .create_deploy(NewDeploy {
            org_id: "acme".into(),
            app_id: "shop".into(),
            env_id: "dev".into(),
            id: "d1".into(),
            expected_from_id: String::new(),
            delta_id: String::new(),
            set_id: "s1".into(),
            set_content: "{}".into(),
            repositories: None,
            comment: String::new(),
            created_by: "admin".into(),
            triggered_by: "admin".into(),
            new_delta: None,
        })
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn claims_renewals_and_lapses() {
    let (_dir, store) = store_with_a_queued_deploy().await;
    let now = 1_000_000;
    let claimed = store.claim_deploys(now, 60_000, 3, 8).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].deploy.status.as_str(), claimed[0].attempt),
        ("in progress", 1)
    );
    assert!(
        store
            .claim_deploys(now + 59_999, 60_000, 3, 8)
            .await
            .unwrap()
            .is_empty(),
        "held by its lease"
    );
    store
        .renew_deploy_lease("acme", "shop", "d1", 1, now + 120_000)
        .await
        .unwrap();
    assert_eq!(store.next_deploy_due().await.unwrap(), Some(now + 120_000));
    assert!(
        store
            .claim_deploys(now + 100_000, 60_000, 3, 8)
            .await
            .unwrap()
            .is_empty(),
        "renewed"
    );
    let again = store
        .claim_deploys(now + 120_000, 60_000, 3, 8)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "a lapsed lease is claimed again");
    assert_eq!(again[0].attempt, 2);
    // The fence: the first claim's runner, still going after its lease lapsed, can neither
    // renew nor finish what the second claim now holds.
    assert_eq!(
        store
            .deploy_claim_standing("acme", "shop", "d1", 1)
            .await
            .unwrap(),
        ClaimStanding::Superseded
    );
    assert_eq!(
        store
            .deploy_claim_standing("acme", "shop", "d1", 2)
            .await
            .unwrap(),
        ClaimStanding::Held
    );
    assert!(
        !store
            .renew_deploy_lease("acme", "shop", "d1", 1, now + 500_000)
            .await
            .unwrap(),
        "a stale claim is not renewed"
    );
    assert_eq!(store.next_deploy_due().await.unwrap(), Some(now + 180_000));
    assert!(
        !store
            .finish_deploy(
                "acme",
                "shop",
                "d1",
                1,
                gangplank_core::deploy::Finish::Succeeded,
                Vec::new(),
            )
            .await
            .unwrap(),
        "a stale claim does not finish"
    );
    assert!(
        store
            .finish_deploy(
                "acme",
                "shop",
                "d1",
                2,
                gangplank_core::deploy::Finish::Succeeded,
                Vec::new(),
            )
            .await
            .unwrap(),
        "the current claim finishes"
    );
    assert_eq!(
        store
            .deploy_claim_standing("acme", "shop", "d1", 2)
            .await
            .unwrap(),
        ClaimStanding::Ended
    );
}

#[tokio::test]
async fn queue_depths_count_the_deployment_until_it_finishes() {
    let (_dir, store) = store_with_a_queued_deploy().await;
    let depths = store.queue_depths().await.unwrap();
    assert_eq!(
        (
            depths.deploy_jobs,
            depths.webhook_outbox,
            depths.automation_inbox,
            depths.digest_resolution
        ),
        (1, 0, 0, 0),
        "{depths:?}"
    );
    let claimed = store.claim_deploys(1_000, 60_000, 3, 8).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        store.queue_depths().await.unwrap().deploy_jobs,
        1,
        "running still counts"
    );
    store
        .finish_deploy(
            "acme",
            "shop",
            "d1",
            1,
            gangplank_core::deploy::Finish::Succeeded,
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(store.queue_depths().await.unwrap().deploy_jobs, 0);
}
