//! A deployment's lifecycle as the store persists it on a real SQLite file: the target it
//! captured when created, the deadline set on its first claim and kept on resume, cancel of a
//! pending and of an in-progress deployment, and a late finish that cannot overwrite a cancel.

mod support;

use gangplank_core::deploy::{FailureKind, Finish};
use gangplank_core::page::PageRequest;
use gangplank_core::target::TargetConfig;
use gangplank_store::{DeployErrorRow, NewApp, NewDeploy, NewEnv, Store, StoreError};

const COMPOSE_A: &str =
    r#"{"agents":[{"url":"http://a:1","services":{"web":"web"}}],"timeout_seconds":5}"#;
const COMPOSE_B: &str =
    r#"{"agents":[{"url":"http://b:2","services":{"web":"web"}}],"timeout_seconds":60}"#;

async fn store_with_env() -> (tempfile::TempDir, Store) {
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
    (dir, store)
}

async fn deploy(store: &Store, id: &str, from: &str) -> Result<(), StoreError> {
    store
        .create_deploy(NewDeploy {
            org_id: "acme".into(),
            app_id: "shop".into(),
            env_id: "dev".into(),
            id: id.into(),
            expected_from_id: from.into(),
            delta_id: String::new(),
            set_id: format!("s-{id}"),
            set_content: "{}".into(),
            repositories: None,
            comment: String::new(),
            created_by: "admin".into(),
            triggered_by: "admin".into(),
            new_delta: None,
        })
        .await
        .map(|_| ())
}

async fn status(store: &Store, id: &str) -> (String, String) {
    let row = store.get_deploy("acme", "shop", id).await.unwrap().unwrap();
    (row.status, row.failure)
}

#[tokio::test]
async fn a_deployment_keeps_the_target_and_deadline_it_started_with() {
    let (_dir, store) = store_with_env().await;
    store
        .set_env_target("acme", "shop", "dev", "compose", COMPOSE_A)
        .await
        .unwrap();
    deploy(&store, "d1", "").await.unwrap();
    // The environment's target changes after the deployment was created.
    store
        .set_env_target("acme", "shop", "dev", "compose", COMPOSE_B)
        .await
        .unwrap();
    let now = 1_000_000;
    let claimed = store.claim_deploys(now, 1_000, 3, 8).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let expected = TargetConfig::from_stored("compose", COMPOSE_A).unwrap();
    assert_eq!(claimed[0].target, Ok(expected.clone()));
    assert_eq!(claimed[0].deadline_at, now + 5_000);
    // The lease lapses (a crash); the resumed claim has the same target and deadline.
    let again = store.claim_deploys(now + 1_000, 1_000, 3, 8).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].attempt, &again[0].target, again[0].deadline_at),
        (2, &Ok(expected), now + 5_000)
    );
    // Past the deadline, the next claim fails it (errored) with GP-DEADLINE.
    let late = store.claim_deploys(now + 5_000, 1_000, 3, 8).await.unwrap();
    assert!(late.is_empty(), "{late:?}");
    assert_eq!(
        status(&store, "d1").await,
        ("failed".to_owned(), "errored".to_owned())
    );
    let errors = store
        .deploy_errors(
            "acme",
            "shop",
            "d1",
            &PageRequest::parse("errors", None, None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(errors.items[0].code, "GP-DEADLINE", "{errors:?}");
    // Ended: another deployment may start.
    deploy(&store, "d2", "d1").await.unwrap();
}

#[tokio::test]
async fn cancel_pending_and_in_progress_deployments() {
    let (_dir, store) = store_with_env().await;
    deploy(&store, "d1", "").await.unwrap();
    assert!(matches!(
        deploy(&store, "other", "d1").await,
        Err(StoreError::Conflict(_))
    ));
    // Pending: cancelled at once, its queue row gone.
    let (row, was) = store
        .cancel_deploy("acme", "shop", "dev", "d1")
        .await
        .unwrap();
    assert_eq!(
        (row.status.as_str(), was.as_str()),
        ("cancelled", "pending")
    );
    assert_eq!(store.next_deploy_due().await.unwrap(), None);
    assert!(
        store
            .claim_deploys(1_000, 60_000, 3, 8)
            .await
            .unwrap()
            .is_empty()
    );
    // Terminal: a conflict; unknown or in another environment: not found.
    assert!(matches!(
        store.cancel_deploy("acme", "shop", "dev", "d1").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.cancel_deploy("acme", "shop", "dev", "nope").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.cancel_deploy("acme", "shop", "prod", "d1").await,
        Err(StoreError::NotFound(_))
    ));

    // In progress: cancelled; the worker's lease renewal learns it, and its late finish does
    // not overwrite the status.
    deploy(&store, "d2", "d1").await.unwrap();
    let claimed = store.claim_deploys(1_000, 60_000, 3, 8).await.unwrap();
    assert_eq!(claimed[0].deploy.status, "in progress");
    assert!(
        store
            .renew_deploy_lease("acme", "shop", "d2", 1, 90_000)
            .await
            .unwrap()
    );
    let (row, was) = store
        .cancel_deploy("acme", "shop", "dev", "d2")
        .await
        .unwrap();
    assert_eq!(
        (row.status.as_str(), was.as_str()),
        ("cancelled", "in progress")
    );
    assert!(
        !store
            .renew_deploy_lease("acme", "shop", "d2", 1, 120_000)
            .await
            .unwrap(),
        "a cancelled deployment's lease is not renewed"
    );
    let error = DeployErrorRow {
        scope: "deployment".into(),
        object_id: String::new(),
        code: "GP-X".into(),
        summary: "late".into(),
        message: "late".into(),
    };
    let recorded = store
        .finish_deploy(
            "acme",
            "shop",
            "d2",
            1,
            Finish::Failed(FailureKind::Failed),
            vec![error],
        )
        .await
        .unwrap();
    assert!(!recorded);
    assert_eq!(
        status(&store, "d2").await,
        ("cancelled".to_owned(), String::new())
    );
    // A new deployment can start after the cancel.
    deploy(&store, "d3", "d2").await.unwrap();
    let claimed = store.claim_deploys(2_000, 60_000, 3, 8).await.unwrap();
    assert_eq!(claimed[0].deploy.id, "d3");
    assert!(
        store
            .finish_deploy(
                "acme",
                "shop",
                "d3",
                1,
                Finish::Failed(FailureKind::Errored),
                vec![]
            )
            .await
            .unwrap()
    );
    assert_eq!(
        status(&store, "d3").await,
        ("failed".to_owned(), "errored".to_owned())
    );
}

#[tokio::test]
async fn a_deployment_from_before_captured_targets_uses_the_environments() {
    let (dir, store) = store_with_env().await;
    store
        .set_env_target("acme", "shop", "dev", "compose", COMPOSE_A)
        .await
        .unwrap();
    deploy(&store, "d1", "").await.unwrap();
    // As a row written before migration 0008: no captured target.
    rusqlite::Connection::open(dir.path().join("db.sqlite"))
        .unwrap()
        .execute("UPDATE deploys SET target = '' WHERE id = 'd1'", [])
        .unwrap();
    store
        .set_env_target("acme", "shop", "dev", "compose", COMPOSE_B)
        .await
        .unwrap();
    let claimed = store.claim_deploys(1_000, 60_000, 3, 8).await.unwrap();
    assert_eq!(
        claimed[0].target,
        Ok(TargetConfig::from_stored("compose", COMPOSE_B).unwrap())
    );
    assert_eq!(claimed[0].deadline_at, 1_000 + 60_000);
}
