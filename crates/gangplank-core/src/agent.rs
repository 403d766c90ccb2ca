//! The host agent's decisions: how a `/deploy` body is read (the seed's Go semantics), which
//! token claims are accepted, when a relaunched container counts as healthy, what the agent's
//! compose override file says, whether a service already runs the image a deployment wants,
//! what an apply does per service, and which one-off runs (`POST /runs`) it accepts. The agent
//! crate does the I/O around these.

mod apply;
mod claims;
mod converge;
mod health;
mod overrides;
mod plan;
mod request;
mod run;

pub use apply::{
    AgentResult, ApplyRequestError, MAX_APPLY_SERVICES, MAX_WAIT_SECONDS, RunReason, ServiceAction,
    apply_record_id, check_apply_request, decide_service, sum_agent_results, wait_seconds,
};
pub use claims::{ClaimsError, ClaimsPolicy, check_claims};
pub use converge::{Divergence, ObservedService, check_runs};
pub use health::{ContainerState, HealthVerdict, judge_health};
pub use overrides::{override_image, with_image};
pub use plan::{PlanProblem, ServiceUpdate, mapped_image, plan_services};
pub use request::{BodyError, DeployBody, decode_deploy_body};
pub use run::{
    DEFAULT_RUN_TIMEOUT_SECONDS, MAX_RUN_ARG_LEN, MAX_RUN_ARGS, MAX_RUN_ENV, MAX_RUN_ENV_NAME_LEN,
    MAX_RUN_OUTPUT, MAX_RUN_TIMEOUT_SECONDS, RunRequestError, Tail, check_run_request,
    container_name, run_id,
};

#[cfg(test)]
mod tests;
