//! The disk spool: one gzip file per batch (`<sequence>.json.gz`, written
//! aside and renamed), delivered oldest first and removed only once
//! acknowledged. Bounded: when a new batch would exceed the bound, the
//! oldest batches are dropped and the drop is reported in the next batch.

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anchor_edge_protocol::Batch;
use anyhow::Context;

#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// sequence -> file size
    files: BTreeMap<i64, u64>,
    dropped: u64,
}

impl Spool {
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let mut files = BTreeMap::new();
        for entry in fs::read_dir(dir).with_context(|| dir.display().to_string())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.strip_suffix(".json.gz").and_then(|s| s.parse::<i64>().ok()) {
                Some(sequence) => {
                    files.insert(sequence, entry.metadata()?.len());
                }
                // A half-written batch from a crash: it was never acknowledged
                // and its sequence number is spent; remove it.
                None if name.ends_with(".tmp") => {
                    let _ = fs::remove_file(entry.path());
                }
                None => {}
            }
        }
        Ok(Self { dir: dir.to_path_buf(), max_bytes, files, dropped: 0 })
    }

    fn path(&self, sequence: i64) -> PathBuf {
        self.dir.join(format!("{sequence:020}.json.gz"))
    }

    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.files.values().sum()
    }

    /// Keeps a batch until it is acknowledged.
    pub(crate) fn push(&mut self, sequence: i64, batch: &Batch) -> anyhow::Result<()> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&serde_json::to_vec(batch)?)?;
        let bytes = encoder.finish()?;
        while !self.files.is_empty() && self.bytes() + bytes.len() as u64 > self.max_bytes {
            let (&oldest, _) = self.files.iter().next().expect("not empty");
            self.remove(oldest)?;
            self.dropped += 1;
        }
        crate::state::write_atomic(&self.path(sequence), &bytes, 0o600)?;
        self.files.insert(sequence, bytes.len() as u64);
        Ok(())
    }

    /// The oldest batch: its sequence and its gzip body.
    pub(crate) fn oldest(&self) -> anyhow::Result<Option<(i64, Vec<u8>)>> {
        let Some((&sequence, _)) = self.files.iter().next() else { return Ok(None) };
        let body = fs::read(self.path(sequence)).with_context(|| format!("spooled batch {sequence}"))?;
        Ok(Some((sequence, body)))
    }

    pub(crate) fn remove(&mut self, sequence: i64) -> anyhow::Result<()> {
        match fs::remove_file(self.path(sequence)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("remove a delivered batch"),
        }
        self.files.remove(&sequence);
        Ok(())
    }

    /// An event reporting batches dropped to keep the bound, once.
    pub(crate) fn take_dropped_report(&mut self) -> Option<serde_json::Value> {
        if self.dropped == 0 {
            return None;
        }
        let at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).ok();
        let event = serde_json::json!({"kind": "spool.dropped", "batches": self.dropped, "at": at});
        self.dropped = 0;
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(sequence: i64) -> Batch {
        Batch { sequence, sent_at: None, metrics: vec![], checks: vec![], inventory: None, events: vec![] }
    }

    #[test]
    fn batches_survive_reopening_and_leave_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), u64::MAX).expect("open");
        for s in [3, 1, 2] {
            spool.push(s, &batch(s)).expect("push");
        }
        std::fs::write(dir.path().join("x.tmp"), b"half").expect("write");
        let mut spool = Spool::open(dir.path(), u64::MAX).expect("reopen");
        assert_eq!(spool.len(), 3);
        assert!(!dir.path().join("x.tmp").exists(), "leftovers of a crash go");
        assert_eq!(spool.oldest().expect("read").expect("some").0, 1);
        spool.remove(1).expect("remove");
        assert_eq!(spool.oldest().expect("read").expect("some").0, 2);
    }

    #[test]
    fn the_bound_drops_the_oldest_and_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = {
            let mut probe = Spool::open(&dir.path().join("probe"), u64::MAX).expect("open");
            probe.push(0, &batch(0)).expect("push");
            probe.bytes()
        };
        let mut spool = Spool::open(&dir.path().join("bounded"), one * 2).expect("open");
        for s in 0..5 {
            spool.push(s, &batch(s)).expect("push");
        }
        assert_eq!(spool.len(), 2);
        assert_eq!(spool.oldest().expect("read").expect("some").0, 3);
        let report = spool.take_dropped_report().expect("reported");
        assert_eq!(report["batches"], 3);
        assert!(spool.take_dropped_report().is_none(), "reported once");
    }
}
