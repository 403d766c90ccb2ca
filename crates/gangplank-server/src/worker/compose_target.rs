//! The `compose` deploy target: sends each changed workload of a deployment to the host agent
//! that runs it as a compose service, signed with the server's key, and takes the agents'
//! outcomes as the deployment's, per workload. An agent that cannot be reached is retried with
//! backoff until the deployment's deadline; agent deployment ids derive from the deployment's,
//! so a retry (or a resumed deployment after a crash) never runs a service twice.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use gangplank_api::agent::{AgentDeploy, AgentDeployRequest};
use gangplank_core::agent::{ServiceUpdate, plan_updates};
use gangplank_core::target::TargetConfig;

use super::target::{DeployOutcome, DeployRequest, DeployTarget, TargetError};
use crate::signing::ServerKeys;

const POLL_EVERY: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(15);

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
                .timeout(Duration::from_secs(30))
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
            let mut sends = Vec::new();
            for agent in &config.agents {
                let (updates, problems) = plan_updates(&request.set, None, &agent.services);
                errors.extend(problems.into_iter().map(|p| TargetError {
                    scope: "workload".to_owned(),
                    object_id: p.workload,
                    code: "GP-AGENT-MAPPING".to_owned(),
                    summary: p.message.clone(),
                    message: p.message,
                }));
                for update in updates {
                    sends.push(self.deploy_one(
                        request,
                        &agent.url,
                        agent.project.clone(),
                        update,
                        deadline,
                    ));
                }
            }
            tracing::info!(deploy = %request.deploy_id, services = sends.len(), "sending workloads to agents");
            errors.extend(join_all(sends).await.into_iter().flatten());
            if errors.is_empty() {
                DeployOutcome::Succeeded
            } else {
                DeployOutcome::Failed(errors)
            }
        })
    }
}

impl ComposeTarget {
    /// Sends one service update and waits for the agent's outcome; `Some` is the failure.
    async fn deploy_one(
        &self,
        request: &DeployRequest,
        url: &str,
        project: Option<String>,
        update: ServiceUpdate,
        deadline: i64,
    ) -> Option<TargetError> {
        let base = url.trim_end_matches('/');
        let body = AgentDeployRequest {
            id: format!("{}-{}", request.deploy_id, update.service),
            service: update.service.clone(),
            image: Some(update.image.clone()),
            project,
        };
        let fail = |code: &str, summary: String, message: String| TargetError {
            scope: "workload".to_owned(),
            object_id: update.workload.clone(),
            code: code.to_owned(),
            summary,
            message,
        };
        let mut backoff = Duration::from_secs(1);
        let mut last_problem = String::from("no answer yet");
        // `posted` is false until the agent has the request (again, after it lost it).
        let mut posted = false;
        while gangplank_store::now_millis() < deadline {
            let step = if posted {
                self.poll(base, &body.id).await
            } else {
                self.post(base, &body).await
            };
            match step {
                Step::Record(record) if record.status.is_final() => {
                    return failure_of(&record, &fail);
                }
                Step::Record(_) => {
                    posted = true;
                    backoff = Duration::from_secs(1);
                    tokio::time::sleep(POLL_EVERY).await;
                    continue;
                }
                Step::Lost => {
                    // The agent restarted and forgot the request: send it again (same id).
                    posted = false;
                    continue;
                }
                Step::Refused(status, text) => {
                    return Some(fail(
                        "GP-AGENT-REFUSED",
                        format!("agent {base} refused {}: {status}", update.service),
                        format!(
                            "agent {base} refused the deployment of {} ({}): {status} {text}",
                            update.service, update.image
                        ),
                    ));
                }
                Step::Unreachable(problem) => last_problem = problem,
            }
            tracing::warn!(agent = %base, service = %update.service, problem = %last_problem, "agent not reachable; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Some(fail(
            "GP-AGENT-TIMEOUT",
            format!("agent {base} did not finish {} in time", update.service),
            format!(
                "agent {base} did not finish deploying {} ({}) before the deadline; last problem: {last_problem}",
                update.service, update.image
            ),
        ))
    }

    async fn post(&self, base: &str, body: &AgentDeployRequest) -> Step {
        let request = self.client().post(format!("{base}/deploy")).json(body);
        // A 404 here is no agent at this URL, not a forgotten request.
        match self.exchange(base, request).await {
            Step::Lost => Step::Refused(404, "no /deploy endpoint at this URL".to_owned()),
            step => step,
        }
    }

    async fn poll(&self, base: &str, id: &str) -> Step {
        let request = self.client().get(format!("{base}/deploys/{id}"));
        self.exchange(base, request).await
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
    Record(AgentDeploy),
    /// 404: on a status poll, the agent forgot the request (it restarted).
    Lost,
    /// A 4xx answer: retrying would not help.
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
    let text = response.text().await.unwrap_or_default();
    if status.is_client_error() {
        return Step::Refused(status.as_u16(), text.chars().take(500).collect());
    }
    if !status.is_success() {
        return Step::Unreachable(format!(
            "{status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    match serde_json::from_str(&text) {
        Ok(record) => Step::Record(record),
        Err(error) => Step::Unreachable(format!("unreadable answer: {error}")),
    }
}

fn failure_of(
    record: &AgentDeploy,
    fail: &impl Fn(&str, String, String) -> TargetError,
) -> Option<TargetError> {
    if record.status.is_success() {
        return None;
    }
    let mut message = format!("{}: {}", record.service, record.message);
    if !record.health_log.is_empty() {
        message.push_str(&format!("\nhealthcheck:\n{}", record.health_log));
    }
    if !record.output.is_empty() {
        message.push_str(&format!("\ncompose output:\n{}", record.output));
    }
    Some(fail(
        "GP-AGENT-FAILED",
        format!("{}: {}", record.service, record.message),
        message,
    ))
}
