//! The migration runner: idempotent, concurrent-safe, refuses drift.

use std::sync::{Arc, Mutex};

use anchor_store::{
    StoreError,
    migrate::{self, Migration, WORKSPACE_MIGRATIONS},
};
use anchor_testkit::TestDatabase;

use crate::provision;

fn with_extra(extra: &[Migration]) -> Vec<Migration> {
    let mut set = WORKSPACE_MIGRATIONS.to_vec();
    set.extend_from_slice(extra);
    set
}

/// The newest migration this binary ships; the probes come after it.
fn shipped() -> i32 {
    WORKSPACE_MIGRATIONS.len() as i32
}

fn probe() -> Migration {
    Migration::new(shipped() + 1, "probe", "CREATE TABLE probe (id bigint PRIMARY KEY, subject text NOT NULL);")
}

fn probe_index() -> Migration {
    Migration::new(shipped() + 2, "probe_subject", "CREATE INDEX probe_subject ON probe (subject);")
}

#[tokio::test]
async fn two_runners_at_once_apply_each_migration_exactly_once() {
    let test_db = TestDatabase::new().await;
    let setup = test_db.connect(8).await;
    for i in 0..30 {
        provision(&setup, &format!("client-{i:02}")).await;
    }
    // Two pools stand for two processes: separate sessions, same database.
    let (one, two) = (test_db.connect(4).await, test_db.connect(4).await);
    let set = with_extra(&[probe(), probe_index()]);
    let (a, b) =
        tokio::join!(one.migrate_workspaces_with(&set, 4, |_| {}), two.migrate_workspaces_with(&set, 4, |_| {}));
    let (a, b) = (a.expect("runner one"), b.expect("runner two"));
    assert_eq!(
        a.applied + b.applied,
        60,
        "30 workspaces x 2 new migrations, each applied by exactly one runner: {a:?} {b:?}"
    );

    let per_version: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT version, count(*) FROM platform.workspace_schema_migrations GROUP BY version ORDER BY version",
    )
    .fetch_all(setup.pool())
    .await
    .expect("count");
    let expected: Vec<(i32, i64)> = (1..=shipped() + 2).map(|v| (v, 30)).collect();
    assert_eq!(per_version, expected);
    let indexes: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'probe_subject'")
        .fetch_one(setup.pool())
        .await
        .expect("count");
    assert_eq!(indexes, 30);

    // Idempotent: a third run finds nothing to do.
    let again = one.migrate_workspaces_with(&set, 4, |_| {}).await.expect("rerun");
    assert_eq!((again.behind, again.applied), (0, 0));
    for db in [setup, one, two] {
        db.close().await;
    }
    test_db.drop_now().await;
}

#[tokio::test]
async fn progress_is_reported_for_every_workspace() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    for i in 0..5 {
        provision(&db, &format!("shop-{i}")).await;
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let report = db
        .migrate_workspaces_with(&with_extra(&[probe()]), 2, {
            let seen = Arc::clone(&seen);
            move |p| seen.lock().expect("lock").push((p.done, p.total))
        })
        .await
        .expect("migrate");
    assert_eq!(report.behind, 5);
    let mut seen = seen.lock().expect("lock").clone();
    seen.sort_unstable();
    assert_eq!(seen, [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]);
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn an_edited_or_unknown_migration_is_refused() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    provision(&db, "acme").await;
    db.migrate_workspaces_with(&with_extra(&[probe()]), 2, |_| {}).await.expect("migrate");

    let edited = Migration::new(shipped() + 1, "probe", "CREATE TABLE probe (id int);");
    let err = db.migrate_workspaces_with(&with_extra(&[edited]), 2, |_| {}).await.expect_err("drift");
    assert!(matches!(&err, StoreError::ChecksumMismatch { version, .. } if *version == shipped() + 1), "{err}");
    assert!(err.to_string().contains("workspace acme"), "{err}");

    // A binary that knows fewer migrations than the schema has must not run.
    let err = db.migrate_workspaces_with(WORKSPACE_MIGRATIONS, 2, |_| {}).await.expect_err("older binary");
    assert!(
        matches!(err, StoreError::SchemaNewerThanBinary { applied, known, .. } if applied == shipped() + 1 && known == shipped()),
        "{err}"
    );
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn a_failing_migration_leaves_the_workspace_as_it_was() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    let ws = provision(&db, "acme").await;
    let broken = Migration::new(shipped() + 1, "broken", "CREATE TABLE fine (id int); SELECT no_such_function();");
    let err = db.migrate_workspaces_with(&with_extra(&[broken]), 2, |_| {}).await.expect_err("fails");
    assert!(matches!(&err, StoreError::MigrationFailed { version, .. } if *version == shipped() + 1), "{err}");
    let fine: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('ws_acme.fine')::text").fetch_one(db.pool()).await.expect("q");
    assert_eq!(fine, None, "the failed migration's transaction rolled back");
    let ws = db.workspace(ws.slug()).await.expect("q").expect("exists");
    assert_eq!(ws.schema_version(), shipped());
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn platform_migrations_are_safe_to_run_concurrently() {
    let test_db = TestDatabase::empty().await;
    let db = test_db.connect(8).await;
    assert!(matches!(
        migrate::check_platform_current(db.pool()).await,
        Err(StoreError::PlatformBehind { applied: 0, .. })
    ));
    let runs = futures_util::future::join_all((0..4).map(|_| migrate::migrate_platform(db.pool()))).await;
    let applied: u32 = runs.into_iter().map(|r| r.expect("migrates")).sum();
    assert_eq!(applied, migrate::PLATFORM_MIGRATIONS.len() as u32);
    migrate::check_platform_current(db.pool()).await.expect("current");
    db.close().await;
    test_db.drop_now().await;
}
