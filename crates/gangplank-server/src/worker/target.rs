//! Deploy targets: what applies a set to the world. This issue ships `none` (record only:
//! someone else's system applies it, told by webhooks); the host agent and GitOps write-back
//! implement the same trait later.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use gangplank_core::set::Set;

/// What a target is asked to do. Targets must be idempotent: after a crash the same request
/// (same deployment, same set) may come again, with a higher `attempt`.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub org_id: String,
    pub app_id: String,
    pub env_id: String,
    pub deploy_id: String,
    pub set_id: String,
    pub set: Set,
    pub attempt: i64,
}

/// One problem a target reports, usually about one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    /// `workload` or `deployment`.
    pub scope: String,
    pub object_id: String,
    pub code: String,
    pub summary: String,
    pub message: String,
}

/// The result of applying a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployOutcome {
    Succeeded,
    Failed(Vec<TargetError>),
}

/// Applies sets somewhere. May take minutes; reports per-workload errors.
pub trait DeployTarget: Send + Sync {
    fn apply<'a>(&'a self, request: &'a DeployRequest) -> BoxFuture<'a, DeployOutcome>;
}

/// `none`: the deployment is recorded and succeeds.
pub struct NoneTarget;

impl DeployTarget for NoneTarget {
    fn apply<'a>(&'a self, request: &'a DeployRequest) -> BoxFuture<'a, DeployOutcome> {
        tracing::info!(
            org = %request.org_id,
            app = %request.app_id,
            env = %request.env_id,
            deploy = %request.deploy_id,
            set = %request.set_id,
            workloads = request.set.modules.len(),
            attempt = request.attempt,
            "deployment recorded (target none: another system applies it)"
        );
        Box::pin(async { DeployOutcome::Succeeded })
    }
}

/// The targets this server knows, by the name environments refer to.
#[derive(Clone)]
pub struct Targets(HashMap<&'static str, Arc<dyn DeployTarget>>);

impl Default for Targets {
    fn default() -> Self {
        let mut map: HashMap<&'static str, Arc<dyn DeployTarget>> = HashMap::new();
        map.insert("none", Arc::new(NoneTarget));
        Targets(map)
    }
}

impl Targets {
    pub fn get(&self, name: &str) -> Option<Arc<dyn DeployTarget>> {
        self.0.get(name).cloned()
    }
}
