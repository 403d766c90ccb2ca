//! The role table, checked as rendered text and against the README.

use super::{Action, AppRole, OrgRole, is_allowed, render_table};

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
