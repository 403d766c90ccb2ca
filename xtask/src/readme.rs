//! `cargo xtask readme`: runs README.md's shell blocks in order, as a reader would, against a
//! fresh server, and fails on the first command that exits non-zero.
//!
//! The README's first command (`cargo run -- serve`) is started as written, from the repository
//! (with its data directory in a temporary directory and a free port), and is the server every
//! later block talks to. Every other block runs in one `bash` session (so variables carry from
//! block to block, as in a reader's terminal) in that temporary directory, with `set -euo
//! pipefail`, `gangplank` (the binary the first command built) first on PATH, HOME there too,
//! and `GANGPLANK_URL` pointing at the server. The only block not run is the test command
//! itself (`SKIPPED`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The block that starts the server the walkthroughs talk to.
const SERVE: &str = "cargo run -- serve";

/// Blocks that are not run, and why.
const SKIPPED: [(&str, &str); 1] = [(
    "cargo xtask ci",
    "the test command itself: it runs this runner",
)];

/// How long the server may take to build and start (a cold debug build on two cores).
const START_TIMEOUT: Duration = Duration::from_secs(1200);

/// How long all the walkthrough blocks may take together.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// One fenced ```sh block.
#[derive(Debug, PartialEq)]
struct Block {
    /// The README line of the block's first command line (after the fence).
    line: usize,
    text: String,
}

/// One shell command of a block, as the reader sees it (continuation lines, multi-line quotes
/// and here-documents included).
#[derive(Debug, PartialEq)]
struct ShellCommand {
    line: usize,
    text: String,
}

pub fn run(root: &Path, target_dir: &Path) -> anyhow::Result<()> {
    let readme = std::fs::read_to_string(root.join("README.md")).context("reading README.md")?;
    let blocks = sh_blocks(&readme)?;
    let mut seen_serve = 0;
    let mut seen_skipped = vec![0; SKIPPED.len()];
    let mut commands = Vec::new();
    for block in &blocks {
        let trimmed = block.text.trim();
        if trimmed == SERVE {
            seen_serve += 1;
            if !commands.is_empty() {
                bail!(
                    "README.md:{}: `{SERVE}` must come before the blocks that use the server",
                    block.line
                );
            }
            continue;
        }
        if let Some(i) = SKIPPED.iter().position(|(text, _)| *text == trimmed) {
            seen_skipped[i] += 1;
            continue;
        }
        commands.extend(split_commands(&block.text, block.line)?);
    }
    if seen_serve != 1 {
        bail!(
            "README.md must have exactly one ```sh block `{SERVE}` (found {seen_serve}); if the first command changed, change `SERVE` in xtask/src/readme.rs"
        );
    }
    for ((text, _), seen) in SKIPPED.iter().zip(&seen_skipped) {
        if *seen != 1 {
            bail!(
                "README.md must have exactly one ```sh block `{text}` (found {seen}); update `SKIPPED` in xtask/src/readme.rs"
            );
        }
    }
    for command in &commands {
        lint(command)?;
    }

    let temp = std::env::temp_dir().join(format!("gangplank-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    let work = temp.join("work");
    let home = temp.join("home");
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(&home)?;
    let result = run_in(root, target_dir, &temp, &work, &home, &commands);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&temp);
    } else {
        eprintln!("readme: left {} for a look", temp.display());
    }
    let ran = result?;
    let skipped: Vec<String> = SKIPPED
        .iter()
        .map(|(text, why)| format!("`{text}` ({why})"))
        .collect();
    eprintln!(
        "readme: ran {} commands from {} ```sh blocks of README.md, all exited 0 (`{SERVE}` started as the server; skipped {})",
        ran + 1,
        blocks.len() - SKIPPED.len(),
        skipped.join(", ")
    );
    Ok(())
}

