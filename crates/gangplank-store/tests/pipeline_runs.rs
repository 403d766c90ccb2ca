//! Pipeline runs on a real SQLite file: creation is idempotent per key, a concurrency group
//! queues runs one at a time, claims fence the runner's writes, a run waiting on people parks
//! and is woken by a response (also one that arrives while it is held), approvals follow the
//! policy, and cancelling ends a queued run at once and an executing one on request.

mod support;

use gangplank_core::page::PageRequest;
use gangplank_core::pipeline::approval::{Policy, RespondError, Vote};
use gangplank_core::pipeline::lifecycle::{JobEvent, RunEvent, StepEvent};
use gangplank_store::{
    CancelOutcome, NewApp, NewApproval, NewJob, NewPipelineVersion, NewResponse, NewRun, NewStep,
    RunFilter, RunWrite, Store, StoreError,
};
use serde_json::json;

async fn store_with_app() -> (tempfile::TempDir, Store) {
    let (dir, store, _url) = support::bootstrapped_store().await;
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
    create_pipeline(&store, "promote").await;
    (dir, store)
}

/// Pipeline `id` in app `shop`: a run needs its pipeline.
async fn create_pipeline(store: &Store, id: &str) {
    store
        .create_pipeline(
            "acme",
            NewPipelineVersion {
                app_id: "shop".into(),
                pipeline_id: id.into(),
                name: id.into(),
                trigger_types: vec!["pipeline_call".into()],
                metadata: Default::default(),
                definition: format!("name: {id}\n"),
                created_by: "admin".into(),
            },
            1,
        )
        .await
        .unwrap();
}

fn new_run(id: &str, group: &str, key: &str) -> NewRun {
    NewRun {
        org_id: "acme".into(),
        app_id: "shop".into(),
        id: id.into(),
        pipeline_id: "promote".into(),
        pipeline_version: "v1".into(),
        definition: "name: p".into(),
        created_by: "alice".into(),
        run_as: "alice".into(),
        registrant: "ci-bot".into(),
        trigger: "pipeline_call".into(),
        inputs: json!({"image": "reg/app"}),
        timeout_seconds: 3600,
        concurrency_group: group.into(),
        idempotency_key: key.into(),
        env_ids: vec!["test".into()],
    }
}

fn response(user: &str, vote: Vote) -> NewResponse {
    NewResponse {
        user_id: user.into(),
        may_deploy: true,
        app_role: Some("developer".into()),
        vote,
        comment: format!("{user} says {}", vote.as_str()),
    }
}

#[tokio::test]
async fn creation_is_idempotent_per_key_and_lists_newest_first() {
    let (_dir, store) = store_with_app().await;
    let (first, created) = store.create_run(new_run("r1", "", "k1")).await.unwrap();
    assert!(created);
    assert_eq!(first.status, "queued");
    let (again, created) = store.create_run(new_run("r2", "", "k1")).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, "r1");
    store.create_run(new_run("r3", "", "")).await.unwrap();
    store.create_run(new_run("r4", "", "")).await.unwrap();
    let page = PageRequest {
        per_page: 2,
        after: None,
    };
    let listed = store
        .list_runs("acme", Some("shop"), RunFilter::default(), &page)
        .await
        .unwrap();
    let ids: Vec<_> = listed.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r4", "r3"]);
    let rest = store
        .list_runs(
            "acme",
            None,
            RunFilter::default(),
            &PageRequest {
                per_page: 2,
                after: listed.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].id, "r1");
    let by_env = store
        .list_runs(
            "acme",
            None,
            RunFilter {
                env_id: Some("prod".into()),
                ..RunFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(by_env.items.is_empty());
}

#[tokio::test]
async fn a_concurrency_group_runs_one_at_a_time_in_order() {
    let (_dir, store) = store_with_app().await;
    store.create_run(new_run("r1", "repo-1", "")).await.unwrap();
    store.create_run(new_run("r2", "repo-1", "")).await.unwrap();
    store.create_run(new_run("r3", "other", "")).await.unwrap();
    let now = 1_000;
    let a = store.claim_run(now, 30_000).await.unwrap().unwrap();
    assert_eq!(a.run.id, "r1");
    store
        .record_run("acme", "shop", "r1", a.attempt, vec![start()], now)
        .await
        .unwrap();
    let b = store.claim_run(now, 30_000).await.unwrap().unwrap();
    assert_eq!(b.run.id, "r3", "r2 waits for r1 of its group");
    assert!(store.claim_run(now, 30_000).await.unwrap().is_none());
    // r1 parks (waiting on people): r2 still may not start.
    assert!(
        store
            .park_run("acme", "shop", "r1", a.attempt, now + 60_000)
            .await
            .unwrap()
    );
    assert!(store.claim_run(now, 30_000).await.unwrap().is_none());
    let a2 = store
        .claim_run(now + 60_000, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a2.run.id.as_str(), a2.attempt), ("r1", 2));
    let finish = RunWrite::Finish {
        event: RunEvent::Succeed,
        message: String::new(),
    };
    assert!(
        !store
            .record_run("acme", "shop", "r1", a.attempt, vec![finish.clone()], now)
            .await
            .unwrap(),
        "the first claim is fenced out"
    );
    assert!(
        store
            .record_run("acme", "shop", "r1", a2.attempt, vec![finish], now)
            .await
            .unwrap()
    );
    let c = store
        .claim_run(now + 60_000, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.run.id, "r2", "the group is free once r1 finished");
    let r1 = store.get_run("acme", "shop", "r1").await.unwrap().unwrap();
    assert_eq!(r1.status, "succeeded");
    assert!(r1.completed_at > 0);
}

