//! The build worker: claims queued builds from the work queue and drives each on its builder
//! agent (`POST /builds`, then long polls of `GET /builds/{id}?from=N`), copying log lines
//! into the store as they arrive, passing on a cancel, and at the end registering the pushed
//! image as a verified artefact version (the registry's digest, the build's commit and ref).
//!
//! Durable: a build is a queue row with a lease. After a server crash the lease lapses, the
//! next claim posts the same build id again (the agent answers the build it already runs) and
//! continues the log where the store has it. A builder that answers 404 for a build it had
//! accepted lost it (it restarted): the build ends `errored` with that reason, never stuck.

use std::time::Duration;

use gangplank_api::builds::{AgentBuild, AgentBuildRequest, AgentBuildStatus};
use gangplank_core::agent::MAX_WAIT_SECONDS;
use gangplank_core::build::{BuildEvent, Definition};
use gangplank_core::registry::longest_prefix_match;
use gangplank_store::{BuildOutcome, BuildRow, ClaimedBuild};

use crate::state::AppState;
use crate::verified_versions::{self, Pushed, VerifyError};
use crate::worker::agent_body::{agent_client, read_capped, reason_of};

/// How long a claim lasts without renewal; every answer from the builder renews it.
const LEASE_MS: i64 = 60_000;
/// A request's own timeout beyond a long poll's wait.
const REQUEST_SLACK: Duration = Duration::from_secs(10);
/// How long an unreachable builder is retried before the build errors.
const UNREACHABLE_FOR_MS: i64 = 60_000;
/// Beyond the build's own timeout (the builder enforces it), how long the server waits.
const TIMEOUT_SLACK_MS: i64 = 60_000;

/// Claims builds as they fall due and drives each in its own task.
pub async fn run(state: AppState) {
    loop {
        let now = gangplank_store::now_millis();
        match state.store.claim_build(now, LEASE_MS).await {
            Ok(Some(claimed)) => {
                tokio::spawn(drive(state.clone(), claimed));
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "claiming a build failed"),
        }
        let due = state.store.next_build_due().await.ok().flatten();
        super::idle(&state.wake.builder, due).await;
    }
}

/// How a build ends, before it is recorded.
struct Ending {
    event: BuildEvent,
    message: String,
    agent: Option<AgentBuild>,
    version_id: String,
}

impl Ending {
    fn new(event: BuildEvent, message: impl Into<String>) -> Ending {
        Ending {
            event,
            message: message.into(),
            agent: None,
            version_id: String::new(),
        }
    }
}

async fn drive(state: AppState, claimed: ClaimedBuild) {
    let id = claimed.build.id.clone();
    let build = match state
        .store
        .start_build(&claimed, gangplank_store::now_millis())
        .await
    {
        Ok(Some(build)) => build,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(build = %id, %error, "starting a build failed");
            return;
        }
    };
    state.wake.delivery.notify_one();
    let ending = match prepare(&state, &build).await {
        Ok(request) => exchange_until_final(&state, &claimed, &build, &request).await,
        Err(ending) => ending,
    };
    let ending = ending_with_version(&state, &build, ending).await;
    let agent = ending.agent.unwrap_or_else(|| AgentBuild {
        id: build.id.clone(),
        status: AgentBuildStatus::Failed,
        commit: String::new(),
        tags: Vec::new(),
        digest: String::new(),
        message: String::new(),
        lines: Vec::new(),
        first_line: 0,
        next: 0,
    });
    let commit = if agent.commit.is_empty() {
        build.commit_sha.clone()
    } else {
        agent.commit
    };
    let outcome = BuildOutcome {
        event: ending.event,
        commit_sha: commit,
        tags: serde_json::to_string(&agent.tags).unwrap_or_else(|_| "[]".to_owned()),
        digest: agent.digest,
        version_id: ending.version_id,
        message: ending.message,
    };
    match state
        .store
        .finish_build(&claimed, outcome, gangplank_store::now_millis())
        .await
    {
        Ok(_) => state.wake.delivery.notify_one(),
        Err(error) => tracing::warn!(build = %id, %error, "recording the end of a build failed"),
    }
}