/// Starts the server, runs `commands`, stops the server; returns how many commands ran.
fn run_in(
    root: &Path,
    target_dir: &Path,
    temp: &Path,
    work: &Path,
    home: &Path,
    commands: &[ShellCommand],
) -> anyhow::Result<usize> {
    let server_log = temp.join("server.log");
    eprintln!(
        "$ {SERVE}   (in {}, data in {})",
        root.display(),
        work.join("gangplank-data").display()
    );
    let mut server = Server::start(root, &work.join("gangplank-data"), &server_log)?;
    let outcome = (|| {
        let base = server.wait_ready()?;
        let mut path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .collect::<Vec<PathBuf>>();
        // The binary `cargo run -- serve` just built.
        path.insert(0, target_dir.join("debug"));
        let script = script(commands);
        std::fs::write(temp.join("readme.sh"), &script)?;
        // coreutils `timeout` runs bash in a process group of its own and ends all of it.
        let mut bash = Command::new("timeout");
        bash.arg("--kill-after=10s")
            .arg(format!("{}s", RUN_TIMEOUT.as_secs()))
            .arg("bash")
            .arg(temp.join("readme.sh"))
            .current_dir(work)
            .env("PATH", std::env::join_paths(path)?)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .stdin(Stdio::null());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GANGPLANK_") {
                bash.env_remove(name);
            }
        }
        bash.env("GANGPLANK_URL", &base);
        let status = bash.status().context("starting timeout bash")?;
        match status.code() {
            Some(0) => Ok(commands.len()),
            Some(124 | 137) => bail!(
                "the README's commands did not finish within {RUN_TIMEOUT:?}; the last one started is printed above"
            ),
            _ => bail!("a README command failed ({status}); see the line above"),
        }
    })();
    server.stop();
    if outcome.is_err() {
        let log = std::fs::read_to_string(&server_log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        eprintln!(
            "---- server log (last lines, {}) ----",
            server_log.display()
        );
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
    }
    outcome
}

