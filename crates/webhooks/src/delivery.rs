//! Delivering one message to one endpoint (outbox topic `webhook.deliver`).
//!
//! A signed `POST` (Standard Webhooks headers; the `webhook-id` is the
//! message's, the same on every attempt; every current secret signs) to the
//! addresses the destination check approved, with no redirects, a timeout,
//! a cap on the response read, and at most a few requests per endpoint at
//! once. 2xx is success. 410 disables the endpoint. Otherwise the attempt is
//! retried on the schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//! 10 h, with jitter; a longer `Retry-After` wins); an endpoint whose
//! deliveries have all failed for five days is disabled and the workspace is
//! told (`webhook.endpoint_disabled`). Every attempt is recorded.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anchor_crypto::seal::MasterKey;
use anchor_domain::{MessageId, WebhookId};
use anchor_outbox::{HandlerError, Handlers, OutboxEvent};
use anchor_store::{
    Database, StoreError, Workspace,
    webhooks::{Endpoint, NewAttempt},
};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::{
    DELIVER_TOPIC,
    address::{self, Allowlist},
    secrets,
    signature::signature_header,
};

/// How deliveries behave.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Delay before attempt 2, 3, ... (Standard Webhooks / Svix schedule).
    pub schedule: Vec<Duration>,
    pub timeout: Duration,
    /// Bytes of a response read at most (and the first 1 KiB kept).
    pub response_cap: usize,
    pub per_endpoint: usize,
    /// Disable an endpoint whose deliveries have all failed this long.
    pub disable_after: Duration,
    pub allowlist: Allowlist,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self {
            schedule: vec![
                Duration::from_secs(5),
                minutes(5),
                minutes(30),
                minutes(120),
                minutes(300),
                minutes(600),
                minutes(600),
            ],
            timeout: Duration::from_secs(15),
            response_cap: 64 * 1024,
            per_endpoint: 4,
            disable_after: Duration::from_secs(5 * 24 * 3600),
            allowlist: Allowlist::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Delivery {
    message_id: MessageId,
    endpoint_id: WebhookId,
}

/// The `webhook.deliver` handler.
#[derive(Debug)]
pub struct Deliverer {
    db: Database,
    master: MasterKey,
    config: DeliveryConfig,
    limits: Mutex<HashMap<WebhookId, Arc<Semaphore>>>,
}

/// What one attempt came to.
struct Outcome {
    status: Option<u16>,
    error: Option<String>,
    response: Option<String>,
    retry_after: Option<Duration>,
}

fn retry(e: StoreError) -> HandlerError {
    HandlerError::retry(format!("database: {e}"))
}

impl Deliverer {
    pub fn new(db: Database, master: MasterKey, config: DeliveryConfig) -> Self {
        Self { db, master, config, limits: Mutex::default() }
    }

    pub fn register(self, handlers: Handlers) -> Handlers {
        let this = Arc::new(self);
        handlers.on(DELIVER_TOPIC, move |event| {
            let this = Arc::clone(&this);
            async move { this.deliver(event).await }
        })
    }

    fn limit(&self, endpoint: WebhookId) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().expect("not poisoned");
        Arc::clone(limits.entry(endpoint).or_insert_with(|| Arc::new(Semaphore::new(self.config.per_endpoint.max(1)))))
    }

    #[tracing::instrument(skip_all, fields(outbox_id = event.id, attempt = event.attempt))]
    async fn deliver(&self, event: OutboxEvent) -> Result<(), HandlerError> {
        let delivery: Delivery = serde_json::from_value(event.payload.clone())
            .map_err(|e| HandlerError::Permanent(format!("malformed webhook.deliver event: {e}")))?;
        let Some(workspace_id) = event.workspace_id else { return Ok(()) };
        let Some(workspace) = self.db.workspace_by_id(workspace_id).await.map_err(retry)? else { return Ok(()) };
        let mut tx = self.db.begin_workspace(&workspace).await.map_err(retry)?;
        let endpoint = tx.endpoint(delivery.endpoint_id).await.map_err(retry)?;
        let message = tx.message(delivery.message_id).await.map_err(retry)?;
        tx.rollback().await.map_err(retry)?;
        let (Some(endpoint), Some((_, body))) = (endpoint, message) else { return Ok(()) };
        if !endpoint.enabled {
            return Ok(()); // disabled (or deleted) meanwhile: nothing to send
        }
        let _permit = self.limit(endpoint.id).acquire_owned().await.expect("never closed");
        let started = Instant::now();
        let outcome = self.attempt(&workspace, &endpoint, delivery.message_id, body.as_bytes()).await;
        let latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        self.settle(&workspace, &endpoint, delivery.message_id, event.attempt, latency_ms, outcome).await
    }

    async fn attempt(&self, workspace: &Workspace, endpoint: &Endpoint, message: MessageId, body: &[u8]) -> Outcome {
        let failed = |error: String| Outcome { status: None, error: Some(error), response: None, retry_after: None };
        let now = OffsetDateTime::now_utc();
        let mut secrets = Vec::new();
        let record = secrets::endpoint_record(endpoint.id);
        match secrets::open(&self.master, workspace, &record, &endpoint.secret) {
            Ok(secret) => secrets.push(secret),
            Err(e) => return failed(format!("cannot open the endpoint's secret: {e}")),
        }
        if let Some((previous, until)) = &endpoint.previous
            && *until > now
            && let Ok(secret) = secrets::open(&self.master, workspace, &record, previous)
        {
            secrets.push(secret);
        }
        let Ok(url) = url::Url::parse(&endpoint.url) else { return failed("the endpoint URL is invalid".into()) };
        let addrs = match address::check(&url, &self.config.allowlist).await {
            Ok(addrs) => addrs,
            Err(e) => return failed(format!("refused before connecting: {e}")),
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
        // Connect to exactly the addresses checked; follow no redirect.
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.config.timeout)
            .resolve_to_addrs(&host, &addrs)
            .build()
        {
            Ok(client) => client,
            Err(e) => return failed(format!("HTTP client: {e}")),
        };
        let id = message.to_string();
        let timestamp = now.unix_timestamp();
        let request = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("Anchor-Webhooks/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature_header(&secrets, &id, timestamp, body))
            .body(body.to_vec());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => return failed(format!("no answer within {} s", self.config.timeout.as_secs())),
            Err(e) => return failed(format!("cannot deliver: {e}")),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut read = Vec::new();
        while read.len() < self.config.response_cap {
            match response.chunk().await {
                Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                _ => break,
            }
        }
        read.truncate(1024);
        let response = Some(String::from_utf8_lossy(&read).into_owned()).filter(|r| !r.is_empty());
        Outcome { status: Some(status), error: None, response, retry_after }
    }

    async fn settle(
        &self,
        workspace: &Workspace,
        endpoint: &Endpoint,
        message: MessageId,
        attempt: i32,
        latency_ms: i32,
        outcome: Outcome,
    ) -> Result<(), HandlerError> {
        let ok = outcome.status.is_some_and(|s| (200..300).contains(&s));
        let gone = outcome.status == Some(410);
        let message_id = message.to_string();
        let mut tx = self.db.begin_workspace(workspace).await.map_err(retry)?;
        tx.record_attempt(&NewAttempt {
            endpoint: endpoint.id,
            message: &message_id,
            attempt,
            status_code: outcome.status.map(i32::from),
            latency_ms,
            error: outcome.error.as_deref(),
            response: outcome.response.as_deref(),
        })
        .await
        .map_err(retry)?;
        let failing_since = tx.record_endpoint_health(endpoint.id, ok).await.map_err(retry)?;
        let give_up = failing_since.is_some_and(|since| OffsetDateTime::now_utc() - since >= self.config.disable_after);
        let reason = match () {
            _ if ok => None,
            _ if gone => Some("the endpoint answered 410 Gone"),
            _ if give_up => Some("every delivery failed for five days"),
            _ => None,
        };
        if let Some(reason) = reason
            && tx.disable_endpoint(endpoint.id, reason).await.map_err(retry)?
        {
            let data = json!({"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason});
            let slug = workspace.slug().to_string();
            let event = anchor_events::PublishRequest::new("webhook.endpoint_disabled", Some(&slug), data);
            tx.enqueue(anchor_events::PUBLISH_TOPIC, &serde_json::to_value(event).expect("serialises"))
                .await
                .map_err(retry)?;
            tracing::warn!(endpoint = %endpoint.id, reason, "webhook endpoint disabled");
        }
        tx.commit().await.map_err(retry)?;
        if ok || reason.is_some() {
            return Ok(());
        }
        let why = outcome.error.unwrap_or_else(|| format!("HTTP {}", outcome.status.unwrap_or_default()));
        let Some(delay) = self.config.schedule.get((attempt - 1).max(0) as usize).copied() else {
            return Err(HandlerError::Permanent(format!("gave up after {attempt} attempts: {why}")));
        };
        Err(HandlerError::Retry {
            reason: why,
            retry_after: Some(jitter(delay).max(outcome.retry_after.unwrap_or_default())),
        })
    }
}

/// ±10 %, so retries of many messages spread out.
fn jitter(delay: Duration) -> Duration {
    use rand::Rng;
    delay.mul_f64(rand::rng().random_range(0.9..=1.1))
}