/// The builder's request for a build: its frozen definition, the definition's current clone
/// token, and the registry whose credentials the builder fetches to push.
async fn prepare(state: &AppState, build: &BuildRow) -> Result<AgentBuildRequest, Ending> {
    let errored = |message: String| Ending::new(BuildEvent::Error, message);
    let spec: Definition = serde_json::from_str(&build.spec)
        .map_err(|e| errored(format!("the build's definition is unreadable: {e}")))?;
    let definition = state
        .store
        .get_build_definition(&build.org_id, &build.app_id)
        .await
        .map_err(|e| errored(format!("reading the build definition failed: {e}")))?;
    let clone_token = if definition.clone_token_sealed.is_empty() {
        None
    } else {
        let context = crate::routes::builds::token_context(&build.org_id, &build.app_id);
        let plain = state
            .secrets
            .open(&context, &definition.clone_token_sealed)
            .map_err(|e| errored(format!("the clone token cannot be opened: {e}")))?;
        Some(String::from_utf8_lossy(&plain).into_owned())
    };
    let registries = state
        .store
        .list_registries(&build.org_id)
        .await
        .map_err(|e| errored(format!("reading the registries failed: {e}")))?;
    let prefixes: Vec<String> = registries.iter().map(|r| r.registry.clone()).collect();
    let registry_id = longest_prefix_match(&spec.image, &prefixes)
        .filter(|&i| !registries[i].creds_sealed.is_empty())
        .map(|i| registries[i].id.clone());
    Ok(AgentBuildRequest {
        id: build.id.clone(),
        clone_url: spec.clone_url,
        clone_token,
        git_ref: build.git_ref.clone(),
        commit: (!build.commit_sha.is_empty()).then(|| build.commit_sha.clone()),
        dockerfile: spec.dockerfile,
        context: spec.context,
        build_args: spec.build_args,
        image: spec.image,
        tags: spec.tags,
        registry_id,
        timeout_seconds: spec.timeout_seconds,
    })
}

/// What one exchange with the builder came to.
enum Answer {
    Build(AgentBuild),
    /// 404: the builder does not know the build (it restarted), or has no `/builds`.
    Unknown(String),
    /// Another 4xx, with the builder's reason: retrying would not help.
    Refused(u16, String),
    Unreachable(String),
}

