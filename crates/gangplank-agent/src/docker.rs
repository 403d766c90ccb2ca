//! Running the docker and compose CLIs: argv only (never a shell, except the seed's ECR login
//! pipeline), a timeout, both output streams captured, and `DOCKER_CONFIG` when configured.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What a command did.
#[derive(Debug, Clone)]
pub struct Ran {
    pub ok: bool,
    /// stdout then stderr, as text.
    pub output: String,
    /// stdout alone: what a command that partly failed still printed as its result (`docker
    /// inspect` of several ids prints those found, and its errors go to stderr).
    pub stdout: String,
}

/// The docker CLI and the compose command, as configured or detected.
#[derive(Debug, Clone)]
pub struct Docker {
    compose: Vec<String>,
    docker: String,
    docker_config: Option<PathBuf>,
    timeout: Duration,
}

impl Docker {
    /// `compose` is the configured command, split on spaces; when `None` the v2 plugin is used
    /// if `docker compose version` works, else Debian's v1 `docker-compose`.
    pub async fn new(
        compose: Option<&str>,
        docker: &str,
        docker_config: Option<PathBuf>,
        timeout: Duration,
    ) -> Docker {
        let mut this = Docker {
            compose: Vec::new(),
            docker: docker.to_owned(),
            docker_config,
            timeout,
        };
        this.compose = match compose {
            Some(command) => command.split_whitespace().map(str::to_owned).collect(),
            None => {
                let plugin = vec![docker.to_owned(), "compose".to_owned()];
                if this.run(&plugin, &["version"], None).await.ok {
                    plugin
                } else {
                    vec!["docker-compose".to_owned()]
                }
            }
        };
        this
    }

    pub fn compose_command(&self) -> String {
        self.compose.join(" ")
    }

    /// `compose -p <project> -f <file>… <args>`.
    pub async fn compose(&self, project: &str, files: &[PathBuf], args: &[&str]) -> Ran {
        let mut full: Vec<String> = vec!["-p".to_owned(), project.to_owned()];
        for file in files {
            full.push("-f".to_owned());
            full.push(file.display().to_string());
        }
        full.extend(args.iter().map(|a| (*a).to_owned()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        self.run(&self.compose, &full, None).await
    }

    /// `docker <args>`, with `stdin` piped in when given (passwords never go on argv).
    pub async fn docker(&self, args: &[&str], stdin: Option<&str>) -> Ran {
        self.run(std::slice::from_ref(&self.docker), args, stdin)
            .await
    }

    /// `docker <args>` as a command for the caller to spawn and stream (a one-off container
    /// runs longer than the command timeout and its output is read as it comes). The CLI runs
    /// with the agent's own environment only: a container's env goes in an `--env-file`.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.docker);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.docker_config {
            command.env("DOCKER_CONFIG", dir);
        }
        command
    }

    /// The seed's ECR login: `aws ecr get-login-password | docker login`, through `sh`.
    pub async fn ecr_login(&self, region: &str, domain: &str) -> Ran {
        let script = "aws ecr get-login-password --region \"$1\" | \"$2\" login --username AWS --password-stdin \"$3\"";
        self.run(
            &["sh".to_owned()],
            &["-c", script, "ecr-login", region, &self.docker, domain],
            None,
        )
        .await
    }

    async fn run(&self, program: &[String], args: &[&str], stdin: Option<&str>) -> Ran {
        let Some((first, rest)) = program.split_first() else {
            return Ran {
                ok: false,
                output: "no command configured".to_owned(),
                stdout: String::new(),
            };
        };
        let mut command = Command::new(first);
        command
            .args(rest)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.docker_config {
            command.env("DOCKER_CONFIG", dir);
        }
        tracing::debug!(command = %first, ?args, "running");
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return Ran {
                    ok: false,
                    output: format!("cannot run {first}: {error}"),
                    stdout: String::new(),
                };
            }
        };
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(text.as_bytes()).await;
        }
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => {
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                let mut output = stdout.clone();
                output.push_str(&String::from_utf8_lossy(&out.stderr));
                Ran {
                    ok: out.status.success(),
                    output,
                    stdout,
                }
            }
            Ok(Err(error)) => Ran {
                ok: false,
                output: format!("{first} failed: {error}"),
                stdout: String::new(),
            },
            Err(_) => Ran {
                ok: false,
                output: format!("{first} did not finish within {} s", self.timeout.as_secs()),
                stdout: String::new(),
            },
        }
    }
}
