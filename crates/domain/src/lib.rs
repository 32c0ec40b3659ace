//! Anchor's domain vocabulary, shared by every layer.
//!
//! Types here parse untrusted input into values that are valid by construction
//! (a [`WorkspaceSlug`] cannot hold an invalid slug), so later layers never
//! re-check them.

pub mod id;
pub mod role;
pub mod ticket;
pub mod workspace;

pub use id::{AgentId, EvidenceId, ExecutionId, IdError, TicketId, WebhookId};
pub use role::{Role, RoleError};
pub use ticket::{Priority, TicketStatus, TransitionError};
pub use workspace::{SlugError, WorkspaceName, WorkspaceSlug};
