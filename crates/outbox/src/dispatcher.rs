//! The outbox dispatcher: claim, lease, deliver, settle.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use anchor_store::Database;
use futures_util::{FutureExt, StreamExt, stream};
use sqlx::postgres::PgListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{HandlerError, Handlers, OutboxEvent, backoff};

/// The longest pause between rounds after repeated failures.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// How a dispatcher works.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Names this worker in `locked_by` (host and process, typically).
    pub worker_id: String,
    /// Events claimed per round trip.
    pub batch_size: i64,
    /// At most this many events of one workspace per batch, so one noisy
    /// workspace cannot starve the others.
    pub per_workspace: i64,
    /// How long a claim holds; a worker that dies loses its claims after this.
    pub lease: Duration,
    /// Fallback polling when no notification arrives.
    pub poll_interval: Duration,
    /// Handlers running at once.
    pub concurrency: usize,
    /// On shutdown, how long running handlers may take before their events
    /// are released for another worker.
    pub shutdown_grace: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", std::process::id()),
            batch_size: 64,
            per_workspace: 16,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            concurrency: 16,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Counts by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxStats {
    pub pending: i64,
    pub processing: i64,
    pub delivered: i64,
    pub failed: i64,
}

impl OutboxStats {
    pub async fn read(db: &Database) -> Result<Self, sqlx::Error> {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'pending' OR (state = 'processing' AND locked_until < now())) AS pending,
                    count(*) FILTER (WHERE state = 'processing' AND locked_until >= now()) AS processing,
                    count(*) FILTER (WHERE state = 'delivered') AS delivered,
                    count(*) FILTER (WHERE state = 'failed') AS failed
               FROM platform.outbox_events",
        )
        .fetch_one(db.pool())
        .await
    }
}

/// An event as `platform.outbox_claim` hands it over.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: i64,
    workspace_id: Option<i64>,
    topic: String,
    payload: serde_json::Value,
    attempts: i32,
    /// Taken over from a worker whose lease ran out.
    expired: bool,
    /// Its lease ran out on its last attempt: it went to the dead letters.
    spent: bool,
}

/// Delivers outbox events to their topic's handler.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    db: Database,
    handlers: Handlers,
    config: DispatcherConfig,
    /// Delivered events not yet marked so: the next claim marks them in the
    /// same statement (one round trip per batch), or [`Dispatcher::flush`].
    delivered: Arc<Mutex<Vec<i64>>>,
    /// The workspace key (id, 0 for none) served last, for the round robin.
    last_served: Arc<std::sync::atomic::AtomicI64>,
}

impl Dispatcher {
    pub fn new(db: Database, handlers: Handlers, config: DispatcherConfig) -> Self {
        Self { db, handlers, config, delivered: Arc::default(), last_served: Arc::default() }
    }

    /// Marks delivered what was delivered since the last claim.
    pub async fn flush(&self) -> Result<(), sqlx::Error> {
        let ids = std::mem::take(&mut *self.delivered.lock().expect("not poisoned"));
        self.settle_delivered(&ids).await.inspect_err(|_| {
            // Not marked: kept for the next attempt (their leases cover us).
            self.delivered.lock().expect("not poisoned").extend(&ids);
        })
    }

