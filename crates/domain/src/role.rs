//! Who someone is to the platform or to one workspace.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A role, held on the platform (`platform_admin`) or in one workspace (the
/// others). What each may do is decided by the permission table in
/// `anchor-auth`, not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the installation: creates workspaces, reads the access audit log.
    PlatformAdmin,
    /// MSP staff administering one client workspace; supervises its
    /// technicians (approves or rejects the time they log).
    MspAdmin,
    /// MSP staff working tickets, assets and alerts, and logging their time.
    Technician,
    /// MSP staff handling contracts, quotes and invoices.
    Finance,
    /// Read-only, including evidence.
    Auditor,
    /// The client company's own administrator (Portal).
    ClientAdmin,
    /// The client company's staff (Portal).
    ClientUser,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::PlatformAdmin,
        Role::MspAdmin,
        Role::Technician,
        Role::Finance,
        Role::Auditor,
        Role::ClientAdmin,
        Role::ClientUser,
    ];

    /// Roles a workspace membership can carry.
    pub const WORKSPACE: [Role; 6] =
        [Role::MspAdmin, Role::Technician, Role::Finance, Role::Auditor, Role::ClientAdmin, Role::ClientUser];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::MspAdmin => "msp_admin",
            Role::Technician => "technician",
            Role::Finance => "finance",
            Role::Auditor => "auditor",
            Role::ClientAdmin => "client_admin",
            Role::ClientUser => "client_user",
        }
    }

    /// The MSP's own staff in a workspace (not the client's people).
    pub fn is_staff(self) -> bool {
        matches!(self, Role::MspAdmin | Role::Technician | Role::Finance | Role::Auditor)
    }

    pub fn is_workspace_role(self) -> bool {
        self != Role::PlatformAdmin
    }

    pub fn parse(s: &str) -> Result<Self, RoleError> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| RoleError(s.to_owned()))
    }

    /// Parses a role a workspace membership may carry.
    pub fn parse_workspace_role(s: &str) -> Result<Self, RoleError> {
        Self::parse(s).ok().filter(|r| r.is_workspace_role()).ok_or_else(|| RoleError(s.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl crate::vocabulary::Text for Role {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.as_str())
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Self::parse(text).map_err(|e| e.to_string())
    }
}

crate::stored_as_text!(Role);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; workspace roles are msp_admin, technician, finance, auditor, client_admin, client_user")]
pub struct RoleError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
            assert_eq!(serde_json::to_value(role).expect("json"), role.as_str());
        }
        assert!(Role::parse_workspace_role("platform_admin").is_err());
        assert!(Role::parse("root").is_err());
    }
}
