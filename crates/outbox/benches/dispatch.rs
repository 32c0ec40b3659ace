//! Outbox dispatch rate against the raw `FOR UPDATE SKIP LOCKED` claim rate
//! at the same batch size, measured in the same run on the same data.
//! Target: the dispatcher reaches at least 50% of the raw rate.
//!
//! `cargo bench -p anchor-outbox --bench dispatch --profile dev`;
//! `ANCHOR_BENCH_EVENTS` (default 20000) and `ANCHOR_BENCH_WORKSPACES` (20).

use std::time::{Duration, Instant};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_outbox::{Dispatcher, DispatcherConfig, Handlers, OutboxStats};
use anchor_testkit::TestDatabase;
use tokio_util::sync::CancellationToken;

const BATCH: i64 = 64;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let events = env_usize("ANCHOR_BENCH_EVENTS", 20_000);
    let workspaces = env_usize("ANCHOR_BENCH_WORKSPACES", 20);
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(8).await;
    let mut ids = Vec::new();
    for i in 0..workspaces {
        let slug = WorkspaceSlug::parse(&format!("client-{i:03}")).expect("slug");
        ids.push(
            db.create_workspace(&slug, &WorkspaceName::parse("Client").expect("name")).await.expect("workspace").id(),
        );
    }
    sqlx::query(
        "INSERT INTO platform.outbox_events (workspace_id, topic, payload)
         SELECT ($1::bigint[])[1 + (g % array_length($1::bigint[], 1))], 'bench.noop', jsonb_build_object('n', g)
           FROM generate_series(1, $2) g",
    )
    .bind(&ids)
    .bind(events as i64)
    .execute(db.pool())
    .await
    .expect("seed");

    // Baseline: claim a batch with SKIP LOCKED and mark it done, nothing else,
    // with the index that suits exactly that query (dropped afterwards).
    sqlx::query("CREATE INDEX bench_raw_claim ON platform.outbox_events (id) WHERE state = 'pending'")
        .execute(db.pool())
        .await
        .expect("baseline index");
    sqlx::query("VACUUM ANALYZE platform.outbox_events").execute(db.pool()).await.expect("vacuum");
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
    let raw = started.elapsed();
    sqlx::query("DROP INDEX platform.bench_raw_claim").execute(db.pool()).await.expect("drop baseline index");
    sqlx::query("UPDATE platform.outbox_events SET state = 'pending', delivered_at = NULL, attempts = 0")
        .execute(db.pool())
        .await
        .expect("reset");
    sqlx::query("VACUUM ANALYZE platform.outbox_events").execute(db.pool()).await.expect("vacuum");

    // The dispatcher: fair claim, lease, handler call, settle.
    let handlers = Handlers::new().on("bench.noop", |_| async { Ok(()) });
    let config = DispatcherConfig {
        worker_id: "bench".to_owned(),
        batch_size: BATCH,
        per_workspace: BATCH,
        lease: Duration::from_secs(60),
        poll_interval: Duration::from_secs(1),
        concurrency: 16,
        shutdown_grace: Duration::from_secs(1),
    };
    let dispatcher = Dispatcher::new(db.clone(), handlers, config);
    let never = CancellationToken::new();
    let started = Instant::now();
    while dispatcher.run_batch(&never).await.expect("batch") > 0 {}
    let dispatched = started.elapsed();
    let stats = OutboxStats::read(&db).await.expect("stats");
    assert_eq!(stats.delivered, events as i64);

    let raw_rate = events as f64 / raw.as_secs_f64();
    let rate = events as f64 / dispatched.as_secs_f64();
    println!(
        "baseline: raw SKIP LOCKED claim+mark, batch {BATCH}: {events} events in {:.2} s = {raw_rate:.0} events/s",
        raw.as_secs_f64()
    );
    println!(
        "dispatcher, batch {BATCH}, {workspaces} workspaces: {events} events in {:.2} s = {rate:.0} events/s = {:.0}% of the baseline (target >= 50%)",
        dispatched.as_secs_f64(),
        100.0 * rate / raw_rate
    );
    db.close().await;
    test_db.drop_now().await;
}
