//! The evidence store against a real S3-compatible server (moto's
//! standalone server, from the test venv): signed PUT and GET, a missing
//! object, buckets kept apart.

#[path = "support/s3_server.rs"]
mod s3_server;

use anchor_evidence::store::{EvidenceStore, S3Bucket};
use s3_server::S3Server;

#[tokio::test]
async fn credentials_round_trip_through_s3() {
    let server = S3Server::start();
    let bucket = S3Bucket::new(&server.bucket("anchor-evidence", "s3cret")).expect("bucket");
    bucket.create_bucket().await.expect("create bucket");
    let store = EvidenceStore::S3(std::sync::Arc::new(bucket));
    let key = EvidenceStore::object_key("acme", "sha256:00ff");
    assert_eq!(key, "acme/00ff.json");
    assert_eq!(store.get(&key).await.expect("get"), None, "nothing there yet");
    let document = br#"{"type":["VerifiableCredential"]}"#;
    store.put(&key, document).await.expect("put");
    assert_eq!(store.get(&key).await.expect("get").as_deref(), Some(&document[..]));
    // Another bucket does not have it.
    let other = S3Bucket::new(&server.bucket("other", "s3cret")).expect("bucket");
    other.create_bucket().await.expect("create");
    assert_eq!(EvidenceStore::S3(std::sync::Arc::new(other)).get(&key).await.expect("get"), None);
}
