//! What the page benchmarks share: the gateway's router in process over a
//! test database, and p50/p95 of a run.

use std::time::Duration;

use anchor_store::Database;
use anchor_testkit::TestDatabase;
use axum::Router;

/// The gateway's router (API and pages) over `db`, trusting the dev issuer
/// kept in `data_dir`.
pub(crate) fn app(db: &TestDatabase, store: &Database, data_dir: &std::path::Path) -> Router {
    let config = anchor_gateway::Config {
        database_url: db.url().clone(),
        database_max_connections: 8,
        database_recycling: Default::default(),
        request_timeout: Duration::from_secs(30),
        body_limit_bytes: 64 * 1024,
        data_dir: data_dir.to_path_buf(),
        dev_issuer: true,
        issuers: Vec::new(),
        public_url: "http://127.0.0.1".to_owned(),
        oidc: None,
        evidence: anchor_evidence::EvidenceSetup::new(None, data_dir, None).expect("evidence"),
        webhook_allowlist: Default::default(),
        webhook_limits: Default::default(),
        access: Default::default(),
        telemetry: Default::default(),
        mail_enabled: false,
    };
    let state = anchor_gateway::AppState::new(&config, store.clone()).expect("state");
    anchor_gateway::app(&config, state, None)
}

pub(crate) struct Figures {
    pub(crate) p50: Duration,
    pub(crate) p95: Duration,
}

pub(crate) fn figures(mut times: Vec<Duration>) -> Figures {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1).min(times.len() - 1)];
    Figures { p50: at(0.50), p95: at(0.95) }
}
