//! Anchor's domain vocabulary, shared by every layer.
//!
//! Types here parse untrusted input into values that are valid by construction
//! (a [`WorkspaceSlug`] cannot hold an invalid slug), so later layers never
//! re-check them.

pub mod execution;
pub mod id;
pub mod role;
pub mod ticket;
pub mod workspace;

pub use execution::ExecutionStatus;
pub use id::{
    AgentId, AlertId, AssetId, BatchId, ChangeId, CommentId, EnrollmentTokenId, EvidenceId, ExecutionId, IdError,
    MessageId, ReceiptId, RuleId, TicketId, WebhookId,
};
pub use role::{Role, RoleError};
pub use ticket::{CommentVisibility, Priority, TextError, TicketStatus, TicketText, TicketTitle, TransitionError};
pub use workspace::{SlugError, WorkspaceName, WorkspaceSlug};
