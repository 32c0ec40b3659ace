//! Every finished execution gets a signed credential, chained per
//! workspace; the chain check finds what was altered, removed or reordered.

use std::time::Duration;

use anchor_domain::Role;
use anchor_evidence::verify::verify_credential;
use serde_json::{Value, json};

use anchor_commands::{Command, CommandSigner, accept, callback::CallbackKey};
use anchor_store::executions::Actor;

use crate::{Options, Platform, location};

/// The credential of the execution at `execution` (a path), once issued.
async fn credential(platform: &Platform, execution: &str, subject: &str) -> Value {
    let url = platform.url(&format!("{execution}/evidence"));
    for _ in 0..400 {
        let response = platform.client.get(&url).bearer_auth(platform.token(subject)).send().await.expect("get");
        if response.status() == 200 {
            assert_eq!(
                response.headers().get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/vc+json")
            );
            return response.json().await.expect("json");
        }
        assert_eq!(response.status(), 404, "not issued yet, or issued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no credential for {execution}");
}

async fn open_ticket(platform: &Platform, slug: &str, title: &str) -> String {
    let response = platform
        .post(
            &format!("/api/v1/workspaces/{slug}/tickets"),
            "tess",
            &json!({"title": title, "priority": "p2"}),
            Some(20),
        )
        .await;
    assert_eq!(response.status(), 200);
    location(&response)
}

async fn chain(platform: &Platform, slug: &str) -> Value {
    platform.get(&format!("/api/v1/workspaces/{slug}/evidence/chain/verify"), "audrey").await
}

#[tokio::test]
async fn finished_executions_get_chained_credentials_anyone_can_verify() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "tess", Role::Technician).await;
    platform.member(&acme, "audrey", Role::Auditor).await;

    let first = open_ticket(&platform, "acme", "Printer offline").await;
    let vc = credential(&platform, &first, "audrey").await;
    let verified = verify_credential(&vc).expect("the credential verifies from the document alone");
    assert!(verified.issuer.starts_with("did:key:z6Mk"), "{}", verified.issuer);
    assert_eq!(vc["type"], json!(["VerifiableCredential", "AnchorExecutionCredential"]));
    assert_eq!(vc["proof"]["cryptosuite"], "eddsa-jcs-2022");
    let execution = platform.get(&first, "tess").await;
    let subject = &vc["credentialSubject"];
    assert_eq!(subject["workspace"], "acme");
    assert_eq!(
        subject["actor"],
        json!({"issuer": "urn:anchor:dev-issuer", "subject": "tess", "roles": ["technician"]})
    );
    assert_eq!(subject["command"], "ticket.create");
    assert_eq!(subject["inputDigest"], anchor_crypto::canonical::digest(&execution["input"]).expect("digest"));
    assert_eq!(subject["outcome"]["status"], "succeeded");
    assert_eq!(
        subject["outcome"]["resultDigest"],
        anchor_crypto::canonical::digest(&execution["result"]).expect("digest")
    );
    assert_eq!(subject["agentfield"]["executionId"], execution["agentfield"]["execution_id"]);
    assert_eq!(subject["agentfield"]["node"], "anchor");
    assert_eq!(subject["agentfield"]["function"], "ticket_create");
    assert_eq!(subject["chain"]["sequence"], 1);
    assert!(subject["chain"]["previousDigest"].is_null());
    assert_eq!(subject["chain"]["issuerKey"], vc["proof"]["verificationMethod"]);
    let evidence_id = platform.get(&first, "tess").await["evidence_id"].as_str().expect("linked").to_owned();

    // The next credential links to the first.
    let second = open_ticket(&platform, "acme", "VPN drops").await;
    let next = credential(&platform, &second, "audrey").await;
    assert_eq!(next["credentialSubject"]["chain"]["sequence"], 2);
    assert_eq!(
        next["credentialSubject"]["chain"]["previousDigest"],
        anchor_crypto::canonical::digest(&vc).expect("digest")
    );
    let index = platform.get("/api/v1/workspaces/acme/evidence", "audrey").await;
    let sequences: Vec<i64> =
        index["items"].as_array().expect("items").iter().map(|i| i["sequence"].as_i64().expect("seq")).collect();
    assert_eq!(sequences, [1, 2]);
    let by_id = platform.get(&format!("/api/v1/workspaces/acme/evidence/{evidence_id}"), "audrey").await;
    assert_eq!(by_id, vc, "the stored document, as issued");
    // Content-addressed: the stored file's name is the SHA-256 of its bytes
    // (the credential's canonical form), so `sha256sum` checks it.
    let object_key: String = sqlx::query_scalar("SELECT object_key FROM ws_acme.evidence WHERE seq = 1")
        .fetch_one(platform.store.pool())
        .await
        .expect("object key");
    let bytes = std::fs::read(platform.data_dir.path().join("evidence").join(&object_key)).expect("stored document");
    {
        use sha2::Digest;
        assert_eq!(object_key, format!("acme/{}.json", hex::encode(sha2::Sha256::digest(&bytes))));
    }
    assert_eq!(serde_json::from_slice::<Value>(&bytes).expect("json"), vc);
    assert_eq!(chain(&platform, "acme").await, json!({"valid": true, "checked": 2, "head": 2, "problem": null}));
    assert_eq!(platform.events("evidence.issued").await.len(), 2);

    // Issuer keys are public; a rotation keeps earlier credentials valid.
    let keys = anchor_evidence::keys::IssuerKeys::new(
        platform.store.clone(),
        anchor_crypto::seal::MasterKey::load_or_create(platform.data_dir.path()).expect("master"),
    );
    let rotated = keys.rotate().await.expect("rotate");
    let third = open_ticket(&platform, "acme", "New laptop").await;
    let after = credential(&platform, &third, "audrey").await;
    assert_eq!(after["issuer"], rotated.did, "signed by the new key");
    assert_ne!(after["issuer"], vc["issuer"]);
    assert_eq!(chain(&platform, "acme").await["valid"], true, "old and new credentials verify");
    let published: Value = platform
        .client
        .get(platform.url("/api/v1/evidence/keys"))
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    let published = published["keys"].as_array().expect("keys").clone();
    assert_eq!(published.len(), 2);
    assert!(published[0]["validUntil"].is_string() && published[1]["validUntil"].is_null(), "{published:?}");
    assert_eq!(published[0]["id"], vc["proof"]["verificationMethod"]);

    // Technicians do not read evidence; auditors do.
    let denied = platform
        .client
        .get(platform.url("/api/v1/workspaces/acme/evidence"))
        .bearer_auth(platform.token("tess"))
        .send()
        .await
        .expect("get");
    assert_eq!(denied.status(), 403);
    platform.stop().await;
}