    /// Runs until `shutdown`, then releases what it still holds. A database
    /// that goes away is waited for (with growing pauses), never a reason to
    /// stop delivering while the process lives on.
    ///
    /// Deliveries flow: whenever a handler finishes, its slot is filled by
    /// the next claim (which also marks what was delivered), so an event
    /// waits for a free slot, never for the slowest event claimed with it.
    /// The worker claims while claims come back full or a notification says
    /// there is more; when the queue is drained it waits for a notification
    /// or the poll interval.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), sqlx::Error> {
        tracing::info!(worker = %self.config.worker_id, topics = ?self.handlers.topics(), "outbox dispatcher started");
        let this = Arc::new(self.clone());
        let mut listener: Option<PgListener> = None;
        let mut running = JoinSet::new();
        let mut failures = 0u32;
        let mut paused_until: Option<tokio::time::Instant> = None;
        // There may be events to claim (at start, after a full claim, a
        // notification or a poll).
        let mut more = true;
        while !shutdown.is_cancelled() {
            while running.try_join_next().is_some() {}
            let paused = paused_until.is_some_and(|until| tokio::time::Instant::now() < until);
            let free = self.config.concurrency.saturating_sub(running.len());
            // Drained and idle: what was delivered is marked so, by a plain
            // update (a claim would look for work nobody announced).
            let settle = running.is_empty() && !self.delivered.lock().expect("not poisoned").is_empty();
            if !paused && listener.is_some() && !more && settle {
                match self.flush().await {
                    Ok(()) => continue,
                    // Kept for the next claim, after the wait below (their
                    // leases cover us).
                    Err(e) => tracing::warn!(error = %e, "cannot mark delivered outbox events yet"),
                }
            }
            if !paused && free > 0 && more {
                let claimed = match &listener {
                    Some(_) => self.claim(free.min(self.config.batch_size.max(1) as usize) as i64).await,
                    // Listen before claiming: whatever is written after the
                    // claim is heard.
                    None => match self.listen().await {
                        Ok(fresh) => {
                            listener = Some(fresh);
                            continue;
                        }
                        Err(e) => Err(e),
                    },
                };
                match claimed {
                    Ok(events) => {
                        failures = 0;
                        paused_until = None;
                        more = events.len() >= free.min(self.config.batch_size.max(1) as usize);
                        for event in events {
                            let this = Arc::clone(&this);
                            running.spawn(async move { this.deliver_and_settle(event).await });
                        }
                        continue;
                    }
                    Err(e) => {
                        failures += 1;
                        let pause = self.config.poll_interval.saturating_mul(1 << failures.min(5)).min(MAX_PAUSE);
                        tracing::error!(error = %e, failures, pause_ms = pause.as_millis() as u64, "outbox dispatcher round failed; retrying");
                        listener = None;
                        paused_until = Some(tokio::time::Instant::now() + pause);
                    }
                }
            }
            let wake = paused_until.unwrap_or_else(|| tokio::time::Instant::now() + self.config.poll_interval);
            tokio::select! {
                () = shutdown.cancelled() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                notification = async { listener.as_mut().expect("checked").recv().await }, if listener.is_some() => {
                    if let Err(e) = notification {
                        // The listener reconnects on the next recv; polling covers the gap.
                        tracing::warn!(error = %e, "outbox notifications interrupted");
                        tokio::select! {
                            () = shutdown.cancelled() => {}
                            () = tokio::time::sleep(self.config.poll_interval) => {}
                        }
                    }
                    more = true;
                }
                () = tokio::time::sleep_until(wake) => more = true,
            }
        }
        // What finishes within the grace is settled; the rest stays held by
        // this worker and is released below.
        let grace = tokio::time::sleep(self.config.shutdown_grace);
        tokio::pin!(grace);
        while !running.is_empty() {
            tokio::select! {
                _ = running.join_next() => {}
                () = &mut grace => {
                    tracing::warn!(unfinished = running.len(), "shutdown grace over; releasing unfinished outbox events");
                    running.abort_all();
                    while running.join_next().await.is_some() {}
                }
            }
        }
        self.flush().await?;
        let released = self.release_held().await?;
        tracing::info!(worker = %self.config.worker_id, released, "outbox dispatcher stopped");
        Ok(())
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(self.db.pool()).await?;
        listener.listen("anchor_outbox").await?;
        Ok(listener)
    }

    /// Delivers one event and settles it: a delivery is marked by the next
    /// claim (or [`Self::flush`]), a failure at once.
    async fn deliver_and_settle(&self, event: OutboxEvent) {
        let (id, attempt) = (event.id, event.attempt);
        let started = std::time::Instant::now();
        let topic = event.topic.clone();
        let result = self.deliver(event).await;
        metrics::histogram!("outbox_delivery_duration_seconds", "topic" => topic)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => self.delivered.lock().expect("not poisoned").push(id),
            Err(error) => {
                if let Err(e) = self.settle_failure(id, attempt, error).await {
                    tracing::error!(event = id, error = %e, "cannot record an outbox failure; its lease will return it");
                }
            }
        }
    }

    /// Claims one batch (marking the previous batch's deliveries in the same
    /// statement) and delivers it, all of it before it returns (tests and
    /// benchmarks step the dispatcher with this; [`Self::run`] does not wait
    /// for a batch). Returns how many events it handled; their deliveries
    /// are marked by the next call or [`Self::flush`].
    pub async fn run_batch(&self, shutdown: &CancellationToken) -> Result<usize, sqlx::Error> {
        let events = self.claim(self.config.batch_size).await?;
        let count = events.len();
        if count == 0 {
            return Ok(0);
        }
        let mut work =
            stream::iter(events).map(|event| self.deliver_and_settle(event)).buffer_unordered(self.config.concurrency);
        let grace = async {
            shutdown.cancelled().await;
            tokio::time::sleep(self.config.shutdown_grace).await;
        };
        tokio::pin!(grace);
        // What finished before the grace ran out is settled; the rest stays
        // held by this worker and is released on the way out.
        let mut finished = 0;
        loop {
            tokio::select! {
                outcome = work.next() => match outcome {
                    Some(()) => finished += 1,
                    None => break,
                },
                () = &mut grace => {
                    tracing::warn!(unfinished = count - finished, "shutdown grace over; releasing unfinished outbox events");
                    break;
                }
            }
        }
        Ok(count)
    }

    /// Claims up to `limit` events.
    async fn claim(&self, limit: i64) -> Result<Vec<OutboxEvent>, sqlx::Error> {
        let topics = self.handlers.topics();
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let settled = std::mem::take(&mut *self.delivered.lock().expect("not poisoned"));
        // One statement, planned once (see platform.outbox_claim): marks the
        // previous batch delivered and claims the next, committed before any
        // delivery.
        let rows: Vec<Claimed> = sqlx::query_as(
            "SELECT id, workspace_id, topic, payload, attempts, expired, spent
               FROM platform.outbox_claim($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&self.config.worker_id)
        .bind(limit)
        .bind(self.config.per_workspace)
        .bind(&topics)
        .bind(self.config.lease.as_secs_f64())
        .bind(&settled)
        .bind(self.last_served.load(std::sync::atomic::Ordering::Relaxed))
        .fetch_all(self.db.pool())
        .await
        .inspect_err(|_| {
            // Not marked: keep them for the next attempt (their leases cover us).
            self.delivered.lock().expect("not poisoned").extend(&settled);
        })?;
        metrics::counter!("outbox_delivered_total").increment(settled.len() as u64);
        let mut events = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows {
            let event = OutboxEvent {
                id: row.id,
                workspace_id: row.workspace_id,
                topic: row.topic,
                payload: row.payload,
                attempt: row.attempts,
            };
            last = last.max(Some(event.workspace_id.unwrap_or(0)));
            if row.spent {
                metrics::counter!("outbox_failed_total").increment(1);
                tracing::warn!(event = event.id, topic = %event.topic, attempt = event.attempt,
                    "outbox event failed: its lease ran out on its last attempt; it waits in the dead letters");
                continue;
            }
            if row.expired {
                metrics::counter!("outbox_lease_expired_total").increment(1);
                tracing::warn!(event = event.id, topic = %event.topic, attempt = event.attempt,
                    "outbox event taken over after its lease expired: the worker holding it stopped");
            }
            events.push(event);
        }
        if let Some(last) = last {
            self.last_served.store(last, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(events)
    }

    /// Runs the handler, bounded by the lease, catching panics.
    async fn deliver(&self, event: OutboxEvent) -> Result<(), HandlerError> {
        let Some(handler) = self.handlers.get(&event.topic) else {
            return Err(HandlerError::Permanent(format!("no handler for topic {}", event.topic)));
        };
        let limit = self.config.lease.mul_f64(0.8);
        let span = tracing::info_span!("outbox_event", id = event.id, topic = %event.topic, attempt = event.attempt);
        let run = AssertUnwindSafe(tracing::Instrument::instrument(handler(event), span)).catch_unwind();
        match tokio::time::timeout(limit, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(_panic)) => Err(HandlerError::retry("handler panicked")),
            Err(_) => Err(HandlerError::retry(format!("handler took longer than {} s", limit.as_secs()))),
        }
    }

    /// Marks delivered what this worker still holds.
    async fn settle_delivered(&self, ids: &[i64]) -> Result<(), sqlx::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let done = sqlx::query(
            "UPDATE platform.outbox_events
                SET state = 'delivered', delivered_at = now(), locked_until = NULL, locked_by = NULL, last_error = NULL
              WHERE id = ANY($1) AND locked_by = $2 AND state = 'processing'",
        )
        .bind(ids)
        .bind(&self.config.worker_id)
        .execute(self.db.pool())
        .await?;
        metrics::counter!("outbox_delivered_total").increment(done.rows_affected());
        Ok(())
    }

    /// Back to pending after a delay, or to the dead letters.
    async fn settle_failure(&self, id: i64, attempt: i32, error: HandlerError) -> Result<(), sqlx::Error> {
        let worker = &self.config.worker_id;
        let (delay, permanent, spent) = match &error {
            // The far end's Retry-After wins when it asks for longer.
            HandlerError::Retry { retry_after, .. } => {
                (retry_after.unwrap_or_default().max(backoff(attempt)), false, true)
            }
            HandlerError::Permanent(_) => (Duration::ZERO, true, true),
            HandlerError::Postpone { after, .. } => (*after, false, false),
        };
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE platform.outbox_events
                SET state = CASE WHEN $4 OR ($6 AND attempts >= max_attempts) THEN 'failed' ELSE 'pending' END,
                    attempts = CASE WHEN $6 THEN attempts ELSE greatest(attempts - 1, 0) END,
                    available_at = now() + make_interval(secs => $3),
                    last_error = $5, locked_until = NULL, locked_by = NULL
              WHERE id = $1 AND locked_by = $2 AND state = 'processing'
             RETURNING state",
        )
        .bind(id)
        .bind(worker)
        .bind(delay.as_secs_f64())
        .bind(permanent)
        .bind(error.to_string())
        .bind(spent)
        .fetch_optional(self.db.pool())
        .await?;
        match state.as_deref() {
            Some("failed") => {
                metrics::counter!("outbox_failed_total").increment(1);
                tracing::warn!(event = id, attempt, error = %error, "outbox event failed; it waits in the dead letters");
            }
            Some(_) if spent => metrics::counter!("outbox_retried_total").increment(1),
            Some(_) => metrics::counter!("outbox_postponed_total").increment(1),
            None => {}
        }
        Ok(())
    }

    /// Releases what this worker still holds (graceful shutdown).
    pub async fn release_held(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE platform.outbox_events SET state = 'pending', locked_until = NULL, locked_by = NULL
              WHERE NOT settled AND state = 'processing' AND locked_by = $1",
        )
        .bind(&self.config.worker_id)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
