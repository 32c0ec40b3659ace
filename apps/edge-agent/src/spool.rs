//! The disk spool: one gzip file per batch (`<sequence>.json.gz`, written
//! aside and renamed), delivered oldest first and removed only once
//! acknowledged.
//!
//! Nothing leaves it silently. A batch the agent gives up on (the bound
//! reached, refused by the server as invalid, too large for the server even
//! alone) is logged as a warning and counted in the drop ledger
//! (`dropped.json` in the state directory, so the count survives restarts).
//! The next batch spooled carries the count to the server as an
//! `agent.batches_dropped` event; the ledger remembers which batch carries
//! it and clears the count only when that batch is acknowledged. Should the
//! carrying batch be dropped in turn, its count goes back to "unreported"
//! and rides in a later batch, so each drop reaches the server exactly once.
//!
//! Crash safety: the ledger is written before the spool file it describes
//! changes, in an order where a crash between the two steps is detected and
//! finished (or undone) when the spool is opened again.

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anchor_edge_protocol::{Batch, Event};
use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The event kind of a drop report.
pub(crate) const DROP_REPORT: &str = anchor_edge_protocol::BATCHES_DROPPED;
/// A drop report names at most this many sequence numbers (its count is
/// always complete): enough to tell which batches are missing after an
/// outage without letting a long one grow the report without bound.
const MAX_LISTED: usize = 100;
/// Interrupted split: which batch was being split into which halves.
const SPLIT_JOURNAL: &str = "split.json";

/// Why the agent gave up on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// The spool reached `spool_max_bytes`; the oldest batch made room.
    SpoolFull,
    /// The server answered 422: it will never accept this batch.
    Invalid,
    /// The server answered 413 for a batch of a single item.
    TooLarge,
}

impl DropReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::SpoolFull => "spool_full",
            Self::Invalid => "invalid",
            Self::TooLarge => "too_large",
        }
    }
}

/// Dropped batches, by reason.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Drops {
    pub(crate) spool_full: u64,
    pub(crate) invalid: u64,
    pub(crate) too_large: u64,
    /// The first [`MAX_LISTED`] of their sequence numbers.
    pub(crate) sequences: Vec<i64>,
}

impl Drops {
    pub(crate) fn count(&self) -> u64 {
        self.spool_full + self.invalid + self.too_large
    }

    fn add(&mut self, reason: DropReason, sequence: i64) {
        match reason {
            DropReason::SpoolFull => self.spool_full += 1,
            DropReason::Invalid => self.invalid += 1,
            DropReason::TooLarge => self.too_large += 1,
        }
        if self.sequences.len() < MAX_LISTED {
            self.sequences.push(sequence);
        }
    }

    fn merge(&mut self, other: Drops) {
        self.spool_full += other.spool_full;
        self.invalid += other.invalid;
        self.too_large += other.too_large;
        let room = MAX_LISTED.saturating_sub(self.sequences.len());
        self.sequences.extend(other.sequences.into_iter().take(room));
        self.sequences.sort_unstable();
    }

    /// The event telling the server about these drops (at most
    /// [`MAX_LISTED`] sequences: within the protocol's bounds of an event).
    fn report(&self) -> Event {
        let at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).ok();
        let report = serde_json::json!({
            "kind": DROP_REPORT,
            "count": self.count(),
            "reasons": {"spool_full": self.spool_full, "invalid": self.invalid, "too_large": self.too_large},
            "sequences": self.sequences,
            "at": at,
        });
        Event::new(&report).expect("a drop report is within an event's bounds")
    }
}

/// `dropped.json`: every drop the server has not acknowledged a report of.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Ledger {
    /// Drops no spooled batch reports yet.
    pub(crate) unreported: Drops,
    /// Drops reported by a batch still in the spool, by its sequence.
    pub(crate) carried: BTreeMap<i64, Drops>,
    /// The batch being dropped: counted before its file is removed, so a
    /// crash in between leaves a file to remove, not a drop uncounted.
    last_dropped: Option<i64>,
}

impl Ledger {
    fn load(path: &Path) -> anyhow::Result<Self> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| path.display().to_string()),
        }
    }

    /// Every drop not yet acknowledged as reported.
    pub(crate) fn total(&self) -> Drops {
        let mut total = self.unreported.clone();
        for drops in self.carried.values() {
            total.merge(drops.clone());
        }
        total
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SplitJournal {
    original: i64,
    halves: [i64; 2],
}

#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    ledger_path: PathBuf,
    max_bytes: u64,
    /// sequence -> file size
    files: BTreeMap<i64, u64>,
    ledger: Ledger,
}

