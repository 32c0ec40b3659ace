//! Many workspaces on one PostgreSQL: what provisioning, migrating and
//! serving them costs as their number grows. Figures are printed beside a
//! baseline measured in the same run (the same work in a database of
//! `ANCHOR_BENCH_SAMPLES` workspaces), so they stay comparable on a shared,
//! noisy machine:
//!
//! - creating one workspace when N exist, one at a time: p50/p99;
//! - provisioning N workspaces `ANCHOR_BENCH_CONCURRENCY` at a time;
//! - one new migration (a table with a primary key and two indexes) applied
//!   to all of them;
//! - the memory of a pooled connection's server process (its catalogue
//!   cache, `CacheMemoryContext`, all its memory contexts, and its private
//!   resident memory, `RssAnon`) after serving every workspace once, without
//!   recycling, with a short `max_lifetime`, and with the default
//!   [`Recycling`] (a cap on uses).
//!
//! `cargo bench -p anchor-store --bench provision` (debug build is fine:
//! the cost is in PostgreSQL). `ANCHOR_BENCH_WORKSPACES` (default 1000),
//! `ANCHOR_BENCH_CONCURRENCY` (default 8) and `ANCHOR_BENCH_SAMPLES`
//! (default 100) change the shape. The server must be local for `RssAnon`
//! (read from `/proc`); the memory contexts need a superuser (PostgreSQL 15).

use std::time::{Duration, Instant};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_store::{
    Database, Recycling, Workspace,
    migrate::{Migration, WORKSPACE_MIGRATIONS},
};
use anchor_testkit::TestDatabase;
use futures_util::{StreamExt, stream};

/// Provisioning and migrating 1,000 workspaces should each take less.
const TARGET_PER_1000: Duration = Duration::from_secs(60);

/// The new migration: a table with a primary key and two indexes.
const NEW_TABLE: &str = "CREATE TABLE bench_notes (
    id         bigint PRIMARY KEY,
    site_id    bigint NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bench_notes_site ON bench_notes (site_id);
CREATE INDEX bench_notes_created ON bench_notes (created_at);";

/// A unit of work as a page of the product runs one: ten of the
/// workspace's tables read.
const READS: &[&str] = &[
    "SELECT count(*) FROM sites",
    "SELECT count(*) FROM contacts",
    "SELECT count(*) FROM tickets",
    "SELECT count(*) FROM alerts",
    "SELECT count(*) FROM alert_rules",
    "SELECT count(*) FROM assets",
    "SELECT count(*) FROM executions",
    "SELECT count(*) FROM webhook_endpoints",
    "SELECT count(*) FROM workspace_settings",
    "SELECT count(*) FROM evidence_chain",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn slug(prefix: &str, i: usize) -> WorkspaceSlug {
    WorkspaceSlug::parse(&format!("{prefix}-{i:05}")).expect("slug")
}

async fn create(db: &Database, prefix: &str, i: usize) {
    let name = WorkspaceName::parse(&format!("Client {i}")).expect("name");
    db.create_workspace(&slug(prefix, i), &name).await.expect("provision");
}

/// Provisions `count` workspaces `concurrency` at a time.
async fn provision(db: &Database, prefix: &str, count: usize, concurrency: usize) -> Duration {
    let started = Instant::now();
    stream::iter(0..count).map(|i| create(db, prefix, i)).buffer_unordered(concurrency).collect::<Vec<_>>().await;
    started.elapsed()
}

/// Creates `count` workspaces one at a time; the time of each, sorted.
async fn one_at_a_time(db: &Database, prefix: &str, count: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        create(db, prefix, i).await;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    times
}

/// Nearest-rank percentile of sorted times, in ms.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

fn per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / n as f64
}

fn verdict(d: Duration, n: usize) -> String {
    let target = TARGET_PER_1000.mul_f64(n as f64 / 1000.0);
    let word = if d < target { "within" } else { "OVER" };
    format!("{word} the target of {:.0} s ({} s per 1,000)", target.as_secs_f64(), TARGET_PER_1000.as_secs())
}

/// The shipped workspace migrations and one new one (a table with two indexes).
fn with_new_table() -> Vec<Migration> {
    let mut set = WORKSPACE_MIGRATIONS.to_vec();
    let next = WORKSPACE_MIGRATIONS.last().map_or(0, |m| m.version) + 1;
    set.push(Migration::new(next, "bench_notes", NEW_TABLE));
    set
}

