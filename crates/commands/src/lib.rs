//! Domain commands, end to end (api.md "Commands"):
//!
//! 1. the gateway [`accept`]s a command: in one unit of work it records the
//!    execution (`queued`), signs a [command envelope](envelope) bound to
//!    (execution id, workspace, actor, command, input digest), and writes the
//!    hand-off outbox event;
//! 2. a worker [hands it off](orchestrator) to AgentField with a signed
//!    webhook, and schedules a reconciliation in case no webhook comes;
//! 3. the agent node verifies the envelope and its skill performs the effect
//!    once per execution id (`command_effects`);
//! 4. the [callback](callback) (or the reconciler, polling) [finishes](finish)
//!    the execution and publishes `execution.succeeded` / `execution.failed`
//!    through the outbox.

pub mod automation;
pub mod callback;
pub mod command;
pub mod envelope;
pub mod finish;
pub mod orchestrator;

mod accept;

pub use accept::{AcceptError, accept, accept_in};
pub use command::{Command, CommandInput};
pub use envelope::{CommandSigner, CommandVerifier, EnvelopeError};

/// Outbox topic: hand an execution to AgentField.
pub const HANDOFF_TOPIC: &str = "agentfield.execute";
/// Outbox topic: look at an execution AgentField has, in case its webhook
/// never comes.
pub const RECONCILE_TOPIC: &str = "agentfield.reconcile";
