//! Issuing under contention: many credentials of one workspace at once,
//! through a pool smaller than the number of issuers, all get issued and
//! chained (an issuer never needs a second connection while it holds the
//! chain, so issuers waiting for the chain cannot starve the one holding it).

use std::time::Duration;

use anchor_crypto::seal::MasterKey;
use anchor_domain::{Role, WorkspaceName, WorkspaceSlug};
use anchor_evidence::{issue::Issuer, keys::IssuerKeys, store::EvidenceStore, verify};
use anchor_store::{changes::NewChange, executions::Actor};
use anchor_testkit::TestDatabase;
use serde_json::json;

#[tokio::test]
async fn concurrent_issuers_on_a_small_pool_all_finish_and_chain() {
    const CHANGES: usize = 8;
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(2).await;
    let workspace = db
        .create_workspace(&WorkspaceSlug::parse("acme").expect("slug"), &WorkspaceName::parse("Acme").expect("name"))
        .await
        .expect("workspace");
    let actor = Actor { issuer: "urn:anchor:dev-issuer".into(), subject: "mia".into() };
    let mut ids = Vec::new();
    let mut tx = db.begin_workspace(&workspace).await.expect("begin");
    for n in 0..CHANGES {
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
