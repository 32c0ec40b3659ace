//! Refusals of requests that are not authenticated (an invalid bearer token,
//! a failed or throttled sign-in), written to the access audit log in
//! aggregate, so that a flood of them costs neither a row nor a pooled
//! connection each.
//!
//! A refusal is recorded in memory, merged with the same refusal of the
//! same minute (action, outcome, reason, source, issuer, subject and the
//! bounded detail fields), and written by a flush that runs [`FLUSH_EVERY`]
//! after the first refusal of a batch: one statement on one connection for
//! everything pending, adding to the minute's row if a flush (of this or
//! another replica) already wrote it. Memory is bounded: at most
//! [`MAX_KEYS_PER_MINUTE`] distinct refusals per minute keep their source;
//! beyond that they are counted under the source `various`; and at most
//! [`MAX_PENDING`] rows wait for a database that is away (the rest are
//! counted in the log and dropped).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Outcome;
use crate::{Database, StoreError};

/// How long a refusal waits in memory before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Distinct refusals per minute that keep their own row.
pub const MAX_KEYS_PER_MINUTE: usize = 1000;
/// Rows waiting to be written, at most.
const MAX_PENDING: usize = 4 * MAX_KEYS_PER_MINUTE;
/// The source of refusals counted beyond [`MAX_KEYS_PER_MINUTE`].
const VARIOUS: &str = "various";

/// One refused request. Every field is part of what makes two refusals the
/// same, so callers pass bounded values only (a reason from a fixed set, a
/// route template, a source bucket); long values are cut.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    /// `authenticate`, `signin`.
    pub action: &'static str,
    /// Failure or denied.
    pub outcome: Outcome,
    pub reason: &'a str,
    /// The client's address (an IPv6 /64), see `anchor_auth::source`.
    pub source: &'a str,
    pub issuer: Option<&'a str>,
    pub subject: Option<&'a str>,
    /// More of the event, e.g. `("route", "GET /api/v1/workspaces")`.
    pub detail: &'a [(&'static str, &'a str)],
    /// The first refusal's request id is kept.
    pub request_id: Option<&'a str>,
}

/// The process's buffer of refusals. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Refusals {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    every: Duration,
    buffer: Mutex<Buffer>,
}

#[derive(Debug, Default)]
struct Buffer {
    pending: HashMap<[u8; 32], Row>,
    /// The minute `keys_this_minute` counts.
    minute: i64,
    keys_this_minute: HashSet<[u8; 32]>,
    flush_scheduled: bool,
    dropped: u64,
}

/// One aggregated row waiting to be written.
#[derive(Debug, Clone)]
struct Row {
    first_at: OffsetDateTime,
    action: &'static str,
    outcome: Outcome,
    issuer: Option<String>,
    subject: Option<String>,
    request_id: Option<String>,
    detail: serde_json::Value,
    count: i64,
}

fn cut(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((at, _)) => &value[..at],
        None => value,
    }
}

fn key_of(minute: i64, refusal: &Refusal<'_>) -> [u8; 32] {
    let mut digest = Sha256::new();
    let mut field = |value: Option<&str>| match value {
        None => digest.update([0u8]),
        Some(v) => {
            digest.update([1u8]);
            digest.update((v.len() as u64).to_be_bytes());
            digest.update(v.as_bytes());
        }
    };
    field(Some(&minute.to_string()));
    field(Some(refusal.action));
    field(Some(refusal.outcome.as_str()));
    field(Some(refusal.reason));
    field(Some(refusal.source));
    field(refusal.issuer);
    field(refusal.subject);
    for (name, value) in refusal.detail {
        field(Some(name));
        field(Some(value));
    }
    digest.finalize().into()
}

impl Refusals {
    pub fn new(db: Database) -> Self {
        Self::flushing_every(db, FLUSH_EVERY)
    }

    pub fn flushing_every(db: Database, every: Duration) -> Self {
        Self { inner: Arc::new(Inner { db, every, buffer: Mutex::default() }) }
    }

    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        self.inner.buffer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one refusal. Never waits for the database.
    pub fn record(&self, refusal: Refusal<'_>) {
        self.record_at(OffsetDateTime::now_utc(), refusal);
    }

