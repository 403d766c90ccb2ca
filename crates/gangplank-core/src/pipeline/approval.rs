//! The approval policy: who may approve or deny a request, how many distinct approvals settle
//! it, self-approval, and expiry. Humanitec's rule (the caller may deploy to `env_id`) is the
//! floor; a step's `with` adds `min_approvals`, `approvers`, `allow_self_approval` and
//! `expires_in_minutes` (promotion.md §5.6) or Gangplank's finer `expires_in_seconds`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use super::lifecycle::{ApprovalEvent, IllegalTransition};
use super::status::ApprovalStatus;

/// The most approvals one request may require, and the most named approvers.
pub const MAX_MIN_APPROVALS: u32 = 20;
pub const MAX_APPROVERS: usize = 100;

/// A request's policy, stored with it as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Distinct users whose approval settles the request (at least 1).
    pub min_approvals: u32,
    /// When not empty, only these may respond (besides Humanitec's deploy rule): ORed.
    #[serde(default)]
    pub approvers: Vec<Approver>,
    /// Whether the run's creator or the version's registrant may approve (default false).
    #[serde(default)]
    pub allow_self_approval: bool,
    /// Minutes after the request is created when it expires (`None`: the run's timeout).
    #[serde(default)]
    pub expires_in_minutes: Option<u32>,
    /// Seconds after the request is created when it expires: Gangplank's finer form of
    /// `expires_in_minutes` (the two are exclusive), for short gates and for tests.
    #[serde(default)]
    pub expires_in_seconds: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_approvals: 1,
            approvers: Vec::new(),
            allow_self_approval: false,
            expires_in_minutes: None,
            expires_in_seconds: None,
        }
    }
}

/// One entry of `approvers`: a user id, or an app role (`viewer`, `developer`, `owner`) held
/// by the responder on the run's app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approver {
    User(String),
    AppRole(String),
}

impl Policy {
    /// Reads the policy from an approve step's (rendered) `with`; unknown keys are the
    /// action's other inputs (`env_id`, `message`) and are ignored here.
    pub fn from_with(with: &Map<String, Value>) -> Result<Policy, String> {
        let mut policy = Policy::default();
        if let Some(v) = with.get("min_approvals") {
            let n = v
                .as_u64()
                .filter(|n| (1..=u64::from(MAX_MIN_APPROVALS)).contains(n))
                .ok_or_else(|| {
                    format!("min_approvals must be a whole number from 1 to {MAX_MIN_APPROVALS}")
                })?;
            policy.min_approvals = u32::try_from(n).unwrap_or(1);
        }
        if let Some(v) = with.get("allow_self_approval") {
            policy.allow_self_approval = v
                .as_bool()
                .ok_or("allow_self_approval must be true or false")?;
        }
        if let Some(v) = with.get("expires_in_minutes") {
            let n = v
                .as_u64()
                .filter(|n| (1..=525_600).contains(n))
                .ok_or("expires_in_minutes must be a whole number from 1 to 525600")?;
            policy.expires_in_minutes = u32::try_from(n).ok();
        }
        if let Some(v) = with.get("expires_in_seconds") {
            if policy.expires_in_minutes.is_some() {
                return Err("give expires_in_minutes or expires_in_seconds, not both".to_owned());
            }
            let n = v
                .as_u64()
                .filter(|n| (1..=31_536_000).contains(n))
                .ok_or("expires_in_seconds must be a whole number from 1 to 31536000")?;
            policy.expires_in_seconds = u32::try_from(n).ok();
        }
        if let Some(v) = with.get("approvers") {
            let list = v.as_array().ok_or("approvers must be a list")?;
            if list.len() > MAX_APPROVERS {
                return Err(format!(
                    "approvers may name at most {MAX_APPROVERS} entries"
                ));
            }
            for entry in list {
                let approver = match (
                    entry.get("user").and_then(Value::as_str),
                    entry
                        .get("app_role")
                        .or_else(|| entry.get("role"))
                        .and_then(Value::as_str),
                ) {
                    (Some(user), None) if !user.is_empty() => Approver::User(user.to_owned()),
                    (None, Some(role)) if matches!(role, "viewer" | "developer" | "owner") => {
                        Approver::AppRole(role.to_owned())
                    }
                    _ => {
                        return Err(
                            "each approver is {user: ID} or {app_role: viewer|developer|owner}"
                                .to_owned(),
                        );
                    }
                };
                policy.approvers.push(approver);
            }
        }
        Ok(policy)
    }

    /// When a request created at `created_at` expires (Unix ms): its own expiry
    /// (`expires_in_seconds` or `expires_in_minutes`), else `default_at` (the caller's reading
    /// of "the run timeout", promotion.md §5.6).
    pub fn expires_at(&self, created_at: i64, default_at: i64) -> i64 {
        let ms = match (self.expires_in_seconds, self.expires_in_minutes) {
            (Some(s), _) => i64::from(s) * 1_000,
            (None, Some(m)) => i64::from(m) * 60_000,
            (None, None) => return default_at,
        };
        created_at.saturating_add(ms)
    }
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    Approve,
    Deny,
}

