//! Delivery: the spool, oldest first, each batch signed with a fresh agent
//! token. 200 removes the batch; 422 means the server will never take it
//! (it is removed and logged); anything else stops this round and is
//! retried with exponential backoff and jitter.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use ed25519_dalek::SigningKey;

use crate::{spool::Spool, state::Identity};

/// The HTTP client: blocking, no redirects, bounded waits.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("anchor-edge-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

pub(crate) struct Sender {
    url: String,
    agent_id: String,
    key: SigningKey,
    http: ureq::Agent,
    status: std::path::PathBuf,
}

impl Sender {
    pub(crate) fn new(identity: &Identity, state_dir: &std::path::Path) -> Self {
        Self {
            url: format!("{}/api/v1/telemetry/batches", identity.server),
            agent_id: identity.agent_id.clone(),
            key: identity.key.clone().expect("loaded with its key"),
            http: agent(),
            status: state_dir.join("status.json"),
        }
    }

    /// Sends until the spool is empty, something fails, or `stop`.
    pub(crate) fn deliver(&self, spool: &mut Spool, stop: &Arc<AtomicBool>) -> Result<(), String> {
        while !stop.load(Ordering::Relaxed) {
            let Some((sequence, body)) = spool.oldest().map_err(|e| e.to_string())? else { return Ok(()) };
            let token = anchor_edge_protocol::sign_token(&self.key, &self.agent_id, Duration::from_secs(120));
            let response = self
                .http
                .post(&self.url)
                .header("authorization", &format!("Bearer {token}"))
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .send(&body[..]);
            let mut response = match response {
                Ok(response) => response,
                Err(e) => return Err(format!("cannot reach the server: {e}")),
            };
            match response.status().as_u16() {
                200 => {
                    spool.remove(sequence).map_err(|e| e.to_string())?;
                    let at = time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                    let status = serde_json::json!({"acknowledged_sequence": sequence, "acknowledged_at": at});
                    let _ = crate::state::write_atomic(&self.status, status.to_string().as_bytes(), 0o600);
                }
                422 => {
                    let detail = response.body_mut().read_to_string().unwrap_or_default();
                    eprintln!("the server refused batch {sequence} for good, dropping it: {detail}");
                    spool.remove(sequence).map_err(|e| e.to_string())?;
                }
                401 => return Err("the server does not accept this agent's identity (revoked?)".into()),
                status => return Err(format!("the server answered {status}")),
            }
        }
        Ok(())
    }
}

/// Exponential backoff with full jitter, from one second up to `cap`.
pub(crate) struct Backoff {
    attempt: u32,
    cap: Duration,
}

impl Backoff {
    pub(crate) fn new(cap: Duration) -> Self {
        Self { attempt: 0, cap: cap.max(Duration::from_secs(1)) }
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    pub(crate) fn next(&mut self) -> Duration {
        use rand::Rng;
        let ceiling = Duration::from_secs(1u64 << self.attempt.min(16)).min(self.cap);
        self.attempt += 1;
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}
