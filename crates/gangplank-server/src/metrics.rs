//! Prometheus metrics: per-route request counts and latency histograms, the domain's counters
//! (deployments, automation, webhook deliveries, registry calls, digest resolutions) and the
//! depths of the durable queues, read from the store at scrape time.
//!
//! Every label value is from a small fixed set or an operator-configured id (organizations,
//! registries): never a version, a deployment id or a URL, so the series stay bounded.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Latency buckets in seconds, from sub-millisecond to the request timeout range.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Deployments take from milliseconds (no target) to the runner's 15-minute deadline.
const DEPLOY_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
];
/// Outbound calls (webhooks, registries) run up to their clients' timeouts (10 s and 30 s
/// by default).
const OUTBOUND_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

const HTTP_REQUESTS: &str = "gangplank_http_requests_total";
const HTTP_DURATION: &str = "gangplank_http_request_duration_seconds";
const VERSIONS_CREATED: &str = "gangplank_artefact_versions_created_total";
const DEPLOYS_FINISHED: &str = "gangplank_deployments_finished_total";
const DEPLOY_DURATION: &str = "gangplank_deployment_duration_seconds";
const DEPLOYS_RUNNING: &str = "gangplank_deployments_running";
const DECISIONS: &str = "gangplank_automation_decisions_total";
const BATCHES: &str = "gangplank_automation_batches_total";
const WEBHOOK_ATTEMPTS: &str = "gangplank_webhook_delivery_attempts_total";
const WEBHOOK_DURATION: &str = "gangplank_webhook_delivery_duration_seconds";
const REGISTRY_REQUESTS: &str = "gangplank_registry_requests_total";
const REGISTRY_DURATION: &str = "gangplank_registry_request_duration_seconds";
const RESOLUTIONS: &str = "gangplank_digest_resolutions_total";
const QUEUE_DEPTH: &str = "gangplank_queue_depth";
const ENVS_DRIFTED: &str = "gangplank_environments_drifted";
const WORKLOADS_OUT_OF_SYNC: &str = "gangplank_workloads_out_of_sync";
const OBSERVE_FAILURES: &str = "gangplank_agent_observation_failures_total";
const AUTO_HEALS: &str = "gangplank_auto_heal_deployments_total";

/// How often the queue depths are read from the store at most: scrapes are seconds apart,
/// and an unauthenticated endpoint must not be a way to load the database.
const DEPTHS_MAX_AGE: Duration = Duration::from_secs(1);

/// Installs the process-wide recorder once and returns its handle (servers started again in
/// the same process share it).
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(DEPLOY_DURATION.into()), &DEPLOY_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(WEBHOOK_DURATION.into()),
                        &OUTBOUND_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(REGISTRY_DURATION.into()),
                        &OUTBOUND_BUCKETS,
                    )
                })
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Only fails if another recorder was installed first, which nothing else does.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            let upkeep = handle.clone();
            // Without periodic upkeep the histograms' buffers grow without bound.
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    upkeep.run_upkeep();
                }
            });
            handle
        })
        .clone()
}

/// The HELP lines.
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "API requests by route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "API request latency by route template, method and status."
    );
    describe_counter!(VERSIONS_CREATED, "Artefact versions recorded, by type.");
    describe_counter!(
        DEPLOYS_FINISHED,
        "Deployments this server's runner finished, by final status (succeeded, failed), and \
         those cancelled through this server (cancelled); not those failed unrun after too \
         many interrupted attempts."
    );
    describe_histogram!(
        DEPLOY_DURATION,
        Unit::Seconds,
        "Time from a deployment's creation to its final status, by that status."
    );
    describe_gauge!(DEPLOYS_RUNNING, "Deployments this server is applying now.");
    describe_counter!(
        DECISIONS,
        "Automation decisions about a new version for one environment, by outcome (queued, or \
         the reason it was skipped: inactive, filter, ref, policy, no_workload, held, downgrade, \
         no_rule)."
    );
    describe_counter!(
        BATCHES,
        "Debounced automation batches closed, by outcome (deployed, held, no_workload)."
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts, by outcome (delivered, retrying, failed)."
    );
    describe_histogram!(
        WEBHOOK_DURATION,
        Unit::Seconds,
        "Webhook delivery attempt latency, by outcome."
    );
    describe_counter!(
        REGISTRY_REQUESTS,
        "Calls to container registries and their token services, by organization, registry \
         id, operation (resolve_digest, ecr_token) and outcome (ok; for resolve_digest \
         unreachable, auth_failed, denied, not_found, http_error, invalid_answer; for ecr_token \
         error, invalid_config)."
    );
    describe_histogram!(
        REGISTRY_DURATION,
        Unit::Seconds,
        "Registry call latency, by organization, registry id and operation."
    );
    describe_counter!(
        RESOLUTIONS,
        "Digest resolution attempts for tags, by outcome (resolved, failed)."
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Work waiting in the durable queues, by queue (deploy_jobs: deployments queued or \
         running; webhook_outbox: deliveries pending; automation_inbox: versions to judge; \
         digest_resolution: tags to resolve). Read at scrape time, capped at 100000."
    );
    describe_gauge!(
        ENVS_DRIFTED,
        "Compose environments whose hosts run something other than their current set (an \
         unreachable agent is not drift). Read at scrape time."
    );
    describe_gauge!(
        WORKLOADS_OUT_OF_SYNC,
        "Workloads of compose environments last observed not running their desired image. \
         Read at scrape time."
    );
    describe_counter!(
        OBSERVE_FAILURES,
        "Asks of an agent's GET /state that got no usable answer."
    );
    describe_counter!(
        AUTO_HEALS,
        "Redeployments auto-heal started for a drifted environment."
    );
}

