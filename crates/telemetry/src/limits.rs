//! What one agent may make the server do. The size of a batch is bounded by
//! its document ([`crate::batch`]); these bound what an agent does with
//! batches: how many it sends, how many series it keeps, how many alerts a
//! batch opens, how long a batch may hold a database connection.
//!
//! The [`Gate`] counts each agent's batches in this process: one at a time
//! per agent, and at most `batches_per_minute` (a token bucket: a burst of
//! that many, refilled evenly). Behind several gateways an agent's rate is
//! bounded per gateway.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anchor_domain::AgentId;

/// Per-agent limits (the settings `agent_batches_per_minute`,
/// `agent_max_series` and `agent_max_alerts_per_batch`), and the time
/// bounds of ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Batches an agent may send per minute: more are answered 429 with
    /// `Retry-After`.
    pub batches_per_minute: u32,
    /// Series (a metric's name and labels, or a check's name) an agent may
    /// have. The samples and results of a new series beyond it are not
    /// stored, and the acknowledgement says so; series silent for 30 days
    /// are forgotten.
    pub max_series: u32,
    /// Alerts one batch may open or re-open: a condition beyond it keeps its
    /// clock and opens with a later batch.
    pub max_alerts_per_batch: u32,
    /// Longest statement or lock wait of an ingest unit of work.
    pub statement_timeout: Duration,
    /// Longest ingest unit of work, from its first statement to its commit.
    pub ingest_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batches_per_minute: 60,
            max_series: 1000,
            max_alerts_per_batch: 10,
            statement_timeout: Duration::from_secs(5),
            ingest_timeout: Duration::from_secs(10),
        }
    }
}

/// Why an agent's batch is not taken now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another batch of the agent is being taken.
    Busy,
    /// Over `batches_per_minute`.
    RateLimited { retry_after: Duration },
}

impl Refusal {
    /// When to try again (whole seconds, at least one).
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::Busy => Duration::from_secs(1),
            Self::RateLimited { retry_after } => *retry_after,
        }
    }
}

/// Admits each agent's batches: one at a time, at most `per_minute`.
#[derive(Debug)]
pub struct Gate {
    per_minute: u32,
    agents: Mutex<Agents>,
}

#[derive(Debug, Default)]
struct Agents {
    buckets: HashMap<AgentId, Bucket>,
    /// Prune idle buckets when there are more than this.
    prune_above: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    busy: bool,
}

/// An admitted batch; the agent's next batch is admitted once it is dropped.
#[derive(Debug)]
pub struct Turn {
    gate: Arc<Gate>,
    agent: AgentId,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut agents = self.gate.agents.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = agents.buckets.get_mut(&self.agent) {
            bucket.busy = false;
        }
    }
}

const PRUNE_ABOVE: usize = 4096;

impl Gate {
    pub fn new(per_minute: u32) -> Arc<Self> {
        Arc::new(Self {
            per_minute: per_minute.max(1),
            agents: Mutex::new(Agents { buckets: HashMap::new(), prune_above: PRUNE_ABOVE }),
        })
    }

    /// Admits a batch of `agent` now, or says when to try again.
    pub fn admit(self: &Arc<Self>, agent: AgentId) -> Result<Turn, Refusal> {
        self.admit_at(agent, Instant::now())
    }

    fn admit_at(self: &Arc<Self>, agent: AgentId, now: Instant) -> Result<Turn, Refusal> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let refill = |bucket: &mut Bucket| {
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
            bucket.at = now.max(bucket.at);
        };
        let mut agents = self.agents.lock().unwrap_or_else(PoisonError::into_inner);
        if agents.buckets.len() > agents.prune_above {
            // Agents whose bucket is full again are as if never seen.
            agents.buckets.retain(|_, bucket| {
                refill(bucket);
                bucket.busy || bucket.tokens < capacity
            });
            agents.prune_above = (agents.buckets.len() * 2).max(PRUNE_ABOVE);
        }
        let bucket = agents.buckets.entry(agent).or_insert(Bucket { tokens: capacity, at: now, busy: false });
        refill(bucket);
        if bucket.busy {
            return Err(Refusal::Busy);
        }
        if bucket.tokens < 1.0 {
            let wait = ((1.0 - bucket.tokens) / per_second).ceil().max(1.0);
            return Err(Refusal::RateLimited { retry_after: Duration::from_secs(wait as u64) });
        }
        bucket.tokens -= 1.0;
        bucket.busy = true;
        Ok(Turn { gate: Arc::clone(self), agent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_sends_one_batch_at_a_time_and_at_most_its_rate() {
        let gate = Gate::new(3);
        let (a, b) = (AgentId::new(), AgentId::new());
        let start = Instant::now();
        let first = gate.admit_at(a, start).expect("admitted");
        assert_eq!(gate.admit_at(a, start).expect_err("one at a time"), Refusal::Busy);
        let other = gate.admit_at(b, start).expect("another agent is not held up");
        drop((first, other));
        drop(gate.admit_at(a, start).expect("second"));
        drop(gate.admit_at(a, start).expect("third"));
        // The burst is spent: one batch every 20 s from now on.
        let refused = gate.admit_at(a, start).expect_err("over the rate");
        assert_eq!(refused, Refusal::RateLimited { retry_after: Duration::from_secs(20) });
        let later = start + Duration::from_secs(15);
        assert_eq!(gate.admit_at(a, later).expect_err("not yet").retry_after(), Duration::from_secs(5));
        drop(gate.admit_at(a, start + Duration::from_secs(20)).expect("refilled"));
    }

    #[test]
    fn idle_agents_are_forgotten_when_many_are_known() {
        let gate = Gate::new(60);
        let start = Instant::now();
        for _ in 0..PRUNE_ABOVE {
            drop(gate.admit_at(AgentId::new(), start).expect("admitted"));
        }
        let held = gate.admit_at(AgentId::new(), start).expect("admitted");
        // A minute later every bucket but the busy one is full again.
        drop(gate.admit_at(AgentId::new(), start + Duration::from_secs(60)).expect("admitted"));
        assert_eq!(gate.agents.lock().expect("lock").buckets.len(), 2, "the busy one and the newest");
        drop(held);
    }
}
