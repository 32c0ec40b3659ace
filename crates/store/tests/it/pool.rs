//! Pooled connections are replaced before their server processes' catalogue
//! caches, which grow with every workspace schema they serve, grow without
//! bound.

use std::{collections::BTreeMap, time::Duration};

use anchor_store::{Database, Recycling};
use anchor_testkit::TestDatabase;

use crate::provision;

async fn backend(db: &Database) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(db.pool()).await.expect("pid")
}

/// How many of `pids` each server process answered.
fn uses(pids: &[i32]) -> BTreeMap<i32, usize> {
    pids.iter().fold(BTreeMap::new(), |mut uses, pid| {
        *uses.entry(*pid).or_default() += 1;
        uses
    })
}

#[tokio::test]
async fn a_connection_is_replaced_after_its_uses_whatever_they_ended_in() {
    let test_db = TestDatabase::new().await;
    let setup = test_db.connect(2).await;
    let ws = provision(&setup, "acme").await;
    setup.close().await;

    // One connection, so each unit of work below checks out the same one
    // until it is replaced.
    let recycling = Recycling { max_lifetime: Duration::from_secs(3600), max_uses: 3 };
    let db = Database::connect_with(test_db.url(), 1, recycling).await.expect("connect");
    assert_eq!(db.pool().options().get_max_lifetime(), Some(Duration::from_secs(3600)));
    let mut pids: Vec<i32> = Vec::new();
    for _ in 0..4 {
        // Committed, rolled back, and dropped without an end: each is a use.
        let mut tx = db.begin_workspace(&ws).await.expect("begin");
        pids.push(sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(tx.conn()).await.expect("pid"));
        tx.commit().await.expect("commit");
        let pid = db
            .read(&ws, |tx| {
                Box::pin(async move { Ok(sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(tx.conn()).await?) })
            })
            .await
            .expect("read");
        pids.push(pid);
        let mut tx = db.begin_workspace(&ws).await.expect("begin");
        pids.push(sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(tx.conn()).await.expect("pid"));
        let _ = sqlx::query("SELECT * FROM platform.workspaces").execute(tx.conn()).await;
        drop(tx);
    }
    // 12 uses, 3 per server process: a rolled back or abandoned unit of
    // work counts like a committed one.
    let uses = uses(&pids);
    assert_eq!(uses.values().copied().collect::<Vec<_>>(), [3, 3, 3, 3], "{uses:?}");

    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn the_default_pool_replaces_a_connection_after_about_the_default_uses() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(1).await;
    assert_eq!(db.pool().options().get_max_lifetime(), Some(Recycling::DEFAULT.max_lifetime));
    let max_uses = Recycling::DEFAULT.max_uses as usize;
    assert!(max_uses > 0, "the default caps uses");
    let mut pids = Vec::with_capacity(4 * max_uses);
    for _ in 0..4 * max_uses {
        pids.push(backend(&db).await);
    }
    // The default cap is counted by sampling (one release in 12, as 12
    // uses): a connection outlives three times the cap with a probability
    // below one in a million.
    assert_eq!(Recycling::DEFAULT.sampling(), 12);
    let uses = uses(&pids);
    assert!(uses.len() >= 2, "the one connection must have been replaced: {uses:?}");
    assert!(uses.values().all(|&n| n <= 3 * max_uses), "{uses:?}");

    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn no_cap_keeps_the_connection() {
    let test_db = TestDatabase::new().await;
    let recycling = Recycling { max_uses: 0, ..Recycling::DEFAULT };
    let db = Database::connect_with(test_db.url(), 1, recycling).await.expect("connect");
    let mut pids = Vec::new();
    for _ in 0..20 {
        pids.push(backend(&db).await);
    }
    assert_eq!(uses(&pids).len(), 1);

    db.close().await;
    test_db.drop_now().await;
}

/// A caller that goes away while its unit of work is beginning (a closed
/// page's stream, a timeout) leaves the pooled connection as it found it:
/// the next user of the one connection is in no transaction and has no
/// workspace role. (sqlx alone left it inside the transaction, role set.)
#[tokio::test]
async fn a_unit_of_work_abandoned_while_it_begins_leaves_no_transaction_behind() {
    let test_db = TestDatabase::new().await;
    let setup = test_db.connect(2).await;
    let ws = provision(&setup, "acme").await;
    setup.close().await;
    let db = Database::connect_with(test_db.url(), 1, Recycling::default()).await.expect("connect");
    for round in 0..20 {
        // Polled once (the BEGIN is sent), then dropped.
        let abandoned = tokio::time::timeout(Duration::from_micros(1), db.begin_workspace(&ws)).await;
        if let Ok(tx) = abandoned {
            tx.expect("begin").discard();
        }
        let mut conn = db.pool().acquire().await.expect("the next use");
        let role: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(&mut *conn).await.expect("role");
        assert!(!role.contains("_ws_"), "round {round}: the connection kept the workspace role {role}");
        // A savepoint is refused outside a transaction block.
        let savepoint = sqlx::raw_sql("SAVEPOINT probe").execute(&mut *conn).await;
        assert!(savepoint.is_err(), "round {round}: the connection was left inside a transaction");
    }
    db.close().await;
}