/// Records the count and latency of every request by route template, method and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// Counts a newly recorded artefact version.
pub fn artefact_version_created(kind: &str) {
    metrics::counter!(VERSIONS_CREATED, "type" => kind.to_owned()).increment(1);
}

/// Counts a finished deployment; `created_at` is its creation time (Unix ms).
pub fn deployment_finished(succeeded: bool, created_at: i64) {
    let status = if succeeded { "succeeded" } else { "failed" };
    let elapsed_ms = (gangplank_store::now_millis() - created_at).max(0);
    metrics::counter!(DEPLOYS_FINISHED, "status" => status).increment(1);
    metrics::histogram!(DEPLOY_DURATION, "status" => status).record(elapsed_ms as f64 / 1000.0);
}

/// Counts a deployment cancelled through this server's API (`created_at`: its creation time).
pub fn deployment_cancelled(created_at: i64) {
    let elapsed_ms = (gangplank_store::now_millis() - created_at).max(0);
    metrics::counter!(DEPLOYS_FINISHED, "status" => "cancelled").increment(1);
    metrics::histogram!(DEPLOY_DURATION, "status" => "cancelled")
        .record(elapsed_ms as f64 / 1000.0);
}

/// Counts one deployment as running while it lives (dropped when the runner's task ends,
/// however it ends).
pub struct DeploymentRunning(());

impl DeploymentRunning {
    pub fn start() -> DeploymentRunning {
        metrics::gauge!(DEPLOYS_RUNNING).increment(1.0);
        DeploymentRunning(())
    }
}

impl Drop for DeploymentRunning {
    fn drop(&mut self) {
        metrics::gauge!(DEPLOYS_RUNNING).decrement(1.0);
    }
}

/// Counts one automation decision (`queued` or a skip reason's code).
pub fn automation_decision(outcome: &'static str) {
    metrics::counter!(DECISIONS, "outcome" => outcome).increment(1);
}

/// Counts one closed automation batch.
pub fn automation_batch(outcome: &'static str) {
    metrics::counter!(BATCHES, "outcome" => outcome).increment(1);
}

/// Counts one webhook delivery attempt and its latency.
pub fn webhook_attempt(outcome: &'static str, elapsed: Duration) {
    metrics::counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
    metrics::histogram!(WEBHOOK_DURATION, "outcome" => outcome).record(elapsed.as_secs_f64());
}

/// Counts one call to a registry (or its token service) and its latency.
pub fn registry_call(
    org_id: &str,
    registry_id: &str,
    operation: &'static str,
    outcome: &'static str,
    elapsed: Duration,
) {
    let (org, registry) = (org_id.to_owned(), registry_id.to_owned());
    metrics::histogram!(REGISTRY_DURATION, "org" => org.clone(), "registry" => registry.clone(), "operation" => operation)
        .record(elapsed.as_secs_f64());
    metrics::counter!(REGISTRY_REQUESTS, "org" => org, "registry" => registry, "operation" => operation, "outcome" => outcome)
        .increment(1);
}

/// Counts one digest resolution attempt.
pub fn digest_resolution(resolved: bool) {
    let outcome = if resolved { "resolved" } else { "failed" };
    metrics::counter!(RESOLUTIONS, "outcome" => outcome).increment(1);
}

/// Counts one agent that did not answer `GET /state` usefully.
pub fn agent_observation_failed() {
    metrics::counter!(OBSERVE_FAILURES).increment(1);
}

/// Counts one redeployment started by auto-heal.
pub fn auto_heal_started() {
    metrics::counter!(AUTO_HEALS).increment(1);
}

/// The exposition text, with the queue depths refreshed if the last read is older than
/// [`DEPTHS_MAX_AGE`].
pub async fn render(state: &AppState) -> String {
    if depths_due() {
        match state.store.queue_depths().await {
            Ok(depths) => {
                for (queue, depth) in [
                    ("deploy_jobs", depths.deploy_jobs),
                    ("webhook_outbox", depths.webhook_outbox),
                    ("automation_inbox", depths.automation_inbox),
                    ("digest_resolution", depths.digest_resolution),
                ] {
                    metrics::gauge!(QUEUE_DEPTH, "queue" => queue).set(depth as f64);
                }
            }
            // The last values stay; the counters are still worth serving.
            Err(error) => tracing::warn!(%error, "reading queue depths for /metrics failed"),
        }
        match state.store.drift_counts().await {
            Ok((envs, workloads)) => {
                metrics::gauge!(ENVS_DRIFTED).set(envs as f64);
                metrics::gauge!(WORKLOADS_OUT_OF_SYNC).set(workloads as f64);
            }
            Err(error) => tracing::warn!(%error, "reading drift counts for /metrics failed"),
        }
    }
    state.metrics.render()
}

/// Whether the depths should be read now (and if so, notes that they are being read).
fn depths_due() -> bool {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.is_some_and(|at| at.elapsed() < DEPTHS_MAX_AGE) {
        return false;
    }
    *last = Some(Instant::now());
    true
}
