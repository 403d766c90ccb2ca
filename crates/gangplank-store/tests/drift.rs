//! Drift transitions on a real SQLite file: the compare-and-set on the previous state lets one
//! of two observers (replicas) announce a transition, never both, and one claim heals an
//! episode.

mod support;

use gangplank_core::runtime::{DriftEvent, DriftState, WorkloadRuntime};
use gangplank_store::{NewApp, NewDeploy, NewEnv, Observation, ObservedWorkload, Store};

async fn store_with_an_env() -> (tempfile::TempDir, Store) {
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
        .set_env_target("acme", "shop", "dev", "compose", "{}")
        .await
        .unwrap();
    (dir, store)
}

fn drifted_web() -> ObservedWorkload {
    ObservedWorkload {
        runtime: WorkloadRuntime {
            workload: "web".into(),
            agent: "http://a:1".into(),
            service: "web".into(),
            desired_image: Some("w:2".into()),
            running_image: Some("w:1".into()),
            running_digests: vec!["w@sha256:00".into()],
            state: "running".into(),
            health: "none".into(),
            in_sync: Some(false),
            reason: "the agent pins w:1".into(),
            reachable: true,
            ..WorkloadRuntime::default()
        },
        last_seen_at: 5_000,
        error: String::new(),
    }
}

async fn outbox_events(store: &Store) -> i64 {
    store.queue_depths().await.unwrap().webhook_outbox
}

#[tokio::test]
async fn one_of_two_observers_announces_a_transition() {
    let (_dir, store) = store_with_an_env().await;
    // A webhook that hears everything, so each announced event is one outbox row.
    store
        .create_webhook(
            "acme",
            gangplank_store::WebhookRow {
                id: "all".into(),
                app_id: "shop".into(),
                url: "https://example.com/hook".into(),
                disabled: false,
                headers: "{}".into(),
                payload: "{}".into(),
                triggers: "[]".into(),
                secret_sealed: String::new(),
                created_at: 0,
                created_by: "admin".into(),
            },
        )
        .await
        .unwrap();
    let drift = |checked_at| Observation {
        workloads: vec![drifted_web()],
        checked_at,
        previous: DriftState::InSync,
        next: DriftState::Drifted {
            since: 5_000,
            healed_at: None,
        },
        event: Some(DriftEvent::Drifted),
        last_deploy_id: String::new(),
    };
    // Both replicas saw in_sync before: the first moves the state, the second finds it moved.
    let mut first = drift(5_000);
    first.previous = DriftState::Unknown;
    first.next = DriftState::InSync;
    first.event = None;
    assert!(
        store
            .record_observation("acme", "shop", "dev", first)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_observation("acme", "shop", "dev", drift(5_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_observation("acme", "shop", "dev", drift(5_001))
            .await
            .unwrap()
    );
    assert_eq!(outbox_events(&store).await, 1, "announced once");

    let runtime = store.env_runtime("acme", "shop", "dev").await.unwrap();
    assert_eq!(
        runtime.drift,
        DriftState::Drifted {
            since: 5_000,
            healed_at: None
        }
    );
    assert_eq!(runtime.workloads, vec![drifted_web()]);
    let (envs, workloads) = store.drift_counts().await.unwrap();
    assert_eq!((envs, workloads), (1, 1));

    // An environment no longer observed (its target changed) is not counted.
    store
        .set_env_target("acme", "shop", "dev", "none", "{}")
        .await
        .unwrap();
    assert_eq!(store.drift_counts().await.unwrap(), (0, 0));

    // One heal per episode, whoever asks.
    assert!(
        store
            .claim_heal("acme", "shop", "dev", 5_000, 7_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_heal("acme", "shop", "dev", 5_000, 7_001)
            .await
            .unwrap()
    );
    store
        .release_heal("acme", "shop", "dev", 7_000)
        .await
        .unwrap();
    assert!(
        store
            .claim_heal("acme", "shop", "dev", 5_000, 7_002)
            .await
            .unwrap()
    );
    let runtime = store.env_runtime("acme", "shop", "dev").await.unwrap();
    assert_eq!(
        runtime.drift,
        DriftState::Drifted {
            since: 5_000,
            healed_at: Some(7_002)
        }
    );
}

/// An observation computed before a deployment began (the agents are asked for up to 20 s)
/// announces nothing: a deployment replaces containers on purpose.
#[tokio::test]
async fn a_stale_observation_moves_no_drift_state() {
    let (_dir, store) = store_with_an_env().await;
    let in_sync = Observation {
        workloads: Vec::new(),
        checked_at: 1_000,
        previous: DriftState::Unknown,
        next: DriftState::InSync,
        event: None,
        last_deploy_id: String::new(),
    };
    assert!(
        store
            .record_observation("acme", "shop", "dev", in_sync)
            .await
            .unwrap()
    );
    let before_events = outbox_events(&store).await;
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
    let envs = store.compose_envs().await.unwrap();
    assert_eq!(envs.len(), 1);
    assert_eq!(envs[0].last_deploy_id, "d1");
    assert!(envs[0].deploying);
    let drifted = |last_deploy_id: &str| Observation {
        workloads: vec![drifted_web()],
        checked_at: 2_000,
        previous: DriftState::InSync,
        next: DriftState::Drifted {
            since: 2_000,
            healed_at: None,
        },
        event: Some(DriftEvent::Drifted),
        last_deploy_id: last_deploy_id.to_owned(),
    };
    // Read before d1 existed: judged against an older set, so nothing is written.
    assert!(
        !store
            .record_observation("acme", "shop", "dev", drifted(""))
            .await
            .unwrap()
    );
    let runtime = store.env_runtime("acme", "shop", "dev").await.unwrap();
    assert_eq!(runtime.drift, DriftState::InSync);
    assert!(runtime.workloads.is_empty());
    assert_eq!(runtime.checked_at, 1_000);
    // Read with d1 but d1 is still active: the workloads are written, the state is not moved.
    assert!(
        !store
            .record_observation("acme", "shop", "dev", drifted("d1"))
            .await
            .unwrap()
    );
    let runtime = store.env_runtime("acme", "shop", "dev").await.unwrap();
    assert_eq!(runtime.drift, DriftState::InSync);
    assert_eq!(runtime.workloads, vec![drifted_web()]);
    assert_eq!(runtime.checked_at, 2_000);
    assert_eq!(
        outbox_events(&store).await,
        before_events,
        "nothing announced"
    );
}
