//! Anchor's domain vocabulary, shared by every layer.
//!
//! Types here parse untrusted input into values that are valid by construction
//! (a [`WorkspaceSlug`] cannot hold an invalid slug), so later layers never
//! re-check them.

pub mod role;
pub mod workspace;

pub use role::{Role, RoleError};
pub use workspace::{SlugError, WorkspaceName, WorkspaceSlug};
