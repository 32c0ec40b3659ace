//! The edge plane, server side.
//!
//! - [`enrollment`]: enrollment tokens (shown once, stored as SHA-256);
//! - [`identity`]: agent identities: the device key's public half, and the
//!   short-lived tokens an agent signs with it to authenticate each request
//!   (its workspace comes from its identity, never from the request);
//! - [`batch`]: the telemetry batch document, every part of it bounded while
//!   it is read, validated with the path of every bad field, and decoded
//!   from gzip or zstd with its output capped while it streams;
//! - [`limits`]: what one agent may make the server do (batches per minute,
//!   one at a time, series, alerts per batch, time in the database);
//! - [`ingest`]: one unit of work per batch, idempotent on (agent, sequence);
//! - [`alerts`]: rules evaluated in that unit of work; transitions published
//!   and routed to automation through the outbox.

pub mod alerts;
pub mod batch;
pub mod enrollment;
pub mod identity;
pub mod ingest;
pub mod limits;
