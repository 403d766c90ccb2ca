//! The `compose` deploy target, level-triggered: each agent of the target gets one signed
//! `POST /apply` naming every mapped workload's desired image, whatever the environment ran
//! before. The agent compares with what its project runs, answers `unchanged` for services
//! already there and runs the others; the target long-polls `GET /applies/{id}` until every
//! record is final, the deadline passes or the deployment is cancelled (then it tells the
//! agents to drop what has not begun). The apply id is the deployment's, so a retry, a resumed
//! deployment after a crash, or a second replica never runs a service twice; an agent that
//! restarted and forgot the apply is sent it again, and observes afresh.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use gangplank_api::agent::{AgentApply, AgentApplyRequest, AgentDeploy, AgentDeployStatus};
use gangplank_core::agent::{AgentResult, ServiceUpdate, plan_services, sum_agent_results};
use gangplank_core::target::{AgentBinding, TargetConfig};

use super::target::{DeployOutcome, DeployRequest, DeployTarget, TargetError};
use crate::signing::ServerKeys;

const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// How long one status poll may wait at the agent (it answers earlier when the apply is done).
const LONG_POLL_SECONDS: u64 = 25;
/// A request's own timeout, beyond the long poll's wait.
const REQUEST_SLACK: Duration = Duration::from_secs(10);
/// How long telling an agent to cancel may take.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ComposeTarget {
    keys: Arc<ServerKeys>,
    /// Built on first use: a server without compose environments never pays for it.
    client: OnceLock<reqwest::Client>,
}

impl ComposeTarget {
    pub fn new(keys: Arc<ServerKeys>) -> ComposeTarget {
        ComposeTarget {
            keys,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .expect("the agent HTTP client builds")
        })
    }
}

impl DeployTarget for ComposeTarget {
    fn apply<'a>(&'a self, request: &'a DeployRequest) -> BoxFuture<'a, DeployOutcome> {
        Box::pin(async move {
            let TargetConfig::Compose(config) = &request.target else {
                return DeployOutcome::Failed(vec![TargetError::deployment(
                    "GP-TARGET",
                    format!(
                        "a {} target was given to the compose target",
                        request.target.kind()
                    ),
                )]);
            };
            let deadline = request
                .deadline_ms
                .min(gangplank_store::now_millis().saturating_add(request.target.timeout_ms()));
            let mut errors = Vec::new();
            let mut applies = Vec::new();
            for agent in &config.agents {
                let (desired, problems) = plan_services(&request.set, &agent.services);
                errors.extend(problems.into_iter().map(|p| TargetError {
                    scope: "workload".to_owned(),
                    object_id: p.workload,
                    code: "GP-AGENT-MAPPING".to_owned(),
                    summary: p.message.clone(),
                    message: p.message,
                }));
                if desired.is_empty() {
                    // None of this agent's workloads is in the set yet: nothing to converge.
                    continue;
                }
                applies.push(self.apply_agent(request, agent, desired, deadline));
            }
            let mapping_problems = !errors.is_empty();
            let mut results = Vec::new();
            for (result, agent_errors) in join_all(applies).await {
                results.push(result);
                errors.extend(agent_errors);
            }
            match sum_agent_results(&results, mapping_problems) {
                AgentResult::Succeeded => DeployOutcome::Succeeded,
                AgentResult::Failed => DeployOutcome::Failed(errors),
                AgentResult::TimedOut => DeployOutcome::Errored(errors),
                AgentResult::Cancelled => DeployOutcome::Cancelled,
            }
        })
    }
}