fn encode(batch: &Batch) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&serde_json::to_vec(batch)?)?;
    Ok(encoder.finish()?)
}

fn decode(body: &[u8]) -> anyhow::Result<Batch> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut json)?;
    Ok(serde_json::from_slice(&json)?)
}

/// Two batches sharing the items of one (inventory, metrics, checks, events,
/// in that order) half and half; none if it holds a single item.
fn halves(batch: Batch) -> Option<(Batch, Batch)> {
    let items = usize::from(batch.inventory.is_some()) + batch.metrics.len() + batch.checks.len() + batch.events.len();
    if items < 2 {
        return None;
    }
    let Batch { sequence, sent_at, metrics, checks, inventory, events } = batch;
    let empty = Batch { sequence, sent_at, metrics: vec![], checks: vec![], inventory: None, events: vec![] };
    let (mut first, mut second) = (empty.clone(), empty);
    let mut taken = 0;
    let mut to_first = || {
        taken += 1;
        taken <= items / 2
    };
    if let Some(inventory) = inventory {
        if to_first() { &mut first } else { &mut second }.inventory = Some(inventory);
    }
    for metric in metrics {
        if to_first() { &mut first } else { &mut second }.metrics.push(metric);
    }
    for check in checks {
        if to_first() { &mut first } else { &mut second }.checks.push(check);
    }
    for event in events {
        if to_first() { &mut first } else { &mut second }.events.push(event);
    }
    Some((first, second))
}

fn carries_report(batch: &Batch) -> bool {
    batch.events.iter().any(|e| e.kind() == DROP_REPORT)
}

/// Spooled sequence numbers and file sizes in `dir`.
fn list(dir: &Path) -> anyhow::Result<BTreeMap<i64, u64>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(sequence) = name.strip_suffix(".json.gz").and_then(|s| s.parse::<i64>().ok()) {
            files.insert(sequence, entry.metadata()?.len());
        }
    }
    Ok(files)
}

impl Spool {
    /// Opens the spool for the running agent, finishing or undoing whatever
    /// a crash interrupted.
    pub(crate) fn open(dir: &Path, ledger_path: &Path, max_bytes: u64) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        for entry in fs::read_dir(dir).with_context(|| dir.display().to_string())? {
            let entry = entry?;
            // A half-written batch from a crash: it was never acknowledged
            // and its sequence number is spent; remove it.
            if entry.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        let mut spool = Self {
            dir: dir.to_path_buf(),
            ledger_path: ledger_path.to_path_buf(),
            max_bytes,
            files: list(dir)?,
            ledger: Ledger::load(ledger_path)?,
        };
        spool.recover()?;
        Ok(spool)
    }

    /// What `status` shows, read without touching anything (the agent may
    /// be running).
    pub(crate) fn inspect(dir: &Path, ledger_path: &Path) -> anyhow::Result<(usize, u64, Ledger)> {
        let files = if dir.exists() { list(dir)? } else { BTreeMap::new() };
        Ok((files.len(), files.values().sum(), Ledger::load(ledger_path)?))
    }

    fn recover(&mut self) -> anyhow::Result<()> {
        let before = self.ledger.clone();
        let journal = self.dir.join(SPLIT_JOURNAL);
        if let Ok(bytes) = fs::read(&journal) {
            let split: SplitJournal = serde_json::from_slice(&bytes).context("the split journal")?;
            if self.files.contains_key(&split.original) {
                // Interrupted before the original went: it stays, the halves
                // (perhaps incomplete) go, and so does any report moved to them.
                for half in split.halves {
                    if let Some(carried) = self.ledger.carried.remove(&half) {
                        self.ledger.carried.entry(split.original).or_default().merge(carried);
                    }
                    self.remove_file(half)?;
                }
            }
            let _ = fs::remove_file(&journal);
        }
        if let Some(sequence) = self.ledger.last_dropped
            && self.files.contains_key(&sequence)
        {
            // Counted as dropped, then the crash came before the file went.
            self.remove_file(sequence)?;
        }
        // A report whose batch is not in the spool was never written
        // (acknowledging clears the ledger before removing the file): it
        // is unreported again.
        let orphans: Vec<i64> = self.ledger.carried.keys().filter(|s| !self.files.contains_key(s)).copied().collect();
        for sequence in orphans {
            if let Some(drops) = self.ledger.carried.remove(&sequence) {
                self.ledger.unreported.merge(drops);
            }
        }
        if self.ledger != before {
            self.save_ledger()?;
        }
        Ok(())
    }

