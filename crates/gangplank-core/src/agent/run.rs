//! The agent's one-off containers (`POST /runs`): which requests it accepts, the run id the
//! server derives from a pipeline step, the container's name, and the capped tail of its output.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The most arguments a run's `command` may have.
pub const MAX_RUN_ARGS: usize = 256;
/// The longest one argument of `command`, or one `env` value.
pub const MAX_RUN_ARG_LEN: usize = 16 * 1024;
/// The most `env` entries.
pub const MAX_RUN_ENV: usize = 128;
/// The longest `env` name.
pub const MAX_RUN_ENV_NAME_LEN: usize = 256;
/// A run's default and longest `timeout_seconds`.
pub const DEFAULT_RUN_TIMEOUT_SECONDS: u64 = 600;
pub const MAX_RUN_TIMEOUT_SECONDS: u64 = 24 * 60 * 60;
/// How much of a run's output (stdout and stderr, interleaved) the agent keeps: the tail.
pub const MAX_RUN_OUTPUT: usize = 64 * 1024;
const MAX_RUN_ID_LEN: usize = 128;
const MAX_IMAGE_LEN: usize = 1024;

/// Why a run request is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunRequestError {
    #[error(
        "id must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    Id,
    #[error("image must be 1 to 1024 characters without spaces, not starting with '-'")]
    Image,
    #[error(
        "command may have at most {MAX_RUN_ARGS} arguments of at most {MAX_RUN_ARG_LEN} bytes, without NUL"
    )]
    Command,
    #[error("env may have at most {MAX_RUN_ENV} entries")]
    EnvCount,
    #[error("env.{0}: the name must be letters, digits and '_', not starting with a digit")]
    EnvName(String),
    #[error(
        "env.{0}: the name steers the docker CLI that starts the container (DOCKER_*, PATH, HOME); set it in the image instead"
    )]
    EnvReserved(String),
    #[error(
        "env.{0}: the value must be at most {MAX_RUN_ARG_LEN} bytes, without NUL or line breaks"
    )]
    EnvValue(String),
    #[error("timeout_seconds must be 1 to {MAX_RUN_TIMEOUT_SECONDS}, not {0}")]
    Timeout(u64),
}

/// Checks a run request. The env's values reach `docker run` through an env file (one line
/// each, so no line breaks), never its argv (where `ps` would show them); the names that
/// steer a docker CLI stay refused, so a container cannot be given them by mistake.
pub fn check_run_request(
    id: &str,
    image: &str,
    command: &[String],
    env: &BTreeMap<String, String>,
    timeout_seconds: Option<u64>,
) -> Result<(), RunRequestError> {
    let id_ok = !id.is_empty()
        && id.len() <= MAX_RUN_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !id_ok {
        return Err(RunRequestError::Id);
    }
    // A leading '-' would be read by `docker run` as an option, not an image.
    let image_ok = !image.is_empty()
        && image.len() <= MAX_IMAGE_LEN
        && !image.starts_with('-')
        && !image.chars().any(|c| c.is_whitespace() || c.is_control());
    if !image_ok {
        return Err(RunRequestError::Image);
    }
    if command.len() > MAX_RUN_ARGS
        || command
            .iter()
            .any(|a| a.len() > MAX_RUN_ARG_LEN || a.contains('\0'))
    {
        return Err(RunRequestError::Command);
    }
    if env.len() > MAX_RUN_ENV {
        return Err(RunRequestError::EnvCount);
    }
    for (name, value) in env {
        let name_ok = !name.is_empty()
            && name.len() <= MAX_RUN_ENV_NAME_LEN
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return Err(RunRequestError::EnvName(clip(name)));
        }
        if name.starts_with("DOCKER_") || name == "PATH" || name == "HOME" {
            return Err(RunRequestError::EnvReserved(name.clone()));
        }
        if value.len() > MAX_RUN_ARG_LEN || value.contains(['\0', '\n', '\r']) {
            return Err(RunRequestError::EnvValue(name.clone()));
        }
    }
    match timeout_seconds {
        Some(t) if t == 0 || t > MAX_RUN_TIMEOUT_SECONDS => Err(RunRequestError::Timeout(t)),
        _ => Ok(()),
    }
}

fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The run id of a pipeline step: stable across the step's retries (so a resumed step finds
/// its run instead of starting a second), and free of the characters a step key may hold.
pub fn run_id(step_key: &str) -> String {
    let hash = Sha256::digest(step_key.as_bytes());
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("gp-{hex}")
}

/// The container's name on the agent's engine: what a cancel or a timeout kills.
pub fn container_name(run_id: &str) -> String {
    format!("gangplank-run-{run_id}")
}

/// The last `cap` bytes of a stream of text, and how many bytes were dropped before them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail {
    text: String,
    dropped: u64,
    cap: usize,
}

impl Tail {
    pub fn new(cap: usize) -> Tail {
        Tail {
            text: String::new(),
            dropped: 0,
            cap,
        }
    }

