//! Ingest: one unit of work per batch in the agent's workspace (from its
//! identity): the batch row (once per agent and sequence; a resent batch is
//! acknowledged with the original id and stores nothing again), the samples
//! and check results in bulk, the latest inventory on the asset, and what
//! the batch routed (alert transitions, each with its outbox events).
//!
//! Bounded per agent ([`Limits`]): each statement and lock wait of the unit
//! of work is bounded in time; a series the agent has not reported before
//! is registered only while it has fewer than `max_series` (the samples and
//! results of the others are not stored, and the acknowledgement says how
//! many); a batch opens at most `max_alerts_per_batch` alerts.

use std::collections::{HashMap, HashSet};

use anchor_domain::BatchId;
use anchor_store::{
    Database, StoreError,
    agents::{Agent, SeriesKey, SeriesKind},
};

use crate::{
    batch::{self, Batch},
    limits::Limits,
};

/// The acknowledgement of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub batch_id: BatchId,
    /// This sequence number had been accepted before.
    pub duplicate: bool,
    /// What the agent's series limit kept out of the batch, if anything.
    pub refused: Option<Refused>,
}

/// New series beyond the agent's `max_series`, and what of the batch was
/// theirs (not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub series: usize,
    pub samples: usize,
    pub check_results: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the agent's workspace no longer exists")]
    WorkspaceGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The distinct series of a batch, in order.
#[derive(Default)]
struct Series<'a> {
    keys: Vec<SeriesKey<'a>>,
    slots: HashMap<SeriesKey<'a>, usize>,
}

impl<'a> Series<'a> {
    /// The index of `key` among the batch's series.
    fn slot(&mut self, key: SeriesKey<'a>) -> usize {
        *self.slots.entry(key).or_insert_with(|| {
            self.keys.push(key);
            self.keys.len() - 1
        })
    }
}

/// The events of a batch as one JSON array's text.
fn events_json(batch: &Batch) -> String {
    let mut json = String::from("[");
    for (i, event) in batch.events.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(event.json());
    }
    json.push(']');
    json
}

pub async fn ingest(db: &Database, agent: &Agent, mut batch: Batch, limits: &Limits) -> Result<Ack, IngestError> {
    let workspace = db.workspace_by_id(agent.workspace_id).await?.ok_or(IngestError::WorkspaceGone)?;
    let mut tx = db.begin_workspace_within(&workspace, limits.statement_timeout).await?;
    // The batch's series, each once; which of them each item is of. The
    // batch is recorded and its series looked up in one round trip; only
    // new series take more.
    let (inserted, metric_series, check_series, refused_series) = {
        let mut keys = Series::default();
        let metric_series: Vec<usize> = batch
            .metrics
            .iter()
            .map(|m| {
                let labels = batch::labels_json(m).unwrap_or("{}");
                keys.slot(SeriesKey { kind: SeriesKind::Metric, name: &m.name, labels })
            })
            .collect();
        let check_series: Vec<usize> = batch
            .checks
            .iter()
            .map(|c| keys.slot(SeriesKey { kind: SeriesKind::Check, name: &c.name, labels: "{}" }))
            .collect();
        let inserted = tx
            .insert_batch(
                agent.id,
                batch.sequence,
                batch.sent_at,
                batch.metrics.len() as i32,
                batch.checks.len() as i32,
                &events_json(&batch),
                &keys.keys,
            )
            .await?;
        let refused =
            tx.admit_series(agent.id, &keys.keys, &inserted.unknown_series, i64::from(limits.max_series)).await?;
        (inserted, metric_series, check_series, refused.into_iter().collect::<HashSet<usize>>())
    };
    let (batch_id, new) = (inserted.id, inserted.new);
    let mut refused = None;
    if new {
        if !refused_series.is_empty() {
            let kept = |series: &Vec<usize>, n: usize| -> Vec<bool> {
                (0..n).map(|i| !refused_series.contains(&series[i])).collect()
            };
            let (keep_metrics, keep_checks) =
                (kept(&metric_series, batch.metrics.len()), kept(&check_series, batch.checks.len()));
            let mut keep = keep_metrics.iter();
            batch.metrics.retain(|_| keep.next().copied().unwrap_or(false));
            let mut keep = keep_checks.iter();
            batch.checks.retain(|_| keep.next().copied().unwrap_or(false));
            refused = Some(Refused {
                series: refused_series.len(),
                samples: metric_series.len() - batch.metrics.len(),
                check_results: check_series.len() - batch.checks.len(),
            });
        }
        tx.insert_samples(agent.id, &batch::samples(&batch.metrics)).await?;
        tx.insert_check_results(agent.id, &batch::check_results(&batch.checks)).await?;
        if let Some(inventory) = &batch.inventory {
            tx.record_inventory(agent.id, inventory.json()).await?;
        }
        let max_opened = usize::try_from(limits.max_alerts_per_batch).unwrap_or(usize::MAX);
        let routed = crate::alerts::evaluate(&mut tx, agent.id, &agent.hostname, &batch, max_opened).await?;
        if routed.as_array().is_some_and(|r| !r.is_empty()) {
            tx.record_routing(batch_id, &routed).await?;
        }
    }
    tx.commit().await?;
    db.touch_agent(agent.id).await?;
    Ok(Ack { batch_id, duplicate: !new, refused })
}
