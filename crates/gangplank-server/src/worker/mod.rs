//! Background workers: the deployment runner, automation, webhook delivery, the pipeline
//! runner, the registry watcher and the build worker. Each drains durable rows from the store, so a crash loses nothing: on restart they
//! pick up where the database says they were. The observer (what compose hosts run) keeps no queue: each round
//! asks the agents afresh.

pub mod agent_body;
pub mod automation;
pub mod builder;
pub mod compose_target;
pub mod delivery;
pub mod deployer;
pub mod observer;
pub mod pipeline;
pub mod resolver;
pub mod target;
pub mod watcher;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How the rest of the server nudges a worker that new work is waiting.
#[derive(Clone, Default)]
pub struct Wake {
    pub deploy: Arc<Notify>,
    pub automation: Arc<Notify>,
    pub delivery: Arc<Notify>,
    pub resolver: Arc<Notify>,
    /// A deployment finished: observe what the hosts run now.
    pub observe: Arc<Notify>,
    /// A pipeline run was created, cancelled, or an approval of it decided: the runner looks.
    pub pipeline: Arc<Notify>,
    /// A registry watch was created: its first poll is due.
    pub watcher: Arc<Notify>,
    /// A build was queued or asked to cancel.
    pub builder: Arc<Notify>,
}

/// The longest a worker sleeps without a nudge: a safety net, not the mechanism (nudges and
/// computed due times are).
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// Waits for a nudge, or until `due_at` (Unix ms), or `IDLE_RECHECK`, whichever comes first.
pub(crate) async fn idle(notify: &Notify, due_at: Option<i64>) {
    let wait = due_at.map_or(IDLE_RECHECK, |at| {
        let ms = (at - gangplank_store::now_millis()).clamp(0, IDLE_RECHECK.as_millis() as i64);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    });
    let _ = tokio::time::timeout(wait, notify.notified()).await;
}

/// The running workers; aborting them is safe because every step is durable and idempotent.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn start(state: &crate::state::AppState) -> Workers {
        Workers {
            handles: vec![
                tokio::spawn(deployer::run(state.clone())),
                tokio::spawn(automation::run(state.clone())),
                tokio::spawn(delivery::run(state.clone())),
                tokio::spawn(resolver::run(state.clone())),
                tokio::spawn(observer::run(state.clone())),
                tokio::spawn(pipeline::runner::run(state.clone())),
                tokio::spawn(watcher::run(state.clone())),
                tokio::spawn(builder::run(state.clone())),
            ],
        }
    }

    pub fn stop(self) {
        for handle in self.handles {
            handle.abort();
        }
    }
}
