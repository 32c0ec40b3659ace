//! Every outbox topic of the installation, in one place: a producer names
//! the topic it writes and a worker the topic it handles, without either
//! depending on the other's crate.

/// Hand an execution to AgentField (the command orchestrator).
pub const AGENTFIELD_EXECUTE: &str = "agentfield.execute";
/// Look at an execution AgentField has, in case its webhook never comes.
pub const AGENTFIELD_RECONCILE: &str = "agentfield.reconcile";
/// Issue the signed credential of a finished execution or a change.
pub const EVIDENCE_ISSUE: &str = "evidence.issue";
/// Publish a domain event on the event bus.
pub const EVENT_PUBLISH: &str = "event.publish";
/// Deliver one webhook message to one endpoint.
pub const WEBHOOK_DELIVER: &str = "webhook.deliver";
/// Let alert automation decide what an alert's transition means.
pub const ALERT_ROUTE: &str = "alert.route";
