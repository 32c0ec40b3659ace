//! Outbox dispatch rate against the raw `FOR UPDATE SKIP LOCKED` claim rate
//! at the same batch size, measured in the same run on the same data.
//! Target: the dispatcher reaches at least 50% of the raw rate.
//!
//! The two alternate over a few rounds (baseline, dispatcher, baseline, ...)
//! on a fresh load of events each, and the median of the rounds' ratios is
//! the figure: a shared machine's speed drifts, and a ratio of two phases
//! seconds apart would measure the drift as much as the dispatcher.
//!
//! `cargo bench -p anchor-outbox --bench dispatch` (the release profile: a
//! speed target is measured on what ships; the baseline is one SQL statement
//! and gains nothing from it);
//! `ANCHOR_BENCH_EVENTS` (default 20000), `ANCHOR_BENCH_WORKSPACES` (20),
//! `ANCHOR_BENCH_ROUNDS` (5).

use std::time::{Duration, Instant};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_outbox::{Dispatcher, DispatcherConfig, Handlers, OutboxStats};
use anchor_store::Database;
use anchor_testkit::TestDatabase;
use tokio_util::sync::CancellationToken;

const BATCH: i64 = 64;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A fresh load of `events` pending events spread over the workspaces.
async fn load(db: &Database, workspaces: &[i64], events: usize) {
    sqlx::query("DELETE FROM platform.outbox_events").execute(db.pool()).await.expect("clear");
    sqlx::query(
        "INSERT INTO platform.outbox_events (workspace_id, topic, payload)
         SELECT ($1::bigint[])[1 + (g % array_length($1::bigint[], 1))], 'bench.noop', jsonb_build_object('n', g)
           FROM generate_series(1, $2) g",
    )
    .bind(workspaces)
    .bind(events as i64)
    .execute(db.pool())
    .await
    .expect("seed");
    sqlx::query("VACUUM ANALYZE platform.outbox_events").execute(db.pool()).await.expect("vacuum");
}

/// The baseline: claim and mark with one bare statement per batch, given its
/// ideal index.
async fn raw_claims(db: &Database) -> Duration {
    sqlx::query("CREATE INDEX bench_raw_claim ON platform.outbox_events (id) WHERE state = 'pending'")
        .execute(db.pool())
        .await
        .expect("baseline index");
    let started = Instant::now();
    loop {
        let done = sqlx::query(
            "UPDATE platform.outbox_events SET state = 'delivered', delivered_at = now()
              WHERE id IN (SELECT id FROM platform.outbox_events WHERE state = 'pending'
                            ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind(BATCH)
        .execute(db.pool())
        .await
        .expect("raw claim");
        if done.rows_affected() == 0 {
            break;
        }
    }
    let elapsed = started.elapsed();
    sqlx::query("DROP INDEX platform.bench_raw_claim").execute(db.pool()).await.expect("drop baseline index");
    elapsed
}

/// The dispatcher as it runs in production (its default configuration:
/// batches of 64, at most 16 events of one workspace each): claims (fair
/// across workspaces, leased, committed), delivers to a handler that does
/// nothing, marks delivered.
async fn dispatch(db: &Database, events: usize) -> Duration {
    let handlers = Handlers::new().on("bench.noop", |_| async { Ok(()) });
    let config = DispatcherConfig { worker_id: "bench".to_owned(), ..DispatcherConfig::default() };
    assert_eq!(config.batch_size, BATCH, "the same batch size as the baseline");
    let dispatcher = Dispatcher::new(db.clone(), handlers, config);
    let never = CancellationToken::new();
    let started = Instant::now();
    while dispatcher.run_batch(&never).await.expect("batch") > 0 {}
    let elapsed = started.elapsed();
    let stats = OutboxStats::read(db).await.expect("stats");
    assert_eq!(stats.delivered, events as i64, "every event delivered");
    elapsed
}

#[tokio::main]
async fn main() {
    let events = env_usize("ANCHOR_BENCH_EVENTS", 20_000);
    let workspaces = env_usize("ANCHOR_BENCH_WORKSPACES", 20);
    let rounds = env_usize("ANCHOR_BENCH_ROUNDS", 5).max(1);
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(8).await;
    let mut ids = Vec::new();
    for i in 0..workspaces {
        let slug = WorkspaceSlug::parse(&format!("client-{i:03}")).expect("slug");
        ids.push(
            db.create_workspace(&slug, &WorkspaceName::parse("Client").expect("name")).await.expect("workspace").id(),
        );
    }
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        load(&db, &ids, events).await;
        let raw = rate(raw_claims(&db).await);
        load(&db, &ids, events).await;
        let ours = rate(dispatch(&db, events).await);
        println!(
            "round {round}: raw SKIP LOCKED claim+mark, batch {BATCH}: {raw:.0} events/s; \
             dispatcher, {workspaces} workspaces: {ours:.0} events/s = {:.0}%",
            100.0 * ours / raw
        );
        ratios.push(ours / raw);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "dispatcher, batch {BATCH}, {workspaces} workspaces, {events} events: median {:.0}% of the raw claim rate \
         over {rounds} alternating rounds (target >= 50%: {})",
        100.0 * median,
        if median >= 0.5 { "met" } else { "NOT met" }
    );
    db.close().await;
    test_db.drop_now().await;
}
