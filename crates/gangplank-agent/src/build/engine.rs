//! Building and pushing the checkout: `docker build` (or `buildah bud`) of the Dockerfile and
//! context, both inside the checkout (symlinks resolved), to a tag of the build's own; then,
//! holding the builder's push lock, each rendered tag is applied, pushed and removed again, so
//! two builds that push the same tag (`latest`) never push each other's image. The registry
//! login goes into the build's own `DOCKER_CONFIG`, its password on stdin.
//!
//! buildah is not installed where this was written: its commands follow its documentation
//! (`buildah bud`, `buildah login --authfile`, `buildah push --digestfile`) but are untested.

use std::path::{Path, PathBuf};

use gangplank_api::builds::AgentBuildRequest;
use gangplank_core::build::render_tags;
use tokio::process::Command;

use super::step::{self, Stop};
use super::{Builder, End, Logger};

/// What builds and pushes.
#[derive(Debug, Clone)]
pub enum Engine {
    /// The docker CLI (the agent's `docker_command`).
    Docker(String),
    Buildah,
}

impl Engine {
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Docker(_) => "docker",
            Engine::Buildah => "buildah",
        }
    }

    /// `docker …` (or `buildah …`) with the build's own registry configuration.
    fn command(&self, config: &Path, args: &[&str]) -> Command {
        let mut command = match self {
            Engine::Docker(cli) => {
                let mut command = Command::new(cli);
                command.env("DOCKER_CONFIG", config);
                command
            }
            Engine::Buildah => {
                let mut command = Command::new("buildah");
                command.env("REGISTRY_AUTH_FILE", config.join("auth.json"));
                command
            }
        };
        command.args(args);
        command
    }
}

/// Where a build works: its checkout and its private registry configuration.
pub struct Workspace {
    pub checkout: PathBuf,
    pub config: PathBuf,
    /// The image the build makes, before it has its registry tags: a name of its own.
    pub local_tag: String,
}

/// What a successful build pushed.
pub struct Pushed {
    pub tags: Vec<String>,
    pub digest: String,
}

/// `rel` inside the checkout once symlinks are resolved, and of the right kind.
fn inside(checkout: &Path, field: &str, rel: &str, dir: bool) -> Result<PathBuf, End> {
    let refuse = |why: &str| End::Failed(format!("build failed: the {field} {rel:?} {why}"));
    let root = checkout
        .canonicalize()
        .map_err(|e| End::Failed(format!("build failed: the checkout is gone: {e}")))?;
    let path = root
        .join(rel)
        .canonicalize()
        .map_err(|_| refuse("does not exist in the repository"))?;
    if !path.starts_with(&root) {
        return Err(refuse("resolves outside the checkout"));
    }
    let kind_ok = if dir { path.is_dir() } else { path.is_file() };
    if !kind_ok {
        return Err(refuse(if dir {
            "is not a directory"
        } else {
            "is not a file"
        }));
    }
    Ok(path)
}

