//! Anchor's domain vocabulary, shared by every layer.
//!
//! Types here parse untrusted input into values that are valid by construction
//! (a [`WorkspaceSlug`] cannot hold an invalid slug), so later layers never
//! re-check them. Each is also a PostgreSQL `text` value, a JSON string and a
//! JSON Schema ([`vocabulary`]), so it crosses every boundary as itself.

pub mod asset;
pub mod client;
pub mod contract;
pub mod execution;
pub mod id;
pub mod invoice;
pub mod money;
pub mod role;
pub mod runbook;
pub mod telemetry;
pub mod ticket;
pub mod time_entry;
pub mod vocabulary;
pub mod workspace;

pub use asset::{AssetStatus, Day, FieldDef, FieldKind, RelationshipKind, SchemaKey, Serial};
pub use client::{Address, CountryCode, Email, Name, Phone, TimeZoneName};
pub use contract::{BillingCycle, ContractKind, ContractName, ContractState, UnitSource};
pub use execution::ExecutionStatus;
pub use id::{
    AgentId, AlertId, ArticleId, AssetId, BatchId, CalendarId, ChangeId, CommentId, ContactId, ContractId,
    EnrollmentTokenId, EvidenceId, ExecutionId, IdError, InvoiceId, MaintenanceWindowId, MessageId, NotificationId,
    PaymentId, PortalInviteId, QueueId, QuoteId, ReceiptId, RelationshipId, RuleId, RunbookId, RunbookRunId, SiteId,
    SlaPolicyId, TeamId, TicketId, TimeEntryId, ViewId, WebhookId,
};
pub use invoice::{
    InvoiceKind, InvoiceNote, InvoiceState, LineDescription, Party, PaymentKind, PaymentMethod, PaymentReference,
    PurchaseOrder, UnitCode, VatId,
};
pub use money::{Currency, TaxCategory};
pub use role::{Role, RoleError};
pub use telemetry::{AlertState, Comparison, RuleKind, Severity};
pub use ticket::{
    Awaiting, CommentVisibility, Priority, SlaState, Tag, TicketStatus, TicketText, TicketTitle, TransitionError,
};
pub use time_entry::{TimeEntryState, TimeNote, WorkMinutes, WorkType};
pub use vocabulary::{Text, TextError};
pub use workspace::{SlugError, WorkspaceName, WorkspaceSlug};
