//! The host agent's decisions: how a `/deploy` body is read (the seed's Go semantics), which
//! token claims are accepted, when a relaunched container counts as healthy, what the agent's
//! compose override file says, and whether a service already runs the image a deployment wants. The agent crate does the I/O around these.

mod claims;
mod converge;
mod health;
mod overrides;
mod plan;
mod request;

pub use claims::{ClaimsError, ClaimsPolicy, check_claims};
pub use converge::{Divergence, ObservedService, check_runs};
pub use health::{ContainerState, HealthVerdict, judge_health};
pub use overrides::{override_image, with_image};
pub use plan::{PlanProblem, ServiceUpdate, mapped_image, plan_updates};
pub use request::{BodyError, DeployBody, decode_deploy_body};

#[cfg(test)]
mod tests;
