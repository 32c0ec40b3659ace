//! A typed client for the AgentField control plane (`docs`: the project's
//! `shared/design/agentfield.md`, section 1): sync and async execute,
//! execution status (one or a batch), cancel, health.
//!
//! - `X-API-Key` when an API key is configured;
//! - a timeout per request (longer for sync execute, which waits for the
//!   node);
//! - retries with exponential backoff and jitter on 429, 503 and 504 and on
//!   transport errors, honouring `Retry-After`. A retried execute can start a
//!   second AgentField execution; Anchor's skills are idempotent per Anchor
//!   execution id, so a duplicate has no second effect;
//! - the documented error shapes become [`AgentFieldError`] variants.

mod types;

use std::time::Duration;

use reqwest::{Method, StatusCode, header::HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

pub use types::*;

/// Where and how to reach the control plane.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// e.g. `http://127.0.0.1:8081` (no trailing `/api/v1`).
    pub base_url: String,
    pub api_key: Option<SecretString>,
    /// Per request, except sync execute.
    pub timeout: Duration,
    /// Sync execute waits for the node; it gets longer.
    pub sync_timeout: Duration,
    /// Retries after the first attempt, for retryable failures.
    pub max_retries: u32,
    /// First retry delay; doubles each time (with jitter).
    pub retry_base: Duration,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            timeout: Duration::from_secs(10),
            sync_timeout: Duration::from_secs(90),
            max_retries: 4,
            retry_base: Duration::from_millis(250),
        }
    }
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentFieldClient {
    http: reqwest::Client,
    config: ClientConfig,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentFieldError {
    #[error("AgentField refused the API key: {0}")]
    Unauthorized(String),
    #[error("no such execution")]
    NotFound,
    #[error("AgentField does not know this target: {0}")]
    UnknownTarget(String),
    #[error("the execution is already finished: {0}")]
    InvalidState(String),
    /// 429, 503, 504 or a transport failure that outlived the retries.
    #[error("AgentField is unavailable ({status}): {message}")]
    Unavailable { status: u16, category: Option<ErrorCategory>, message: String },
    /// The node failed (502) or refused (its 4xx, propagated).
    #[error("the agent node failed ({status}, {category:?}): {message}")]
    Agent { status: u16, category: Option<ErrorCategory>, message: String },
    #[error("AgentField answered {status}: {message}")]
    Unexpected { status: u16, message: String },
    #[error("cannot reach AgentField: {0}")]
    Transport(String),
    #[error("AgentField's answer is not what the protocol says: {0}")]
    Decode(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl AgentFieldError {
    /// Worth trying again later (the outbox does, with its own backoff).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Transport(_))
    }
}

/// An execute call.
#[derive(Debug, Clone, Default)]
pub struct ExecuteRequest {
    /// `node_id.reasoner_or_skill`.
    pub target: String,
    /// The bare input the node receives.
    pub input: Value,
    pub context: Option<Value>,
    pub webhook: Option<WebhookRegistration>,
    pub run_id: Option<String>,
    pub parent_execution_id: Option<String>,
    pub session_id: Option<String>,
    pub actor_id: Option<String>,
}

#[derive(Serialize)]
struct ExecuteBody<'a> {
    input: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<&'a WebhookRegistration>,
}

impl AgentFieldClient {
    pub fn new(config: ClientConfig) -> Result<Self, AgentFieldError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        url::Url::parse(&config.base_url).map_err(|e| AgentFieldError::InvalidRequest(format!("base_url: {e}")))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AgentFieldError::InvalidRequest(e.to_string()))?;
        Ok(Self { http, config })
    }

    /// Runs a reasoner or skill and waits for its result.
    pub async fn execute(&self, request: &ExecuteRequest) -> Result<SyncExecution, AgentFieldError> {
        let path = format!("/api/v1/execute/{}", target(&request.target)?);
        self.call(Method::POST, &path, Some(&body(request)), headers(request), self.config.sync_timeout).await
    }

    /// Queues a reasoner or skill; the result comes by webhook or polling.
    pub async fn execute_async(&self, request: &ExecuteRequest) -> Result<AsyncAccepted, AgentFieldError> {
        let path = format!("/api/v1/execute/async/{}", target(&request.target)?);
        self.call(Method::POST, &path, Some(&body(request)), headers(request), self.config.timeout).await
    }

    pub async fn execution(&self, execution_id: &str) -> Result<Execution, AgentFieldError> {
        let path = format!("/api/v1/executions/{}", segment(execution_id)?);
        self.call::<Value, _>(Method::GET, &path, None, Vec::new(), self.config.timeout).await
    }

    /// Status of up to 500 executions; unknown ids come back `not_found`.
    pub async fn batch_status(
        &self,
        execution_ids: &[String],
    ) -> Result<std::collections::HashMap<String, Execution>, AgentFieldError> {
        if execution_ids.len() > 500 {
            return Err(AgentFieldError::InvalidRequest("at most 500 execution ids per batch".to_owned()));
        }
        let body = serde_json::json!({"execution_ids": execution_ids});
        self.call(Method::POST, "/api/v1/executions/batch-status", Some(&body), Vec::new(), self.config.timeout).await
    }

    pub async fn cancel(&self, execution_id: &str, reason: Option<&str>) -> Result<Cancelled, AgentFieldError> {
        let path = format!("/api/v1/executions/{}/cancel", segment(execution_id)?);
        let body = serde_json::json!({"reason": reason});
        self.call(Method::POST, &path, Some(&body), Vec::new(), self.config.timeout).await
    }

    pub async fn health(&self) -> Result<Health, AgentFieldError> {
        self.call::<Value, _>(Method::GET, "/api/v1/health", None, Vec::new(), self.config.timeout).await
    }

    // ---- the agent node's side (agentfield.md section 3) -------------------

    /// Registers a node with its reasoners and skills.
    pub async fn register_node(&self, registration: &NodeRegistration) -> Result<Value, AgentFieldError> {
        self.call(Method::POST, "/api/v1/nodes/register", Some(registration), Vec::new(), self.config.timeout).await
    }

    /// Tells the control plane the node is alive (`starting`, `ready`,
    /// `degraded`, `offline`). `NotFound`: it forgot the node; register again.
    pub async fn heartbeat(&self, node_id: &str, status: &str, version: &str) -> Result<Value, AgentFieldError> {
        let path = format!("/api/v1/nodes/{}/heartbeat", segment(node_id)?);
        let body = serde_json::json!({"status": status, "version": version});
        self.call(Method::POST, &path, Some(&body), Vec::new(), self.config.timeout).await
    }

    /// Announces that the node is going away.
    pub async fn node_shutdown(&self, node_id: &str) -> Result<Value, AgentFieldError> {
        let path = format!("/api/v1/nodes/{}/shutdown", segment(node_id)?);
        self.call::<Value, _>(Method::POST, &path, None, Vec::new(), self.config.timeout).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        extra: Vec<(&'static str, String)>,
        timeout: Duration,
    ) -> Result<T, AgentFieldError> {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), &url).timeout(timeout);
            if let Some(key) = &self.config.api_key {
                request = request.header("X-API-Key", key.expose_secret());
            }
            for (name, value) in &extra {
                request = request.header(*name, value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let bytes = response.bytes().await.map_err(|e| AgentFieldError::Transport(e.to_string()))?;
                    if status.is_success() {
                        return serde_json::from_slice(&bytes).map_err(|e| AgentFieldError::Decode(e.to_string()));
                    }
                    (classify(status, &bytes), retry_after)
                }
                Err(e) => (AgentFieldError::Transport(e.to_string()), None),
            };
            let (error, retry_after) = outcome;
            if !error.is_retryable() || attempt >= self.config.max_retries {
                return Err(error);
            }
            attempt += 1;
            let delay = retry_after.unwrap_or_else(|| backoff(self.config.retry_base, attempt));
            tracing::debug!(%url, attempt, ?delay, error = %error, "retrying AgentField call");
            tokio::time::sleep(delay).await;
        }
    }
}

