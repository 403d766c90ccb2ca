//! `actions/gangplank/run`: a one-off container on a `gangplank agent` (`POST /runs`), signed
//! like the compose target's requests. The agent is one of an environment's compose agents, or
//! an agent of the app's environments named by URL (the server signs requests only to agents
//! it already knows). The run id is a hash of the step key, so a resumed step finds its run on
//! the agent instead of starting another. Exit code 0 succeeds, another fails with the tail of
//! the output; an agent that cannot be reached errors. The output becomes the step's log.

use std::time::Duration;

use gangplank_api::agent::{AgentRun, AgentRunRequest, AgentRunStatus};
use gangplank_core::agent::{MAX_WAIT_SECONDS, run_id};
use gangplank_core::pipeline::run::{RunSpec, RunTarget, pick_agent, pinned_image};
use gangplank_core::target::TargetConfig;
use gangplank_store::StoreError;
use serde_json::{Map, Value, json};

use crate::worker::agent_body::{MAX_TEXT, agent_client, clip_tail, read_capped, reason_of};
use crate::worker::pipeline::step::{LogLevel, LogLine, StepCtx, StepOutcome, StepResult};

/// A request's own timeout beyond a long poll's wait.
const REQUEST_SLACK: Duration = Duration::from_secs(10);
/// How long an unreachable agent is retried before the step errors.
const UNREACHABLE_FOR_MS: i64 = 60_000;
/// How long the pull before the container may take, beyond the run's own timeout.
const PULL_SLACK_MS: i64 = 10 * 60_000;
/// Output lines copied into the step's log (the last ones).
const MAX_LOG_LINES: usize = 500;

