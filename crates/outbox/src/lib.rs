//! The durable outbox and the job processor.
//!
//! Producers write `platform.outbox_events` rows in the same transaction as
//! the state change that causes them ([`anchor_store::WorkspaceTx::enqueue`],
//! [`enqueue_platform`]). Workers deliver them at least once:
//!
//! 1. claim a batch with `FOR UPDATE SKIP LOCKED`, fair across workspaces
//!    (round robin over the workspaces with pending work, at most
//!    `per_workspace` rows of one workspace per batch), set a lease and
//!    **commit** before any slow call; the same statement marks the previous
//!    batch delivered, so a steady stream costs one round trip per batch;
//! 2. hand each event to the handler of its topic;
//! 3. mark it `delivered`, or back to `pending` with exponential backoff and
//!    jitter, or `failed` (the dead letter, replayable) after `max_attempts`
//!    or a permanent error;
//! 4. an expired lease (a worker that died) makes the row claimable again at
//!    once: the next claim takes it over (or dead-letters it when that was
//!    its last attempt).
//!
//! A claim changes only columns no index covers, so it is a heap-only (HOT)
//! update; the one index of the queue covers every unsettled event and only
//! settling takes an event out of it.
//!
//! Workers wake on `NOTIFY anchor_outbox` and poll as a fallback. On
//! shutdown a worker stops claiming, lets running handlers finish within a
//! grace period, and releases what it still holds. Effects become
//! exactly-once through idempotent handlers keyed by the event id.

mod dispatcher;
mod jobs;
pub mod topics;

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use anchor_store::Database;
use serde_json::Value;
use sqlx::PgConnection;

pub use dispatcher::{Dispatcher, DispatcherConfig, OutboxStats};
pub use jobs::{RecurringJob, register_jobs, run_due_jobs, run_recurring_jobs};

/// An event as a handler sees it.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: i64,
    pub workspace_id: Option<i64>,
    pub topic: String,
    pub payload: Value,
    /// 1 on the first delivery attempt.
    pub attempt: i32,
}

/// Why a handler did not deliver.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// Try again later (after `retry_after` when the far end said so).
    #[error("retryable: {reason}")]
    Retry { reason: String, retry_after: Option<Duration> },
    /// Will never succeed: straight to `failed`.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Not a failure: the far end is not ready yet (a service that is down,
    /// a job still running). Try again after `after`, exactly, without
    /// spending one of the event's attempts, so an outage of any length
    /// never sends work to the dead letters.
    #[error("postponed: {reason}")]
    Postpone { reason: String, after: Duration },
}

impl HandlerError {
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry { reason: reason.into(), retry_after: None }
    }

    pub fn postpone(reason: impl Into<String>, after: Duration) -> Self {
        Self::Postpone { reason: reason.into(), after }
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;
type HandlerFn = Arc<dyn Fn(OutboxEvent) -> HandlerFuture + Send + Sync>;

/// Topic -> handler.
#[derive(Clone, Default)]
pub struct Handlers {
    by_topic: HashMap<String, HandlerFn>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers").field("topics", &self.by_topic.keys().collect::<Vec<_>>()).finish()
    }
}

impl Handlers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the handler of `topic`.
    pub fn on<F, Fut>(mut self, topic: &str, handler: F) -> Self
    where
        F: Fn(OutboxEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.by_topic.insert(topic.to_owned(), Arc::new(move |event| Box::pin(handler(event))));
        self
    }

    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.by_topic.keys().cloned().collect();
        topics.sort();
        topics
    }

    fn get(&self, topic: &str) -> Option<&HandlerFn> {
        self.by_topic.get(topic)
    }
}

/// Writes an installation-level outbox event in the caller's transaction.
pub async fn enqueue_platform(conn: &mut PgConnection, topic: &str, payload: &Value) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO platform.outbox_events (topic, payload) VALUES ($1, $2) RETURNING id")
        .bind(topic)
        .bind(payload)
        .fetch_one(conn)
        .await
}

/// Returns dead letters to `pending` with a fresh attempt budget; `None`
/// replays every failed event. Returns how many.
pub async fn replay_failed(db: &Database, ids: Option<&[i64]>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE platform.outbox_events SET state = 'pending', attempts = 0, available_at = now(), last_error = NULL
          WHERE settled AND delivered_at IS NULL AND state = 'failed' AND ($1::bigint[] IS NULL OR id = ANY($1))",
    )
    .bind(ids.map(<[i64]>::to_vec))
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Drops delivered events older than `days` (kept that long for inspection).
pub async fn prune_delivered(db: &Database, days: i32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM platform.outbox_events WHERE state = 'delivered' AND delivered_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Delay before attempt `attempt + 1`: 1 s doubling to at most an hour, with
/// "equal jitter" (half fixed, half random) so retries spread out.
pub fn backoff(attempt: i32) -> Duration {
    use rand::Rng;
    let exponent = attempt.clamp(1, 13) as u32 - 1;
    let full = Duration::from_secs(1 << exponent).min(Duration::from_secs(3600));
    let half = full / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let full = Duration::from_secs(1 << (attempt.clamp(1, 13) - 1)).min(Duration::from_secs(3600));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(30) <= Duration::from_secs(3600));
    }
}
