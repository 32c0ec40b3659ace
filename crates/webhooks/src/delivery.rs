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
            // Disabled meanwhile: nothing is sent, and the log says so.
            let outcome = Outcome::failed("not sent: the endpoint is disabled".into());
            return self.record(&workspace, &endpoint, delivery.message_id, event.attempt, 0, &outcome).await;
        }
        // A busy endpoint makes this delivery wait its turn without holding
        // up the worker's batch (other endpoints' deliveries go on) and
        // without spending an attempt.
        let Ok(_permit) = self.limit(endpoint.id).try_acquire_owned() else {
            let reason = format!("{} deliveries to this endpoint in flight", self.config.per_endpoint);
            return Err(HandlerError::postpone(reason, jitter(Duration::from_secs(1))));
        };
        let started = Instant::now();
        let outcome = self.attempt(&workspace, &endpoint, delivery.message_id, body.as_bytes()).await;
        let latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        self.settle(&workspace, &endpoint, delivery.message_id, event.attempt, latency_ms, outcome).await
    }

    async fn attempt(&self, workspace: &Workspace, endpoint: &Endpoint, message: MessageId, body: &[u8]) -> Outcome {
        let failed = Outcome::failed;
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
        let addrs = match tokio::time::timeout(self.config.timeout, address::check(&url, &self.config.allowlist)).await
        {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => {
                // The log readers see the host; the address it resolved to is
                // for the operator only (an internal name is no one else's business).
                if let address::DestinationError::Forbidden { host, ip, class } = &e {
                    tracing::warn!(endpoint = %endpoint.id, host, %ip, ?class, "webhook destination refused");
                }
                return failed(format!("refused before connecting: {e}"));
            }
            Err(_) => return failed(format!("the host did not resolve within {} s", self.config.timeout.as_secs())),
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
        // Connect to exactly the addresses checked, never through a proxy
        // (which would resolve the host itself); follow no redirect.
        let client = match reqwest::Client::builder()
            .no_proxy()
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
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        // Read at most `response_cap` bytes (within the same timeout), keep
        // the first KiB. The status decides; a body that breaks off is noted.
        let mut read = Vec::new();
        let mut error = None;
        while read.len() < self.config.response_cap {
            match response.chunk().await {
                Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    error = Some(format!("HTTP {status}, then the response broke off: {e}"));
                    break;
                }
            }
        }
        read.truncate(RESPONSE_KEPT);
        let response = Some(String::from_utf8_lossy(&read).into_owned()).filter(|r| !r.is_empty());
        Outcome { status: Some(status), error, response, retry_after }
    }

    /// Writes one attempt to the log.
    async fn record(
        &self,
        workspace: &Workspace,
        endpoint: &Endpoint,
        message: MessageId,
        attempt: i32,
        latency_ms: i32,
        outcome: &Outcome,
    ) -> Result<(), HandlerError> {
        let mut tx = self.db.begin_workspace(workspace).await.map_err(retry)?;
        tx.record_attempt(&outcome.row(endpoint, message, attempt, latency_ms)).await.map_err(retry)?;
        tx.commit().await.map_err(retry)
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
        let mut tx = self.db.begin_workspace(workspace).await.map_err(retry)?;
        tx.record_attempt(&outcome.row(endpoint, message, attempt, latency_ms)).await.map_err(retry)?;
        let failing_since = tx.record_endpoint_health(endpoint.id, ok).await.map_err(retry)?;
        let failing_for = failing_since.map(|since| (OffsetDateTime::now_utc() - since).unsigned_abs());
        let next = next_step(&self.config, attempt, outcome.status, outcome.retry_after, failing_for);
        if let Next::Disable(reason) = next
            && tx.disable_endpoint(endpoint.id, reason).await.map_err(retry)?
        {
            let event = crate::events::EndpointDisabled {
                endpoint_id: endpoint.id,
                host: crate::events::host_of(&endpoint.url),
                reason: reason.to_owned(),
            };
            anchor_events::publish(&mut tx, &event).await.map_err(retry)?;
            tracing::warn!(endpoint = %endpoint.id, reason, "webhook endpoint disabled");
        }
        tx.commit().await.map_err(retry)?;
        let why = || outcome.error.clone().unwrap_or_else(|| format!("HTTP {}", outcome.status.unwrap_or_default()));
        match next {
            Next::Delivered | Next::Disable(_) => Ok(()),
            Next::RetryIn(delay) => Err(HandlerError::Retry { reason: why(), retry_after: Some(delay) }),
            Next::GiveUp => Err(HandlerError::Permanent(format!("gave up after {attempt} attempts: {}", why()))),
        }
    }
}

/// Bytes of a response kept in the delivery log.
const RESPONSE_KEPT: usize = 1024;

impl Outcome {
    fn failed(error: String) -> Self {
        Self { status: None, error: Some(error), response: None, retry_after: None }
    }