fn body(request: &ExecuteRequest) -> ExecuteBody<'_> {
    ExecuteBody { input: &request.input, context: request.context.as_ref(), webhook: request.webhook.as_ref() }
}

fn headers(request: &ExecuteRequest) -> Vec<(&'static str, String)> {
    [
        ("X-Run-ID", &request.run_id),
        ("X-Parent-Execution-ID", &request.parent_execution_id),
        ("X-Session-ID", &request.session_id),
        ("X-Actor-ID", &request.actor_id),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
    .collect()
}

/// `node.name`, both parts non-empty and URL-safe.
fn target(target: &str) -> Result<&str, AgentFieldError> {
    let valid = target.split_once('.').is_some_and(|(node, name)| !node.is_empty() && !name.is_empty())
        && target.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid { Ok(target) } else { Err(AgentFieldError::InvalidRequest(format!("target {target:?} is not node.name"))) }
}

fn segment(id: &str) -> Result<&str, AgentFieldError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
        Ok(id)
    } else {
        Err(AgentFieldError::InvalidRequest(format!("execution id {id:?} is malformed")))
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(60)))
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    use rand::Rng;
    let full = base.saturating_mul(1 << attempt.min(10)).min(Duration::from_secs(30));
    full / 2 + (full / 2).mul_f64(rand::rng().random::<f64>())
}

/// Maps the documented error shapes (`{"error", "message"?, "error_category"?}`).
fn classify(status: StatusCode, body: &[u8]) -> AgentFieldError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = parsed["error"].as_str().unwrap_or_default().to_owned();
    let message = parsed["message"].as_str().map(str::to_owned).unwrap_or_else(|| {
        if error.is_empty() {
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
        } else {
            error.clone()
        }
    });
    let category = parsed["error_category"].as_str().map(ErrorCategory::from);
    let code = status.as_u16();
    match code {
        // A node's own 4xx, propagated on execute, carries a category; the
        // control plane's own 400/404/409 do not.
        400..=499 if code != 429 && category.is_some() => AgentFieldError::Agent { status: code, category, message },
        401 => AgentFieldError::Unauthorized(message),
        404 => AgentFieldError::NotFound,
        400 => AgentFieldError::UnknownTarget(message),
        409 => AgentFieldError::InvalidState(message),
        429 | 503 | 504 => AgentFieldError::Unavailable { status: code, category, message },
        502 => AgentFieldError::Agent { status: code, category, message },
        402..=499 => AgentFieldError::Agent { status: code, category, message },
        _ => AgentFieldError::Unexpected { status: code, message },
    }
}
