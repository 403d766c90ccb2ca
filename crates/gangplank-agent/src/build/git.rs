//! Cloning exactly one commit: `git init`, a shallow fetch of the commit by id (a fetch of the
//! ref, deepened until it holds the commit, when the server refuses ids), a detached checkout.
//! The clone token travels only in git's environment (`GIT_CONFIG_COUNT`/`KEY`/`VALUE`, an
//! `http.extraHeader`): never argv (`ps` shows it), never `.git/config` (the build context
//! may copy `.git` into the image).

use std::path::Path;

use base64::Engine as _;
use gangplank_api::builds::AgentBuildRequest;
use tokio::process::Command;

use super::step::{self, Stop};
use super::{End, Logger};

/// The first fetch of a ref when the server refuses a fetch by id: enough for a commit pushed
/// shortly before the build was asked for; deeper histories are unshallowed.
const FALLBACK_DEPTH: &str = "50";

/// `Authorization: Basic base64("x-access-token:" + token)`, as GitHub expects a token.
pub fn basic_auth(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"))
}

/// `git <args>` in `dir` with the build's environment.
fn git(dir: &Path, token: Option<&str>, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        // No prompt: a refused token fails the fetch rather than hanging on a terminal.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_CONFIG_PARAMETERS");
    match token {
        Some(token) => {
            command
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {}", basic_auth(token)),
                );
        }
        None => {
            command
                .env_remove("GIT_CONFIG_COUNT")
                .env_remove("GIT_CONFIG_KEY_0")
                .env_remove("GIT_CONFIG_VALUE_0");
        }
    }
    command
}

/// Clones the request's commit (or its ref's head) into `dir` (created empty by the caller)
/// and answers the commit checked out.
pub async fn clone(
    request: &AgentBuildRequest,
    dir: &Path,
    logger: &Logger,
    stop: &mut Stop,
) -> Result<String, End> {
    let token = request.clone_token.as_deref().filter(|t| !t.is_empty());
    let url = request.clone_url.as_str();
    let git_ref = request.git_ref.as_str();
    logger.line(&format!(
        "==> clone {url} {}",
        request.commit.as_deref().unwrap_or(git_ref)
    ));
    let failed = |ran: &step::Ran, what: &str| {
        End::Failed(format!(
            "clone failed: {what} {}: {}",
            ran.ending(),
            ran.last_line()
        ))
    };
    let ran = step::run(git(dir, token, &["init", "-q"]), None, logger, stop).await?;
    if !ran.success {
        return Err(failed(&ran, "git init"));
    }
    let target = match request.commit.as_deref() {
        Some(commit) => {
            let by_id = git(
                dir,
                token,
                &["fetch", "--depth", "1", "--no-tags", "--", url, commit],
            );
            let ran = step::run(by_id, None, logger, stop).await?;
            if !ran.success {
                logger.line(&format!(
                    "==> the fetch of {commit} by id failed; fetching {git_ref} to find it"
                ));
                fetch_ref_holding(dir, token, url, git_ref, commit, logger, stop).await?;
            }
            commit.to_owned()
        }
        None => {
            let head = git(
                dir,
                token,
                &["fetch", "--depth", "1", "--no-tags", "--", url, git_ref],
            );
            let ran = step::run(head, None, logger, stop).await?;
            if !ran.success {
                return Err(failed(&ran, "git fetch"));
            }
            "FETCH_HEAD".to_owned()
        }
    };
    let checkout = git(dir, token, &["checkout", "-q", "--detach", &target]);
    let ran = step::run(checkout, None, logger, stop).await?;
    if !ran.success {
        return Err(failed(&ran, "git checkout"));
    }
    let head = git(dir, token, &["rev-parse", "--verify", "HEAD^{commit}"]);
    let ran = step::run(head, None, logger, stop).await?;
    let commit = ran.last_line().trim().to_owned();
    if !ran.success || gangplank_core::build::check_commit(&commit).is_err() {
        return Err(failed(&ran, "git rev-parse HEAD"));
    }
    if request.commit.as_deref().is_some_and(|c| c != commit) {
        return Err(End::Failed(format!(
            "clone failed: checked out {commit}, not the commit asked for"
        )));
    }
    Ok(commit)
}

/// Fetches `git_ref` until it holds `commit`: shallow first, then its whole history.
async fn fetch_ref_holding(
    dir: &Path,
    token: Option<&str>,
    url: &str,
    git_ref: &str,
    commit: &str,
    logger: &Logger,
    stop: &mut Stop,
) -> Result<(), End> {
    let fetch = git(
        dir,
        token,
        &[
            "fetch",
            "--depth",
            FALLBACK_DEPTH,
            "--no-tags",
            "--",
            url,
            git_ref,
        ],
    );
    let ran = step::run(fetch, None, logger, stop).await?;
    if !ran.success {
        return Err(End::Failed(format!(
            "clone failed: git fetch {}: {}",
            ran.ending(),
            ran.last_line()
        )));
    }
    let wanted = format!("{commit}^{{commit}}");
    if has_object(dir, token, &wanted, logger, stop).await? {
        return Ok(());
    }
    let shallow = git(dir, token, &["rev-parse", "--is-shallow-repository"]);
    let ran = step::run(shallow, None, logger, stop).await?;
    if ran.last_line().trim() == "true" {
        let deepen = git(
            dir,
            token,
            &["fetch", "--unshallow", "--no-tags", "--", url, git_ref],
        );
        let ran = step::run(deepen, None, logger, stop).await?;
        if !ran.success {
            return Err(End::Failed(format!(
                "clone failed: git fetch --unshallow {}: {}",
                ran.ending(),
                ran.last_line()
            )));
        }
        if has_object(dir, token, &wanted, logger, stop).await? {
            return Ok(());
        }
    }
    Err(End::Failed(format!(
        "clone failed: commit {commit} is not in the history of {git_ref}"
    )))
}

async fn has_object(
    dir: &Path,
    token: Option<&str>,
    object: &str,
    logger: &Logger,
    stop: &mut Stop,
) -> Result<bool, End> {
    let check = git(dir, token, &["cat-file", "-e", object]);
    Ok(step::run(check, None, logger, stop).await?.success)
}
