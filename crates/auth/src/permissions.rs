//! Roles mapped to named permissions: one table, the only place this is
//! decided. Handlers name the permission they need (see the gateway's
//! extractors); `docs/permissions.md` is generated from this table.

use anchor_domain::Role;

/// Something a caller may be allowed to do. Workspace permissions apply to one
/// workspace and are granted by membership; platform permissions apply to the
/// installation and are granted by platform roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    // Platform
    WorkspacesCreate,
    WorkspacesListAll,
    AuditRead,
    TeamsManage,
    // Workspace
    WorkspaceRead,
    MembersRead,
    MembersManage,
    SettingsManage,
    ClientsRead,
    ClientsWrite,
    TicketsRead,
    TicketsWrite,
    /// Approve or reject time entries others submitted.
    TimeApprove,
    AssetsRead,
    AssetsWrite,
    AlertsRead,
    AlertsManage,
    ExecutionsRead,
    /// Deal with operations' failures: replay or discard failed outbox
    /// events and jobs, retry or dismiss failed executions.
    OpsManage,
    EvidenceRead,
    WebhooksManage,
    EnrollmentManage,
    BillingRead,
    BillingWrite,
    KnowledgeRead,
    KnowledgeWrite,
    /// Read and write one's own tickets in the client portal.
    PortalTicketsRead,
    PortalTicketsWrite,
    /// In the portal, every ticket of one's company, not only one's own.
    PortalTicketsCompany,
    /// In the portal, the company's quotes, and deciding on them.
    PortalQuotesRead,
    PortalQuotesDecide,
    /// In the portal, the company's invoices and credit notes, with their PDFs.
    PortalInvoicesRead,
    PortalUsersManage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Platform,
    Workspace,
}

impl Permission {
    pub const ALL: [Permission; 33] = [
        Permission::WorkspacesCreate,
        Permission::WorkspacesListAll,
        Permission::AuditRead,
        Permission::TeamsManage,
        Permission::WorkspaceRead,
        Permission::MembersRead,
        Permission::MembersManage,
        Permission::SettingsManage,
        Permission::ClientsRead,
        Permission::ClientsWrite,
        Permission::TicketsRead,
        Permission::TicketsWrite,
        Permission::TimeApprove,
        Permission::AssetsRead,
        Permission::AssetsWrite,
        Permission::AlertsRead,
        Permission::AlertsManage,
        Permission::ExecutionsRead,
        Permission::OpsManage,
        Permission::EvidenceRead,
        Permission::WebhooksManage,
        Permission::EnrollmentManage,
        Permission::BillingRead,
        Permission::BillingWrite,
        Permission::KnowledgeRead,
        Permission::KnowledgeWrite,
        Permission::PortalTicketsRead,
        Permission::PortalTicketsWrite,
        Permission::PortalTicketsCompany,
        Permission::PortalQuotesRead,
        Permission::PortalQuotesDecide,
        Permission::PortalInvoicesRead,
        Permission::PortalUsersManage,
    ];

    /// The permission's name, as in logs, problems and the docs.
    pub fn name(self) -> &'static str {
        use Permission as P;
        match self {
            P::WorkspacesCreate => "workspaces.create",
            P::WorkspacesListAll => "workspaces.list_all",
            P::AuditRead => "audit.read",
            P::TeamsManage => "teams.manage",
            P::WorkspaceRead => "workspace.read",
            P::MembersRead => "members.read",
            P::MembersManage => "members.manage",
            P::SettingsManage => "settings.manage",
            P::ClientsRead => "clients.read",
            P::ClientsWrite => "clients.write",
            P::TicketsRead => "tickets.read",
            P::TicketsWrite => "tickets.write",
            P::TimeApprove => "time.approve",
            P::AssetsRead => "assets.read",
            P::AssetsWrite => "assets.write",
            P::AlertsRead => "alerts.read",
            P::AlertsManage => "alerts.manage",
            P::ExecutionsRead => "executions.read",
            P::OpsManage => "ops.manage",
            P::EvidenceRead => "evidence.read",
            P::WebhooksManage => "webhooks.manage",
            P::EnrollmentManage => "enrollment.manage",
            P::BillingRead => "billing.read",
            P::BillingWrite => "billing.write",
            P::KnowledgeRead => "knowledge.read",
            P::KnowledgeWrite => "knowledge.write",
            P::PortalTicketsRead => "portal.tickets.read",
            P::PortalTicketsWrite => "portal.tickets.write",
            P::PortalTicketsCompany => "portal.tickets.company",
            P::PortalQuotesRead => "portal.quotes.read",
            P::PortalQuotesDecide => "portal.quotes.decide",
            P::PortalInvoicesRead => "portal.invoices.read",
            P::PortalUsersManage => "portal.users.manage",
        }
    }

    /// The permission named `name` (see [`Permission::name`]).
    pub fn from_name(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn scope(self) -> Scope {
        match self {
            Permission::WorkspacesCreate
            | Permission::WorkspacesListAll
            | Permission::AuditRead
            | Permission::TeamsManage => Scope::Platform,
            _ => Scope::Workspace,
        }
    }
}