fn start() -> RunWrite {
    RunWrite::Start {
        inputs: json!({"image": "reg/app", "digest": "sha256:aa"}),
        jobs: vec![NewJob {
            id: "to-test".into(),
            name: "to test".into(),
            timeout_seconds: 3600,
        }],
    }
}

fn approve_step() -> NewStep {
    NewStep {
        job_id: "to-test".into(),
        index: 0,
        step_id: String::new(),
        name: "approve".into(),
        uses: "actions/humanitec/approve".into(),
        timeout_seconds: 0,
    }
}

#[tokio::test]
async fn approvals_follow_the_policy_and_wake_the_run() {
    let (_dir, store) = store_with_app().await;
    store.create_run(new_run("r1", "", "")).await.unwrap();
    let now = 1_000;
    let claim = store.claim_run(now, 30_000).await.unwrap().unwrap();
    let writes = vec![
        start(),
        RunWrite::Job {
            job_id: "to-test".into(),
            event: JobEvent::Start,
            message: String::new(),
        },
        RunWrite::StartStep(approve_step()),
    ];
    assert!(
        store
            .record_run("acme", "shop", "r1", claim.attempt, writes, now)
            .await
            .unwrap()
    );
    let policy = Policy {
        min_approvals: 2,
        ..Policy::default()
    };
    let new = NewApproval {
        id: "ap1".into(),
        job_id: "to-test".into(),
        step_index: 0,
        env_id: "test".into(),
        message: "to test?".into(),
        policy: policy.clone(),
        expires_at: policy.expires_at(now, 0),
    };
    let opened = store
        .open_approval("acme", "shop", "r1", new.clone(), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.approval.status, "waiting");
    let again = store
        .open_approval(
            "acme",
            "shop",
            "r1",
            NewApproval {
                id: "ap2".into(),
                ..new
            },
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.approval.id, "ap1", "one request per step");
    // A response while the runner holds the run: its park ends at once (no lost wake-up).
    let refused = store
        .respond_approval("acme", "shop", "ap1", response("alice", Vote::Approve), now)
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(RespondError::NotEligible(_))),
        "self approval"
    );
    let one = store
        .respond_approval("acme", "shop", "ap1", response("bob", Vote::Approve), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.approval.status, "waiting");
    let twice = store
        .respond_approval("acme", "shop", "ap1", response("bob", Vote::Approve), now)
        .await
        .unwrap();
    assert!(matches!(twice, Err(RespondError::AlreadyResponded(_))));
    let settled = store
        .respond_approval("acme", "shop", "ap1", response("carol", Vote::Approve), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.approval.status, "approved");
    assert_eq!(settled.approval.approved_by, "carol");
    assert_eq!(settled.responses.len(), 2);
    assert!(
        store
            .park_run("acme", "shop", "r1", claim.attempt, now + 3_600_000)
            .await
            .unwrap()
    );
    let woken = store.claim_run(now + 1, 30_000).await.unwrap();
    assert_eq!(
        woken.map(|c| c.run.id),
        Some("r1".to_owned()),
        "the decision woke the parked run"
    );
    let late = store
        .respond_approval("acme", "shop", "ap1", response("dora", Vote::Deny), now)
        .await
        .unwrap();
    assert!(matches!(late, Err(RespondError::NotWaiting(_))));
    let listed = store
        .list_approvals("acme", "shop", Default::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn a_parked_run_is_woken_by_a_response_and_expiry_cancels() {
    let (_dir, store) = store_with_app().await;
    store.create_run(new_run("r1", "", "")).await.unwrap();
    let now = 1_000;
    let claim = store.claim_run(now, 30_000).await.unwrap().unwrap();
    store
        .record_run("acme", "shop", "r1", claim.attempt, vec![start()], now)
        .await
        .unwrap();
    let policy = Policy {
        expires_in_minutes: Some(1),
        ..Policy::default()
    };
    store
        .open_approval(
            "acme",
            "shop",
            "r1",
            NewApproval {
                id: "ap1".into(),
                job_id: "to-test".into(),
                step_index: 0,
                env_id: "test".into(),
                message: String::new(),
                policy: policy.clone(),
                expires_at: policy.expires_at(now, 0),
            },
            now,
        )
        .await
        .unwrap();
    store
        .park_run("acme", "shop", "r1", claim.attempt, now + 60_000)
        .await
        .unwrap();
    assert!(store.claim_run(now + 1, 30_000).await.unwrap().is_none());
    assert!(
        store
            .expire_approval("acme", "shop", "ap1", now + 59_999)
            .await
            .unwrap()
            .is_none(),
        "not yet due"
    );
    let expired = store
        .expire_approval("acme", "shop", "ap1", now + 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            expired.approval.status.as_str(),
            expired.approval.status_message.as_str()
        ),
        ("cancelled", "approval expired")
    );
    let refused = store
        .respond_approval(
            "acme",
            "shop",
            "ap1",
            response("bob", Vote::Approve),
            now + 60_001,
        )
        .await
        .unwrap();
    assert!(matches!(refused, Err(RespondError::NotWaiting(_))));
}

