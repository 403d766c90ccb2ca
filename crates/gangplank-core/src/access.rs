//! Who may do what: organization roles, application roles, and the one decision function.
//!
//! The table follows Humanitec's RBAC (reference §6) where it speaks; where it is silent the
//! choices are Gangplank's own and are documented in the README, which a test keeps equal to
//! [`render_table`].

use std::fmt;

mod users;

pub use users::{TargetMembership, TokenOp, TokenVerdict, may_manage_user, token_verdict};

/// A role a user holds in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgRole {
    /// Full access to everything in the organization.
    Administrator,
    /// Member rights, plus creating apps and managing users and their tokens.
    Manager,
    /// Access only to apps the user holds a role on.
    Member,
    /// Member rights, plus registering artefact versions (for CI service users).
    ArtefactContributor,
    /// Read-only access to everything in the organization.
    OrgViewer,
}

/// A role a user holds on one application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppRole {
    /// Read-only on the app.
    Viewer,
    /// Viewer rights, plus changing the app and creating, changing and deleting environments.
    Developer,
    /// Developer rights, plus deleting the app and managing who holds roles on it.
    Owner,
}

/// Something a request wants to do. Org-scoped actions ignore app roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read org-wide records: artefacts, artefact versions, env types, users, the app list.
    ReadOrg,
    /// Register an artefact version.
    CreateArtefactVersion,
    /// Archive or unarchive an artefact version.
    ArchiveArtefactVersion,
    /// Delete an artefact and all its versions.
    DeleteArtefact,
    /// Create an application.
    CreateApp,
    /// Create, change or delete environment types.
    ManageEnvTypes,
    /// Create service users, change org roles, remove users, manage other users' tokens; only
    /// for users whose role the caller could grant (see [`may_manage_user`]).
    ManageUsers,
    /// Read one application and its environments.
    ReadApp,
    /// Rename an application.
    UpdateApp,
    /// Create, rename or delete an application's environments.
    ManageEnvs,
    /// Delete an application.
    DeleteApp,
    /// Grant and revoke roles on an application.
    ManageAppUsers,
    /// Create and change deltas; deploy, roll back, and resume automation.
    Deploy,
    /// Create, change and delete automation rules.
    ManageRules,
    /// Create, change and delete webhooks; see and redeliver their deliveries.
    ManageWebhooks,
    /// Create, change and delete registries; read the credentials audit.
    ManageRegistries,
    /// Fetch a CI-enabled registry's credentials.
    FetchRegistryCreds,
    /// Create, change and delete inbound hooks; see their deliveries. Administrators only: a
    /// registry hook registers versions, which can deploy through automation.
    ManageInboundHooks,
    /// Create, change and delete build definitions. Administrators only: a build pushes with
    /// the org's registry credentials and registers the version it pushed.
    ManageBuilds,
}

impl Action {
    /// Every action, in the order the role table lists them.
    pub const ALL: [Action; 19] = [
        Action::ReadOrg,
        Action::CreateArtefactVersion,
        Action::ArchiveArtefactVersion,
        Action::DeleteArtefact,
        Action::CreateApp,
        Action::ManageEnvTypes,
        Action::ManageUsers,
        Action::ReadApp,
        Action::UpdateApp,
        Action::ManageEnvs,
        Action::DeleteApp,
        Action::ManageAppUsers,
        Action::Deploy,
        Action::ManageRules,
        Action::ManageWebhooks,
        Action::ManageRegistries,
        Action::FetchRegistryCreds,
        Action::ManageInboundHooks,
        Action::ManageBuilds,
    ];

    /// The lowest app role that permits this action, for app-scoped actions.
    fn min_app_role(self) -> Option<AppRole> {
        match self {
            Action::ReadApp => Some(AppRole::Viewer),
            Action::UpdateApp | Action::ManageEnvs | Action::Deploy | Action::ManageRules => {
                Some(AppRole::Developer)
            }
            Action::DeleteApp | Action::ManageAppUsers | Action::ManageWebhooks => {
                Some(AppRole::Owner)
            }
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Action::ReadOrg => "read artefacts, versions, env types, users",
            Action::CreateArtefactVersion => "register artefact versions",
            Action::ArchiveArtefactVersion => "archive artefact versions",
            Action::DeleteArtefact => "delete artefacts",
            Action::CreateApp => "create apps",
            Action::ManageEnvTypes => "create/change/delete env types",
            Action::ManageUsers => "manage users and their tokens",
            Action::ReadApp => "read an app and its envs",
            Action::UpdateApp => "rename an app",
            Action::ManageEnvs => "create/rename/delete envs",
            Action::DeleteApp => "delete an app",
            Action::ManageAppUsers => "grant roles on an app",
            Action::Deploy => "deltas, deploy, roll back, resume automation",
            Action::ManageRules => "manage automation rules",
            Action::ManageWebhooks => "manage webhooks and deliveries",
            Action::ManageRegistries => "manage registries",
            Action::FetchRegistryCreds => "fetch registry credentials (CI)",
            Action::ManageInboundHooks => "manage inbound hooks and their deliveries",
            Action::ManageBuilds => "manage build definitions",
        }
    }
}

