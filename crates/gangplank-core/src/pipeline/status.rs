//! The lifecycles of a pipeline run, its jobs, their steps, and approval requests: the wire
//! strings in one place (Humanitec confirms only `executing` and the approval enum; the rest are
//! Gangplank's choice, documented in docs/pipelines.md).

use std::fmt;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire (and stored) string.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the wire string.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// A run: `queued` until a worker starts it (or while its concurrency group is busy).
    RunStatus {
        Queued = "queued",
        Executing = "executing",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
);

wire_enum!(
    /// A job: `queued` until its `needs` are met; `skipped` when a needed job did not succeed
    /// or its `if` is false.
    JobStatus {
        Queued = "queued",
        Executing = "executing",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Skipped = "skipped",
    }
);

wire_enum!(
    /// A step: rows exist from the moment a step starts.
    StepStatus {
        Executing = "executing",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Skipped = "skipped",
    }
);

wire_enum!(
    /// An approval request: Humanitec's enum exactly. An expired request is `cancelled`, with
    /// the reason in its message.
    ApprovalStatus {
        Waiting = "waiting",
        Approved = "approved",
        Denied = "denied",
        Cancelled = "cancelled",
    }
);

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Executing)
    }
}

impl StepStatus {
    pub fn is_terminal(self) -> bool {
        self != StepStatus::Executing
    }
}

impl ApprovalStatus {
    pub fn is_terminal(self) -> bool {
        self != ApprovalStatus::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(*s));
        }
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(*s));
        }
        for s in StepStatus::ALL {
            assert_eq!(StepStatus::parse(s.as_str()), Some(*s));
        }
        for s in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(RunStatus::parse("in progress"), None);
    }

    #[test]
    fn only_the_final_states_are_terminal() {
        let terminal: Vec<_> = RunStatus::ALL.iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(
            terminal,
            [
                &RunStatus::Succeeded,
                &RunStatus::Failed,
                &RunStatus::Cancelled
            ]
        );
        assert!(!ApprovalStatus::Waiting.is_terminal());
        assert!(JobStatus::Skipped.is_terminal());
        assert!(!StepStatus::Executing.is_terminal());
    }
}
