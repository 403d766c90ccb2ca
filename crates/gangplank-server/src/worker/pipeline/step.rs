//! What every action executor receives and returns: the contract between the pipeline runner
//! and the actions. An executor is `async fn execute(ctx: &StepCtx<'_>, with: &Map) -> StepResult`;
//! `with` is the step's inputs with every expression already evaluated.
//!
//! Executors must be idempotent per step (`ctx.step_key()`): a worker that crashed mid-step
//! runs the same step again, and the second run must finish the first one's work, never double
//! it (promote-image journals its tag writes; deploy keys its deployment by the step).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Where a step runs and what it may use.
pub struct StepCtx<'a> {
    pub state: &'a AppState,
    pub org_id: &'a str,
    pub app_id: &'a str,
    pub pipeline_id: &'a str,
    pub run_id: &'a str,
    pub job_id: &'a str,
    pub step_index: u32,
    /// The user the run acts as (its creator, or the pipeline's `run-as`).
    pub run_as: &'a str,
    /// The run's frozen inputs (`image`, `digest`, … for an artefact trigger).
    pub inputs: &'a Value,
    /// Set when the run is cancelled or the worker loses its claim: stop at the next safe point.
    pub cancel: CancellationToken,
    /// Unix ms; when the step (or its run) times out.
    pub deadline: i64,
    /// Unix ms when this execution of the step began.
    pub now: i64,
    /// Whether the run was started by a trigger (artefact, deployment request) rather than by a
    /// person: automatic promotion respects a repository's hold after a rollback.
    pub automatic: bool,
}

impl StepCtx<'_> {
    /// A key unique to this step of this run, stable across retries: what makes an
    /// executor's side effects idempotent.
    pub fn step_key(&self) -> String {
        format!("{}/{}/{}", self.run_id, self.job_id, self.step_index)
    }
}

/// How a step's execution ended (for now).
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Done; `outputs` become `steps.<id>.outputs.*`, `related` the step's `related_entities`.
    Succeeded {
        outputs: Map<String, Value>,
        related: BTreeMap<String, String>,
        message: String,
    },
    /// The action said no (a deny, a failing check, exit code ≠ 0): a business failure.
    Failed { message: String },
    /// No answer could be had (unreachable, internal error): a technical failure.
    Errored { message: String },
    /// Not finished: run the step again at `recheck_at` (Unix ms) or when woken, e.g. an
    /// approval waiting for people or a deployment still running. `waiting_for` names the event
    /// (`approval(<id>)`, `deployment(<id>)`) for the run's and job's `waiting_for`.
    Waiting {
        recheck_at: i64,
        waiting_for: String,
        related: BTreeMap<String, String>,
    },
}

/// A line of a step's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Unix ms.
    pub at: i64,
    pub level: LogLevel,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// Humanitec's `level` strings.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

/// An execution's outcome and the log lines it wrote (appended to the step's log).
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub outcome: StepOutcome,
    pub logs: Vec<LogLine>,
}

impl StepResult {
    pub fn new(outcome: StepOutcome) -> StepResult {
        StepResult {
            outcome,
            logs: Vec::new(),
        }
    }

    pub fn log(mut self, at: i64, level: LogLevel, message: impl Into<String>) -> StepResult {
        self.logs.push(LogLine {
            at,
            level,
            message: message.into(),
        });
        self
    }
}
