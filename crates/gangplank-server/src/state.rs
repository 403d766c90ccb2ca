//! What every handler can reach: the store, request limits, the metrics handle.

use std::sync::Arc;

use gangplank_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::Settings;

/// Shared handler state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub max_body_bytes: usize,
    pub metrics: Arc<PrometheusHandle>,
}

impl AppState {
    pub fn new(store: Store, settings: &Settings, metrics: PrometheusHandle) -> Self {
        AppState {
            store,
            max_body_bytes: settings.max_body_bytes,
            metrics: Arc::new(metrics),
        }
    }
}
