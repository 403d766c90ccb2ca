//! Deploy targets: what applies a set to the world. `none` records only (someone else's system
//! applies it, told by webhooks); `compose` sends every mapped workload to host agents, which
//! converge on it (see `compose_target`); GitOps write-back will implement the same trait.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use gangplank_core::set::Set;
use gangplank_core::target::TargetConfig;
use tokio_util::sync::CancellationToken;

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
    /// The target as it was when the deployment was created (never the environment's current
    /// one: a deployment resumed after a restart goes where it was started).
    pub target: TargetConfig,
    pub attempt: i64,
    /// When the deployment must have finished (Unix ms); targets give up then.
    pub deadline_ms: i64,
    /// Cancelled when the deployment is: targets stop waiting and tell their agents so.
    pub cancel: CancellationToken,
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

/// The result of applying a set. *Failed* is the target's answer (unhealthy, refused, a
/// mapping the set cannot satisfy); *errored* is not getting one (unreachable, out of time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployOutcome {
    Succeeded,
    Failed(Vec<TargetError>),
    Errored(Vec<TargetError>),
    /// The deployment was cancelled while the target worked; what it did is not counted.
    Cancelled,
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

    /// The target that applies `config`.
    pub fn get(&self, config: &TargetConfig) -> Option<Arc<dyn DeployTarget>> {
        self.0.get(config.kind()).cloned()
    }
}
