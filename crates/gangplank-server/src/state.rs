//! What every handler and worker can reach: the store, settings they need, the secret box,
//! the deploy targets, the workers' wake-ups and the metrics handle.

use std::sync::{Arc, OnceLock};

use gangplank_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::Settings;
use crate::secrets::SecretBox;
use crate::settings::WebhookSettings;
use crate::worker::Wake;
use crate::worker::target::Targets;

/// Shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub max_body_bytes: usize,
    pub metrics: Arc<PrometheusHandle>,
    /// Whether the API listener serves `/metrics` (no separate metrics listener is set).
    pub metrics_on_api: bool,
    pub secrets: Arc<SecretBox>,
    /// Hashes presented tokens into their stored form.
    pub tokens: Arc<crate::auth::TokenHasher>,
    pub wake: Wake,
    /// Deployment changes, for the dashboard's live refresh.
    pub events: crate::events::Events,
    pub targets: Targets,
    /// The server's signing keys (requests to agents; public half at `/.well-known/jwks.json`).
    pub keys: Arc<crate::signing::ServerKeys>,
    pub debounce_ms: i64,
    /// Between two observations of the compose environments' agents.
    pub observe_interval: std::time::Duration,
    /// How long a claim on a running deployment lasts without renewal (ms).
    pub deploy_lease_ms: i64,
    /// The shortest interval a registry watch may poll at, in seconds.
    pub watch_min_interval_seconds: i64,
    /// Tag-list requests per minute all watches of one registry host share.
    pub watch_requests_per_minute: u32,
    /// Test only: the moment to hold at until killed (`GANGPLANK_TEST_HOLD_AT`).
    pub test_hold: Option<Arc<crate::test_hold::HoldPoint>>,
    /// The deployments this process runs, so a cancel can stop them.
    pub running: Arc<crate::worker::deployer::Running>,
    pub webhook: Arc<WebhookSettings>,
    /// Built on first use: its TLS roots cost memory a server without webhooks never needs.
    webhook_client: Arc<OnceLock<reqwest::Client>>,
    /// ECR tokens, cached until shortly before they expire.
    pub ecr_tokens: Arc<crate::ecr::EcrTokens>,
    /// Registry clients by login, kept between steps.
    pub registry_clients: Arc<crate::registry_clients::RegistryClients>,
    /// The client for AWS and registry calls; built on first use (its TLS roots cost memory).
    outbound: Arc<OnceLock<reqwest::Client>>,
}

impl AppState {
    pub fn new(
        store: Store,
        settings: &Settings,
        metrics: PrometheusHandle,
        secrets: SecretBox,
        keys: crate::signing::ServerKeys,
        tokens: crate::auth::TokenHasher,
    ) -> Self {
        let keys = Arc::new(keys);
        AppState {
            store,
            max_body_bytes: settings.max_body_bytes,
            metrics: Arc::new(metrics),
            metrics_on_api: settings.metrics.listen.is_none(),
            secrets: Arc::new(secrets),
            tokens: Arc::new(tokens),
            wake: Wake::default(),
            events: crate::events::Events::default(),
            targets: Targets::new(keys.clone()),
            keys,
            debounce_ms: i64::try_from(settings.automation.debounce.as_millis())
                .unwrap_or(i64::MAX),
            observe_interval: settings.observe.interval,
            deploy_lease_ms: i64::try_from(settings.deploy.lease_seconds.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            watch_min_interval_seconds: i64::try_from(settings.watch.min_interval_seconds)
                .unwrap_or(i64::MAX),
            watch_requests_per_minute: settings.watch.requests_per_minute,
            test_hold: settings.test_hold_at.clone().map(Arc::new),
            running: Arc::default(),
            webhook: Arc::new(settings.webhook.clone()),
            webhook_client: Arc::default(),
            ecr_tokens: Arc::default(),
            registry_clients: Arc::default(),
            outbound: Arc::default(),
        }
    }
}

impl AppState {
    /// The HTTP client for AWS and registry calls.
    pub fn outbound(&self) -> &reqwest::Client {
        self.outbound.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("the outbound HTTP client builds")
        })
    }

    /// The HTTP client for webhook deliveries.
    pub fn webhook_client(&self) -> &reqwest::Client {
        self.webhook_client.get_or_init(|| {
            crate::worker::delivery::client(self.webhook.timeout, self.webhook.allow_private)
        })
    }
}