    fn record_at(&self, now: OffsetDateTime, refusal: Refusal<'_>) {
        let refusal = Refusal {
            reason: cut(refusal.reason, 200),
            source: cut(refusal.source, 64),
            issuer: refusal.issuer.map(|i| cut(i, 500)),
            subject: refusal.subject.map(|s| cut(s, 255)),
            request_id: refusal.request_id.map(|r| cut(r, 200)),
            ..refusal
        };
        let minute = now.unix_timestamp().div_euclid(60);
        let mut buffer = self.buffer();
        if buffer.minute != minute {
            buffer.minute = minute;
            buffer.keys_this_minute.clear();
        }
        let mut key = key_of(minute, &refusal);
        let mut kept = refusal;
        if !buffer.keys_this_minute.contains(&key) {
            if buffer.keys_this_minute.len() < MAX_KEYS_PER_MINUTE {
                buffer.keys_this_minute.insert(key);
            } else {
                // Too many distinct refusals this minute: keep the count, not the particulars.
                kept = Refusal { source: VARIOUS, issuer: None, subject: None, detail: &[], ..refusal };
                key = key_of(minute, &kept);
            }
        }
        if let Some(row) = buffer.pending.get_mut(&key) {
            row.count += 1;
        } else if buffer.pending.len() >= MAX_PENDING {
            buffer.dropped += 1;
        } else {
            let mut detail = serde_json::Map::new();
            detail.insert("reason".to_owned(), kept.reason.into());
            detail.insert("address".to_owned(), kept.source.into());
            for (name, value) in kept.detail {
                detail.insert((*name).to_owned(), cut(value, 200).into());
            }
            let row = Row {
                first_at: now,
                action: kept.action,
                outcome: kept.outcome,
                issuer: kept.issuer.map(str::to_owned),
                subject: kept.subject.map(str::to_owned),
                request_id: kept.request_id.map(str::to_owned),
                detail: detail.into(),
                count: 1,
            };
            buffer.pending.insert(key, row);
        }
        if !buffer.flush_scheduled
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            buffer.flush_scheduled = true;
            runtime.spawn(self.clone().flush_later());
        }
    }

    /// Flushes after the interval, again while rows remain (the database
    /// may be away), and stops when nothing is pending.
    async fn flush_later(self) {
        loop {
            tokio::time::sleep(self.inner.every).await;
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "cannot write refusals to the access audit log; keeping them to retry");
            }
            let mut buffer = self.buffer();
            if buffer.pending.is_empty() || self.inner.db.pool().is_closed() {
                buffer.pending.clear();
                buffer.flush_scheduled = false;
                return;
            }
        }
    }

    /// Writes everything pending, in one statement. Returns the rows written.
    /// On failure the rows stay pending.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let (rows, dropped) = {
            let mut buffer = self.buffer();
            (buffer.pending.drain().collect::<Vec<_>>(), std::mem::take(&mut buffer.dropped))
        };
        if dropped > 0 {
            tracing::warn!(dropped, "refusals dropped: too many waiting for the access audit log");
        }
        if rows.is_empty() {
            return Ok(0);
        }
        let written = rows.len();
        match write(&self.inner.db, &rows).await {
            Ok(()) => Ok(written),
            Err(e) => {
                let mut buffer = self.buffer();
                for (key, row) in rows {
                    if let Some(newer) = buffer.pending.get_mut(&key) {
                        newer.count += row.count;
                        newer.first_at = row.first_at;
                    } else if buffer.pending.len() < MAX_PENDING {
                        buffer.pending.insert(key, row);
                    } else {
                        buffer.dropped += row.count as u64;
                    }
                }
                Err(e)
            }
        }
    }

    /// Refusals waiting to be written (rows, not occurrences).
    pub fn pending(&self) -> usize {
        self.buffer().pending.len()
    }
}