/// Issues `n` credentials in `slug`.
async fn issue(platform: &Platform, slug: &str, n: usize) {
    for i in 0..n {
        let at = open_ticket(platform, slug, &format!("Ticket {i}")).await;
        credential(platform, &at, "audrey").await;
    }
}

#[tokio::test]
async fn the_chain_check_names_what_was_altered_removed_or_reordered() {
    let platform = Platform::start().await;
    for slug in ["edited", "deleted", "gone", "swapped", "resigned", "truncated"] {
        let ws = platform.workspace(slug, "tess", Role::Technician).await;
        platform.member(&ws, "audrey", Role::Auditor).await;
        issue(&platform, slug, 4).await;
        assert_eq!(chain(&platform, slug).await["valid"], true, "{slug} starts valid");
    }
    let row = |slug: &str, seq: i64| {
        let pool = platform.store.pool().clone();
        let query = format!("SELECT id, object_key FROM ws_{slug}.evidence WHERE seq = $1");
        async move {
            sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(query))
                .bind(seq)
                .fetch_one(&pool)
                .await
                .expect("row")
        }
    };
    let evidence_dir = platform.data_dir.path().join("evidence");

    // One byte of a stored credential edited.
    let (id, key) = row("edited", 2).await;
    let path = evidence_dir.join(&key);
    let text = std::fs::read_to_string(&path).expect("read").replace("ticket.create", "ticket.cReate");
    assert!(text.contains("ticket.cReate"), "the edit took");
    std::fs::write(&path, text).expect("write");
    let report = chain(&platform, "edited").await;
    assert_eq!(report["valid"], false);
    assert_eq!(report["problem"]["sequence"], 2, "{report}");
    assert_eq!(report["problem"]["evidence_id"], id);
    assert!(report["problem"]["reason"].as_str().expect("reason").contains("altered"), "{report}");

    // A credential removed from the index: the gap is named.
    sqlx::query("DELETE FROM ws_deleted.evidence WHERE seq = 3").execute(platform.store.pool()).await.expect("delete");
    let report = chain(&platform, "deleted").await;
    assert_eq!(report["problem"]["sequence"], 3, "{report}");
    assert!(report["problem"]["reason"].as_str().expect("reason").contains("#3 is missing"), "{report}");

    // A document deleted from the store.
    let (_, key) = row("gone", 4).await;
    std::fs::remove_file(evidence_dir.join(key)).expect("remove");
    let report = chain(&platform, "gone").await;
    assert_eq!(report["problem"]["sequence"], 4, "{report}");
    assert!(report["problem"]["reason"].as_str().expect("reason").contains("missing from the evidence store"));

    // Two credentials swapped in the index.
    for (from, to) in [(2, 1000), (3, 2), (1000, 3)] {
        sqlx::query("UPDATE ws_swapped.evidence SET seq = $2 WHERE seq = $1")
            .bind(from)
            .bind(to)
            .execute(platform.store.pool())
            .await
            .expect("swap");
    }
    let report = chain(&platform, "swapped").await;
    assert_eq!(report["problem"]["sequence"], 2, "{report}");
    assert!(report["problem"]["reason"].as_str().expect("reason").contains("does not link"), "{report}");

    // The last credential rewritten and re-signed with some other key, its
    // index row and the chain head made to match: self-consistent, and still
    // caught, because the signer is not a published issuer key.
    let (id, key) = row("resigned", 4).await;
    let mut document: Value =
        serde_json::from_slice(&std::fs::read(evidence_dir.join(&key)).expect("read")).expect("json");
    let proof = document.as_object_mut().expect("object").remove("proof").expect("proof");
    document["credentialSubject"]["command"] = json!("ticket.transition");
    let forger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let method = anchor_crypto::multikey::verification_method(&forger.verifying_key());
    document["issuer"] = json!(anchor_crypto::multikey::did_key(&forger.verifying_key()));
    document["credentialSubject"]["chain"]["issuerKey"] = json!(method);
    let forged = anchor_crypto::data_integrity::sign(&document, &forger, proof["created"].as_str().expect("created"))
        .expect("sign");
    verify_credential(&forged).expect("a forgery that is valid on its own");
    let digest = anchor_crypto::canonical::digest(&forged).expect("digest");
    let forged_key = format!("resigned/{}.json", digest.trim_start_matches("sha256:"));
    std::fs::write(evidence_dir.join(&forged_key), anchor_crypto::canonical::to_vec(&forged).expect("jcs"))
        .expect("write");
    sqlx::query("UPDATE ws_resigned.evidence SET digest = $1, key_id = $2, object_key = $3 WHERE seq = 4")
        .bind(&digest)
        .bind(&method)
        .bind(&forged_key)
        .execute(platform.store.pool())
        .await
        .expect("index");
    sqlx::query("UPDATE ws_resigned.evidence_chain SET head_digest = $1")
        .bind(&digest)
        .execute(platform.store.pool())
        .await
        .expect("head");
    let report = chain(&platform, "resigned").await;
    assert_eq!(report["problem"]["sequence"], 4, "{report}");
    assert_eq!(report["problem"]["evidence_id"], id);
    assert!(
        report["problem"]["reason"].as_str().expect("reason").contains("not by a published issuer key"),
        "{report}"
    );

    // The tail cut off and the head moved back to match: intact, but not
    // complete. The execution whose credential went is named (once the
    // grace for issuing is over).
    let (last_id, _) = row("truncated", 4).await;
    let third_digest: String = sqlx::query_scalar("SELECT digest FROM ws_truncated.evidence WHERE seq = 3")
        .fetch_one(platform.store.pool())
        .await
        .expect("digest");
    sqlx::query("DELETE FROM ws_truncated.evidence WHERE seq = 4").execute(platform.store.pool()).await.expect("cut");
    sqlx::query("UPDATE ws_truncated.evidence_chain SET head_seq = 3, head_digest = $1")
        .bind(&third_digest)
        .execute(platform.store.pool())
        .await
        .expect("head");
    assert_eq!(chain(&platform, "truncated").await["valid"], true, "within the grace, it may still be issuing");
    sqlx::query("UPDATE ws_truncated.executions SET completed_at = completed_at - interval '10 minutes'")
        .execute(platform.store.pool())
        .await
        .expect("age");
    let report = chain(&platform, "truncated").await;
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["problem"]["sequence"], 4, "{report}");
    assert_eq!(report["problem"]["evidence_id"], last_id, "{report}");
    assert!(report["problem"]["reason"].as_str().expect("reason").contains("which is not in the chain"), "{report}");
    assert_eq!(report["checked"], 3);
    platform.stop().await;
}