#[tokio::test]
async fn cancel_ends_a_queued_run_at_once_and_an_executing_one_on_request() {
    let (_dir, store) = store_with_app().await;
    store.create_run(new_run("r1", "", "")).await.unwrap();
    store.create_run(new_run("r2", "", "")).await.unwrap();
    let run = store.get_run("acme", "shop", "r1").await.unwrap().unwrap();
    let stale = store
        .cancel_run("acme", "shop", "r1", Some("nope"))
        .await
        .unwrap();
    assert!(matches!(stale, CancelOutcome::EtagMismatch(_)));
    let cancelled = store
        .cancel_run("acme", "shop", "r1", Some(&run.etag))
        .await
        .unwrap();
    let CancelOutcome::Cancelled(r1) = cancelled else {
        panic!("{cancelled:?}")
    };
    assert_eq!(r1.status, "cancelled");
    assert_ne!(r1.etag, run.etag);
    assert!(matches!(
        store.cancel_run("acme", "shop", "r1", None).await.unwrap(),
        CancelOutcome::AlreadyCancelled(_)
    ));
    let now = 1_000;
    let claim = store.claim_run(now, 30_000).await.unwrap().unwrap();
    assert_eq!(claim.run.id, "r2", "a cancelled run left the queue");
    let writes = vec![
        start(),
        RunWrite::Job {
            job_id: "to-test".into(),
            event: JobEvent::Start,
            message: String::new(),
        },
        RunWrite::StartStep(approve_step()),
    ];
    store
        .record_run("acme", "shop", "r2", claim.attempt, writes, now)
        .await
        .unwrap();
    store
        .park_run("acme", "shop", "r2", claim.attempt, now + 3_600_000)
        .await
        .unwrap();
    let requested = store.cancel_run("acme", "shop", "r2", None).await.unwrap();
    let CancelOutcome::Requested(r2) = requested else {
        panic!("{requested:?}")
    };
    assert!(r2.cancellation_requested_at > 0);
    let claim = store.claim_run(now + 1, 30_000).await.unwrap().unwrap();
    assert_eq!(claim.run.id, "r2", "the cancel woke it");
    // An illegal transition rolls the whole batch back.
    let bad = store
        .record_run(
            "acme",
            "shop",
            "r2",
            claim.attempt,
            vec![RunWrite::Job {
                job_id: "to-test".into(),
                event: JobEvent::Skip,
                message: String::new(),
            }],
            now,
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Conflict(_))), "{bad:?}");
    store
        .record_run(
            "acme",
            "shop",
            "r2",
            claim.attempt,
            vec![RunWrite::Finish {
                event: RunEvent::Cancel,
                message: "cancelled on request".into(),
            }],
            now,
        )
        .await
        .unwrap();
    let (job, steps) = store
        .get_job("acme", "shop", "r2", "to-test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, "cancelled");
    assert_eq!(steps[0].status, "cancelled");
    assert!(matches!(
        store.cancel_run("acme", "shop", "r2", None).await.unwrap(),
        CancelOutcome::AlreadyCancelled(_)
    ));
    assert!(store.claim_run(now + 2, 30_000).await.unwrap().is_none());
}