async fn write(db: &Database, rows: &[([u8; 32], Row)]) -> Result<(), StoreError> {
    let mut keys = Vec::with_capacity(rows.len());
    let mut at = Vec::with_capacity(rows.len());
    let (mut issuers, mut subjects, mut request_ids) = (Vec::new(), Vec::new(), Vec::new());
    let (mut actions, mut outcomes, mut details, mut counts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (key, row) in rows {
        keys.push(key.to_vec());
        at.push(row.first_at);
        issuers.push(row.issuer.clone());
        subjects.push(row.subject.clone());
        request_ids.push(row.request_id.clone());
        actions.push(row.action);
        outcomes.push(row.outcome.as_str());
        details.push(row.detail.to_string());
        counts.push(row.count);
    }
    sqlx::query(
        "INSERT INTO platform.access_audit
                (refusal_key, occurred_at, issuer, subject, action, outcome, request_id, detail, count)
         SELECT k, o, i, s, a, r, q, d::jsonb, c
           FROM unnest($1::bytea[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::bigint[]) AS t(k, o, i, s, a, r, q, d, c)
         ON CONFLICT (refusal_key) WHERE refusal_key IS NOT NULL
         DO UPDATE SET count = platform.access_audit.count + EXCLUDED.count,
                       occurred_at = least(platform.access_audit.occurred_at, EXCLUDED.occurred_at)",
    )
    .bind(keys)
    .bind(at)
    .bind(issuers)
    .bind(subjects)
    .bind(actions)
    .bind(outcomes)
    .bind(request_ids)
    .bind(details)
    .bind(counts)
    .execute(db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(source: &str) -> Refusal<'_> {
        Refusal {
            action: "authenticate",
            outcome: Outcome::Failure,
            reason: "the token has expired",
            source,
            issuer: None,
            subject: None,
            detail: &[("route", "GET /api/v1/workspaces")],
            request_id: None,
        }
    }

    /// A buffer over a pool that never connects (nothing is flushed here:
    /// without a runtime entered, no flush is scheduled). The runtime only
    /// carries the pool.
    fn refusals() -> (Refusals, tokio::runtime::Runtime) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let options: sqlx::postgres::PgConnectOptions = "postgres://nobody@127.0.0.1:1/none".parse().expect("url");
        let pool = {
            let _entered = runtime.enter();
            sqlx::postgres::PgPoolOptions::new().connect_lazy_with(options)
        };
        (Refusals::new(Database::from_pool(pool)), runtime)
    }

    #[test]
    fn repeats_are_one_row_per_minute_and_distinct_sources_are_bounded() {
        let (refusals, _runtime) = refusals();
        let minute = OffsetDateTime::from_unix_timestamp(1_700_000_040).expect("time");
        for _ in 0..1000 {
            refusals.record_at(minute, refusal("192.0.2.1"));
        }
        assert_eq!(refusals.pending(), 1, "one row");
        assert_eq!(refusals.buffer().pending.values().map(|r| r.count).sum::<i64>(), 1000);
        refusals.record_at(minute + time::Duration::minutes(1), refusal("192.0.2.1"));
        assert_eq!(refusals.pending(), 2, "the next minute is a row of its own");

        // A flood from many sources in one minute: bounded rows, every occurrence counted.
        let later = minute + time::Duration::minutes(5);
        let sources: Vec<String> =
            (0..3 * MAX_KEYS_PER_MINUTE).map(|i| format!("10.{}.{}.1", i / 250, i % 250)).collect();
        for source in &sources {
            refusals.record_at(later, refusal(source));
        }
        assert_eq!(refusals.pending(), 2 + MAX_KEYS_PER_MINUTE + 1, "the rest share the `various` row");
        let various: Vec<_> =
            refusals.buffer().pending.values().filter(|r| r.detail["address"] == VARIOUS).cloned().collect();
        assert_eq!(various.len(), 1);
        assert_eq!(various[0].count, 2 * MAX_KEYS_PER_MINUTE as i64);

        // Nothing grows without bound while the database is away.
        for minute_offset in 10..20 {
            let at = minute + time::Duration::minutes(minute_offset);
            for source in &sources {
                refusals.record_at(at, refusal(source));
            }
        }
        assert!(refusals.pending() <= MAX_PENDING);
        assert!(refusals.buffer().dropped > 0);
    }
}