/// Builds the checkout and pushes every tag; the answer names the digest the registry took.
pub async fn build_and_push(
    builder: &Builder,
    request: &AgentBuildRequest,
    commit: &str,
    workspace: &Workspace,
    logger: &Logger,
    stop: &mut Stop,
) -> Result<Pushed, End> {
    let engine = &builder.engine;
    let tags = render_tags(&request.tags, commit, &request.git_ref)
        .map_err(|e| End::Failed(format!("build failed: {e}")))?;
    let dockerfile = inside(
        &workspace.checkout,
        "dockerfile",
        &request.dockerfile,
        false,
    )?;
    let context = inside(&workspace.checkout, "context", &request.context, true)?;
    logger.line("==> build");
    let dockerfile = dockerfile.display().to_string();
    let context = context.display().to_string();
    let mut args: Vec<String> = match engine {
        Engine::Docker(_) => vec!["build".into(), "--force-rm".into()],
        Engine::Buildah => vec!["bud".into()],
    };
    args.extend(["-f".to_owned(), dockerfile]);
    for (name, value) in &request.build_args {
        args.extend(["--build-arg".to_owned(), format!("{name}={value}")]);
    }
    args.extend(["-t".to_owned(), workspace.local_tag.clone(), context]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    logger.line(&format!("$ {} {}", engine.name(), args.join(" ")));
    let ran = step::run(engine.command(&workspace.config, &args), None, logger, stop).await?;
    if !ran.success {
        return Err(End::Failed(format!(
            "{} build {}",
            engine.name(),
            ran.ending()
        )));
    }
    if let Some(registry_id) = request.registry_id.as_deref() {
        login(
            builder,
            registry_id,
            &request.image,
            workspace,
            logger,
            stop,
        )
        .await?;
    }
    // Tags are the engine's global names: one build at a time applies, pushes and drops them.
    let _pushing = builder.push_lock.lock().await;
    let mut digest = String::new();
    for tag in &tags {
        let target = format!("{}:{tag}", request.image);
        logger.line(&format!("==> push {target}"));
        let pushed = push(engine, workspace, &target, logger, stop).await;
        if let Engine::Docker(_) = engine {
            // The tag goes again whatever happened, a cancel included (so not through `step`,
            // which a stopped build no longer runs): the image stays under its own name.
            quietly(engine.command(&workspace.config, &["rmi", "--no-prune", &target])).await;
        }
        let this = pushed?;
        if !digest.is_empty() && digest != this {
            return Err(End::Failed(format!(
                "push of {target} gave digest {this}, not {digest} as the tags before it"
            )));
        }
        digest = this;
    }
    Ok(Pushed { tags, digest })
}

/// Pushes `target` and answers its manifest digest.
async fn push(
    engine: &Engine,
    workspace: &Workspace,
    target: &str,
    logger: &Logger,
    stop: &mut Stop,
) -> Result<String, End> {
    let refused =
        |ran: &step::Ran| End::Failed(format!("push of {target} refused: {}", ran.last_line()));
    match engine {
        Engine::Docker(_) => {
            let tag = engine.command(&workspace.config, &["tag", &workspace.local_tag, target]);
            let ran = step::run(tag, None, logger, stop).await?;
            if !ran.success {
                return Err(End::Failed(format!(
                    "push of {target} failed: docker tag {}: {}",
                    ran.ending(),
                    ran.last_line()
                )));
            }
            let push = engine.command(&workspace.config, &["push", target]);
            let ran = step::run(push, None, logger, stop).await?;
            if !ran.success {
                return Err(refused(&ran));
            }
            ran.output
                .iter()
                .rev()
                .find_map(|line| pushed_digest(line))
                .ok_or_else(|| {
                    End::Failed(format!("push of {target}: docker push reported no digest"))
                })
        }
        Engine::Buildah => {
            let file = workspace.config.join("digest");
            let file_text = file.display().to_string();
            let destination = format!("docker://{target}");
            let push = engine.command(
                &workspace.config,
                &[
                    "push",
                    "--digestfile",
                    &file_text,
                    &workspace.local_tag,
                    &destination,
                ],
            );
            let ran = step::run(push, None, logger, stop).await?;
            if !ran.success {
                return Err(refused(&ran));
            }
            let digest = std::fs::read_to_string(&file).unwrap_or_default();
            let digest = digest.trim();
            if digest.starts_with("sha256:") {
                Ok(digest.to_owned())
            } else {
                Err(End::Failed(format!(
                    "push of {target}: buildah wrote no digest"
                )))
            }
        }
    }
}

/// `digest: sha256:…` in a `docker push` line (`latest: digest: sha256:… size: 527`).
fn pushed_digest(line: &str) -> Option<String> {
    let rest = &line[line.find("digest: ")? + "digest: ".len()..];
    let digest = rest.split_whitespace().next()?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digest.to_owned())
}

/// Fetches the registry's credentials from the Gangplank server (the agent's own
/// `[credentials]`) and logs in to its host in the build's own configuration.
async fn login(
    builder: &Builder,
    registry_id: &str,
    image: &str,
    workspace: &Workspace,
    logger: &Logger,
    stop: &mut Stop,
) -> Result<(), End> {
    let creds = builder
        .credentials
        .fetch(registry_id)
        .await
        .map_err(|e| End::Failed(format!("push of {image} failed: {e}")))?;
    logger.add_secret(&creds.password);
    let host = creds
        .registry
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    logger.line(&format!("==> login {host} as {}", creds.username));
    let login = builder.engine.command(
        &workspace.config,
        &[
            "login",
            "--username",
            &creds.username,
            "--password-stdin",
            &host,
        ],
    );
    let ran = step::run(login, Some(&creds.password), logger, stop).await?;
    if !ran.success {
        return Err(End::Failed(format!(
            "push of {image} failed: login to {host} refused: {}",
            ran.last_line()
        )));
    }
    Ok(())
}

/// Removes the build's own image (its registry tags went after their push).
pub async fn remove_image(engine: &Engine, workspace: &Workspace) {
    let command = engine.command(&workspace.config, &["rmi", &workspace.local_tag]);
    if !quietly(command).await {
        tracing::debug!(image = %workspace.local_tag, "the build's image was not removed (none was built?)");
    }
}

/// Runs a clean-up command to its end, unlogged (it fails harmlessly when there is nothing to
/// clean); whether it succeeded.
async fn quietly(mut command: Command) -> bool {
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let ran = tokio::time::timeout(std::time::Duration::from_secs(120), command.status()).await;
    matches!(ran, Ok(Ok(status)) if status.success())
}

/// `auto`: docker when `docker info` answers, else buildah.
pub async fn detect(docker_cli: &str) -> Engine {
    let info = Command::new(docker_cli)
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(std::time::Duration::from_secs(30), info).await {
        Ok(Ok(status)) if status.success() => Engine::Docker(docker_cli.to_owned()),
        _ => Engine::Buildah,
    }
}

#[cfg(test)]
mod tests {
    use super::pushed_digest;

    #[test]
    fn the_digest_is_read_from_docker_push_output() {
        let hex = "a".repeat(64);
        assert_eq!(
            pushed_digest(&format!("latest: digest: sha256:{hex} size: 527")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(pushed_digest("latest: digest: sha256:abc size: 1"), None);
        assert_eq!(pushed_digest("Pushed"), None);
    }
}