#[tokio::test]
async fn steps_record_outputs_and_logs() {
    let (_dir, store) = store_with_app().await;
    store.create_run(new_run("r1", "", "")).await.unwrap();
    let now = 1_000;
    let claim = store.claim_run(now, 30_000).await.unwrap().unwrap();
    let mut outputs = serde_json::Map::new();
    outputs.insert("digest".into(), json!("sha256:aa"));
    let writes = vec![
        start(),
        RunWrite::Job {
            job_id: "to-test".into(),
            event: JobEvent::Start,
            message: String::new(),
        },
        RunWrite::StartStep(approve_step()),
        RunWrite::Log {
            job_id: "to-test".into(),
            index: 0,
            lines: (0..3)
                .map(|i| gangplank_store::NewLogLine {
                    at: now + i,
                    level: "INFO".into(),
                    message: format!("line {i}"),
                })
                .collect(),
        },
        RunWrite::FinishStep {
            job_id: "to-test".into(),
            index: 0,
            event: StepEvent::Succeed,
            message: "done".into(),
            outputs,
            related: [("env_id".to_owned(), "test".to_owned())].into(),
        },
    ];
    assert!(
        store
            .record_run("acme", "shop", "r1", claim.attempt, writes, now)
            .await
            .unwrap()
    );
    let snap = store
        .run_snapshot("acme", "shop", "r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.run.status, "executing");
    assert_eq!(snap.steps[0].outputs_json()["digest"], "sha256:aa");
    assert_eq!(snap.steps[0].related_map()["env_id"], "test");
    let page = store
        .list_step_logs(
            "acme",
            "shop",
            "r1",
            "to-test",
            0,
            &PageRequest {
                per_page: 2,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.next.is_some());
    let missing = store
        .list_step_logs("acme", "shop", "r1", "to-test", 7, &PageRequest::default())
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    let jobs = store
        .list_jobs(
            "acme",
            "shop",
            "r1",
            vec!["executing".into()],
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(jobs.items.len(), 1);
}

/// The runs of pipeline `id` in app `shop`.
async fn runs_of(store: &Store, id: &str) -> Vec<String> {
    let filter = RunFilter {
        pipeline_ids: vec![id.into()],
        ..RunFilter::default()
    };
    let page = store
        .list_runs("acme", Some("shop"), filter, &PageRequest::default())
        .await
        .unwrap();
    page.items.into_iter().map(|run| run.id).collect()
}

#[tokio::test]
async fn a_run_needs_its_pipeline() {
    let (_dir, store) = store_with_app().await;
    let mut orphan = new_run("r1", "", "");
    orphan.pipeline_id = "nobody".into();
    let refused = store.create_run(orphan).await.unwrap_err();
    assert!(matches!(refused, StoreError::NotFound(_)), "{refused:?}");
    // A deleted pipeline is gone for runs too, also for a key a run of it once had.
    create_pipeline(&store, "gone").await;
    let mut first = new_run("r2", "", "k");
    first.pipeline_id = "gone".into();
    store.create_run(first).await.unwrap();
    let claim = store.claim_run(1_000, 30_000).await.unwrap().unwrap();
    let finished = vec![
        start(),
        RunWrite::Finish {
            event: RunEvent::Succeed,
            message: String::new(),
        },
    ];
    assert!(
        store
            .record_run("acme", "shop", "r2", claim.attempt, finished, 1_000)
            .await
            .unwrap()
    );
    store
        .delete_pipeline("acme", "shop", "gone", None)
        .await
        .unwrap();
    for (id, key) in [("r3", ""), ("r4", "k")] {
        let mut again = new_run(id, "", key);
        again.pipeline_id = "gone".into();
        let refused = store.create_run(again).await.unwrap_err();
        assert!(matches!(refused, StoreError::NotFound(_)), "{refused:?}");
    }
    assert_eq!(runs_of(&store, "gone").await, ["r2"]);
    assert!(runs_of(&store, "nobody").await.is_empty());
}

/// With `GANGPLANK_TEST_PG` (a server URL, set by `cargo xtask test` for its PostgreSQL pass),
/// a store with app `shop` on a new empty database there: concurrent writes race only on
/// PostgreSQL (SQLite's writes are serial). `None` without it.
async fn postgres_store_with_app() -> Option<Store> {
    let server = std::env::var("GANGPLANK_TEST_PG").ok()?;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("gp_store_{}_{n}", std::process::id());
    let status = std::process::Command::new("psql")
        .args([
            &format!("{server}/postgres"),
            "-q",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .status()
        .expect("psql creates the test database");
    assert!(status.success(), "creating database {name}");
    let store = Store::connect(&format!("{server}/{name}")).await.unwrap();
    store
        .bootstrap(gangplank_store::Bootstrap {
            org_id: "acme".into(),
            admin_user_id: "admin".into(),
            admin_name: "admin".into(),
            token_hash: "00".into(),
            env_types: vec![("development".into(), String::new())],
        })
        .await
        .unwrap();
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
    create_pipeline(&store, "promote").await;
    Some(store)
}

fn needs_postgres() {
    println!("concurrent writers need PostgreSQL: run with GANGPLANK_TEST_PG (cargo xtask test)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_key_return_one_run_on_postgres() {
    let Some(store) = postgres_store_with_app().await else {
        return needs_postgres();
    };
    for round in 0..10 {
        let key = format!("key-{round}");
        let creates = (0..4).map(|i| {
            let store = store.clone();
            let new = new_run(&format!("r{round}-{i}"), "", &key);
            tokio::spawn(async move { store.create_run(new).await })
        });
        let mut ids = Vec::new();
        let mut created = 0;
        for handle in creates.collect::<Vec<_>>() {
            let (run, new) = handle.await.unwrap().expect("every create answers the run");
            ids.push(run.id);
            created += usize::from(new);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one run per key: {ids:?}");
        assert_eq!(created, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_each_count_on_postgres() {
    let Some(store) = postgres_store_with_app().await else {
        return needs_postgres();
    };
    let now = 1_000;
    let policy = Policy {
        min_approvals: 2,
        ..Policy::default()
    };
    for n in 0..10 {
        let run = format!("r{n}");
        store.create_run(new_run(&run, "", "")).await.unwrap();
        let claim = store.claim_run(now, 30_000).await.unwrap().unwrap();
        assert_eq!(claim.run.id, run);
        let writes = vec![
            start(),
            RunWrite::Job {
                job_id: "to-test".into(),
                event: JobEvent::Start,
                message: String::new(),
            },
            RunWrite::StartStep(approve_step()),
        ];
        assert!(
            store
                .record_run("acme", "shop", &run, claim.attempt, writes, now)
                .await
                .unwrap()
        );
        let new = NewApproval {
            id: format!("ap{n}"),
            job_id: "to-test".into(),
            step_index: 0,
            env_id: "test".into(),
            message: "to test?".into(),
            policy: policy.clone(),
            expires_at: 0,
        };
        store
            .open_approval("acme", "shop", &run, new, now)
            .await
            .unwrap()
            .unwrap();
    }
    for n in 0..10 {
        let id = format!("ap{n}");
        let votes = ["bob", "carol"].map(|user| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                store
                    .respond_approval("acme", "shop", &id, response(user, Vote::Approve), now)
                    .await
            })
        });
        for vote in votes {
            vote.await.unwrap().unwrap().unwrap();
        }
        let view = store
            .get_approval("acme", "shop", &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(view.responses.len(), 2);
        assert_eq!(
            view.approval.status, "approved",
            "{id}: both approvals count"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_created_while_their_pipeline_is_deleted_are_refused_on_postgres() {
    let Some(store) = postgres_store_with_app().await else {
        return needs_postgres();
    };
    let mut deleted = 0;
    for round in 0..20 {
        let pipeline = format!("p{round}");
        create_pipeline(&store, &pipeline).await;
        let creates: Vec<_> = (0..3)
            .map(|i| {
                let store = store.clone();
                let mut new = new_run(&format!("r{round}-{i}"), "", "");
                new.pipeline_id = pipeline.clone();
                tokio::spawn(async move { store.create_run(new).await })
            })
            .collect();
        let delete = {
            let (store, pipeline) = (store.clone(), pipeline.clone());
            tokio::spawn(
                async move { store.delete_pipeline("acme", "shop", &pipeline, None).await },
            )
        };
        for create in creates {
            match create.await.unwrap() {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(other) => panic!("{pipeline}: {other:?}"),
            }
        }
        let runs = runs_of(&store, &pipeline).await;
        match delete.await.unwrap() {
            // Deleted: no run of it may have been created.
            Ok(()) => {
                deleted += 1;
                assert!(runs.is_empty(), "{pipeline} was deleted with runs {runs:?}");
            }
            // Refused: a run committed first, and the pipeline stays.
            Err(StoreError::Conflict(_)) => {
                assert!(!runs.is_empty(), "{pipeline}");
                store
                    .get_pipeline("acme", "shop", &pipeline, None)
                    .await
                    .unwrap();
            }
            Err(other) => panic!("{pipeline}: {other:?}"),
        }
    }
    println!("{deleted} of 20 pipelines deleted before a run");
}
