//! The runner on a real SQLite store: a two-job promotion-shaped pipeline behind approvals
//! (approve, deny, self-approval refused), cancel while waiting, expiry, timeout, and a
//! worker whose claim lapsed resuming the run where it was.

use gangplank_core::pipeline::approval::Vote;
use gangplank_store::{Bootstrap, CancelOutcome, NewApp, NewResponse, NewRun, Store};
use serde_json::json;

use super::tick;
use crate::state::AppState;

const PIPELINE: &str = r#"
name: promote
on:
  pipeline_call: {}
timeout-minutes: 60
jobs:
  to-test:
    steps:
      - uses: actions/humanitec/approve@v1
        with:
          env_id: test
          message: "Confirm pushing ${{ inputs.image }} to TEST"
      - id: note
        uses: actions/humanitec/log
        with:
          message: "promoting ${{ inputs.image }}"
  to-prod:
    needs: [to-test]
    steps:
      - uses: actions/humanitec/approve
        with:
          environment: production
          message: to prod
          min_approvals: 2
          expires_in_minutes: 30
      - uses: actions/humanitec/log
        with:
          message: shipped
"#;

async fn state() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db").display());
    let store = Store::connect(&url).await.unwrap();
    store
        .bootstrap(Bootstrap {
            org_id: "acme".into(),
            admin_user_id: "admin".into(),
            admin_name: "admin".into(),
            token_hash: "00".into(),
            env_types: Vec::new(),
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
    // A run needs its pipeline's row (the store refuses a run of a deleted pipeline).
    store
        .create_pipeline(
            "acme",
            gangplank_store::NewPipelineVersion {
                app_id: "shop".into(),
                pipeline_id: "promote".into(),
                name: "promote".into(),
                trigger_types: vec!["pipeline_call".into()],
                metadata: Default::default(),
                definition: PIPELINE.into(),
                created_by: "admin".into(),
            },
            1,
        )
        .await
        .unwrap();
    let secrets = crate::secrets::SecretBox::load(None, dir.path()).unwrap();
    let tokens = crate::auth::TokenHasher::load(&store, &secrets)
        .await
        .unwrap();
    let keys = crate::signing::ServerKeys::load(&store, &secrets)
        .await
        .unwrap();
    let settings = crate::Settings::default();
    let state = AppState::new(
        store,
        &settings,
        crate::metrics::install(),
        secrets,
        keys,
        tokens,
    );
    (dir, state)
}

async fn start(state: &AppState, id: &str) {
    start_with(state, id, PIPELINE).await;
}

async fn start_with(state: &AppState, id: &str, definition: &str) {
    state
        .store
        .create_run(NewRun {
            org_id: "acme".into(),
            app_id: "shop".into(),
            id: id.into(),
            pipeline_id: "promote".into(),
            pipeline_version: "v1".into(),
            definition: definition.into(),
            created_by: "alice".into(),
            run_as: "alice".into(),
            registrant: "ci-bot".into(),
            trigger: "pipeline_call".into(),
            inputs: json!({"image": "reg/app"}),
            timeout_seconds: 3600,
            concurrency_group: String::new(),
            idempotency_key: String::new(),
            env_ids: Vec::new(),
        })
        .await
        .unwrap();
}

/// The waiting approval of a run's job.
async fn waiting(state: &AppState, run: &str, job: &str) -> String {
    let (_, steps) = state
        .store
        .get_job("acme", "shop", run, job)
        .await
        .unwrap()
        .unwrap();
    let step = steps
        .iter()
        .find(|s| s.status == "executing")
        .expect("a waiting step");
    step.related_map()["approval_id"].clone()
}

async fn vote(state: &AppState, approval: &str, user: &str, v: Vote, now: i64) -> bool {
    state
        .store
        .respond_approval(
            "acme",
            "shop",
            approval,
            NewResponse {
                user_id: user.into(),
                may_deploy: true,
                app_role: Some("developer".into()),
                vote: v,
                comment: String::new(),
            },
            now,
        )
        .await
        .unwrap()
        .is_ok()
}

async fn run_status(state: &AppState, run: &str) -> (String, String) {
    let r = state
        .store
        .get_run("acme", "shop", run)
        .await
        .unwrap()
        .unwrap();
    (r.status, r.status_message)
}

#[tokio::test]
async fn approvals_gate_the_jobs_and_a_deny_fails_the_run() {
    let (_dir, state) = state().await;
    start(&state, "r1").await;
    let now = gangplank_store::now_millis();
    assert_eq!(tick(&state, now).await, 1);
    assert_eq!(run_status(&state, "r1").await.0, "executing");
    let first = waiting(&state, "r1", "to-test").await;
    let view = state
        .store
        .get_approval("acme", "shop", &first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.approval.message, "Confirm pushing reg/app to TEST");
    assert_eq!(view.approval.env_id, "test");
    let run = state
        .store
        .get_run("acme", "shop", "r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        run.waiting_for_map()["to-test"],
        format!("approval({first})")
    );
    assert_eq!(
        tick(&state, now + 1).await,
        0,
        "parked until someone responds"
    );
    assert!(
        !vote(&state, &first, "alice", Vote::Approve, now).await,
        "the creator"
    );
    assert!(
        !vote(&state, &first, "ci-bot", Vote::Approve, now).await,
        "the registrant"
    );
    assert!(vote(&state, &first, "bob", Vote::Approve, now).await);
    assert_eq!(tick(&state, now + 2).await, 1, "the approval woke the run");
    let (job, steps) = state
        .store
        .get_job("acme", "shop", "r1", "to-test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, "succeeded");
    assert_eq!(steps.len(), 2);
    let logs = state
        .store
        .list_step_logs("acme", "shop", "r1", "to-test", 1, &Default::default())
        .await
        .unwrap();
    assert_eq!(logs.items[0].message, "promoting reg/app");
    let second = waiting(&state, "r1", "to-prod").await;
    let view = state
        .store
        .get_approval("acme", "shop", &second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view.approval.env_id, "production",
        "`environment` is read as env_id"
    );
    assert!(vote(&state, &second, "bob", Vote::Approve, now).await);
    assert_eq!(
        tick(&state, now + 3).await,
        0,
        "one of two approvals wakes nothing"
    );
    assert_eq!(run_status(&state, "r1").await.0, "executing");
    assert!(vote(&state, &second, "carol", Vote::Deny, now).await);
    assert_eq!(tick(&state, now + 4).await, 1);
    let (status, message) = run_status(&state, "r1").await;
    assert_eq!(status, "failed");
    assert!(message.contains("denied by carol"), "{message}");
    assert_eq!(
        tick(&state, now + 5).await,
        0,
        "a finished run left the queue"
    );
}

#[tokio::test]
async fn two_approvals_let_the_run_succeed() {
    let (_dir, state) = state().await;
    start(&state, "r1").await;
    let now = gangplank_store::now_millis();
    tick(&state, now).await;
    let first = waiting(&state, "r1", "to-test").await;
    assert!(vote(&state, &first, "bob", Vote::Approve, now).await);
    tick(&state, now + 1).await;
    let second = waiting(&state, "r1", "to-prod").await;
    assert!(vote(&state, &second, "bob", Vote::Approve, now).await);
    assert!(vote(&state, &second, "dora", Vote::Approve, now).await);
    tick(&state, now + 2).await;
    assert_eq!(
        run_status(&state, "r1").await,
        ("succeeded".into(), String::new())
    );
    let run = state
        .store
        .get_run("acme", "shop", "r1")
        .await
        .unwrap()
        .unwrap();
    assert!(run.waiting_for_map().is_empty());
}

#[tokio::test]
async fn cancel_stops_a_waiting_run_and_cancels_its_approval() {
    let (_dir, state) = state().await;
    start(&state, "r1").await;
    let now = gangplank_store::now_millis();
    tick(&state, now).await;
    let first = waiting(&state, "r1", "to-test").await;
    let outcome = state
        .store
        .cancel_run("acme", "shop", "r1", None)
        .await
        .unwrap();
    assert!(
        matches!(outcome, CancelOutcome::Requested(_)),
        "{outcome:?}"
    );
    assert_eq!(tick(&state, now + 1).await, 1, "the cancel woke the run");
    assert_eq!(run_status(&state, "r1").await.0, "cancelled");
    let view = state
        .store
        .get_approval("acme", "shop", &first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.approval.status, "cancelled");
    assert!(!vote(&state, &first, "bob", Vote::Approve, now).await);
}

#[tokio::test]
async fn an_expired_approval_fails_the_run_and_a_timeout_cancels_it() {
    let (_dir, state) = state().await;
    start(&state, "r1").await;
    start(&state, "r2").await;
    let now = gangplank_store::now_millis();
    tick(&state, now).await;
    for run in ["r1", "r2"] {
        let first = waiting(&state, run, "to-test").await;
        assert!(vote(&state, &first, "bob", Vote::Approve, now).await);
    }
    tick(&state, now + 1).await;
    // to-prod's request expires after 30 minutes: rechecked then without a wake-up.
    assert_eq!(tick(&state, now + 29 * 60_000).await, 0);
    assert_eq!(tick(&state, now + 31 * 60_000).await, 2);
    let (status, message) = run_status(&state, "r1").await;
    assert_eq!(status, "failed");
    assert!(message.contains("approval expired"), "{message}");
    // A run still waiting when its timeout passes is cancelled.
    start(&state, "r3").await;
    tick(&state, now).await;
    assert_eq!(tick(&state, now + 61 * 60_000).await, 1);
    let (status, message) = run_status(&state, "r3").await;
    assert_eq!(
        (status.as_str(), message.as_str()),
        ("cancelled", "timed out after 60 minutes")
    );
}

#[tokio::test]
async fn a_run_whose_definition_cannot_be_read_fails() {
    let (_dir, state) = state().await;
    state
        .store
        .create_run(NewRun {
            org_id: "acme".into(),
            app_id: "shop".into(),
            id: "bad".into(),
            pipeline_id: "promote".into(),
            pipeline_version: "v1".into(),
            definition: "name: [".into(),
            created_by: "alice".into(),
            run_as: "alice".into(),
            registrant: String::new(),
            trigger: "pipeline_call".into(),
            inputs: json!({}),
            timeout_seconds: 60,
            concurrency_group: String::new(),
            idempotency_key: String::new(),
            env_ids: Vec::new(),
        })
        .await
        .unwrap();
    tick(&state, gangplank_store::now_millis()).await;
    let (status, message) = run_status(&state, "bad").await;
    assert_eq!(status, "failed");
    assert!(
        message.starts_with("the run's definition is invalid"),
        "{message}"
    );
}

#[tokio::test]
async fn a_request_without_expiry_expires_with_the_run_and_fails_it() {
    let (_dir, state) = state().await;
    start(&state, "r1").await;
    let now = gangplank_store::now_millis();
    tick(&state, now).await;
    waiting(&state, "r1", "to-test").await;
    // No expires_in_minutes: the request expires just before the run's 60-minute timeout.
    assert_eq!(tick(&state, now + 59 * 60_000 + 30_000).await, 1);
    let (status, message) = run_status(&state, "r1").await;
    assert_eq!(status, "failed");
    assert!(message.contains("approval expired"), "{message}");
}

#[tokio::test]
async fn a_job_past_its_timeout_minutes_fails_the_run() {
    let (_dir, state) = state().await;
    let definition = r#"
name: promote
on:
  pipeline_call: {}
timeout-minutes: 60
jobs:
  to-test:
    timeout-minutes: 5
    steps:
      - uses: actions/humanitec/approve
        with:
          env_id: test
          expires_in_minutes: 30
"#;
    start_with(&state, "r1", definition).await;
    let now = gangplank_store::now_millis();
    tick(&state, now).await;
    waiting(&state, "r1", "to-test").await;
    assert_eq!(
        tick(&state, now + 4 * 60_000).await,
        0,
        "parked until the job's timeout"
    );
    assert_eq!(tick(&state, now + 5 * 60_000 + 1_000).await, 1);
    let (status, message) = run_status(&state, "r1").await;
    assert_eq!(status, "failed");
    assert!(message.contains("timed out after 5 minutes"), "{message}");
    let (job, steps) = state
        .store
        .get_job("acme", "shop", "r1", "to-test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, "failed");
    assert_eq!(steps[0].status, "cancelled");
}
