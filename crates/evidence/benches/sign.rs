//! Credentials signed per second on one core (target >= 10,000), against
//! bare Ed25519 signatures of 64 bytes on the same core in the same run:
//! the ratio is what building, canonicalizing (RFC 8785) and hashing a
//! credential costs on top of the signature itself.
//!
//! `cargo bench -p anchor-evidence --bench sign`; `ANCHOR_BENCH_CREDENTIALS`
//! (default 20000).

use std::time::Instant;

use anchor_domain::{EvidenceId, ExecutionId, ExecutionStatus, Role};
use anchor_evidence::{
    credential::{self, Issuance, Link},
    keys::IssuerKey,
};
use anchor_store::executions::{Actor, Execution};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use time::OffsetDateTime;

const TARGET: f64 = 10_000.0;

fn main() {
    let n: usize = std::env::var("ANCHOR_BENCH_CREDENTIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let signing = SigningKey::from_bytes(&[7; 32]);
    let public = signing.verifying_key();
    let key = IssuerKey {
        did: anchor_crypto::multikey::did_key(&public),
        verification_method: anchor_crypto::multikey::verification_method(&public),
        signing: signing.clone(),
    };
    let now = OffsetDateTime::now_utc();
    let execution = Execution {
        id: ExecutionId::new(),
        command: "ticket.create".into(),
        input: json!({"title": "Printer on floor 2 offline", "description": "Since this morning; toner replaced.", "priority": "p3"}),
        actor: Actor { issuer: "urn:anchor:dev-issuer".into(), subject: "tess".into() },
        actor_role: Some(Role::Technician),
        envelope: String::new(),
        status: ExecutionStatus::Succeeded,
        result: Some(json!({"ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w"})),
        error: None,
        evidence_id: None,
        agentfield_execution_id: Some("exec_94b49d9ec52a288d".into()),
        agentfield_run_id: Some("run_fee574737c092d3e".into()),
        agentfield_target: Some("anchor.ticket_create".into()),
        created_at: now,
        handed_off_at: Some(now),
        completed_at: Some(now),
    };

    // Baseline: the signature alone.
    let message = [42u8; 64];
    let started = Instant::now();
    for i in 0..n {
        let mut m = message;
        m[0] = i as u8;
        std::hint::black_box(signing.sign(&m));
    }
    let raw = n as f64 / started.elapsed().as_secs_f64();

    // A whole credential: document, JCS of proof options and document,
    // two SHA-256, the signature, and the credential's own digest (the next
    // link of the chain).
    let mut previous = None;
    let started = Instant::now();
    for seq in 1..=n as i64 {
        let issuance = Issuance {
            id: EvidenceId::new(),
            workspace: "acme",
            link: Link { seq, previous_digest: previous },
            issued_at: now,
        };
        let document = credential::document(&execution, &issuance, &key);
        let (signed, digest) = credential::sign(&document, &key, now);
        std::hint::black_box(signed);
        previous = Some(digest);
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();

    println!("evidence signing on one core ({n} each)");
    println!("  baseline, bare Ed25519 signatures of 64 bytes: {raw:.0}/s");
    println!(
        "  credentials (build, JCS, SHA-256 x2, Ed25519, chain digest): {rate:.0}/s = {:.0}% of the baseline; {:.2}x the {TARGET:.0}/s target ({})",
        rate / raw * 100.0,
        rate / TARGET,
        if rate >= TARGET { "met" } else { "NOT met" }
    );
}
