//! In-process notifications of deployment changes (created, started, finished, cancelled),
//! for the dashboard's live refresh. A broadcast channel: nobody listening costs nothing, and
//! a listener that falls behind loses old notifications (it reloads what it shows instead).

use tokio::sync::broadcast;

/// How many notifications a slow listener may fall behind before it misses some.
const CAPACITY: usize = 256;

/// A deployment changed status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployChange {
    pub org_id: String,
    pub app_id: String,
    pub env_id: String,
    pub deploy_id: String,
    pub status: String,
}

/// The sending side, shared through `AppState`.
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<DeployChange>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Events {
    /// Tells every listener; without listeners the change is dropped.
    pub fn deploy_changed(&self, row: &gangplank_store::DeployRow, org_id: &str, app_id: &str) {
        let _ = self.sender.send(DeployChange {
            org_id: org_id.to_owned(),
            app_id: app_id.to_owned(),
            env_id: row.env_id.clone(),
            deploy_id: row.id.clone(),
            status: row.status.clone(),
        });
    }

    /// Tells every listener that the claimed deployment now has `status`.
    pub fn deploy_status(&self, claim: &gangplank_store::ClaimedDeploy, status: &str) {
        let _ = self.sender.send(DeployChange {
            org_id: claim.org_id.clone(),
            app_id: claim.app_id.clone(),
            env_id: claim.deploy.env_id.clone(),
            deploy_id: claim.deploy.id.clone(),
            status: status.to_owned(),
        });
    }

    /// A new listener, which sees the changes sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DeployChange> {
        self.sender.subscribe()
    }
}