impl ComposeTarget {
    /// Sends one agent its desired state and waits for its records to be final.
    async fn apply_agent(
        &self,
        request: &DeployRequest,
        agent: &AgentBinding,
        desired: Vec<ServiceUpdate>,
        deadline: i64,
    ) -> (AgentResult, Vec<TargetError>) {
        let base = agent.url.trim_end_matches('/');
        let body = AgentApplyRequest {
            id: request.deploy_id.clone(),
            project: agent.project.clone(),
            services: desired
                .iter()
                .map(|d| (d.service.clone(), d.image.clone()))
                .collect::<BTreeMap<_, _>>(),
        };
        // Which workloads a service's record speaks for.
        let workloads = |service: &str| -> Vec<&ServiceUpdate> {
            desired.iter().filter(|d| d.service == service).collect()
        };
        let per_workload = |code: &str, summary: &str, message: &str| -> Vec<TargetError> {
            desired
                .iter()
                .map(|d| TargetError {
                    scope: "workload".to_owned(),
                    object_id: d.workload.clone(),
                    code: code.to_owned(),
                    summary: summary.to_owned(),
                    message: format!("{message} ({} as {})", d.image, d.service),
                })
                .collect()
        };
        let mut backoff = Duration::from_secs(1);
        let mut last_problem = String::from("no answer yet");
        // False until the agent has the apply (again, after it forgot it).
        let mut posted = false;
        let mut forgotten = 0u32;
        let mut logged = false;
        loop {
            let left = deadline - gangplank_store::now_millis();
            if left <= 0 {
                break;
            }
            let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
            let exchange = async {
                if posted {
                    let wait = LONG_POLL_SECONDS.min(left.as_secs()).max(1);
                    self.poll(base, &body.id, wait).await
                } else {
                    self.post(base, &body).await
                }
            };
            let step = tokio::select! {
                () = request.cancel.cancelled() => {
                    self.cancel(base, &body.id).await;
                    tracing::info!(agent = %base, deploy = %request.deploy_id, "deployment cancelled: the agent was told to drop what has not begun");
                    return (AgentResult::Cancelled, Vec::new());
                }
                step = tokio::time::timeout(left, exchange) => step.unwrap_or_else(|_| Step::Unreachable("no answer before the deadline".to_owned())),
            };
            // Was this the answer to a status poll (else to the POST)?
            let polled = posted;
            let step = match step {
                Step::Applied(applied)
                    if applied.is_final()
                        && !applied
                            .missing(body.services.keys().map(String::as_str))
                            .is_empty() =>
                {
                    // A final answer lacking a service's record is no success: the agent lost
                    // (or pruned) part of the apply. Send it again, as for a forgotten one.
                    let missing = applied.missing(body.services.keys().map(String::as_str));
                    tracing::warn!(agent = %base, deploy = %request.deploy_id, missing = %missing.join(", "), "the agent's answer lacks records of services it was sent");
                    Step::Lost
                }
                step => step,
            };
            match step {
                Step::Applied(applied) => {
                    if !logged {
                        logged = true;
                        let unchanged = applied
                            .services
                            .iter()
                            .filter(|r| r.status == AgentDeployStatus::Unchanged)
                            .count();
                        tracing::info!(
                            agent = %base,
                            deploy = %request.deploy_id,
                            services = body.services.len(),
                            unchanged,
                            run = applied.services.len().saturating_sub(unchanged),
                            "desired state sent to the agent"
                        );
                    }
                    posted = true;
                    if polled {
                        // Only a poll the agent answered shows it keeps the apply: a POST
                        // answered then a poll lost again must not reset the count, or the
                        // two would alternate without pause until the deadline.
                        forgotten = 0;
                        backoff = Duration::from_secs(1);
                    }
                    if applied.is_final() {
                        let errors: Vec<TargetError> = applied
                            .services
                            .iter()
                            .filter(|r| !r.status.is_success())
                            .flat_map(|r| failures_of(base, r, &workloads(&r.service)))
                            .collect();
                        let result = if errors.is_empty() {
                            AgentResult::Succeeded
                        } else {
                            AgentResult::Failed
                        };
                        return (result, errors);
                    }
                    // Not final: poll again at once (the agent holds the poll until done).
                    continue;
                }
                Step::Lost if forgotten < 3 => {
                    // The agent restarted and forgot the apply (or lost records of it): send it
                    // again (same id), after the backoff below; it observes its project afresh.
                    tracing::info!(agent = %base, deploy = %request.deploy_id, "the agent forgot the apply; sending it again");
                    posted = false;
                    forgotten += 1;
                    last_problem = "the agent forgot the apply".to_owned();
                }
                Step::Lost => last_problem = "the agent keeps forgetting the apply".to_owned(),
                Step::Refused(status, reason) => {
                    tracing::warn!(agent = %base, deploy = %request.deploy_id, status, %reason, "the agent refused the apply");
                    let summary = format!("GP-AGENT-REFUSED: {reason}");
                    let message =
                        format!("agent {base} refused the deployment ({status}): {reason}");
                    return (
                        AgentResult::Failed,
                        per_workload("GP-AGENT-REFUSED", &summary, &message),
                    );
                }
                Step::Unreachable(problem) => last_problem = problem,
            }
            tracing::warn!(agent = %base, deploy = %request.deploy_id, problem = %last_problem, "the agent did not answer the apply; retrying after a pause");
            let left = deadline - gangplank_store::now_millis();
            let pause = backoff.min(Duration::from_millis(
                u64::try_from(left.max(0)).unwrap_or(0),
            ));
            tokio::select! {
                () = request.cancel.cancelled() => {
                    if posted {
                        self.cancel(base, &body.id).await;
                    }
                    return (AgentResult::Cancelled, Vec::new());
                }
                () = tokio::time::sleep(pause) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        // The deadline passed: tell the agent to drop what has not begun, as a cancel does,
        // also when it may not have the apply (a POST that timed out may still have arrived).
        // Best effort: the deployment is errored whatever the agent answers.
        self.cancel(base, &body.id).await;
        tracing::info!(agent = %base, deploy = %request.deploy_id, "deployment past its deadline: the agent was told to drop what has not begun");
        let summary = format!("agent {base} did not finish in time");
        let message = format!(
            "agent {base} did not finish before the deadline; last problem: {last_problem}"
        );
        (
            AgentResult::TimedOut,
            per_workload("GP-AGENT-TIMEOUT", &summary, &message),
        )
    }

    async fn post(&self, base: &str, body: &AgentApplyRequest) -> Step {
        let request = self
            .client()
            .post(format!("{base}/apply"))
            .timeout(REQUEST_SLACK * 3)
            .json(body);
        // A 404 here is no agent (or an agent without /apply) at this URL, not a lost apply.
        match self.exchange(base, request).await {
            Step::Lost => Step::Refused(404, "no /apply endpoint at this URL".to_owned()),
            step => step,
        }
    }

    async fn poll(&self, base: &str, id: &str, wait_seconds: u64) -> Step {
        let request = self
            .client()
            .get(format!("{base}/applies/{id}?wait_seconds={wait_seconds}"))
            .timeout(Duration::from_secs(wait_seconds) + REQUEST_SLACK);
        self.exchange(base, request).await
    }

    /// Tells the agent to drop the apply's runs not yet begun; best effort (the deployment is
    /// cancelled whatever the agent answers).
    async fn cancel(&self, base: &str, id: &str) {
        let request = self
            .client()
            .post(format!("{base}/applies/{id}/cancel"))
            .timeout(CANCEL_TIMEOUT);
        if let Step::Unreachable(problem) | Step::Refused(_, problem) =
            self.exchange(base, request).await
        {
            tracing::warn!(agent = %base, apply = %id, %problem, "telling the agent to cancel failed");
        }
    }

    /// Sends `request` with a fresh token for the agent at `base`.
    async fn exchange(&self, base: &str, request: reqwest::RequestBuilder) -> Step {
        match self.keys.sign(base, gangplank_store::now_millis() / 1000) {
            Ok(token) => read(request.bearer_auth(token).send().await).await,
            Err(error) => Step::Unreachable(format!("{error:#}")),
        }
    }
}

/// What one exchange with an agent came to.
enum Step {
    Applied(AgentApply),
    /// 404 on a status poll: the agent forgot the apply (it restarted).
    Lost,
    /// A 4xx answer, with the agent's reason: retrying would not help.
    Refused(u16, String),
    Unreachable(String),
}

async fn read(sent: reqwest::Result<reqwest::Response>) -> Step {
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Step::Unreachable(error.to_string()),
    };
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Step::Lost;
    }
    let text = match super::agent_body::read_capped(response).await {
        Ok(text) => text,
        Err(problem) => return Step::Unreachable(problem),
    };
    if status.is_client_error() {
        return Step::Refused(status.as_u16(), reason_of(&text));
    }
    if !status.is_success() {
        return Step::Unreachable(format!("{status}: {}", reason_of(&text)));
    }
    match serde_json::from_str(&text) {
        Ok(applied) => Step::Applied(applied),
        Err(error) => Step::Unreachable(format!("unreadable answer: {error}")),
    }
}