impl Vote {
    /// The stored and wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Deny => "deny",
        }
    }

    pub fn parse(text: &str) -> Option<Vote> {
        match text {
            "approve" => Some(Vote::Approve),
            "deny" => Some(Vote::Deny),
            _ => None,
        }
    }
}

/// A recorded response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub user_id: String,
    pub vote: Vote,
}

/// What is known of the request when someone responds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub status: ApprovalStatus,
    pub policy: &'a Policy,
    /// Unix ms, 0 = never.
    pub expires_at: i64,
    /// The run's creator and the artefact version's registrant (empty when none): "self".
    pub creator: &'a str,
    pub registrant: &'a str,
    pub responses: &'a [Response],
}

/// Who responds, as the server's access check found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder<'a> {
    pub user_id: &'a str,
    /// Humanitec's rule: the caller may deploy to the request's environment.
    pub may_deploy: bool,
    /// The responder's role on the run's app (`viewer`, `developer`, `owner`), if any.
    pub app_role: Option<&'a str>,
}

/// Why a response is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RespondError {
    /// The request is no longer waiting (a 400 or 409).
    #[error(transparent)]
    NotWaiting(#[from] IllegalTransition),
    /// The request expired (it is cancelled by the runner at its next look).
    #[error("the approval request expired")]
    Expired,
    /// The responder may not decide it (a 403).
    #[error("{0}")]
    NotEligible(String),
    /// The user already responded (distinct approvers).
    #[error("user {0} already responded to this approval request")]
    AlreadyResponded(String),
}

/// The decision a response leads to: `Some(event)` settles the request, `None` records a vote
/// and keeps it waiting (more approvals needed).
pub fn respond(
    facts: &RequestFacts<'_>,
    responder: &Responder<'_>,
    vote: Vote,
    now: i64,
) -> Result<Option<ApprovalEvent>, RespondError> {
    let event = match vote {
        Vote::Approve => ApprovalEvent::Approve,
        Vote::Deny => ApprovalEvent::Deny,
    };
    facts.status.next(event)?;
    if facts.expires_at > 0 && now >= facts.expires_at {
        return Err(RespondError::Expired);
    }
    if !responder.may_deploy {
        return Err(RespondError::NotEligible(format!(
            "user {} may not deploy to the request's environment",
            responder.user_id
        )));
    }
    let policy = facts.policy;
    if !policy.approvers.is_empty()
        && !policy.approvers.iter().any(|a| match a {
            Approver::User(id) => id == responder.user_id,
            Approver::AppRole(role) => responder.app_role == Some(role.as_str()),
        })
    {
        return Err(RespondError::NotEligible(format!(
            "user {} is not among the request's approvers",
            responder.user_id
        )));
    }
    let is_self = (!facts.creator.is_empty() && facts.creator == responder.user_id)
        || (!facts.registrant.is_empty() && facts.registrant == responder.user_id);
    if vote == Vote::Approve && is_self && !policy.allow_self_approval {
        return Err(RespondError::NotEligible(format!(
            "user {} started this run or registered its version and may not approve it",
            responder.user_id
        )));
    }
    if facts
        .responses
        .iter()
        .any(|r| r.user_id == responder.user_id)
    {
        return Err(RespondError::AlreadyResponded(responder.user_id.to_owned()));
    }
    Ok(match vote {
        Vote::Deny => Some(ApprovalEvent::Deny),
        Vote::Approve => {
            let approvals = facts
                .responses
                .iter()
                .filter(|r| r.vote == Vote::Approve)
                .count()
                + 1;
            (approvals >= usize::try_from(policy.min_approvals).unwrap_or(usize::MAX))
                .then_some(ApprovalEvent::Approve)
        }
    })
}