impl OrgRole {
    /// Every organization role, most powerful first.
    pub const ALL: [OrgRole; 5] = [
        OrgRole::Administrator,
        OrgRole::Manager,
        OrgRole::Member,
        OrgRole::ArtefactContributor,
        OrgRole::OrgViewer,
    ];

    /// Parses the API spelling.
    pub fn parse(value: &str) -> Option<Self> {
        OrgRole::ALL.into_iter().find(|role| role.as_str() == value)
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Administrator => "administrator",
            OrgRole::Manager => "manager",
            OrgRole::Member => "member",
            OrgRole::ArtefactContributor => "artefactContributor",
            OrgRole::OrgViewer => "orgViewer",
        }
    }

    /// Whether a holder of this role sees every app of the organization without an app role.
    pub fn sees_all_apps(self) -> bool {
        matches!(self, OrgRole::Administrator | OrgRole::OrgViewer)
    }

    /// Whether a holder of this role may give `role` to another user. Only administrators
    /// create administrators, so a manager cannot raise anyone above themselves.
    pub fn may_grant(self, role: OrgRole) -> bool {
        match self {
            OrgRole::Administrator => true,
            OrgRole::Manager => role != OrgRole::Administrator,
            _ => false,
        }
    }
}

impl AppRole {
    /// Every application role, least powerful first.
    pub const ALL: [AppRole; 3] = [AppRole::Viewer, AppRole::Developer, AppRole::Owner];

    /// Parses the API spelling.
    pub fn parse(value: &str) -> Option<Self> {
        AppRole::ALL.into_iter().find(|role| role.as_str() == value)
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AppRole::Viewer => "viewer",
            AppRole::Developer => "developer",
            AppRole::Owner => "owner",
        }
    }
}

impl fmt::Display for OrgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for AppRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decides whether a user with `org_role`, and `app_role` on the app in question (if any), may
/// perform `action`.
pub fn is_allowed(org_role: OrgRole, app_role: Option<AppRole>, action: Action) -> bool {
    use Action::*;
    use OrgRole::*;
    if org_role == Administrator {
        return true;
    }
    if let Some(min_role) = action.min_app_role() {
        let read_all = org_role == OrgViewer && action == ReadApp;
        return read_all || app_role.is_some_and(|role| role >= min_role);
    }
    match action {
        ReadOrg => true,
        CreateArtefactVersion => org_role == ArtefactContributor,
        ArchiveArtefactVersion | CreateApp | ManageUsers => org_role == Manager,
        FetchRegistryCreds => matches!(org_role, Manager | ArtefactContributor),
        DeleteArtefact | ManageEnvTypes | ManageRegistries | ManageInboundHooks | ManageBuilds => {
            false
        }
        ReadApp | UpdateApp | ManageEnvs | DeleteApp | ManageAppUsers | Deploy | ManageRules
        | ManageWebhooks => false,
    }
}

/// Renders the role table as Markdown: one row per action, one column per org role and per app
/// role held by a `member`.
pub fn render_table() -> String {
    let mut out = String::from(
        "| action | administrator | manager | member | artefactContributor | orgViewer | app viewer | app developer | app owner |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for action in Action::ALL {
        let mut row = format!("| {} |", action.describe());
        let org_cells = OrgRole::ALL.map(|role| is_allowed(role, None, action));
        let app_cells = AppRole::ALL.map(|role| is_allowed(OrgRole::Member, Some(role), action));
        for allowed in org_cells.into_iter().chain(app_cells) {
            row.push_str(if allowed { " yes |" } else { " - |" });
        }
        out.push_str(&row);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
