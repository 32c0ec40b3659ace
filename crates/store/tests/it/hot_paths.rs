//! Locks on the command path: what units of work of one workspace may hold
//! at once.

use std::time::Duration;

use anchor_store::{Database, Workspace, WorkspaceTx};
use anchor_testkit::TestDatabase;

use crate::{provision, sqlstate};

/// A unit of work of `workspace` whose lock waits give up after 300 ms.
async fn impatient(db: &Database, workspace: &Workspace) -> WorkspaceTx {
    db.begin_workspace_within(workspace, Duration::from_millis(300)).await.expect("begin")
}

/// The statement waited for a lock until the unit of work's limit ran out
/// (the lock or the statement timeout, whichever PostgreSQL checked first).
fn waited<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> bool {
    ["55P03", "57014"].contains(&sqlstate(result).as_str())
}

async fn schedule(tx: &mut WorkspaceTx, minutes: i32) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT platform.sla_schedule(now() + make_interval(mins => $1))")
        .bind(minutes)
        .execute(tx.conn())
        .await
        .map(drop)
}

async fn next_check_in_minutes(db: &Database, workspace: &Workspace) -> i64 {
    sqlx::query_scalar(
        "SELECT round(extract(epoch FROM next_check_at - now()) / 60)::bigint FROM platform.sla_schedule
          WHERE workspace_id = $1",
    )
    .bind(workspace.id())
    .fetch_one(db.pool())
    .await
    .expect("scheduled")
}

/// Planning SLA clocks (every new ticket does) used to hold the workspace's
/// entry in the SLA schedule until commit, so the workspace's commands ran
/// one after the other. Now units of work whose clocks come after the
/// entry's next look share it, while the recurring job still waits for
/// them, and an earlier clock still moves the entry.
#[tokio::test]
async fn units_of_work_planning_clocks_do_not_wait_for_each_other() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(8).await;
    let acme = provision(&db, "acme").await;

    let mut first = impatient(&db, &acme).await;
    schedule(&mut first, 60).await.expect("the first clock makes the entry");
    first.commit().await.expect("commit");

    // Two units of work planning later clocks, both still open: neither waits.
    let mut a = impatient(&db, &acme).await;
    schedule(&mut a, 120).await.expect("a later clock");
    let mut b = impatient(&db, &acme).await;
    schedule(&mut b, 180).await.expect("another later clock, while the first is open");

    // The job's exclusive hold waits for them (it must read their clocks).
    let mut job = impatient(&db, &acme).await;
    let held = sqlx::query("SELECT platform.sla_lock_schedule()").execute(job.conn()).await;
    assert!(waited(held), "the job waits for units of work that planned clocks");
    job.rollback().await.expect("rollback");
    a.commit().await.expect("commit");
    b.commit().await.expect("commit");
    assert_eq!(next_check_in_minutes(&db, &acme).await, 60, "later clocks leave the entry alone");

    // An earlier clock moves the entry, and holds it until it commits.
    let mut sooner = impatient(&db, &acme).await;
    schedule(&mut sooner, 10).await.expect("an earlier clock");
    let mut other = impatient(&db, &acme).await;
    assert!(waited(schedule(&mut other, 240).await), "moving the entry holds it");
    other.rollback().await.expect("rollback");
    sooner.commit().await.expect("commit");
    assert_eq!(next_check_in_minutes(&db, &acme).await, 10);

    // With the job holding the entry, a unit of work waits for it.
    let mut job = impatient(&db, &acme).await;
    sqlx::query("SELECT platform.sla_lock_schedule()").execute(job.conn()).await.expect("the job holds the entry");
    let mut late = impatient(&db, &acme).await;
    assert!(waited(schedule(&mut late, 300).await), "planning waits while the job runs");
    late.rollback().await.expect("rollback");
    job.rollback().await.expect("rollback");
}