#[tokio::test]
async fn a_crash_between_completion_and_issuing_loses_no_credential() {
    // No worker: completion happens in the gateway (the callbacks), issuing
    // would happen in the worker, which is down until it restarts. The three
    // executions end failed, cancelled and timed out: every terminal state
    // gets its credential, with the digest of its error.
    let mut platform = Platform::start_with(Options { agentfield_up: false, ..Options::default() }).await;
    let acme = platform.workspace("acme", "tess", Role::Technician).await;
    platform.member(&acme, "audrey", Role::Auditor).await;
    platform.worker.take().expect("worker").stop().await;
    let signer = CommandSigner::load_or_create(platform.data_dir.path()).expect("signer");
    let key = CallbackKey::load_or_create(platform.data_dir.path()).expect("key");
    let actor = Actor { issuer: anchor_auth::dev_issuer::DEV_ISSUER.into(), subject: "tess".into() };
    let mut finished = Vec::new();
    for (n, status) in ["failed", "cancelled", "timeout"].into_iter().enumerate() {
        let command =
            Command::parse("ticket.create", json!({"title": format!("Before the crash {n}"), "priority": "p2"}))
                .expect("command");
        let execution =
            accept(&platform.store, &signer, &acme, &actor, Some(Role::Technician), &command).await.expect("accept");
        let id = execution.id.to_string();
        let body = serde_json::to_vec(&json!({
            "event": "execution.failed", "execution_id": format!("exec_00000000000000a{n}"), "status": status,
            "error_message": format!("the node said {status}"),
        }))
        .expect("json");
        let tag = anchor_crypto::mac::sign(key.secret_for("acme", &id).as_bytes(), &[&body]);
        let response = platform
            .client
            .post(platform.url("/api/v1/callbacks/agentfield"))
            .header("X-Anchor-Workspace", "acme")
            .header("X-Anchor-Execution", &id)
            .header("X-AgentField-Signature", format!("sha256={}", hex::encode(tag)))
            .body(body)
            .send()
            .await
            .expect("callback");
        assert_eq!(response.status(), 200);
        let at = format!("/api/v1/workspaces/acme/executions/{id}");
        let execution = platform.get(&at, "tess").await;
        assert_eq!(execution["status"], status, "{execution}");
        assert!(execution["evidence_id"].is_null());
        finished.push((at, status));
    }
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform.outbox_events WHERE topic = 'evidence.issue' AND state = 'pending'",
    )
    .fetch_one(platform.store.pool())
    .await
    .expect("count");
    assert_eq!(waiting, 3, "completion left the issuing to the outbox");

    platform.start_worker();
    for (at, status) in &finished {
        let vc = credential(&platform, at, "audrey").await;
        verify_credential(&vc).expect("valid");
        let outcome = &vc["credentialSubject"]["outcome"];
        assert_eq!(outcome["status"], *status, "{vc}");
        let execution = platform.get(at, "tess").await;
        assert_eq!(outcome["errorDigest"], anchor_crypto::canonical::digest(&execution["error"]).expect("digest"));
        assert!(outcome.get("resultDigest").is_none());
    }
    assert_eq!(chain(&platform, "acme").await, json!({"valid": true, "checked": 3, "head": 3, "problem": null}));
    platform.stop().await;
}

