//! Who may manage another user: change or remove their organization role, and mint, list or
//! delete their tokens. One rule for all of it: nobody manages a user whose role they could not
//! grant, so no one obtains, through someone else's account, a role they could not give.

use super::{Action, OrgRole, is_allowed};

/// Whether a holder of `caller` may manage, in one organization, a user who holds (or is to
/// hold) `target` there: create them, change them from or to `target`, remove them.
pub fn may_manage_user(caller: OrgRole, target: OrgRole) -> bool {
    is_allowed(caller, None, Action::ManageUsers) && caller.may_grant(target)
}

/// One organization the target user belongs to, and how the caller stands in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetMembership {
    /// The target's role there.
    pub role: OrgRole,
    /// The caller's role there, if the caller is a member.
    pub caller_role: Option<OrgRole>,
    /// Whether the target is the organization's last administrator who can sign in: no other
    /// administrator there holds a usable (unexpired) token.
    pub last_administrator: bool,
}

/// What a request wants to do with a user's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOp {
    /// List the tokens or read one (metadata only).
    Read,
    /// Mint a token.
    Create,
    /// Revoke a token.
    Delete,
}

/// The answer to a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    /// Go ahead.
    Allowed,
    /// Go ahead with the delete, unless it leaves an organization without an administrator
    /// holding a usable token: the user is its last administrator who can sign in, and it
    /// would be locked out. The store checks this in the deleting transaction, so two
    /// concurrent deletes cannot both pass.
    AllowedKeepingOne,
    /// The caller shares no organization with the user: answer as if the user did not exist,
    /// so user ids cannot be probed from outside.
    Hidden,
    /// The caller sees the user but may not manage their tokens.
    Forbidden,
}

/// Decides a token request. A token acts with every role its user holds, in every
/// organization, so a caller other than the user must be a member of each of the user's
/// organizations and able to grant the user's role there. Only the user themself or an
/// administrator therefore manages an administrator's tokens. An organization keeps an
/// administrator who can sign in: nobody, the administrator themself included, deletes the
/// last usable token of its last such administrator (they create the next token first, then
/// delete the old one, or make another administrator).
pub fn token_verdict(is_self: bool, target: &[TargetMembership], op: TokenOp) -> TokenVerdict {
    if !is_self {
        if target.iter().all(|m| m.caller_role.is_none()) {
            return TokenVerdict::Hidden;
        }
        let manages_all = target.iter().all(|m| {
            m.caller_role
                .is_some_and(|caller| may_manage_user(caller, m.role))
        });
        if !manages_all {
            return TokenVerdict::Forbidden;
        }
    }
    if op == TokenOp::Delete && target.iter().any(|m| m.last_administrator) {
        TokenVerdict::AllowedKeepingOne
    } else {
        TokenVerdict::Allowed
    }
}