pub async fn execute(ctx: &StepCtx<'_>, with: &Map<String, Value>) -> StepResult {
    let spec = match RunSpec::parse(with) {
        Ok(spec) => spec,
        Err(message) => return ended(ctx.now, StepOutcome::Failed { message }, Vec::new()),
    };
    let Some(image) = spec.image.clone().or_else(|| pinned_image(ctx.inputs)) else {
        let message = "with.image: required when the run has no pinned image (inputs.image)";
        return ended(
            ctx.now,
            StepOutcome::Failed {
                message: message.to_owned(),
            },
            Vec::new(),
        );
    };
    let base = match agent_url(ctx, &spec.target).await {
        Ok(base) => base,
        Err(outcome) => return ended(ctx.now, outcome, Vec::new()),
    };
    let request = AgentRunRequest {
        id: run_id(&ctx.step_key()),
        image,
        command: spec.command.clone(),
        env: spec.env.clone(),
        timeout_seconds: Some(spec.timeout_seconds),
    };
    let mut logs = vec![LogLine {
        at: gangplank_store::now_millis(),
        level: LogLevel::Info,
        message: format!(
            "running {} on agent {base} (run {}, timeout {} s)",
            request.image, request.id, spec.timeout_seconds
        ),
    }];
    // The agent kills the container at its timeout; past it (and the pull), stop waiting.
    let timeout_ms = i64::try_from(spec.timeout_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let give_up = ctx.deadline.min(
        ctx.now
            .saturating_add(timeout_ms)
            .saturating_add(PULL_SLACK_MS),
    );
    let outcome = drive(ctx, &base, &request, give_up).await;
    let outcome = match outcome {
        Ok(run) => {
            logs.extend(output_lines(&run));
            judge(&run)
        }
        Err(outcome) => outcome,
    };
    ended(gangplank_store::now_millis(), outcome, logs)
}

/// The agent's base URL for the step (as its compose target names it, the audience its
/// requests are signed for), or why there is none.
async fn agent_url(ctx: &StepCtx<'_>, target: &RunTarget) -> Result<String, StepOutcome> {
    let failed = |message: String| StepOutcome::Failed { message };
    match target {
        RunTarget::Env { env_id, agent } => {
            let agents = compose_agents(ctx, env_id).await?.ok_or_else(|| {
                failed(format!(
                    "environment {env_id} has no compose target: a run needs its agents"
                ))
            })?;
            pick_agent(&agents, agent.as_deref())
                .map(str::to_owned)
                .map_err(|m| failed(format!("environment {env_id}: {m}")))
        }
        RunTarget::Url(url) => {
            let envs = ctx
                .state
                .store
                .list_envs(ctx.org_id, ctx.app_id)
                .await
                .map_err(store_error)?;
            for env in envs {
                if let Some(agents) = compose_agents(ctx, &env.id).await?
                    && let Ok(base) = pick_agent(&agents, Some(url))
                {
                    return Ok(base.to_owned());
                }
            }
            Err(failed(format!(
                "with.agent_url: {url} is not an agent of any environment of app {}",
                ctx.app_id
            )))
        }
    }
}

/// The agent URLs of an environment's compose target; `None` for another kind of target.
async fn compose_agents(
    ctx: &StepCtx<'_>,
    env_id: &str,
) -> Result<Option<Vec<String>>, StepOutcome> {
    let (kind, config) = match ctx
        .state
        .store
        .env_target(ctx.org_id, ctx.app_id, env_id)
        .await
    {
        Ok(found) => found,
        Err(StoreError::NotFound(message)) => return Err(StepOutcome::Failed { message }),
        Err(error) => return Err(store_error(error)),
    };
    match TargetConfig::from_stored(&kind, &config) {
        Ok(TargetConfig::Compose(compose)) => {
            Ok(Some(compose.agents.into_iter().map(|a| a.url).collect()))
        }
        Ok(_) => Ok(None),
        Err(message) => Err(StepOutcome::Errored { message }),
    }
}

fn store_error(error: StoreError) -> StepOutcome {
    StepOutcome::Errored {
        message: format!("reading the environments failed: {error}"),
    }
}

/// What one exchange with the agent came to.
enum Answer {
    Run(AgentRun),
    /// 404: the agent does not know the run (it restarted), or has no `/runs`.
    Unknown,
    /// Another 4xx, with the agent's reason: retrying would not help.
    Refused(u16, String),
    Unreachable(String),
}

/// Starts the run (or finds it) and long-polls it until it is final; on a cancel, tells the
/// agent to kill it.
async fn drive(
    ctx: &StepCtx<'_>,
    base: &str,
    request: &AgentRunRequest,
    give_up: i64,
) -> Result<AgentRun, StepOutcome> {
    let mut posted = false;
    let mut forgotten = 0;
    let mut unreachable_since: Option<i64> = None;
    // Why the last exchange failed, while the agent cannot be reached.
    let mut last_problem: Option<String> = None;
    let mut backoff = Duration::from_millis(500);
    loop {
        let now = gangplank_store::now_millis();
        if now >= give_up {
            if let Some(problem) = last_problem {
                return Err(StepOutcome::Errored {
                    message: format!("agent {base} could not be reached: {problem}"),
                });
            }
            cancel(ctx, base, &request.id).await;
            return Err(StepOutcome::Failed {
                message: format!("run {} did not finish in time on agent {base}", request.id),
            });
        }
        let exchange = async {
            if posted {
                let left = u64::try_from((give_up - now) / 1000).unwrap_or(0);
                poll(ctx, base, &request.id, MAX_WAIT_SECONDS.min(left).max(1)).await
            } else {
                post(ctx, base, request).await
            }
        };
        let answer = tokio::select! {
            answer = exchange => answer,
            () = ctx.cancel.cancelled() => {
                cancel(ctx, base, &request.id).await;
                return Err(StepOutcome::Errored { message: "cancelled: the agent was told to kill the container".to_owned() });
            }
        };
        let problem = match answer {
            Answer::Run(run) => {
                posted = true;
                unreachable_since = None;
                last_problem = None;
                backoff = Duration::from_millis(500);
                if run.status.is_final() {
                    return Ok(run);
                }
                continue;
            }
            Answer::Unknown if !posted => {
                return Err(StepOutcome::Failed {
                    message: format!("{base} has no /runs endpoint: is it a gangplank agent?"),
                });
            }
            Answer::Unknown if forgotten < 3 => {
                // The agent restarted and forgot the run: send it again (same id).
                forgotten += 1;
                posted = false;
                "the agent forgot the run".to_owned()
            }
            Answer::Unknown => {
                return Err(StepOutcome::Errored {
                    message: format!("agent {base} keeps forgetting run {}", request.id),
                });
            }
            Answer::Refused(status, reason) => {
                return Err(StepOutcome::Failed {
                    message: format!("agent {base} refused the run ({status}): {reason}"),
                });
            }
            Answer::Unreachable(problem) => {
                let since = *unreachable_since.get_or_insert(now);
                if now - since >= UNREACHABLE_FOR_MS {
                    return Err(StepOutcome::Errored {
                        message: format!("agent {base} could not be reached: {problem}"),
                    });
                }
                last_problem = Some(problem.clone());
                problem
            }
        };
        tracing::warn!(agent = %base, run = %request.id, %problem, "run: retrying the agent after a pause");
        let left = u64::try_from(give_up - gangplank_store::now_millis()).unwrap_or(0);
        tokio::select! {
            () = tokio::time::sleep(backoff.min(Duration::from_millis(left))) => {}
            () = ctx.cancel.cancelled() => {
                cancel(ctx, base, &request.id).await;
                return Err(StepOutcome::Errored { message: "cancelled: the agent was told to kill the container".to_owned() });
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn post(ctx: &StepCtx<'_>, base: &str, request: &AgentRunRequest) -> Answer {
    let builder = agent_client()
        .post(format!("{base}/runs"))
        .timeout(REQUEST_SLACK * 3)
        .json(request);
    exchange(ctx, base, builder).await
}

async fn poll(ctx: &StepCtx<'_>, base: &str, id: &str, wait_seconds: u64) -> Answer {
    let builder = agent_client()
        .get(format!("{base}/runs/{id}?wait_seconds={wait_seconds}"))
        .timeout(Duration::from_secs(wait_seconds) + REQUEST_SLACK);
    exchange(ctx, base, builder).await
}

/// Best effort: the step ends whatever the agent answers.
async fn cancel(ctx: &StepCtx<'_>, base: &str, id: &str) {
    let builder = agent_client()
        .post(format!("{base}/runs/{id}/cancel"))
        .timeout(Duration::from_secs(5));
    if let Answer::Unreachable(problem) | Answer::Refused(_, problem) =
        exchange(ctx, base, builder).await
    {
        tracing::warn!(agent = %base, run = %id, %problem, "telling the agent to cancel the run failed");
    }
}

/// Sends `builder` with a fresh token for the agent at `base`.
async fn exchange(ctx: &StepCtx<'_>, base: &str, builder: reqwest::RequestBuilder) -> Answer {
    let token = match ctx
        .state
        .keys
        .sign(base, gangplank_store::now_millis() / 1000)
    {
        Ok(token) => token,
        Err(error) => return Answer::Unreachable(format!("{error:#}")),
    };
    let response = match builder.bearer_auth(token).send().await {
        Ok(response) => response,
        Err(error) => return Answer::Unreachable(crate::worker::delivery::describe(&error)),
    };
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Answer::Unknown;
    }
    let text = match read_capped(response).await {
        Ok(text) => text,
        Err(problem) => return Answer::Unreachable(problem),
    };
    if status.is_client_error() {
        return Answer::Refused(status.as_u16(), reason_of(&text));
    }
    if !status.is_success() {
        return Answer::Unreachable(format!("{status}: {}", reason_of(&text)));
    }
    match serde_json::from_str(&text) {
        Ok(run) => Answer::Run(run),
        Err(error) => Answer::Unreachable(format!("unreadable answer: {error}")),
    }
}

/// A final run's outcome: exit code 0 succeeds; anything else fails with the output's tail.
fn judge(run: &AgentRun) -> StepOutcome {
    let tail = clip_tail(run.output.trim_end(), MAX_TEXT / 4);
    match run.status {
        AgentRunStatus::Succeeded => {
            let mut outputs = Map::new();
            outputs.insert("exit_code".to_owned(), json!(run.exit_code.unwrap_or(0)));
            outputs.insert("output".to_owned(), json!(clip_tail(&run.output, MAX_TEXT)));
            StepOutcome::Succeeded {
                outputs,
                related: Default::default(),
                message: "exit code 0".to_owned(),
            }
        }
        _ => {
            let what = match (run.status, run.exit_code) {
                (AgentRunStatus::Failed, Some(code)) => format!("exit code {code}"),
                (AgentRunStatus::TimedOut, _) => "timed out".to_owned(),
                (AgentRunStatus::Cancelled, _) => "cancelled on the agent".to_owned(),
                _ => "failed".to_owned(),
            };
            let mut message = if run.message.is_empty() {
                what
            } else {
                format!("{what}: {}", run.message)
            };
            if !tail.is_empty() {
                message.push_str(&format!("\n{tail}"));
            }
            StepOutcome::Failed { message }
        }
    }
}

/// The run's output as log lines (the last [`MAX_LOG_LINES`]), after a note of what was cut.
fn output_lines(run: &AgentRun) -> Vec<LogLine> {
    let at = gangplank_store::now_millis();
    let lines: Vec<&str> = run.output.lines().collect();
    let skipped = lines.len().saturating_sub(MAX_LOG_LINES);
    let mut logs = Vec::new();
    if skipped > 0 || run.output_dropped > 0 {
        logs.push(LogLine {
            at,
            level: LogLevel::Info,
            message: format!(
                "(output cut: {} bytes and {skipped} lines before what follows)",
                run.output_dropped
            ),
        });
    }
    logs.extend(lines[skipped..].iter().map(|l| LogLine {
        at,
        level: LogLevel::Info,
        message: (*l).to_owned(),
    }));
    logs
}

fn ended(at: i64, outcome: StepOutcome, mut logs: Vec<LogLine>) -> StepResult {
    let last = match &outcome {
        StepOutcome::Succeeded { message, .. } => Some((LogLevel::Info, message.clone())),
        StepOutcome::Failed { message } | StepOutcome::Errored { message } => Some((
            LogLevel::Error,
            message.lines().next().unwrap_or_default().to_owned(),
        )),
        StepOutcome::Waiting { .. } => None,
    };
    if let Some((level, message)) = last {
        logs.push(LogLine { at, level, message });
    }
    StepResult { outcome, logs }
}

#[cfg(test)]
mod tests;
