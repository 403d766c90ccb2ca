//! The role table, checked as rendered text and against the README, and the rules for
//! managing other users and their tokens.

use super::{
    Action, AppRole, OrgRole, TargetMembership, TokenOp, TokenVerdict, is_allowed, may_manage_user,
    render_table, token_verdict,
};

#[test]
fn role_table_is_as_documented() {
    let expected = "\
| action | administrator | manager | member | artefactContributor | orgViewer | app viewer | app developer | app owner |
|---|---|---|---|---|---|---|---|---|
| read artefacts, versions, env types, users | yes | yes | yes | yes | yes | yes | yes | yes |
| register artefact versions | yes | - | - | yes | - | - | - | - |
| archive artefact versions | yes | yes | - | - | - | - | - | - |
| delete artefacts | yes | - | - | - | - | - | - | - |
| create apps | yes | yes | - | - | - | - | - | - |
| create/change/delete env types | yes | - | - | - | - | - | - | - |
| manage users and their tokens | yes | yes | - | - | - | - | - | - |
| read an app and its envs | yes | - | - | - | yes | yes | yes | yes |
| rename an app | yes | - | - | - | - | - | yes | yes |
| create/rename/delete envs | yes | - | - | - | - | - | yes | yes |
| delete an app | yes | - | - | - | - | - | - | yes |
| grant roles on an app | yes | - | - | - | - | - | - | yes |
| deltas, deploy, roll back, resume automation | yes | - | - | - | - | - | yes | yes |
| manage automation rules | yes | - | - | - | - | - | yes | yes |
| manage webhooks and deliveries | yes | - | - | - | - | - | - | yes |
| manage registries | yes | - | - | - | - | - | - | - |
| fetch registry credentials (CI) | yes | yes | - | yes | - | - | - | - |
| manage inbound hooks and their deliveries | yes | - | - | - | - | - | - | - |
| manage build definitions | yes | - | - | - | - | - | - | - |
";
    assert_eq!(render_table(), expected);
}

#[test]
fn readme_carries_the_role_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the workspace root");
    assert!(
        readme.contains(&render_table()),
        "README.md's role table differs from access::render_table(); paste it in"
    );
}

#[test]
fn app_roles_add_to_any_org_role() {
    for org_role in OrgRole::ALL {
        assert!(
            is_allowed(org_role, Some(AppRole::Owner), Action::DeleteApp),
            "{org_role}"
        );
    }
}

#[test]
fn only_administrators_grant_administrator() {
    assert!(OrgRole::Administrator.may_grant(OrgRole::Administrator));
    assert!(!OrgRole::Manager.may_grant(OrgRole::Administrator));
    assert!(OrgRole::Manager.may_grant(OrgRole::Member));
    assert!(!OrgRole::Member.may_grant(OrgRole::Member));
    for role in OrgRole::ALL {
        assert_eq!(OrgRole::parse(role.as_str()), Some(role));
    }
}

#[test]
fn managing_a_user_takes_the_right_to_grant_their_role() {
    use OrgRole::*;
    // (caller, target, may manage)
    let table = [
        (Administrator, Administrator, true),
        (Administrator, Manager, true),
        (Administrator, OrgViewer, true),
        (Manager, Administrator, false),
        (Manager, Manager, true),
        (Manager, Member, true),
        (Manager, ArtefactContributor, true),
        (Member, Member, false),
        (ArtefactContributor, Member, false),
        (OrgViewer, OrgViewer, false),
    ];
    for (caller, target, expected) in table {
        assert_eq!(
            may_manage_user(caller, target),
            expected,
            "{caller} managing a {target}"
        );
    }
}

#[test]
fn token_verdicts() {
    use OrgRole::*;
    use TokenOp::*;
    use TokenVerdict::*;
    // A membership of the target: their role, the caller's role there, and whether the
    // caller owns every app there on which the target holds a role.
    let m = |role, caller_role| TargetMembership {
        role,
        caller_role,
        caller_owns_target_apps: true,
    };
    let apps = |role, caller_role, caller_owns_target_apps| TargetMembership {
        role,
        caller_role,
        caller_owns_target_apps,
    };
    let admin = Some(Administrator);
    let manager = Some(Manager);
    // (case, is_self, the target's memberships, op, verdict)
    #[rustfmt::skip]
    let table: Vec<(&str, bool, Vec<TargetMembership>, TokenOp, TokenVerdict)> = vec![
        ("self, member", true, vec![m(Member, Some(Member))], Create, Allowed),
        ("self, member, delete", true, vec![m(Member, Some(Member))], Delete, Allowed),
        ("self, owner of an app", true, vec![apps(Member, Some(Member), false)], Create, Allowed),
        ("manager mints a member's", false, vec![m(Member, manager)], Create, Allowed),
        ("manager lists a manager's", false, vec![m(Manager, manager)], Read, Allowed),
        ("manager mints an admin's", false, vec![m(Administrator, manager)], Create, Forbidden),
        ("manager lists an admin's", false, vec![m(Administrator, manager)], Read, Forbidden),
        ("manager deletes an admin's", false, vec![m(Administrator, manager)], Delete, Forbidden),
        ("manager; the user is admin elsewhere", false, vec![m(Member, manager), m(Administrator, None)], Create, Forbidden),
        ("manager in both; admin in one", false, vec![m(Member, manager), m(Administrator, manager)], Read, Forbidden),
        ("manager mints an app owner's", false, vec![apps(Member, manager, false)], Create, Forbidden),
        ("manager lists an app owner's", false, vec![apps(Member, manager, false)], Read, Forbidden),
        ("manager deletes an app owner's", false, vec![apps(Member, manager, false)], Delete, Forbidden),
        ("manager; app roles in the other org", false, vec![m(Member, manager), apps(Member, manager, false)], Create, Forbidden),
        ("manager owning the user's apps", false, vec![apps(Member, manager, true)], Create, Allowed),
        ("member owning the user's apps", false, vec![apps(Member, Some(Member), true)], Create, Forbidden),
        ("admin mints an app owner's", false, vec![apps(Member, admin, false)], Create, Allowed),
        ("admin mints a manager's", false, vec![m(Manager, admin)], Create, Allowed),
        ("admin deletes another admin's", false, vec![m(Administrator, admin)], Delete, Allowed),
        ("admin; the user is also in an org the admin is not", false, vec![m(Member, admin), m(Member, None)], Create, Forbidden),
        ("member reads a member's", false, vec![m(Member, Some(Member))], Read, Forbidden),
        ("viewer reads a member's", false, vec![m(Member, Some(OrgViewer))], Read, Forbidden),
        ("no shared org", false, vec![m(Member, None)], Read, Hidden),
        ("no shared org, an admin", false, vec![m(Administrator, None)], Delete, Hidden),
        ("a user in no org", false, vec![], Read, Hidden),
        ("an admin deletes their own", true, vec![m(Administrator, admin)], Delete, Allowed),
    ];
    for (case, is_self, target, op, expected) in table {
        assert_eq!(token_verdict(is_self, &target, op), expected, "{case}");
    }
}
