//! Domain commands, end to end (api.md "Commands"):
//!
//! 0. a command is a type declared once ([`kit`]) and listed in the
//!    [`registry`]; an entity's commands live in its module ([`tickets`]);
//! 1. the API or a page [submits](submit) a command: the same authorization
//!    decision ([`authorize`]), idempotency key and pre-check for both; in one
//!    unit of work it records the execution (`queued`), signs a
//!    [command envelope](envelope) bound to (execution id, workspace, actor,
//!    command, input digest), and writes the hand-off outbox event;
//! 2. a worker [hands it off](orchestrator) to AgentField with a signed
//!    webhook, and schedules a reconciliation in case no webhook comes;
//! 3. the agent node verifies the envelope and its [skill](skill) performs
//!    the effect once per execution id (`command_effects`);
//! 4. the [callback](callback) (or the reconciler, polling) [finishes](finish)
//!    the execution and publishes `execution.succeeded` / `execution.failed`
//!    through the outbox.

pub mod alert_handling;
pub mod assignment;
pub mod authorize;
pub mod automation;

pub mod billing;
pub mod callback;
pub mod catalogue;
pub mod cmdb;
pub mod command;
pub mod contracts;
pub mod envelope;
pub mod finish;
pub mod invoices;
pub mod kb;
pub mod kit;
pub mod orchestrator;
pub mod payments;
pub mod portal;
pub mod quotes;
pub mod registry;
pub mod runbooks;
pub mod sites;
pub mod skill;
pub mod sla;
pub mod submit;
pub mod tickets;
pub mod time_entries;

mod accept;

pub use accept::{AcceptError, accept, accept_in};
pub use command::CommandInput;
pub use envelope::{CommandSigner, CommandVerifier, EnvelopeError};
pub use kit::{Command, DomainCommand};
pub use submit::{Desk, Receipt, SubmitError};

/// Outbox topic: hand an execution to AgentField.
pub const HANDOFF_TOPIC: &str = anchor_outbox::topics::AGENTFIELD_EXECUTE;
/// Outbox topic: look at an execution AgentField has, in case its webhook
/// never comes.
pub const RECONCILE_TOPIC: &str = anchor_outbox::topics::AGENTFIELD_RECONCILE;