    /// The delivery log's row for this outcome.
    fn row(&self, endpoint: &Endpoint, message: MessageId, attempt: i32, latency_ms: i32) -> NewAttempt<'_> {
        NewAttempt {
            endpoint: endpoint.id,
            message,
            attempt,
            status_code: self.status.map(i32::from),
            latency_ms,
            error: self.error.as_deref(),
            response: self.response.as_deref(),
        }
    }
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Delivered,
    Disable(&'static str),
    RetryIn(Duration),
    GiveUp,
}

/// Decides what follows attempt number `attempt` (1-based) that answered
/// `status` (none: no answer), given the endpoint's time failing so far.
/// Only 2xx is success; 410 disables; five days of failures disable;
/// otherwise the schedule's next delay with jitter, or the receiver's
/// `Retry-After` when longer (but never beyond the schedule's longest step).
fn next_step(
    config: &DeliveryConfig,
    attempt: i32,
    status: Option<u16>,
    retry_after: Option<Duration>,
    failing_for: Option<Duration>,
) -> Next {
    if status.is_some_and(|s| (200..300).contains(&s)) {
        return Next::Delivered;
    }
    if status == Some(410) {
        return Next::Disable("the endpoint answered 410 Gone");
    }
    if failing_for.is_some_and(|f| f >= config.disable_after) {
        return Next::Disable("every delivery failed for five days");
    }
    let Some(delay) = config.schedule.get((attempt - 1).max(0) as usize).copied() else { return Next::GiveUp };
    let longest = config.schedule.iter().copied().max().unwrap_or_default();
    Next::RetryIn(jitter(delay).max(retry_after.unwrap_or_default().min(longest)))
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 section 10.2.3).
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// ±10 %, so retries of many messages spread out.
fn jitter(delay: Duration) -> Duration {
    use rand::Rng;
    delay.mul_f64(rand::rng().random_range(0.9..=1.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(d: Duration, nominal: Duration) -> bool {
        d >= nominal.mul_f64(0.9) && d <= nominal.mul_f64(1.1)
    }

    #[test]
    fn the_schedule_is_the_standard_one_with_jitter() {
        let config = DeliveryConfig::default();
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let expected =
            [Duration::from_secs(5), minutes(5), minutes(30), minutes(120), minutes(300), minutes(600), minutes(600)];
        for (i, nominal) in expected.into_iter().enumerate() {
            let attempt = i as i32 + 1;
            match next_step(&config, attempt, Some(500), None, None) {
                Next::RetryIn(d) => assert!(within(d, nominal), "after attempt {attempt}: {d:?}"),
                other => panic!("after attempt {attempt}: {other:?}"),
            }
        }
        assert_eq!(next_step(&config, 8, Some(500), None, None), Next::GiveUp, "eight attempts in all");
        let spread: std::collections::HashSet<_> = (0..20).map(|_| jitter(minutes(5))).collect();
        assert!(spread.len() > 1, "jitter spreads retries");
    }

    #[test]
    fn only_2xx_is_success_and_410_disables() {
        let config = DeliveryConfig::default();
        for status in [200, 201, 204, 299] {
            assert_eq!(next_step(&config, 1, Some(status), None, None), Next::Delivered, "{status}");
        }
        for status in [100, 199, 301, 302, 304, 400, 404, 429, 500, 503] {
            assert!(matches!(next_step(&config, 1, Some(status), None, None), Next::RetryIn(_)), "{status}");
        }
        assert!(matches!(next_step(&config, 1, None, None, None), Next::RetryIn(_)), "no answer");
        assert_eq!(next_step(&config, 1, Some(410), None, None), Next::Disable("the endpoint answered 410 Gone"));
        let five_days = Duration::from_secs(5 * 24 * 3600);
        assert!(matches!(next_step(&config, 3, Some(500), None, Some(five_days / 2)), Next::RetryIn(_)));
        assert!(matches!(next_step(&config, 3, Some(500), None, Some(five_days)), Next::Disable(_)));
        assert_eq!(next_step(&config, 3, Some(200), None, Some(five_days)), Next::Delivered, "success heals");
    }

    #[test]
    fn a_longer_retry_after_wins_up_to_the_longest_step() {
        let config = DeliveryConfig::default();
        let hour = Duration::from_secs(3600);
        assert_eq!(next_step(&config, 1, Some(503), Some(hour), None), Next::RetryIn(hour));
        match next_step(&config, 3, Some(503), Some(Duration::from_secs(1)), None) {
            Next::RetryIn(d) => assert!(within(d, Duration::from_secs(1800)), "a shorter one does not: {d:?}"),
            other => panic!("{other:?}"),
        }
        let years = Duration::from_secs(10 * 365 * 24 * 3600);
        assert_eq!(next_step(&config, 1, Some(429), Some(years), None), Next::RetryIn(Duration::from_secs(36_000)));
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO), "in the past");
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
