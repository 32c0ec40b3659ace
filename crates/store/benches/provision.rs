//! Provisions and migrates many workspaces, and applies one new migration to
//! all of them. Prints totals, per-workspace times, and ratios against a
//! baseline measured in the same run (the same work done one workspace at a
//! time), so figures stay comparable on a shared, noisy machine.
//!
//! `cargo bench -p anchor-store --bench provision` (debug build is fine:
//! the cost is in PostgreSQL). `ANCHOR_BENCH_WORKSPACES` (default 1000) and
//! `ANCHOR_BENCH_CONCURRENCY` (default 8) change the shape.

use std::time::{Duration, Instant};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_store::{
    Database,
    migrate::{Migration, WORKSPACE_MIGRATIONS},
};
use anchor_testkit::TestDatabase;
use futures_util::{StreamExt, stream};

const TARGET: Duration = Duration::from_secs(60);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn provision(db: &Database, prefix: &str, count: usize, concurrency: usize) -> Duration {
    let started = Instant::now();
    stream::iter(0..count)
        .map(|i| async move {
            let slug = WorkspaceSlug::parse(&format!("{prefix}-{i:05}")).expect("slug");
            let name = WorkspaceName::parse(&format!("Client {i}")).expect("name");
            db.create_workspace(&slug, &name).await.expect("provision");
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    started.elapsed()
}

fn per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / n as f64
}

fn verdict(d: Duration) -> &'static str {
    if d < TARGET { "within" } else { "OVER" }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let workspaces = env_usize("ANCHOR_BENCH_WORKSPACES", 1000);
    let concurrency = env_usize("ANCHOR_BENCH_CONCURRENCY", 8);
    let baseline_count = (workspaces / 10).max(10);
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(concurrency as u32 + 2).await;

    // Baseline: provisioning one workspace at a time.
    let baseline = provision(&db, "base", baseline_count, 1).await;
    let base_per = per(baseline, baseline_count);
    println!("baseline: provisioned {baseline_count} workspaces one at a time: {:.1} ms/workspace", base_per);

    let total = provision(&db, "client", workspaces, concurrency).await;
    let total_per = per(total, workspaces);
    println!(
        "provision + migrate {workspaces} workspaces (concurrency {concurrency}): total {:.2} s, {:.1} ms/workspace, \
         {:.2}x the baseline per workspace; {} the {} s target",
        total.as_secs_f64(),
        total_per,
        total_per / base_per,
        verdict(total),
        TARGET.as_secs()
    );

    // One new migration for every workspace: first one at a time (baseline),
    // then the next one with the parallel runner.
    let all = workspaces + baseline_count;
    let mut set = WORKSPACE_MIGRATIONS.to_vec();
    let shipped = WORKSPACE_MIGRATIONS.len() as i32;
    set.push(Migration::new(
        shipped + 1,
        "bench_contacts",
        "CREATE TABLE bench_contacts (id bigint PRIMARY KEY, email text NOT NULL);",
    ));
    let started = Instant::now();
    let report = db.migrate_workspaces_with(&set, 1, |_| {}).await.expect("migrate");
    let seq = started.elapsed();
    assert_eq!(report.applied as usize, all);

    set.push(Migration::new(
        shipped + 2,
        "bench_contacts_email",
        "ALTER TABLE bench_contacts ADD COLUMN phone text; CREATE INDEX ON bench_contacts (email);",
    ));
    let started = Instant::now();
    let report = db.migrate_workspaces_with(&set, concurrency, |_| {}).await.expect("migrate");
    let par = started.elapsed();
    assert_eq!(report.applied as usize, all);
    println!(
        "baseline: one new migration on {all} workspaces one at a time: total {:.2} s, {:.2} ms/workspace",
        seq.as_secs_f64(),
        per(seq, all)
    );
    println!(
        "one new migration on {all} workspaces (concurrency {concurrency}): total {:.2} s, {:.2} ms/workspace, \
         {:.2}x the baseline; {} the {} s target",
        par.as_secs_f64(),
        per(par, all),
        par.as_secs_f64() / seq.as_secs_f64(),
        verdict(par),
        TARGET.as_secs()
    );

    // Re-running finds nothing to do.
    let started = Instant::now();
    let report = db.migrate_workspaces_with(&set, concurrency, |_| {}).await.expect("migrate");
    assert_eq!(report.applied, 0);
    println!("idle re-run over {all} up-to-date workspaces: {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);

    db.close().await;
    test_db.drop_now().await;
}