/// Whether a waiting request has expired at `now`.
pub fn is_expired(status: ApprovalStatus, expires_at: i64, now: i64) -> bool {
    status == ApprovalStatus::Waiting && expires_at > 0 && now >= expires_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts<'a>(policy: &'a Policy, responses: &'a [Response]) -> RequestFacts<'a> {
        RequestFacts {
            status: ApprovalStatus::Waiting,
            policy,
            expires_at: 1_000,
            creator: "alice",
            registrant: "ci-bot",
            responses,
        }
    }

    fn deployer(user_id: &str) -> Responder<'_> {
        Responder {
            user_id,
            may_deploy: true,
            app_role: Some("developer"),
        }
    }

    #[test]
    fn one_eligible_approval_settles_the_default_policy() {
        let policy = Policy::default();
        let got = respond(&facts(&policy, &[]), &deployer("bob"), Vote::Approve, 10);
        assert_eq!(got, Ok(Some(ApprovalEvent::Approve)));
    }

    #[test]
    fn min_approvals_counts_distinct_users() {
        let policy = Policy {
            min_approvals: 2,
            ..Policy::default()
        };
        assert_eq!(
            respond(&facts(&policy, &[]), &deployer("bob"), Vote::Approve, 10),
            Ok(None)
        );
        let one = [Response {
            user_id: "bob".into(),
            vote: Vote::Approve,
        }];
        assert_eq!(
            respond(&facts(&policy, &one), &deployer("bob"), Vote::Approve, 10),
            Err(RespondError::AlreadyResponded("bob".into()))
        );
        assert_eq!(
            respond(&facts(&policy, &one), &deployer("carol"), Vote::Approve, 10),
            Ok(Some(ApprovalEvent::Approve))
        );
    }

    #[test]
    fn one_deny_denies() {
        let policy = Policy {
            min_approvals: 3,
            ..Policy::default()
        };
        let one = [Response {
            user_id: "bob".into(),
            vote: Vote::Approve,
        }];
        assert_eq!(
            respond(&facts(&policy, &one), &deployer("carol"), Vote::Deny, 10),
            Ok(Some(ApprovalEvent::Deny))
        );
    }

    #[test]
    fn self_approval_is_refused_by_default_but_self_deny_is_not() {
        let policy = Policy::default();
        for who in ["alice", "ci-bot"] {
            assert!(matches!(
                respond(&facts(&policy, &[]), &deployer(who), Vote::Approve, 10),
                Err(RespondError::NotEligible(_))
            ));
        }
        assert_eq!(
            respond(&facts(&policy, &[]), &deployer("alice"), Vote::Deny, 10),
            Ok(Some(ApprovalEvent::Deny))
        );
        let allowed = Policy {
            allow_self_approval: true,
            ..Policy::default()
        };
        assert_eq!(
            respond(&facts(&allowed, &[]), &deployer("alice"), Vote::Approve, 10),
            Ok(Some(ApprovalEvent::Approve))
        );
    }

    #[test]
    fn eligibility_needs_deploy_and_the_approver_list() {
        let policy = Policy {
            approvers: vec![
                Approver::User("dora".into()),
                Approver::AppRole("owner".into()),
            ],
            ..Policy::default()
        };
        let viewer = Responder {
            user_id: "bob",
            may_deploy: false,
            app_role: Some("viewer"),
        };
        assert!(matches!(
            respond(&facts(&Policy::default(), &[]), &viewer, Vote::Approve, 10),
            Err(RespondError::NotEligible(_))
        ));
        assert!(matches!(
            respond(&facts(&policy, &[]), &deployer("bob"), Vote::Approve, 10),
            Err(RespondError::NotEligible(_))
        ));
        assert!(respond(&facts(&policy, &[]), &deployer("dora"), Vote::Approve, 10).is_ok());
        let owner = Responder {
            user_id: "erin",
            may_deploy: true,
            app_role: Some("owner"),
        };
        assert!(respond(&facts(&policy, &[]), &owner, Vote::Approve, 10).is_ok());
    }

    #[test]
    fn a_settled_or_expired_request_takes_no_response() {
        let policy = Policy::default();
        for status in [
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::Cancelled,
        ] {
            let f = RequestFacts {
                status,
                ..facts(&policy, &[])
            };
            assert!(matches!(
                respond(&f, &deployer("bob"), Vote::Approve, 10),
                Err(RespondError::NotWaiting(_))
            ));
        }
        assert_eq!(
            respond(&facts(&policy, &[]), &deployer("bob"), Vote::Approve, 1_000),
            Err(RespondError::Expired)
        );
        assert!(is_expired(ApprovalStatus::Waiting, 1_000, 1_000));
        assert!(!is_expired(ApprovalStatus::Waiting, 0, 1_000));
        assert!(!is_expired(ApprovalStatus::Denied, 1_000, 2_000));
    }

    #[test]
    fn the_policy_reads_from_with() {
        let with = json!({
            "env_id": "prod", "message": "ship it", "min_approvals": 2,
            "approvers": [{"user": "dora"}, {"app_role": "owner"}, {"role": "developer"}],
            "allow_self_approval": true, "expires_in_minutes": 30
        });
        let policy = Policy::from_with(with.as_object().unwrap()).unwrap();
        assert_eq!(policy.min_approvals, 2);
        assert_eq!(policy.approvers.len(), 3);
        assert!(policy.allow_self_approval);
        assert_eq!(policy.expires_at(1_000, 9_000), 1_000 + 30 * 60_000);
        assert_eq!(
            Policy::default().expires_at(1_000, 9_000),
            9_000,
            "no expiry of its own: the default (the run timeout)"
        );
        let seconds = Policy::from_with(json!({"expires_in_seconds": 3}).as_object().unwrap());
        assert_eq!(seconds.unwrap().expires_at(1_000, 9_000), 4_000);
        for bad in [
            json!({"expires_in_seconds": 0}),
            json!({"expires_in_seconds": 5, "expires_in_minutes": 1}),
            json!({"min_approvals": 0}),
            json!({"min_approvals": "2"}),
            json!({"approvers": [{"role": "admin"}]}),
            json!({"approvers": "dora"}),
            json!({"expires_in_minutes": -1}),
            json!({"allow_self_approval": "yes"}),
        ] {
            assert!(
                Policy::from_with(bad.as_object().unwrap()).is_err(),
                "{bad}"
            );
        }
        let stored = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&stored).unwrap(), policy);
    }
}
