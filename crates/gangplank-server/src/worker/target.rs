//! Deploy targets: what applies a set to the world. `none` records only (someone else's system
//! applies it, told by webhooks); `compose` sends the changed workloads to host agents (see
//! `compose_target`); GitOps write-back will implement the same trait.

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
    /// The set of the successful deployment this one started from: what the target runs now.
    pub previous_set: Option<Set>,
    /// The environment's target configuration (JSON).
    pub target_config: String,
    pub attempt: i64,
    /// When the deployment must have finished (Unix ms); targets give up then.
    pub deadline_ms: i64,
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

impl TargetError {
    /// A problem with the deployment as a whole, not one workload.
    pub fn deployment(code: &str, message: String) -> TargetError {
        TargetError {
            scope: "deployment".to_owned(),
            object_id: String::new(),
            code: code.to_owned(),
            summary: message.clone(),
            message,
        }
    }
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

impl Targets {
    /// `none`, and `compose` signing its requests with `keys`.
    pub fn new(keys: Arc<crate::signing::ServerKeys>) -> Targets {
        let mut map: HashMap<&'static str, Arc<dyn DeployTarget>> = HashMap::new();
        map.insert("none", Arc::new(NoneTarget));
        map.insert(
            "compose",
            Arc::new(super::compose_target::ComposeTarget::new(keys)),
        );
        Targets(map)
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn DeployTarget>> {
        self.0.get(name).cloned()
    }
}