/// Applies the new migration to every workspace; returns the time taken.
async fn migrate_new_table(db: &Database, expected: usize, concurrency: usize) -> Duration {
    let set = with_new_table();
    let started = Instant::now();
    let report = db.migrate_workspaces_with(&set, concurrency, |_| {}).await.expect("migrate");
    let took = started.elapsed();
    assert_eq!(report.applied as usize, expected);
    took
}

/// A server process's memory, as it reports it and as the kernel does.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// `CacheMemoryContext` and the contexts below it: the catalogue and
    /// relation caches, cached plans.
    cache: i64,
    /// Every memory context of the process.
    total: i64,
    /// Private resident memory (`RssAnon` in `/proc/<pid>/status`), when the
    /// server runs on this machine.
    rss_anon: Option<i64>,
}

fn mb(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

impl Memory {
    fn describe(&self) -> String {
        let rss = self.rss_anon.map_or_else(|| "n/a".to_owned(), mb);
        format!("CacheMemoryContext {}, all contexts {}, RssAnon {rss}", mb(self.cache), mb(self.total))
    }
}

/// The memory of the server process behind the pool's connection (the
/// pools measured have one), read through one checkout of it.
async fn backend_memory(db: &Database) -> Memory {
    let mut conn = db.pool().acquire().await.expect("acquire");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *conn).await.expect("pid");
    // Depth-first, in the order the server walks its contexts.
    let contexts: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT name, level, total_bytes
           FROM pg_get_backend_memory_contexts()
                WITH ORDINALITY AS c(name, ident, parent, level, total_bytes, total_nblocks,
                                     free_bytes, free_chunks, used_bytes, n)
          ORDER BY n",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("memory contexts (the benchmark needs a superuser)");
    let total = contexts.iter().map(|c| c.2).sum();
    let cache = match contexts.iter().position(|c| c.0 == "CacheMemoryContext") {
        Some(at) => {
            let level = contexts[at].1;
            contexts[at..].iter().enumerate().take_while(|(i, c)| *i == 0 || c.1 > level).map(|(_, c)| c.2).sum()
        }
        None => 0,
    };
    let rss_anon = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|status| {
        let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
        let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    });
    Memory { cache, total, rss_anon }
}

/// What serving every workspace once did to a pool's one connection.
struct Served {
    /// Time per unit of work (memory readings excluded).
    per_unit: f64,
    fresh: Memory,
    /// The largest reading (by catalogue cache) taken while serving.
    peak: Memory,
    /// The reading after the last workspace.
    last: Memory,
}