    fn save_ledger(&self) -> anyhow::Result<()> {
        crate::state::write_atomic(&self.ledger_path, &serde_json::to_vec(&self.ledger)?, 0o600)
    }

    fn path(&self, sequence: i64) -> PathBuf {
        self.dir.join(format!("{sequence:020}.json.gz"))
    }

    fn remove_file(&mut self, sequence: i64) -> anyhow::Result<()> {
        match fs::remove_file(self.path(sequence)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("remove spooled batch {sequence}")),
        }
        self.files.remove(&sequence);
        Ok(())
    }

    fn write(&mut self, sequence: i64, bytes: &[u8]) -> anyhow::Result<()> {
        crate::state::write_atomic(&self.path(sequence), bytes, 0o600)?;
        self.files.insert(sequence, bytes.len() as u64);
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.files.values().sum()
    }

    /// Drops not yet acknowledged as reported.
    pub(crate) fn dropped(&self) -> Drops {
        self.ledger.total()
    }

    /// Keeps a batch until it is acknowledged. When the spool would exceed
    /// its bound the oldest batches make room; the batch reports every drop
    /// not yet reported, these included.
    pub(crate) fn push(&mut self, sequence: i64, mut batch: Batch) -> anyhow::Result<()> {
        let plain_events = batch.events.len();
        let bytes = loop {
            batch.events.truncate(plain_events);
            if self.ledger.unreported.count() > 0 {
                batch.events.push(self.ledger.unreported.report());
            }
            let bytes = encode(&batch)?;
            // The bound is for the backlog: a batch larger than the bound by
            // itself is still kept, alone.
            match self.files.keys().next() {
                Some(&oldest) if self.bytes() + bytes.len() as u64 > self.max_bytes => {
                    self.drop_batch(oldest, DropReason::SpoolFull, "the spool reached its bound")?;
                }
                _ => break bytes,
            }
        };
        if batch.events.len() > plain_events {
            let report = std::mem::take(&mut self.ledger.unreported);
            self.ledger.carried.insert(sequence, report);
            self.save_ledger()?;
        }
        self.write(sequence, &bytes)
    }

    /// The oldest batch: its sequence and its gzip body.
    pub(crate) fn oldest(&self) -> anyhow::Result<Option<(i64, Vec<u8>)>> {
        let Some((&sequence, _)) = self.files.iter().next() else { return Ok(None) };
        let body = fs::read(self.path(sequence)).with_context(|| format!("spooled batch {sequence}"))?;
        Ok(Some((sequence, body)))
    }

    /// The server acknowledged the batch: it leaves, and so do the drops it reported.
    pub(crate) fn acknowledge(&mut self, sequence: i64) -> anyhow::Result<()> {
        if self.ledger.carried.remove(&sequence).is_some() {
            self.save_ledger()?;
        }
        self.remove_file(sequence)
    }

    /// Gives up on a batch: counted, logged, reported in a later batch.
    pub(crate) fn drop_batch(&mut self, sequence: i64, reason: DropReason, why: &str) -> anyhow::Result<()> {
        if let Some(carried) = self.ledger.carried.remove(&sequence) {
            self.ledger.unreported.merge(carried);
        }
        self.ledger.unreported.add(reason, sequence);
        self.ledger.last_dropped = Some(sequence);
        self.save_ledger()?;
        self.remove_file(sequence)?;
        crate::warn(&format!(
            "dropped batch {sequence} ({}): {why}; {} drops await the server's acknowledgement of their report",
            reason.as_str(),
            self.ledger.total().count()
        ));
        Ok(())
    }

    /// Splits a batch the server found too large into two halves, spooled
    /// under fresh sequence numbers from `fresh` (the server stores each
    /// sequence once, so a half cannot reuse the original's); `None` when
    /// the batch holds a single item. The halves queue behind the batches
    /// already spooled; every sample keeps its own time.
    pub(crate) fn split(
        &mut self,
        sequence: i64,
        mut fresh: impl FnMut() -> anyhow::Result<i64>,
    ) -> anyhow::Result<Option<(i64, i64)>> {
        let body = fs::read(self.path(sequence)).with_context(|| format!("spooled batch {sequence}"))?;
        let batch = decode(&body).with_context(|| format!("spooled batch {sequence}"))?;
        let Some((mut first, mut second)) = halves(batch) else { return Ok(None) };
        first.sequence = fresh()?;
        second.sequence = fresh()?;
        // A reused number would overwrite a spooled batch, or be taken by
        // the server for one it already has.
        anyhow::ensure!(
            first.sequence != second.sequence
                && ![first.sequence, second.sequence].iter().any(|s| *s == sequence || self.files.contains_key(s)),
            "fresh sequence numbers {} and {} for splitting batch {sequence} are in use",
            first.sequence,
            second.sequence
        );
        let journal = SplitJournal { original: sequence, halves: [first.sequence, second.sequence] };
        crate::state::write_atomic(&self.dir.join(SPLIT_JOURNAL), &serde_json::to_vec(&journal)?, 0o600)?;
        self.write(first.sequence, &encode(&first)?)?;
        self.write(second.sequence, &encode(&second)?)?;
        if let Some(carried) = self.ledger.carried.remove(&sequence) {
            let carrier = if carries_report(&first) { first.sequence } else { second.sequence };
            self.ledger.carried.insert(carrier, carried);
            self.save_ledger()?;
        }
        self.remove_file(sequence)?;
        let _ = fs::remove_file(self.dir.join(SPLIT_JOURNAL));
        Ok(Some((first.sequence, second.sequence)))
    }
}