#[path = "../../../../crates/evidence/tests/support/s3_server.rs"]
mod s3_server;

#[tokio::test]
async fn with_s3_configured_credentials_are_stored_in_the_bucket() {
    let s3 = s3_server::S3Server::start();
    let bucket = anchor_evidence::store::S3Bucket::new(&s3.bucket("anchor-evidence", "s3cret")).expect("bucket");
    bucket.create_bucket().await.expect("create bucket");
    let store = anchor_evidence::store::EvidenceStore::S3(std::sync::Arc::new(bucket));
    let platform = Platform::start_with(Options { evidence_store: Some(store.clone()), ..Options::default() }).await;
    let acme = platform.workspace("acme", "tess", Role::Technician).await;
    platform.member(&acme, "audrey", Role::Auditor).await;
    let at = open_ticket(&platform, "acme", "Stored in S3").await;
    let vc = credential(&platform, &at, "audrey").await;
    verify_credential(&vc).expect("valid");
    let (key,): (String,) =
        sqlx::query_as("SELECT object_key FROM ws_acme.evidence").fetch_one(platform.store.pool()).await.expect("row");
    let stored = store.get(&key).await.expect("get").expect("the document is in the bucket");
    assert_eq!(serde_json::from_slice::<Value>(&stored).expect("json"), vc);
    assert!(!platform.data_dir.path().join("evidence").join(&key).exists(), "not on the local disk");
    assert_eq!(chain(&platform, "acme").await["valid"], true);
    platform.stop().await;
}

