//! The actions a step may `uses`: Humanitec's built-ins and Gangplank's own, parsed from the
//! forms Humanitec accepts (`actions/humanitec/log`, `…/log@v1`, `native://actions/humanitec/log@v1`).

use std::fmt;

/// Every action a step can run. An unknown `uses` is refused when the pipeline is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `actions/humanitec/approve`: wait for people to approve or deny.
    Approve,
    /// `actions/humanitec/log`: write a message to the step's log.
    Log,
    /// `actions/humanitec/fail`: fail the step with a message.
    Fail,
    /// `actions/humanitec/deploy`: deploy a set or the pinned image into an environment and
    /// wait for the outcome.
    Deploy,
    /// `actions/humanitec/wait-for-readiness`: wait until an environment runs what it should.
    WaitForReadiness,
    /// `actions/gangplank/promote-image`: copy an image by digest and version the destination.
    PromoteImage,
    /// `actions/gangplank/rollback-image`: move the live tag back to the previous version.
    RollbackImage,
    /// `actions/gangplank/http` (also accepted as `actions/humanitec/http`): one HTTP request
    /// with an expected answer, retries and a timeout.
    Http,
    /// `actions/gangplank/run`: a one-off container on a `gangplank agent`.
    Run,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::Approve,
        Action::Log,
        Action::Fail,
        Action::Deploy,
        Action::WaitForReadiness,
        Action::PromoteImage,
        Action::RollbackImage,
        Action::Http,
        Action::Run,
    ];

    /// The canonical `uses` string (without a version suffix).
    pub fn uses(self) -> &'static str {
        match self {
            Action::Approve => "actions/humanitec/approve",
            Action::Log => "actions/humanitec/log",
            Action::Fail => "actions/humanitec/fail",
            Action::Deploy => "actions/humanitec/deploy",
            Action::WaitForReadiness => "actions/humanitec/wait-for-readiness",
            Action::PromoteImage => "actions/gangplank/promote-image",
            Action::RollbackImage => "actions/gangplank/rollback-image",
            Action::Http => "actions/gangplank/http",
            Action::Run => "actions/gangplank/run",
        }
    }

    /// Parses a step's `uses`: an optional `native://` prefix, the action path, an optional
    /// `@v1` suffix. `None` for anything else.
    pub fn from_uses(uses: &str) -> Option<Action> {
        let path = uses.strip_prefix("native://").unwrap_or(uses);
        let path = match path.rsplit_once('@') {
            Some((path, "v1")) => path,
            Some(_) => return None,
            None => path,
        };
        if path == "actions/humanitec/http" {
            return Some(Action::Http);
        }
        Action::ALL.into_iter().find(|a| a.uses() == path)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uses())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_humanitec_accepts_parses() {
        for action in Action::ALL {
            let uses = action.uses();
            assert_eq!(Action::from_uses(uses), Some(action));
            assert_eq!(Action::from_uses(&format!("{uses}@v1")), Some(action));
            assert_eq!(
                Action::from_uses(&format!("native://{uses}@v1")),
                Some(action)
            );
        }
        assert_eq!(
            Action::from_uses("actions/humanitec/http@v1"),
            Some(Action::Http)
        );
    }

    #[test]
    fn unknown_actions_and_versions_are_refused() {
        for uses in [
            "actions/humanitec/nope",
            "actions/humanitec/log@v2",
            "log",
            "",
            "native://",
            "actions/gangplank/promote-image@",
        ] {
            assert_eq!(Action::from_uses(uses), None, "{uses}");
        }
    }
}
