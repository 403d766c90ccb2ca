//! One command of a build: spawned in a process group of its own, its stdout and stderr logged
//! line by line as they come, stopped (the whole group killed) on cancel or when the build's
//! time is up. Killing the group matters: git's transport helpers and the docker CLI's
//! children die with it, and a killed `docker build` client makes the engine abandon the build.

use std::collections::VecDeque;
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use super::Logger;

/// The longest line read before it is cut (a progress bar without line breaks would otherwise
/// grow without bound); core's `keep_line` cuts kept lines shorter still.
const MAX_PENDING: usize = 16 * 1024;
/// Lines of a command's output kept for the caller (a digest, a commit, a failure's reason).
const KEEP_OUTPUT: usize = 200;

/// Why a build stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Cancelled,
    TimedOut,
}

/// What stops a build: a cancel, or its deadline.
pub struct Stop {
    cancel: watch::Receiver<bool>,
    deadline: tokio::time::Instant,
}

impl Stop {
    pub fn new(cancel: watch::Receiver<bool>, deadline: tokio::time::Instant) -> Stop {
        Stop { cancel, deadline }
    }

    /// Completes when the build must stop.
    pub async fn stopped(&mut self) -> Stopped {
        let cancelled = async {
            // A closed channel (the record was pruned) is no cancel: wait for the deadline.
            if self.cancel.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = cancelled => Stopped::Cancelled,
            () = tokio::time::sleep_until(self.deadline) => Stopped::TimedOut,
        }
    }
}

/// How a command ended.
pub struct Ran {
    pub success: bool,
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Its last lines (stdout and stderr interleaved), redacted as logged.
    pub output: Vec<String>,
}

impl Ran {
    /// The last non-empty line: usually the reason a command failed.
    pub fn last_line(&self) -> String {
        self.output
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_default()
    }

    /// `exited with N` / `was killed by a signal`.
    pub fn ending(&self) -> String {
        match self.code {
            Some(code) => format!("exited with {code}"),
            None => "was killed by a signal".to_owned(),
        }
    }
}

/// Runs `command` to its end, logging its output, or kills its process group when `stop`
/// says so. `stdin` is written and closed (a password for `login --password-stdin`).
pub async fn run(
    mut command: Command,
    stdin: Option<&str>,
    logger: &Logger,
    stop: &mut Stop,
) -> Result<Ran, Stopped> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let line = format!("cannot run {program}: {error}");
            logger.line(&line);
            return Ok(Ran {
                success: false,
                code: None,
                output: vec![line],
            });
        }
    };
    let pid = child.id();
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Small (a password): written whole before the output is read.
        let _ = pipe.write_all(text.as_bytes()).await;
        drop(pipe);
    }
    let (lines_tx, mut lines_rx) = mpsc::unbounded_channel();
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(read_lines(stdout, lines_tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(read_lines(stderr, lines_tx.clone()));
    }
    drop(lines_tx);
    let mut output = VecDeque::new();
    // Both pipes closed (the readers ended), then the exit; a stop at any point kills.
    let status = loop {
        tokio::select! {
            line = lines_rx.recv() => match line {
                Some(line) => {
                    let kept = logger.line(&line);
                    output.push_back(kept);
                    if output.len() > KEEP_OUTPUT {
                        output.pop_front();
                    }
                }
                None => {
                    tokio::select! {
                        status = child.wait() => break status,
                        stopped = stop.stopped() => {
                            kill_group(pid, &mut child).await;
                            return Err(stopped);
                        }
                    }
                }
            },
            stopped = stop.stopped() => {
                kill_group(pid, &mut child).await;
                return Err(stopped);
            }
        }
    };
    let (success, code) = match status {
        Ok(status) => (status.success(), status.code()),
        Err(error) => {
            let line = format!("waiting for {program} failed: {error}");
            output.push_back(logger.line(&line));
            (false, None)
        }
    };
    Ok(Ran {
        success,
        code,
        output: output.into(),
    })
}

/// SIGKILL to the whole group (`kill -KILL -- -PGID`: the crate forbids `unsafe`, so no
/// libc), then to the child itself should the group kill not run, then its exit is awaited.
async fn kill_group(pid: Option<u32>, child: &mut tokio::process::Child) {
    if let Some(pid) = pid {
        let killed = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if !killed.is_ok_and(|s| s.success()) {
            tracing::warn!(pid, "killing the build command's process group failed");
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// Splits a stream into lines (of a line redrawn with `\r`, its last state, invalid UTF-8 replaced, overlong
/// lines cut at [`MAX_PENDING`]) and sends them on.
async fn read_lines(
    mut stream: impl tokio::io::AsyncRead + Unpin,
    to: mpsc::UnboundedSender<String>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 8192];
    let send = |bytes: &[u8]| {
        // A progress line redrawn with `\r` keeps its last state only.
        let end = bytes.iter().rposition(|b| *b != b'\r').map_or(0, |i| i + 1);
        let bytes = &bytes[..end];
        let start = bytes.iter().rposition(|b| *b == b'\r').map_or(0, |i| i + 1);
        let _ = to.send(String::from_utf8_lossy(&bytes[start..]).into_owned());
    };
    loop {
        let n = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buffer[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            send(&pending[..end]);
            pending.drain(..=end);
        }
        if pending.len() > MAX_PENDING {
            send(&pending);
            pending.clear();
        }
    }
    if !pending.is_empty() {
        send(&pending);
    }
}