    /// Appends `more`, dropping the oldest text beyond the cap (at a character boundary).
    pub fn push(&mut self, more: &str) {
        self.text.push_str(more);
        if self.text.len() > self.cap {
            let cut = self.text.len() - self.cap;
            let cut = (cut..=self.text.len())
                .find(|i| self.text.is_char_boundary(*i))
                .unwrap_or(self.text.len());
            self.text.drain(..cut);
            self.dropped += cut as u64;
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Bytes dropped from the front.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn good_requests_pass() {
        let command = vec![
            "/bin/busybox".to_owned(),
            "echo".to_owned(),
            "hi".to_owned(),
        ];
        for (id, image, timeout) in [
            ("gp-0123abcd", "registry.example/app@sha256:abc", None),
            ("a", "busybox", Some(1)),
            (
                "run.1_x-y",
                "localhost:5000/a/b:1",
                Some(MAX_RUN_TIMEOUT_SECONDS),
            ),
        ] {
            assert_eq!(
                check_run_request(
                    id,
                    image,
                    &command,
                    &env(&[("A_1", "x y"), ("_b", "")]),
                    timeout
                ),
                Ok(()),
                "{id} {image}"
            );
        }
    }

    #[test]
    fn hostile_requests_are_refused_with_their_reason() {
        let none = BTreeMap::new();
        let ok = "busybox";
        for id in ["", "-x", ".x", "a/b", "a:b", "a b", &"a".repeat(129)] {
            assert_eq!(
                check_run_request(id, ok, &[], &none, None),
                Err(RunRequestError::Id),
                "{id:?}"
            );
        }
        for image in ["", "--privileged", "a b", "a\nb", &"a".repeat(1025)] {
            assert_eq!(
                check_run_request("r", image, &[], &none, None),
                Err(RunRequestError::Image),
                "{image:?}"
            );
        }
        let many = vec!["x".to_owned(); MAX_RUN_ARGS + 1];
        assert_eq!(
            check_run_request("r", ok, &many, &none, None),
            Err(RunRequestError::Command)
        );
        let nul = vec!["a\0b".to_owned()];
        assert_eq!(
            check_run_request("r", ok, &nul, &none, None),
            Err(RunRequestError::Command)
        );
        let long = vec!["x".repeat(MAX_RUN_ARG_LEN + 1)];
        assert_eq!(
            check_run_request("r", ok, &long, &none, None),
            Err(RunRequestError::Command)
        );
        for name in ["1A", "A-B", "", "A=B"] {
            assert_eq!(
                check_run_request("r", ok, &[], &env(&[(name, "v")]), None),
                Err(RunRequestError::EnvName(name.to_owned()))
            );
        }
        for name in ["DOCKER_HOST", "PATH", "HOME"] {
            assert_eq!(
                check_run_request("r", ok, &[], &env(&[(name, "v")]), None),
                Err(RunRequestError::EnvReserved(name.to_owned()))
            );
        }
        for value in ["a\0", "a\nB=b", "a\r"] {
            assert_eq!(
                check_run_request("r", ok, &[], &env(&[("A", value)]), None),
                Err(RunRequestError::EnvValue("A".to_owned()))
            );
        }
        let crowd: BTreeMap<String, String> = (0..=MAX_RUN_ENV)
            .map(|i| (format!("V{i}"), String::new()))
            .collect();
        assert_eq!(
            check_run_request("r", ok, &[], &crowd, None),
            Err(RunRequestError::EnvCount)
        );
        for t in [0, MAX_RUN_TIMEOUT_SECONDS + 1] {
            assert_eq!(
                check_run_request("r", ok, &[], &none, Some(t)),
                Err(RunRequestError::Timeout(t))
            );
        }
    }

    #[test]
    fn run_ids_are_stable_valid_and_distinct_per_step() {
        let a = run_id("run-1/job/0");
        assert_eq!(a, run_id("run-1/job/0"));
        assert_ne!(a, run_id("run-1/job/1"));
        assert_eq!(a.len(), 3 + 32);
        assert_eq!(
            check_run_request(&a, "busybox", &[], &BTreeMap::new(), None),
            Ok(())
        );
        assert_eq!(container_name("gp-1"), "gangplank-run-gp-1");
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_at_a_character_boundary() {
        let mut tail = Tail::new(4);
        tail.push("ab");
        assert_eq!((tail.text(), tail.dropped()), ("ab", 0));
        tail.push("cdef");
        assert_eq!((tail.text(), tail.dropped()), ("cdef", 2));
        tail.push("xé");
        assert_eq!((tail.text(), tail.dropped()), ("fxé", 5));
        // "é" is two bytes: a cut inside it drops the whole character.
        let mut cut = Tail::new(2);
        cut.push("aéb");
        assert_eq!((cut.text(), cut.dropped()), ("b", 3));
        let mut none = Tail::new(0);
        none.push("abc");
        assert_eq!((none.text(), none.dropped()), ("", 3));
    }
}
