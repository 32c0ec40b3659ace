//! Issuing under contention: many credentials of one workspace at once,
//! through a pool smaller than the number of issuers, all get issued and
//! chained (an issuer never needs a second connection while it holds the
//! chain, so issuers waiting for the chain cannot starve the one holding it).

use std::time::Duration;

use anchor_crypto::seal::MasterKey;
use anchor_domain::{ChangeId, Role, WorkspaceName, WorkspaceSlug};
use anchor_evidence::{issue::Issuer, keys::IssuerKeys, store::EvidenceStore, verify};
use anchor_store::{Database, Workspace, changes::NewChange, executions::Actor};
use anchor_testkit::TestDatabase;
use serde_json::json;

async fn acme(db: &Database) -> Workspace {
    db.create_workspace(&WorkspaceSlug::parse("acme").expect("slug"), &WorkspaceName::parse("Acme").expect("name"))
        .await
        .expect("workspace")
}

/// `count` administrative changes, recorded in one unit of work.
async fn record_changes(db: &Database, workspace: &Workspace, count: usize) -> Vec<ChangeId> {
    let actor = Actor { issuer: "urn:anchor:dev-issuer".into(), subject: "mia".into() };
    let mut tx = db.begin_workspace(workspace).await.expect("begin");
    let mut ids = Vec::new();
    for n in 0..count {
        let target = format!("rul_{n}");
        let change = NewChange {
            action: "alert_rule.created",
            target: &target,
            actor: &actor,
            actor_role: Some(Role::MspAdmin),
            details: json!({"n": n}),
        };
        ids.push(anchor_evidence::issue::record_change(&mut tx, &change).await.expect("record"));
    }
    tx.commit().await.expect("commit");
    ids
}

#[tokio::test]
async fn concurrent_issuers_on_a_small_pool_all_finish_and_chain() {
    const CHANGES: usize = 8;
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(2).await;
    let workspace = acme(&db).await;
    let ids = record_changes(&db, &workspace, CHANGES).await;

    let dir = tempfile::tempdir().expect("dir");
    let keys = IssuerKeys::new(db.clone(), MasterKey::from_bytes([7; 32]));
    let store = EvidenceStore::Local(dir.path().to_path_buf());
    let issuer = Issuer::new(db.clone(), keys.clone(), store.clone());
    let issuing = futures_util::future::join_all(ids.iter().map(|id| issuer.issue_change(&workspace, *id)));
    let issued = tokio::time::timeout(Duration::from_secs(30), issuing).await.expect("no issuer starves the others");
    assert!(issued.iter().all(|r| matches!(r, Ok(Some(_)))), "{issued:?}");

    let published = keys.published().await.expect("keys");
    let report = verify::verify_chain(&db, &store, &published, &workspace).await.expect("check");
    assert!(report.valid, "{report:?}");
    assert_eq!(report.checked, CHANGES as i64);
    db.close().await;
    test_db.drop_now().await;
}

/// A chain check holds no pooled connection while it reads the documents:
/// one credential's document is a FIFO, so the check waits on it for as
/// long as the test wants, and the pool is watched meanwhile.
#[tokio::test]
async fn a_chain_check_holds_no_connection_while_it_reads_documents() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(2).await;
    let workspace = acme(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let keys = IssuerKeys::new(db.clone(), MasterKey::from_bytes([7; 32]));
    let store = EvidenceStore::Local(dir.path().to_path_buf());
    let issuer = Issuer::new(db.clone(), keys.clone(), store.clone());
    for id in record_changes(&db, &workspace, 3).await {
        issuer.issue_change(&workspace, id).await.expect("issued").expect("a credential");
    }
    let second = {
        let mut tx = db.begin_workspace(&workspace).await.expect("begin");
        let rows = tx.evidence_after(1, 1).await.expect("index");
        tx.rollback().await.expect("rollback");
        dir.path().join(&rows[0].object_key)
    };
    let document = std::fs::read(&second).expect("document");
    std::fs::remove_file(&second).expect("remove");
    let made = std::process::Command::new("mkfifo").arg(&second).status().expect("mkfifo");
    assert!(made.success());

    let published = keys.published().await.expect("keys");
    let pool = db.pool();
    let in_use = || pool.size() - pool.num_idle() as u32;
    // Connections given back a moment ago are returned by a task: let them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = in_use();
    let check = tokio::spawn({
        let (db, store, workspace) = (db.clone(), store.clone(), workspace.clone());
        async move { verify::verify_chain(&db, &store, &published, &workspace).await }
    });
    // Opening the FIFO for writing returns once the check opened it to read.
    let writer = tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).open(second));
    let mut writer =
        tokio::time::timeout(Duration::from_secs(30), writer).await.expect("the check reads").expect("join");
    // The check waits on the FIFO for as long as we do; a connection it gave
    // back just before is returned to the pool by a task of its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while in_use() > before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(in_use() <= before, "no connection is held while documents are read: {} > {before}", in_use());
    std::io::Write::write_all(writer.as_mut().expect("open"), &document).expect("write");
    drop(writer);
    let report = check.await.expect("join").expect("check");
    assert!(report.valid && report.checked == 3, "{report:?}");
    db.close().await;
    test_db.drop_now().await;
}
