//! `anchor account`: local staff accounts, and what disabling one does to
//! the sessions it has.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
    time::Duration,
};

use anchor_store::{Database, sessions::LOCAL_ISSUER};
use anchor_testkit::TestDatabase;
use secrecy::ExposeSecret;

fn anchor(db: &TestDatabase, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_anchor"));
    for var in ["ANCHOR_DATABASE_URL", "ANCHOR_DATA_DIR", "ANCHOR_CONFIG"] {
        command.env_remove(var);
    }
    let mut child = command
        .args(args)
        .env("DATABASE_URL", db.url().expose_secret())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run anchor");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}

async fn sessions(store: &Database, subject: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM platform.web_sessions WHERE issuer = $1 AND subject = $2")
        .bind(LOCAL_ISSUER)
        .bind(subject)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn disabling_an_account_ends_its_sessions_and_enabling_it_lets_it_sign_in_again() {
    let db = TestDatabase::empty().await;
    for name in ["alice", "bob"] {
        let out = anchor(&db, &["account", "create", name, "--password-stdin"], Some("correct horse battery\n"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let store = db.connect(2).await;
    let hour = Duration::from_secs(3600);
    for (token, subject) in [("alice-1", "alice"), ("alice-2", "alice"), ("bob-1", "bob")] {
        store.create_session(token, LOCAL_ISSUER, subject, "csrf", hour).await.expect("session");
    }

    let out = anchor(&db, &["account", "disable", "alice"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "disabled account alice; its sessions have ended");
    assert_eq!(sessions(&store, "alice").await, 0);
    assert_eq!(sessions(&store, "bob").await, 1, "other accounts keep theirs");
    assert!(store.local_account("alice").await.expect("read").expect("alice").disabled);
    assert!(store.session("bob-1", hour).await.expect("session").is_some());

    let out = anchor(&db, &["account", "enable", "alice"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!store.local_account("alice").await.expect("read").expect("alice").disabled);

    let out = anchor(&db, &["account", "disable", "nobody"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account \"nobody\""), "{out:?}");
    store.close().await;
    db.drop_now().await;
}