/// The table. A permission a role does not list here, it does not have.
const GRANTS: &[(Role, &[Permission])] = {
    use Permission as P;
    &[
        (Role::PlatformAdmin, &[P::WorkspacesCreate, P::WorkspacesListAll, P::AuditRead, P::TeamsManage]),
        (
            Role::MspAdmin,
            &[
                P::WorkspaceRead,
                P::MembersRead,
                P::MembersManage,
                P::SettingsManage,
                P::ClientsRead,
                P::ClientsWrite,
                P::TicketsRead,
                P::TicketsWrite,
                P::TimeApprove,
                P::AssetsRead,
                P::AssetsWrite,
                P::AlertsRead,
                P::AlertsManage,
                P::ExecutionsRead,
                P::OpsManage,
                P::EvidenceRead,
                P::WebhooksManage,
                P::EnrollmentManage,
                P::BillingRead,
                P::BillingWrite,
                P::KnowledgeRead,
                P::KnowledgeWrite,
            ],
        ),
        (
            Role::Technician,
            &[
                P::WorkspaceRead,
                P::MembersRead,
                P::ClientsRead,
                P::ClientsWrite,
                P::TicketsRead,
                P::TicketsWrite,
                P::AssetsRead,
                P::AssetsWrite,
                P::AlertsRead,
                P::AlertsManage,
                P::ExecutionsRead,
                P::OpsManage,
                P::KnowledgeRead,
                P::KnowledgeWrite,
            ],
        ),
        (
            Role::Finance,
            &[
                P::WorkspaceRead,
                P::MembersRead,
                P::ClientsRead,
                P::ClientsWrite,
                P::TicketsRead,
                P::AssetsRead,
                P::BillingRead,
                P::BillingWrite,
                P::KnowledgeRead,
            ],
        ),
        (
            Role::Auditor,
            &[
                P::WorkspaceRead,
                P::MembersRead,
                P::ClientsRead,
                P::TicketsRead,
                P::AssetsRead,
                P::AlertsRead,
                P::ExecutionsRead,
                P::EvidenceRead,
                P::BillingRead,
                P::KnowledgeRead,
            ],
        ),
        (
            Role::ClientAdmin,
            &[
                P::WorkspaceRead,
                P::PortalTicketsRead,
                P::PortalTicketsWrite,
                P::PortalTicketsCompany,
                P::PortalQuotesRead,
                P::PortalQuotesDecide,
                P::PortalInvoicesRead,
                P::PortalUsersManage,
                P::KnowledgeRead,
            ],
        ),
        (Role::ClientUser, &[P::WorkspaceRead, P::PortalTicketsRead, P::PortalTicketsWrite, P::KnowledgeRead]),
    ]
};

/// Whether `role` grants `permission`.
pub fn grants(role: Role, permission: Permission) -> bool {
    GRANTS.iter().any(|(r, perms)| *r == role && perms.contains(&permission))
}

/// The first of `roles` (most powerful first) that grants `permission`.
pub fn granting(roles: &[Role], permission: Permission) -> Option<Role> {
    roles.iter().copied().find(|role| grants(*role, permission))
}

/// The roles that grant `permission`.
pub fn roles_granting(permission: Permission) -> impl Iterator<Item = Role> {
    GRANTS.iter().filter(move |(_, perms)| perms.contains(&permission)).map(|(role, _)| *role)
}

/// The permission matrix as a Markdown table (for `docs/permissions.md`).
pub fn matrix_markdown() -> String {
    let mut out = String::from(
        "# Permissions\n\nGenerated from `crates/auth/src/permissions.rs` by its tests; do not edit by hand.\n\
         Platform permissions come from platform roles; workspace permissions from a membership of that workspace or a team granted a role in it (every role held there counts).\n\n",
    );
    out.push_str("| Permission | Scope |");
    for role in Role::ALL {
        out.push_str(&format!(" {} |", role.as_str()));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(Role::ALL.len()));
    out.push('\n');
    for permission in Permission::ALL {
        let scope = match permission.scope() {
            Scope::Platform => "platform",
            Scope::Workspace => "workspace",
        };
        out.push_str(&format!("| `{}` | {scope} |", permission.name()));
        for role in Role::ALL {
            out.push_str(if grants(role, permission) { " yes |" } else { " |" });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_roles_hold_only_platform_permissions_and_vice_versa() {
        for (role, perms) in GRANTS {
            for p in *perms {
                assert_eq!(role.is_workspace_role(), p.scope() == Scope::Workspace, "{role} / {}", p.name());
            }
        }
    }

    #[test]
    fn every_permission_is_listed_once_and_named_uniquely() {
        let mut names: Vec<&str> = Permission::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Permission::ALL.len());
    }

    #[test]
    fn auditors_only_read() {
        for p in Permission::ALL {
            if grants(Role::Auditor, p) {
                assert!(p.name().ends_with(".read"), "auditor must be read-only: {}", p.name());
            }
        }
        assert!(grants(Role::Auditor, Permission::EvidenceRead));
    }

    #[test]
    fn client_roles_never_see_msp_internals() {
        for role in [Role::ClientAdmin, Role::ClientUser] {
            for p in
                [Permission::MembersRead, Permission::TicketsRead, Permission::EvidenceRead, Permission::BillingRead]
            {
                assert!(!grants(role, p), "{role} must not have {}", p.name());
            }
        }
    }

    #[test]
    fn time_is_approved_by_supervisors_not_by_who_logs_it() {
        let approvers: Vec<Role> = roles_granting(Permission::TimeApprove).collect();
        assert_eq!(approvers, [Role::MspAdmin]);
        assert!(grants(Role::Technician, Permission::TicketsWrite), "technicians log time on tickets");
    }

    /// `docs/permissions.md` is this table; regenerate with
    /// `ANCHOR_UPDATE_DOCS=1 cargo test -p anchor-auth`.
    #[test]
    fn the_documented_matrix_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/permissions.md");
        let generated = matrix_markdown();
        if std::env::var_os("ANCHOR_UPDATE_DOCS").is_some() {
            std::fs::write(path, &generated).expect("write docs/permissions.md");
        }
        let documented = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            documented, generated,
            "docs/permissions.md is stale: run ANCHOR_UPDATE_DOCS=1 cargo test -p anchor-auth"
        );
    }
}