/// The agent's reason: the `message` of its JSON error, else the start of its text.
fn reason_of(text: &str) -> String {
    let reason = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned());
    reason.chars().take(500).collect()
}

/// The errors of one service's final, unsuccessful record: one per workload it runs.
fn failures_of(base: &str, record: &AgentDeploy, workloads: &[&ServiceUpdate]) -> Vec<TargetError> {
    use super::agent_body::{MAX_SUMMARY, MAX_TEXT, clip, clip_tail};
    let what = if record.status == AgentDeployStatus::Cancelled {
        "cancelled on the agent"
    } else {
        clip(&record.message, MAX_SUMMARY)
    };
    let summary = format!("{}: {what}", clip(&record.service, MAX_SUMMARY));
    let mut message = format!("agent {base}: {summary}");
    if !record.health_log.is_empty() {
        message.push_str(&format!(
            "\nhealthcheck:\n{}",
            clip(&record.health_log, MAX_TEXT)
        ));
    }
    if !record.output.is_empty() {
        message.push_str(&format!(
            "\ncompose output:\n{}",
            clip_tail(&record.output, MAX_TEXT)
        ));
    }
    workloads
        .iter()
        .map(|w| TargetError {
            scope: "workload".to_owned(),
            object_id: w.workload.clone(),
            code: "GP-AGENT-FAILED".to_owned(),
            summary: summary.clone(),
            message: message.clone(),
        })
        .collect()
}
