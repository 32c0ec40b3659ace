use anchor_domain::WorkspaceName;

use anchor_store::StoreError;
use anchor_testkit::TestDatabase;

use crate::{provision, slug};

#[tokio::test]
async fn provisioning_creates_schema_role_and_tables_once() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    let ws = provision(&db, "acme-corp").await;
    assert_eq!(ws.schema_name(), "ws_acme_corp");
    assert_eq!(ws.schema_version(), anchor_store::migrate::WORKSPACE_MIGRATIONS.len() as i32);
    assert!(ws.db_role().ends_with("_ws_acme_corp"));

    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('ws_acme_corp.workspace_settings')::text")
        .fetch_one(db.pool())
        .await
        .expect("lookup");
    assert_eq!(table.as_deref(), Some("ws_acme_corp.workspace_settings"));
    let can_login: bool = sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
        .bind(ws.db_role())
        .fetch_one(db.pool())
        .await
        .expect("role exists");
    assert!(!can_login, "workspace roles never log in");

    let again = db.create_workspace(&slug("acme-corp"), &WorkspaceName::parse("Again").expect("name")).await;
    assert!(matches!(again, Err(StoreError::WorkspaceExists(_))), "{again:?}");
    assert_eq!(db.workspaces().await.expect("list").len(), 1);

    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn racing_creations_of_one_slug_make_one_workspace() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(8).await;
    let name = WorkspaceName::parse("Contoso").expect("name");
    let contoso = slug("contoso");
    let attempts = (0..6).map(|_| db.create_workspace(&contoso, &name));
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    let exists = results.iter().filter(|r| matches!(r, Err(StoreError::WorkspaceExists(_)))).count();
    assert_eq!((created, exists), (1, 5), "{results:?}");

    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn many_workspaces_can_be_provisioned_at_once() {
    // Provisioning in parallel must not contend on shared privileges
    // (concurrent GRANTs on one object fail with "tuple concurrently updated").
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(8).await;
    let slugs: Vec<_> = (0..24).map(|i| slug(&format!("parallel-{i:02}"))).collect();
    let name = WorkspaceName::parse("Parallel").expect("name");
    let results = futures_util::future::join_all(slugs.iter().map(|s| db.create_workspace(s, &name))).await;
    for result in results {
        result.expect("each provisioning succeeds");
    }
    assert_eq!(db.workspaces().await.expect("list").len(), 24);
    db.close().await;
    test_db.drop_now().await;
}
