//! The database, not the query author, keeps workspaces apart.

use anchor_testkit::TestDatabase;

use crate::{provision, sqlstate};

const INSUFFICIENT_PRIVILEGE: &str = "42501";

#[tokio::test]
async fn a_workspace_unit_of_work_cannot_touch_another_workspace_or_the_platform() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    let alpha = provision(&db, "alpha").await;
    let beta = provision(&db, "beta").await;

    // Beta has data of its own.
    let mut tx = db.begin_workspace(&beta).await.expect("begin beta");
    sqlx::query("INSERT INTO workspace_settings (key, value) VALUES ('portal.greeting', '\"beta secret\"')")
        .execute(tx.conn())
        .await
        .expect("beta writes its own table");
    tx.commit().await.expect("commit");

    let mut tx = db.begin_workspace(&alpha).await.expect("begin alpha");
    // Its own table, by its unqualified name, works.
    sqlx::query("INSERT INTO workspace_settings (key, value) VALUES ('portal.greeting', '\"hello\"')")
        .execute(tx.conn())
        .await
        .expect("alpha writes its own table");
    let own: String =
        sqlx::query_scalar("SELECT value #>> '{}' FROM workspace_settings").fetch_one(tx.conn()).await.expect("read");
    assert_eq!(own, "hello");

    // Every attempt on beta's schema or the platform schema is refused by
    // PostgreSQL. Each is run in a savepoint so the transaction survives.
    let forbidden = [
        "SELECT * FROM ws_beta.workspace_settings",
        "INSERT INTO ws_beta.workspace_settings (key, value) VALUES ('x', '1')",
        "UPDATE ws_beta.workspace_settings SET value = '2'",
        "DELETE FROM ws_beta.workspace_settings",
        "SELECT * FROM platform.workspaces",
        "SELECT * FROM platform.installation",
        "SELECT * FROM platform.workspace_schema_migrations",
        "INSERT INTO platform.workspaces (slug, name, schema_name, db_role) VALUES ('evil', 'x', 'x', 'x')",
        "CREATE TABLE sneaky (id int)",
        "CREATE TABLE public.sneaky (id int)",
        "CREATE TEMP TABLE sneaky (id int)",
    ];
    for sql in forbidden {
        sqlx::query("SAVEPOINT probe").execute(tx.conn()).await.expect("savepoint");
        let code = sqlstate(sqlx::query(sql).execute(tx.conn()).await);
        assert_eq!(code, INSUFFICIENT_PRIVILEGE, "{sql} must fail with insufficient_privilege, got {code}");
        sqlx::query("ROLLBACK TO SAVEPOINT probe").execute(tx.conn()).await.expect("rollback to savepoint");
    }
    tx.commit().await.expect("commit alpha");

    // Beta's data is untouched; the intended path to the platform tables (the
    // store, as the application role) still works.
    let mut tx = db.begin_workspace(&beta).await.expect("begin beta");
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT value #>> '{}' FROM workspace_settings").fetch_all(tx.conn()).await.expect("read");
    assert_eq!(rows, ["beta secret"]);
    tx.rollback().await.expect("rollback");
    let slugs: Vec<String> = db.workspaces().await.expect("registry").iter().map(|w| w.slug().to_string()).collect();
    assert_eq!(slugs, ["alpha", "beta"]);

    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn the_role_switch_ends_with_the_transaction() {
    let test_db = TestDatabase::new().await;
    // One connection, so every unit of work below reuses the same session.
    let db = test_db.connect(1).await;
    let alpha = provision(&db, "alpha").await;
    let app_role: String = sqlx::query_scalar("SELECT current_user").fetch_one(db.pool()).await.expect("role");

    let mut tx = db.begin_workspace(&alpha).await.expect("begin");
    let row: (String, String) = sqlx::query_as("SELECT current_user::text, current_setting('search_path')")
        .fetch_one(tx.conn())
        .await
        .expect("read");
    assert_eq!(row.0, alpha.db_role());
    assert_eq!(row.1, "\"ws_alpha\", pg_temp");
    tx.commit().await.expect("commit");
    assert_eq!(
        sqlx::query_scalar::<_, String>("SELECT current_user::text").fetch_one(db.pool()).await.expect("read"),
        app_role
    );

    // Also after a failed and dropped unit of work.
    {
        let mut tx = db.begin_workspace(&alpha).await.expect("begin");
        let _ = sqlx::query("SELECT * FROM platform.workspaces").execute(tx.conn()).await;
    }
    let row: (String, String) = sqlx::query_as("SELECT current_user::text, current_setting('search_path')")
        .fetch_one(db.pool())
        .await
        .expect("read");
    assert_eq!(row.0, app_role);
    assert!(!row.1.contains("ws_alpha"));

    db.close().await;
    test_db.drop_now().await;
}