#[cfg(test)]
mod tests {
    use anchor_edge_protocol::Metric;

    use super::*;

    fn batch(sequence: i64) -> Batch {
        Batch { sequence, sent_at: None, metrics: vec![], checks: vec![], inventory: None, events: vec![] }
    }

    fn with_metrics(sequence: i64, n: usize) -> Batch {
        let at = time::OffsetDateTime::now_utc();
        let metrics = (0..n).map(|i| Metric { name: format!("m.{i}"), value: i as f64, at, labels: None }).collect();
        Batch { metrics, ..batch(sequence) }
    }

    fn open(dir: &Path, max_bytes: u64) -> Spool {
        Spool::open(&dir.join("spool"), &dir.join("dropped.json"), max_bytes).expect("open")
    }

    fn spooled(spool: &Spool, sequence: i64) -> Batch {
        decode(&fs::read(spool.path(sequence)).expect("read")).expect("decode")
    }

    fn reports(batch: &Batch) -> Vec<serde_json::Value> {
        batch.events.iter().filter(|e| e.kind() == DROP_REPORT).map(Event::to_value).collect()
    }

    #[test]
    fn batches_survive_reopening_and_leave_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = open(dir.path(), u64::MAX);
        for s in [3, 1, 2] {
            spool.push(s, batch(s)).expect("push");
        }
        std::fs::write(dir.path().join("spool/x.tmp"), b"half").expect("write");
        let mut spool = open(dir.path(), u64::MAX);
        assert_eq!(spool.len(), 3);
        assert!(!dir.path().join("spool/x.tmp").exists(), "leftovers of a crash go");
        assert_eq!(spool.oldest().expect("read").expect("some").0, 1);
        spool.acknowledge(1).expect("acknowledge");
        assert_eq!(spool.oldest().expect("read").expect("some").0, 2);
        assert_eq!(spool.dropped().count(), 0);
    }

    #[test]
    fn the_bound_drops_the_oldest_and_a_spooled_batch_reports_each_drop_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let size = encode(&with_metrics(0, 30)).expect("encode").len() as u64;
        let bound = size * 3;
        let mut spool = open(dir.path(), bound);
        for s in 0..10 {
            spool.push(s, with_metrics(s, 30)).expect("push");
            assert!(spool.bytes() <= bound, "the bound holds");
        }
        let kept: Vec<i64> = spool.files.keys().copied().collect();
        let dropped: Vec<i64> = (0..10).filter(|s| !kept.contains(s)).collect();
        assert!(dropped.len() >= 7, "kept {kept:?}");
        // Every drop is in exactly one report, carried by a spooled batch.
        let mut reported = Vec::new();
        for &s in &kept {
            for report in reports(&spooled(&spool, s)) {
                assert_eq!(report["count"], report["reasons"]["spool_full"]);
                reported.extend(report["sequences"].as_array().expect("list").iter().map(|v| v.as_i64().expect("n")));
            }
        }
        reported.sort_unstable();
        assert_eq!(reported, dropped);

        // The count survives a restart and lasts until its carriers are acknowledged.
        let mut spool = open(dir.path(), bound);
        assert_eq!(spool.dropped().count(), dropped.len() as u64);
        assert_eq!(spool.dropped().spool_full, dropped.len() as u64);
        let carriers: Vec<i64> = spool.ledger.carried.keys().copied().collect();
        assert_eq!(carriers.len(), kept.iter().filter(|&&s| !reports(&spooled(&spool, s)).is_empty()).count());
        for s in kept {
            let before = spool.dropped().count();
            spool.acknowledge(s).expect("acknowledge");
            if !carriers.contains(&s) {
                assert_eq!(spool.dropped().count(), before, "{s} carried no report");
            }
        }
        assert_eq!(spool.dropped().count(), 0);
        let spool = open(dir.path(), bound);
        assert_eq!(spool.dropped(), Drops::default());
    }

    #[test]
    fn a_dropped_report_rides_again_with_its_own_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = open(dir.path(), u64::MAX);
        spool.push(0, batch(0)).expect("push");
        spool.drop_batch(0, DropReason::Invalid, "refused").expect("drop");
        spool.push(1, batch(1)).expect("push");
        assert_eq!(reports(&spooled(&spool, 1))[0]["count"], 1);
        // The carrier is refused too: both drops go with the next batch.
        spool.drop_batch(1, DropReason::Invalid, "refused").expect("drop");
        spool.push(2, batch(2)).expect("push");
        let report = reports(&spooled(&spool, 2))[0].clone();
        assert_eq!((report["count"].as_u64(), report["reasons"]["invalid"].as_u64()), (Some(2), Some(2)));
        assert_eq!(report["sequences"], serde_json::json!([0, 1]));
        spool.acknowledge(2).expect("acknowledge");
        assert_eq!(spool.dropped().count(), 0);
    }

    #[test]
    fn crashes_between_ledger_and_file_are_finished_on_opening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = open(dir.path(), u64::MAX);
        spool.push(0, batch(0)).expect("push");
        spool.drop_batch(0, DropReason::Invalid, "refused").expect("drop");
        spool.push(1, batch(1)).expect("push");
        // A crash after the ledger took the report, before the file was written.
        fs::remove_file(spool.path(1)).expect("remove");
        // And one after a drop was counted, before its file went.
        spool.push(2, batch(2)).expect("push");
        spool.ledger.unreported.add(DropReason::SpoolFull, 2);
        spool.ledger.last_dropped = Some(2);
        spool.save_ledger().expect("save");
        let spool = open(dir.path(), u64::MAX);
        assert_eq!(spool.len(), 0, "the dropped batch's file went");
        assert!(spool.ledger.carried.is_empty());
        assert_eq!(spool.ledger.unreported.count(), 2, "the unwritten report is unreported again");
    }

    #[test]
    fn a_split_keeps_every_item_and_moves_the_report_along() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = open(dir.path(), u64::MAX);
        spool.push(0, batch(0)).expect("push");
        spool.drop_batch(0, DropReason::SpoolFull, "test").expect("drop");
        let mut big = with_metrics(1, 5);
        big.inventory =
            Some(anchor_edge_protocol::Inventory::new(&serde_json::json!({"os": "Linux"})).expect("inventory"));
        spool.push(1, big).expect("push");
        let mut next = 10;
        let (a, b) = spool
            .split(1, || {
                next += 1;
                Ok(next)
            })
            .expect("split")
            .expect("halves");
        assert_eq!((a, b), (11, 12));
        let (first, second) = (spooled(&spool, a), spooled(&spool, b));
        assert_eq!((first.sequence, second.sequence), (11, 12));
        assert!(first.inventory.is_some() && second.inventory.is_none());
        assert_eq!(first.metrics.len() + second.metrics.len(), 5);
        assert_eq!(first.events.len() + second.events.len(), 1);
        assert_eq!(spool.files.keys().copied().collect::<Vec<_>>(), [11, 12]);
        assert!(spool.ledger.carried.contains_key(&12), "the report is in the second half");
        spool.acknowledge(11).expect("ack");
        assert_eq!(spool.dropped().count(), 1);
        spool.acknowledge(12).expect("ack");
        assert_eq!(spool.dropped().count(), 0);

        // One item cannot be split.
        spool.push(20, with_metrics(20, 1)).expect("push");
        assert_eq!(spool.split(20, || Ok(99)).expect("split"), None);
    }

    #[test]
    fn an_interrupted_split_is_undone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = open(dir.path(), u64::MAX);
        spool.push(1, with_metrics(1, 4)).expect("push");
        // The halves exist (one perhaps incomplete), the original too.
        spool.write(5, &encode(&with_metrics(5, 2)).expect("encode")).expect("write");
        let journal = SplitJournal { original: 1, halves: [5, 6] };
        fs::write(dir.path().join("spool").join(SPLIT_JOURNAL), serde_json::to_vec(&journal).expect("json"))
            .expect("journal");
        let spool = open(dir.path(), u64::MAX);
        assert_eq!(spool.files.keys().copied().collect::<Vec<_>>(), [1]);
        assert!(!dir.path().join("spool").join(SPLIT_JOURNAL).exists());
    }
}