/// `cargo run -- serve`, exactly as the README has it, run by bash from the repository.
struct Server {
    child: Child,
    first_line: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(root: &Path, data_dir: &Path, log: &Path) -> anyhow::Result<Server> {
        let mut command = Command::new("bash");
        command
            .args(["-c", &format!("exec {SERVE}")])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(log)?));
        // A fresh server: none of the caller's settings, its data in the temporary directory,
        // and a free port rather than 8080, which may be taken.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GANGPLANK_") {
                command.env_remove(&name);
            }
        }
        command
            .env("GANGPLANK_DATA_DIR", data_dir)
            .env("GANGPLANK_LISTEN", "127.0.0.1:0")
            .env("GANGPLANK_LOG_FORMAT", "text");
        // `exec`, and cargo execs the binary too: the child is the server itself.
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {SERVE}"))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (sender, first_line) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = sender.send(line);
            }
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        Ok(Server { child, first_line })
    }

    /// Waits for `listening on URL` and for `/health` to answer 200; returns the URL.
    fn wait_ready(&mut self) -> anyhow::Result<String> {
        let line = self.first_line.recv_timeout(START_TIMEOUT).map_err(|_| {
            anyhow::anyhow!("`{SERVE}` printed no `listening on` line (it failed, or took over {START_TIMEOUT:?})")
        })?;
        let base = line
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected first line from `{SERVE}`: {line:?}"))?
            .to_owned();
        let address = base.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if health(&address).unwrap_or(false) {
                eprintln!("readme: the server answers /health at {base}");
                return Ok(base);
            }
            if Instant::now() > deadline {
                bail!("{base}/health did not answer 200 within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM (a clean shutdown), then SIGKILL if it lingers. bash's own `kill` with the
    /// server's pid: procps-ng 4.0.2's `kill -TERM -PGID` signals every process.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("bash")
            .args(["-c", "kill -TERM \"$1\"", "stop", &pid])
            .status();
        if !matches!(
            wait_with_deadline(&mut self.child, Duration::from_secs(10)),
            Ok(Some(_))
        ) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `GET /health` on `address` (host:port) answers 200.
fn health(address: &str) -> std::io::Result<bool> {
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}

/// Polls `child` until it exits or `timeout` passes (`None`).
fn wait_with_deadline(
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ```sh blocks of a Markdown text, in order. A block fenced as another shell (```bash,
/// ```console, …) is refused: it would be shown to readers without being run.
fn sh_blocks(markdown: &str) -> anyhow::Result<Vec<Block>> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        let fence = line.trim_end();
        if current.is_none()
            && [
                "bash",
                "shell",
                "console",
                "zsh",
                "shell-session",
                "sh-session",
            ]
            .iter()
            .any(|other| fence.strip_prefix("```") == Some(*other))
        {
            bail!(
                "README.md:{}: fence shell commands as ```sh, which `cargo xtask readme` runs (not {fence})",
                index + 1
            );
        }
        match &mut current {
            None if fence == "```sh" => {
                current = Some(Block {
                    line: index + 2,
                    text: String::new(),
                });
            }
            None => {}
            Some(_) if fence == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
        }
    }
    Ok(blocks)
}

/// Splits a block into commands: a command ends at a line end outside quotes, parentheses and
/// here-documents, unless the line ends in `\`, `|`, `&&` or `||`.
fn split_commands(block: &str, first_line: usize) -> anyhow::Result<Vec<ShellCommand>> {
    let mut commands = Vec::new();
    let mut text = String::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut depth = 0i32;
    let mut heredoc: Option<String> = None;
    let mut in_heredoc_body = false;
    for (index, line) in block.lines().enumerate() {
        let number = first_line + index;
        if in_heredoc_body {
            text.push_str(line);
            text.push('\n');
            if Some(line) == heredoc.as_deref() {
                in_heredoc_body = false;
                heredoc = None;
                commands.push(ShellCommand {
                    line: start,
                    text: std::mem::take(&mut text),
                });
            }
            continue;
        }
        if text.is_empty() && quote.is_none() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            start = number;
        }
        text.push_str(line);
        text.push('\n');
        let code = scan_line(line, &mut quote, &mut depth, &mut heredoc);
        let code = code.trim_end();
        let continued = code.ends_with('\\')
            || code.ends_with('|')
            || code.ends_with("&&")
            || quote.is_some()
            || depth > 0;
        if heredoc.is_some() {
            in_heredoc_body = true;
        } else if !continued {
            commands.push(ShellCommand {
                line: start,
                text: std::mem::take(&mut text),
            });
        }
    }
    if !text.is_empty() || quote.is_some() || depth != 0 {
        bail!("README.md:{start}: a command is not finished at the end of its block");
    }
    Ok(commands)
}

/// Updates quote, parenthesis and here-document state over one line; returns the line without
/// its comment.
fn scan_line(
    line: &str,
    quote: &mut Option<char>,
    depth: &mut i32,
    heredoc: &mut Option<String>,
) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut code = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match (*quote, c) {
            (Some('\''), '\'') => *quote = None,
            (Some('\''), _) => {}
            (Some('"'), '\\') => {
                code.push(c);
                i += 1;
                if let Some(&next) = chars.get(i) {
                    code.push(next);
                }
                i += 1;
                continue;
            }
            (Some('"'), '"') => *quote = None,
            (Some(_), _) => {}
            (None, '\\') => {
                code.push(c);
                i += 1;
                if let Some(&next) = chars.get(i) {
                    code.push(next);
                }
                i += 1;
                continue;
            }
            (None, '\'' | '"') => *quote = Some(c),
            (None, '(') => *depth += 1,
            (None, ')') => *depth -= 1,
            (None, '#') if i == 0 || chars[i - 1].is_whitespace() => break,
            (None, '<') if chars.get(i + 1) == Some(&'<') && chars.get(i + 2) != Some(&'<') => {
                let rest: String = chars[i + 2..].iter().collect();
                let rest = rest.trim_start_matches('-').trim_start();
                let word: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '|' | '&' | ')'))
                    .collect();
                *heredoc = Some(word.trim_matches(|c| c == '\'' || c == '"').to_owned());
                code.push_str("<<");
                i += 2;
                continue;
            }
            (None, _) => {}
        }
        code.push(c);
        i += 1;
    }
    code
}