/// Serves every workspace once (one unit of work each) through a pool of
/// one connection recycled as `recycling` says, reading its memory now and
/// then.
async fn serve_all(url: &secrecy::SecretString, workspaces: &[Workspace], recycling: Recycling) -> Served {
    let db = Database::connect_with(url, 1, recycling).await.expect("connect");
    let fresh = backend_memory(&db).await;
    let mut peak = fresh;
    let every = (workspaces.len() / 50).max(1);
    let mut working = Duration::ZERO;
    for (i, ws) in workspaces.iter().enumerate() {
        let started = Instant::now();
        let mut tx = db.begin_workspace(ws).await.expect("begin");
        for read in READS {
            sqlx::query(*read).execute(tx.conn()).await.expect("read");
        }
        tx.rollback().await.expect("rollback");
        working += started.elapsed();
        if (i + 1) % every == 0 {
            let now = backend_memory(&db).await;
            if now.cache > peak.cache {
                peak = now;
            }
        }
    }
    let last = backend_memory(&db).await;
    if last.cache > peak.cache {
        peak = last;
    }
    db.close().await;
    Served { per_unit: per(working, workspaces.len()), fresh, peak, last }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let workspaces = env_usize("ANCHOR_BENCH_WORKSPACES", 1000);
    let concurrency = env_usize("ANCHOR_BENCH_CONCURRENCY", 8);
    let samples = env_usize("ANCHOR_BENCH_SAMPLES", 100).max(1);

    // Baseline: a database of `samples` workspaces, created one at a time,
    // then given the new migration.
    let small = TestDatabase::new().await;
    let db = small.connect(concurrency as u32 + 2).await;
    let base_create = one_at_a_time(&db, "base", samples).await;
    let base_migrate = migrate_new_table(&db, samples, concurrency).await;
    let (base_p50, base_p99) = (percentile(&base_create, 50.0), percentile(&base_create, 99.0));
    println!(
        "baseline, a database of {samples} workspaces: creating one at a time p50 {base_p50:.1} ms, p99 {base_p99:.1} ms; \
         the new migration (a table, two indexes) {:.2} ms/workspace",
        per(base_migrate, samples)
    );
    db.close().await;
    small.drop_now().await;

    let test_db = TestDatabase::new().await;
    let db = test_db.connect(concurrency as u32 + 2).await;
    let bulk = provision(&db, "client", workspaces, concurrency).await;
    println!(
        "provision + migrate {workspaces} workspaces (concurrency {concurrency}): total {:.2} s, {:.1} ms/workspace; {}",
        bulk.as_secs_f64(),
        per(bulk, workspaces),
        verdict(bulk, workspaces)
    );

    let create = one_at_a_time(&db, "late", samples).await;
    let (p50, p99) = (percentile(&create, 50.0), percentile(&create, 99.0));
    println!(
        "creating one workspace when {workspaces} exist, {samples} one at a time: p50 {p50:.1} ms, p99 {p99:.1} ms \
         ({:.2}x and {:.2}x the baseline's)",
        p50 / base_p50,
        p99 / base_p99
    );

    let all = workspaces + samples;
    let migrate = migrate_new_table(&db, all, concurrency).await;
    println!(
        "one new migration (a table, two indexes) on {all} workspaces (concurrency {concurrency}): total {:.2} s, \
         {:.2} ms/workspace, {:.2}x the baseline per workspace; {}",
        migrate.as_secs_f64(),
        per(migrate, all),
        per(migrate, all) / per(base_migrate, samples),
        verdict(migrate, all)
    );
    let started = Instant::now();
    let report = db.migrate_workspaces_with(&with_new_table(), concurrency, |_| {}).await.expect("migrate");
    assert_eq!(report.applied, 0);
    println!("idle re-run over {all} up-to-date workspaces: {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);

    // One pooled connection serving every workspace once.
    let every = db.workspaces().await.expect("workspaces");
    db.close().await;
    let unbounded = Recycling { max_lifetime: Duration::from_secs(24 * 60 * 60), max_uses: 0 };
    let kept = serve_all(test_db.url(), &every, unbounded).await;
    let growth = (kept.last.cache - kept.fresh.cache) as f64 / 1024.0 / every.len() as f64;
    println!("a pooled connection's server process, fresh: {}", kept.fresh.describe());
    println!(
        "  after serving all {} workspaces (one unit of work each, ten tables read), never replaced: {} \
         ({:.1}x fresh; +{growth:.0} KB of catalogue cache per workspace served); {:.2} ms per unit of work",
        every.len(),
        kept.last.describe(),
        kept.last.cache as f64 / kept.fresh.cache as f64,
        kept.per_unit
    );
    // A lifetime that runs out about ten times while serving them.
    let lifetime =
        Duration::from_secs_f64(kept.per_unit * every.len() as f64 / 1000.0 / 10.0).max(Duration::from_millis(50));
    let aged = serve_all(test_db.url(), &every, Recycling { max_lifetime: lifetime, max_uses: 0 }).await;
    println!(
        "  the same, max_lifetime {:.1} s (about a tenth of the pass): peak {} ({:.1}x fresh); {:.2}x the time per unit",
        lifetime.as_secs_f64(),
        aged.peak.describe(),
        aged.peak.cache as f64 / kept.fresh.cache as f64,
        aged.per_unit / kept.per_unit
    );
    let capped = serve_all(test_db.url(), &every, Recycling::DEFAULT).await;
    println!(
        "  the same, default recycling (max_uses {}, max_lifetime {} min): peak {} ({:.1}x fresh, {:.2} of the \
         never-replaced process); {:.2}x the time per unit",
        Recycling::DEFAULT.max_uses,
        Recycling::DEFAULT.max_lifetime.as_secs() / 60,
        capped.peak.describe(),
        capped.peak.cache as f64 / kept.fresh.cache as f64,
        capped.peak.cache as f64 / kept.last.cache as f64,
        capped.per_unit / kept.per_unit
    );

    test_db.drop_now().await;
}
