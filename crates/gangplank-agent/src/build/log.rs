//! A build's log: every command's output line by line, the newest [`KEEP_LINES`] kept, lines
//! numbered from 0 for the whole build so a reader resumes where it stopped and learns what
//! was dropped. Each line passes through core's `keep_line` with the build's secrets.

use std::collections::VecDeque;

use gangplank_core::build::keep_line;

/// Lines kept per build; older ones are dropped (the server keeps its own copy as it reads).
pub const KEEP_LINES: usize = 10_000;

pub struct BuildLog {
    lines: VecDeque<String>,
    /// The number of `lines[0]`: how many were dropped before it.
    first: u64,
    /// Redacted from every line: the clone token, its basic-auth form, registry passwords.
    secrets: Vec<String>,
}

impl BuildLog {
    pub fn new(secrets: Vec<String>) -> BuildLog {
        BuildLog {
            lines: VecDeque::new(),
            first: 0,
            secrets,
        }
    }

    /// A secret learnt mid-build (a registry password), redacted from later lines.
    pub fn add_secret(&mut self, secret: &str) {
        if !secret.is_empty() {
            self.secrets.push(secret.to_owned());
        }
    }

    /// The line as it would be kept (for messages built from a command's output).
    pub fn redact(&self, line: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        keep_line(line, &secrets)
    }

    /// Appends a line; the answer is the line as kept.
    pub fn push(&mut self, line: &str) -> String {
        let kept = self.redact(line);
        self.lines.push_back(kept.clone());
        if self.lines.len() > KEEP_LINES {
            self.lines.pop_front();
            self.first += 1;
        }
        kept
    }

    /// The number the next line will get.
    pub fn next(&self) -> u64 {
        self.first + self.lines.len() as u64
    }

    /// Up to `max` lines from number `from` on (from the oldest kept when `from` was dropped),
    /// with the number of the first one returned.
    pub fn read(&self, from: u64, max: usize) -> (u64, Vec<String>) {
        let start = from.clamp(self.first, self.next());
        let skip = usize::try_from(start - self.first).unwrap_or(usize::MAX);
        (
            start,
            self.lines.iter().skip(skip).take(max).cloned().collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_bounded_and_redacted() {
        let mut log = BuildLog::new(vec!["tok-123".to_owned()]);
        for n in 0..KEEP_LINES + 5 {
            log.push(&format!("line {n} tok-123"));
        }
        assert_eq!(log.next(), (KEEP_LINES + 5) as u64);
        let (first, lines) = log.read(0, 2);
        assert_eq!(first, 5);
        assert_eq!(lines, ["line 5 [redacted]", "line 6 [redacted]"]);
        let (first, lines) = log.read(log.next() - 1, 10);
        assert_eq!((first, lines.len()), (log.next() - 1, 1));
        let (first, lines) = log.read(log.next() + 7, 10);
        assert_eq!((first, lines.len()), (log.next(), 0));
        log.add_secret("pw-9");
        log.push("login pw-9");
        assert_eq!(log.read(log.next() - 1, 1).1, ["login [redacted]"]);
    }
}
