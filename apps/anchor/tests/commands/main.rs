//! Commands end to end (api.md "Commands"): gateway -> outbox -> worker ->
//! AgentField (mock) -> agent node skill -> webhook -> gateway, against a
//! real PostgreSQL, and what happens when a part of that chain misbehaves.

mod billing;
mod browser;
mod callbacks;
mod cmdb;
mod console;
mod envelopes;
mod escalation;
mod evidence;
mod failures;
mod flow;
mod invoices;
mod kb;
mod mail;
mod pages;
mod platform;
mod portal;
mod queues;
mod runbooks;
mod secrets;
mod sites;
mod sla;
mod telemetry;
mod time_entries;
mod web_tenancy;
mod webhooks;

pub(crate) use platform::{Options, Platform, location};
