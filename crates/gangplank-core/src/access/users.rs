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
    /// Whether the caller owns every app of this organization on which the target holds a
    /// role (true when the target holds none): only then could the caller, if not an
    /// administrator, grant the target's app roles.
    pub caller_owns_target_apps: bool,
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
    /// Go ahead. A delete is still refused by the store when it would leave an organization
    /// without an administrator holding a usable token: it checks in the deleting
    /// transaction, so two concurrent deletes cannot both pass.
    Allowed,
    /// The caller shares no organization with the user: answer as if the user did not exist,
    /// so user ids cannot be probed from outside.
    Hidden,
    /// The caller sees the user but may not manage their tokens.
    Forbidden,
}

/// Decides a token request. A token acts with every role its user holds, org and app roles,
/// in every organization, so a caller other than the user must, in each of the user's
/// organizations, be an administrator, or be able to grant the user's org role and own every
/// app on which the user holds a role (app roles are granted by an administrator or the
/// app's owner). Only the user themself or an administrator therefore manages an
/// administrator's tokens. `op` does not change the answer today: reading, minting and
/// deleting another user's tokens all take the same right.
pub fn token_verdict(is_self: bool, target: &[TargetMembership], _op: TokenOp) -> TokenVerdict {
    if is_self {
        return TokenVerdict::Allowed;
    }
    if target.iter().all(|m| m.caller_role.is_none()) {
        return TokenVerdict::Hidden;
    }
    let manages_all = target.iter().all(|m| {
        m.caller_role.is_some_and(|caller| {
            caller == OrgRole::Administrator
                || (may_manage_user(caller, m.role) && m.caller_owns_target_apps)
        })
    });
    if manages_all {
        TokenVerdict::Allowed
    } else {
        TokenVerdict::Forbidden
    }
}