/// Refuses forms that would hide a failure from `set -e`: `export NAME=$(…)` takes the exit
/// status of `export`, not of the command substituted.
fn lint(command: &ShellCommand) -> anyhow::Result<()> {
    let first = command.text.trim_start();
    for keyword in ["export ", "local ", "declare ", "readonly "] {
        if first.starts_with(keyword) && first.contains("=$(") {
            bail!(
                "README.md:{}: `{keyword}NAME=$(…)` hides the substituted command's failure; assign first, then `{keyword}NAME`",
                command.line
            );
        }
    }
    Ok(())
}

/// One bash script: strict mode, then each command announced (`+ README.md:LINE: …`) and run.
fn script(commands: &[ShellCommand]) -> String {
    let mut script = String::from(
        "set -euo pipefail\ntrap 'echo \"readme: README.md:$__readme_line failed with exit status $?\" >&2' ERR\n",
    );
    for command in commands {
        let first = command.text.lines().next().unwrap_or_default();
        let more = if command.text.lines().count() > 1 {
            " …"
        } else {
            ""
        };
        script.push_str(&format!(
            "__readme_line={}\nprintf '%s\\n' {} >&2\n{}",
            command.line,
            single_quoted(&format!("+ README.md:{}: {first}{more}", command.line)),
            command.text
        ));
    }
    script
}

fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::{Block, ShellCommand, lint, sh_blocks, split_commands};

    #[test]
    fn finds_sh_blocks_with_their_line_numbers() {
        let markdown =
            "# Title\n\n```sh\necho one\n```\n\n```toml\nx = 1\n```\n```sh\necho two\n```\n";
        assert_eq!(
            sh_blocks(markdown).unwrap(),
            [
                Block {
                    line: 4,
                    text: "echo one\n".to_owned()
                },
                Block {
                    line: 11,
                    text: "echo two\n".to_owned()
                }
            ]
        );
    }

    #[test]
    fn refuses_shell_blocks_it_would_not_run() {
        let error = sh_blocks("text\n\n```bash\necho x\n```\n").unwrap_err();
        assert!(error.to_string().contains("README.md:3"), "{error}");
    }

    #[test]
    fn splits_commands_across_continuations_quotes_substitutions_and_heredocs() {
        let block = "\
export A=1 B=2   # a comment

# a comment line
X=$(curl -s a \\
  -d '{\"a\": 1}' | jq -r .id)
curl --data-raw '{\"name\": \"x\",
     \"version\": \"1\"}'
cat > f.yaml <<'EOF'
a: 1
# not a comment
EOF
echo '{}' \\
  | tool -f -            # prints it
until tool get | jq -e 'length > 1' >/dev/null; do sleep 1; done
echo \"#not-a-comment\" done
";
        let commands = split_commands(block, 10).unwrap();
        let lines: Vec<usize> = commands.iter().map(|c| c.line).collect();
        assert_eq!(lines, [10, 13, 15, 17, 21, 23, 24], "{commands:#?}");
        assert!(commands[3].text.ends_with("EOF\n"), "{commands:#?}");
        assert!(split_commands("echo 'open\n", 1).is_err());
        assert!(split_commands("cat <<EOF\nno end\n", 1).is_err());
    }

    #[test]
    fn refuses_exported_substitutions() {
        let bad = ShellCommand {
            line: 3,
            text: "export TOKEN=$(curl x)\n".to_owned(),
        };
        assert!(lint(&bad).is_err());
        let good = ShellCommand {
            line: 3,
            text: "TOKEN=$(curl x)\n".to_owned(),
        };
        assert!(lint(&good).is_ok());
    }
}
