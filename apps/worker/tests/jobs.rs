//! The worker's recurring housekeeping, against a real database.

use std::time::Duration;

use anchor_testkit::TestDatabase;

/// The access audit log is pruned past its retention, by the recurring job
/// the worker runs, and nothing younger is touched.
#[tokio::test]
async fn the_access_audit_is_pruned_past_its_retention() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    for age in ["400 days", "31 days", "29 days", "1 minute"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO platform.access_audit (occurred_at, action, outcome, detail)
             VALUES (now() - interval '{age}', 'authenticate', 'failure', '{{\"age\": \"{age}\"}}')"
        )))
        .execute(db.pool())
        .await
        .expect("seed");
    }
    let retention = Duration::from_secs(30 * 24 * 60 * 60);
    let jobs: Vec<_> =
        anchor_worker::recurring_jobs(retention).into_iter().filter(|j| j.name == "access_audit.prune").collect();
    assert_eq!(jobs.len(), 1, "the worker runs an access audit pruning job");
    anchor_outbox::register_jobs(&db, &jobs).await.expect("register");
    sqlx::query("UPDATE platform.recurring_jobs SET next_run_at = now()").execute(db.pool()).await.expect("due");
    assert_eq!(anchor_outbox::run_due_jobs(&db, &jobs).await.expect("run"), ["access_audit.prune"]);

    let left: Vec<String> = sqlx::query_scalar("SELECT detail->>'age' FROM platform.access_audit ORDER BY occurred_at")
        .fetch_all(db.pool())
        .await
        .expect("read");
    assert_eq!(left, ["29 days", "1 minute"]);
    let error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM platform.recurring_jobs WHERE name = 'access_audit.prune'")
            .fetch_one(db.pool())
            .await
            .expect("job");
    assert_eq!(error, None);
    db.close().await;
    test_db.drop_now().await;
}