#[tokio::test]
async fn administrative_changes_are_recorded_and_attested_like_executions() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "audrey", Role::Auditor).await;
    let send = |method: reqwest::Method, path: String, body: Value| {
        let request = platform
            .client
            .request(method, platform.url(&path))
            .bearer_auth(platform.token("mia"))
            .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()));
        async move { request.json(&body).send().await.expect("send") }
    };
    let created = send(
        reqwest::Method::POST,
        "/api/v1/workspaces/acme/webhooks".into(),
        json!({"url": "http://127.0.0.1:9/hook", "events": ["ticket.created"]}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let endpoint = created.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/workspaces/acme/webhooks/{endpoint}");
    assert_eq!(send(reqwest::Method::PATCH, path.clone(), json!({"enabled": false})).await.status(), 200);
    assert_eq!(send(reqwest::Method::POST, format!("{path}/rotate-secret"), json!({})).await.status(), 200);
    assert_eq!(send(reqwest::Method::DELETE, path, json!({})).await.status(), 204);
    let rule = json!({"name": "Load high", "kind": "metric", "metric": "load.1m", "comparison": ">", "threshold": 8,
                      "severity": "warning"});
    assert_eq!(send(reqwest::Method::POST, "/api/v1/workspaces/acme/alert-rules".into(), rule).await.status(), 201);
    let member =
        send(reqwest::Method::PUT, "/api/v1/workspaces/acme/members/tess".into(), json!({"role": "technician"}));
    assert_eq!(member.await.status(), 201);

    // Every change, newest first, attested once the worker issued it.
    let expected = [
        "member.added",
        "alert_rule.created",
        "webhook.deleted",
        "webhook.secret_rotated",
        "webhook.updated",
        "webhook.created",
    ];
    let mut listed = Value::Null;
    for _ in 0..400 {
        listed = platform.get("/api/v1/workspaces/acme/changes", "audrey").await;
        let items = listed["items"].as_array().expect("items");
        if items.len() == expected.len() && items.iter().all(|c| c["evidence_id"].is_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = listed["items"].as_array().expect("items").clone();
    let actions: Vec<&str> = items.iter().map(|c| c["action"].as_str().expect("action")).collect();
    assert_eq!(actions, expected, "{listed}");
    assert!(!listed.to_string().contains("whsec_"), "no secret in the audit trail: {listed}");
    let created = items.last().expect("the creation");
    assert_eq!(created["target"], endpoint.as_str());
    assert_eq!(created["actor"]["subject"], "mia");
    assert_eq!(created["role"], "msp_admin");
    assert_eq!(created["details"]["host"], "127.0.0.1:9", "the host, never the URL (a capability secret)");
    assert!(created["details"].get("url").is_none(), "{created}");

    let id = created["evidence_id"].as_str().expect("evidence");
    let vc = platform.get(&format!("/api/v1/workspaces/acme/evidence/{id}"), "audrey").await;
    verify_credential(&vc).expect("the change's credential verifies from the document alone");
    assert_eq!(vc["type"], json!(["VerifiableCredential", "AnchorChangeCredential"]));
    let subject = &vc["credentialSubject"];
    assert_eq!(subject["action"], "webhook.created");
    assert_eq!(subject["target"], endpoint.as_str());
    assert_eq!(subject["actor"], json!({"issuer": "urn:anchor:dev-issuer", "subject": "mia", "roles": ["msp_admin"]}));
    assert_eq!(subject["detailsDigest"], anchor_crypto::canonical::digest(&created["details"]).expect("digest"));
    // One chain for executions and changes alike.
    let index = platform.get("/api/v1/workspaces/acme/evidence", "audrey").await;
    assert!(index["items"].as_array().expect("items").iter().all(|i| i["change_id"].is_string()), "{index}");
    assert_eq!(chain(&platform, "acme").await["valid"], true);
    assert_eq!(chain(&platform, "acme").await["checked"], 6);

    // Technicians do not read the audit trail.
    let denied = platform
        .client
        .get(platform.url("/api/v1/workspaces/acme/changes"))
        .bearer_auth(platform.token("tess"))
        .send()
        .await
        .expect("get");
    assert_eq!(denied.status(), 403);
    platform.stop().await;
}

/// One chain check per workspace at a time: while one waits on a document
/// (a FIFO here, so it waits as long as the test wants), a second check of
/// the same workspace is told to come back, and other workspaces are served.
#[tokio::test]
async fn one_chain_check_per_workspace_at_a_time() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "tess", Role::Technician).await;
    platform.member(&acme, "audrey", Role::Auditor).await;
    let globex = platform.workspace("globex", "tess", Role::Technician).await;
    platform.member(&globex, "audrey", Role::Auditor).await;
    let first = open_ticket(&platform, "acme", "Printer offline").await;
    credential(&platform, &first, "audrey").await;
    let object_key: String = sqlx::query_scalar("SELECT object_key FROM ws_acme.evidence WHERE seq = 1")
        .fetch_one(platform.store.pool())
        .await
        .expect("row");
    let path = platform.data_dir.path().join("evidence").join(&object_key);
    let document = std::fs::read(&path).expect("document");
    std::fs::remove_file(&path).expect("remove");
    assert!(std::process::Command::new("mkfifo").arg(&path).status().expect("mkfifo").success());

    let url = platform.url("/api/v1/workspaces/acme/evidence/chain/verify");
    let check = tokio::spawn(platform.client.get(&url).bearer_auth(platform.token("audrey")).send());
    let fifo = path.clone();
    let writer = tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).open(fifo));
    let mut writer =
        tokio::time::timeout(Duration::from_secs(30), writer).await.expect("the check reads").expect("join");

    let second = platform.client.get(&url).bearer_auth(platform.token("audrey")).send().await.expect("send");
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "5");
    let problem: Value = second.json().await.expect("json");
    assert_eq!(problem["code"], "chain_check_running");
    assert_eq!(chain(&platform, "globex").await["valid"], true, "another workspace is not held up");

    std::io::Write::write_all(writer.as_mut().expect("open"), &document).expect("write");
    drop(writer);
    let first = check.await.expect("join").expect("send");
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.expect("json")["valid"], true);
    std::fs::remove_file(&path).expect("remove the FIFO");
    std::fs::write(&path, &document).expect("the document again");
    assert_eq!(chain(&platform, "acme").await["valid"], true, "the next check runs");
    platform.stop().await;
}