/// Posts the build (or finds it), copies its log into the store and passes on a cancel, until
/// the builder reports it final, loses it, or cannot be reached for long.
async fn exchange_until_final(
    state: &AppState,
    claimed: &ClaimedBuild,
    build: &BuildRow,
    request: &AgentBuildRequest,
) -> Ending {
    let base = serde_json::from_str::<Definition>(&build.spec)
        .map(|d| d.builder)
        .unwrap_or_default();
    let timeout_ms =
        i64::try_from(request.timeout_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let started = if build.started_at > 0 {
        build.started_at
    } else {
        gangplank_store::now_millis()
    };
    let give_up = started
        .saturating_add(timeout_ms)
        .saturating_add(TIMEOUT_SLACK_MS);
    let mut from = build.log_lines;
    let mut posted = false;
    let mut cancel_sent = false;
    let mut unreachable_since: Option<i64> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        let now = gangplank_store::now_millis();
        if now >= give_up {
            send_cancel(state, &base, &request.id).await;
            return Ending::new(
                BuildEvent::Fail,
                format!("timed out after {} s", request.timeout_seconds),
            );
        }
        let answer = if posted {
            let left = u64::try_from((give_up - now) / 1000).unwrap_or(0);
            let wait = MAX_WAIT_SECONDS.min(left).clamp(1, 20);
            let url = format!("{base}/builds/{}?from={from}&wait={wait}", request.id);
            let builder = agent_client()
                .get(url)
                .timeout(Duration::from_secs(wait) + REQUEST_SLACK);
            send(state, &base, builder).await
        } else {
            let builder = agent_client()
                .post(format!("{base}/builds"))
                .timeout(REQUEST_SLACK * 3)
                .json(request);
            send(state, &base, builder).await
        };
        let problem = match answer {
            Answer::Build(agent) => {
                posted = true;
                unreachable_since = None;
                backoff = Duration::from_millis(250);
                if let Err(ending) = copy_lines(state, claimed, &mut from, &agent).await {
                    return ending;
                }
                if agent.status.is_final() {
                    return judged(agent);
                }
                // Renewing the lease also reads a cancel asked for meanwhile.
                let until = gangplank_store::now_millis() + LEASE_MS;
                match state.store.renew_build(claimed, until).await {
                    Ok(Some(current)) if current.cancel_requested && !cancel_sent => {
                        cancel_sent = true;
                        send_cancel(state, &base, &request.id).await;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        return Ending::new(BuildEvent::Error, "the build's claim was lost");
                    }
                    Err(error) => {
                        tracing::warn!(build = %request.id, %error, "renewing a build's lease failed")
                    }
                }
                continue;
            }
            Answer::Unknown(reason) if !posted => {
                return Ending::new(
                    BuildEvent::Fail,
                    format!(
                        "{base} does not build ({reason}): is it a gangplank agent with [builder]?"
                    ),
                );
            }
            Answer::Unknown(_) => {
                return Ending::new(
                    BuildEvent::Error,
                    format!("builder {base} lost build {} (did it restart?)", request.id),
                );
            }
            Answer::Refused(status, reason) => {
                return Ending::new(
                    BuildEvent::Fail,
                    format!("builder {base} refused the build ({status}): {reason}"),
                );
            }
            Answer::Unreachable(problem) => {
                let since = *unreachable_since.get_or_insert(now);
                if now - since >= UNREACHABLE_FOR_MS {
                    return Ending::new(
                        BuildEvent::Error,
                        format!("builder {base} could not be reached: {problem}"),
                    );
                }
                // Keep the lease while waiting for the builder to come back.
                let _ = state
                    .store
                    .renew_build(claimed, gangplank_store::now_millis() + LEASE_MS)
                    .await;
                problem
            }
        };
        tracing::warn!(builder = %base, build = %request.id, %problem, "build: retrying the builder after a pause");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Stores the lines the builder sent from `from` on, each under its own number; lines it
/// dropped from its buffer before sending are noted by one line in their place.
async fn copy_lines(
    state: &AppState,
    claimed: &ClaimedBuild,
    from: &mut i64,
    agent: &AgentBuild,
) -> Result<(), Ending> {
    let first = i64::try_from(agent.first_line).unwrap_or(i64::MAX);
    let mut lines: Vec<(i64, String)> = Vec::new();
    if first > *from {
        lines.push((
            *from,
            format!("(the builder dropped {} log lines)", first - *from),
        ));
    }
    for (n, line) in (first..).zip(&agent.lines) {
        if n >= *from {
            lines.push((n, line.clone()));
        }
    }
    let next = i64::try_from(agent.next).unwrap_or(*from).max(*from);
    if lines.is_empty() && next == *from {
        return Ok(());
    }
    match state.store.append_build_log(claimed, lines, next).await {
        Ok(true) => {
            *from = next;
            Ok(())
        }
        Ok(false) => Err(Ending::new(BuildEvent::Error, "the build's claim was lost")),
        Err(error) => {
            tracing::warn!(build = %claimed.build.id, %error, "storing build log lines failed");
            Ok(())
        }
    }
}

/// A final answer's outcome (a success is registered afterwards).
fn judged(agent: AgentBuild) -> Ending {
    let (event, message) = match agent.status {
        AgentBuildStatus::Succeeded => (BuildEvent::Succeed, String::new()),
        AgentBuildStatus::Cancelled => (BuildEvent::Cancel, "cancelled on the builder".to_owned()),
        _ if agent.message.is_empty() => (BuildEvent::Fail, "the build failed".to_owned()),
        _ => (BuildEvent::Fail, agent.message.clone()),
    };
    Ending {
        event,
        message,
        agent: Some(agent),
        version_id: String::new(),
    }
}

/// Registration attempts while the registry cannot be asked, and the pause before the first
/// retry (doubling).
const REGISTER_ATTEMPTS: u32 = 5;
const REGISTER_BACKOFF: Duration = Duration::from_millis(500);

/// A succeeded build's image, resolved through the registry and registered as a container
/// version with the build's commit and ref. The registry's digest must be the one the
/// builder pushed, or the build fails (someone pushed the tag meanwhile). A registry that
/// cannot be asked is retried a few times, then the build ends `errored` (the image is pushed;
/// a watch or a registry event can still register it).
async fn ending_with_version(state: &AppState, build: &BuildRow, ending: Ending) -> Ending {
    if ending.event != BuildEvent::Succeed {
        return ending;
    }
    let Some(agent) = ending.agent.clone() else {
        return Ending::new(BuildEvent::Error, "the builder's answer is missing");
    };
    let Some(tag) = agent.tags.first() else {
        return Ending::new(BuildEvent::Fail, "the builder pushed no tag");
    };
    let spec: Option<Definition> = serde_json::from_str(&build.spec).ok();
    let image = spec
        .as_ref()
        .and_then(|d| gangplank_core::image::RepositoryName::parse(&d.image).ok());
    let Some(image) = image else {
        return Ending::new(BuildEvent::Error, "the build's image is unreadable");
    };
    let pushed = Pushed {
        image,
        tag: tag.clone(),
        git_ref: build.git_ref.clone(),
        commit: agent.commit.clone(),
    };
    let created_by = format!("build:{}", build.id);
    let fail = |event, message: String| Ending {
        event,
        message,
        agent: Some(agent.clone()),
        version_id: String::new(),
    };
    let mut backoff = REGISTER_BACKOFF;
    let mut attempt = 1;
    let registered = loop {
        match verified_versions::register(state, &build.org_id, &pushed, &created_by).await {
            Err(VerifyError::Unavailable(problem)) if attempt < REGISTER_ATTEMPTS => {
                tracing::warn!(build = %build.id, %problem, "registering the build's image: retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            other => break other,
        }
    };
    match registered {
        Ok(registered) => {
            let row = registered.row();
            if !agent.digest.is_empty() && row.digest != agent.digest {
                return fail(
                    BuildEvent::Fail,
                    format!(
                        "the registry has {} for {}:{tag}, not {} as pushed (pushed over meanwhile?)",
                        row.digest, pushed.image, agent.digest
                    ),
                );
            }
            let mut agent = agent.clone();
            agent.digest = row.digest.clone();
            Ending {
                event: BuildEvent::Succeed,
                message: String::new(),
                version_id: row.id.clone(),
                agent: Some(agent),
            }
        }
        Err(error @ (VerifyError::Unavailable(_) | VerifyError::Store(_))) => fail(
            BuildEvent::Error,
            format!("the pushed image could not be registered: {error}"),
        ),
        Err(error) => fail(
            BuildEvent::Fail,
            format!("the pushed image could not be registered: {error}"),
        ),
    }
}

/// Best effort: the builder may already be done.
async fn send_cancel(state: &AppState, base: &str, id: &str) {
    let builder = agent_client()
        .post(format!("{base}/builds/{id}/cancel"))
        .timeout(Duration::from_secs(5));
    if let Answer::Unreachable(problem) | Answer::Refused(_, problem) =
        send(state, base, builder).await
    {
        tracing::warn!(builder = %base, build = %id, %problem, "telling the builder to cancel failed");
    }
}

/// Sends `builder` with a fresh token signed for the builder at `base`.
async fn send(state: &AppState, base: &str, builder: reqwest::RequestBuilder) -> Answer {
    let token = match state.keys.sign(base, gangplank_store::now_millis() / 1000) {
        Ok(token) => token,
        Err(error) => return Answer::Unreachable(format!("{error:#}")),
    };
    let response = match builder.bearer_auth(token).send().await {
        Ok(response) => response,
        Err(error) => return Answer::Unreachable(crate::worker::delivery::describe(&error)),
    };
    let status = response.status();
    let text = match read_capped(response).await {
        Ok(text) => text,
        Err(problem) => return Answer::Unreachable(problem),
    };
    if status == reqwest::StatusCode::NOT_FOUND {
        return Answer::Unknown(reason_of(&text));
    }
    if status.is_client_error() {
        return Answer::Refused(status.as_u16(), reason_of(&text));
    }
    if !status.is_success() {
        return Answer::Unreachable(format!("{status}: {}", reason_of(&text)));
    }
    match serde_json::from_str(&text) {
        Ok(build) => Answer::Build(build),
        Err(error) => Answer::Unreachable(format!("unreadable answer: {error}")),
    }
}
