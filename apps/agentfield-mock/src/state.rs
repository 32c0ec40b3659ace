//! Nodes and executions, in memory.

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::Config;

pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

pub(crate) fn new_id(prefix: &str) -> String {
    use rand::Rng;
    format!("{prefix}_{:016x}", rand::rng().random::<u64>())
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct Function {
    pub id: String,
    #[serde(default)]
    pub input_schema: Value,
    #[serde(default)]
    pub output_schema: Value,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Registration {
    pub id: String,
    pub base_url: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub reasoners: Vec<Function>,
    #[serde(default)]
    pub skills: Vec<Function>,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub registration: Arc<Registration>,
    pub status: String,
    /// Whether the last `/status` poll answered `running`.
    pub reachable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Reasoner,
    Skill,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct Webhook {
    pub url: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub headers: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Execution {
    pub id: String,
    pub run_id: String,
    pub node: String,
    pub name: String,
    pub kind: Kind,
    pub instance_id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub error_details: Option<Value>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub started: std::time::Instant,
    pub duration_ms: Option<u64>,
    pub webhook: Option<Webhook>,
    pub webhook_registered: bool,
    pub done: watch::Sender<bool>,
}

pub(crate) const TERMINAL: [&str; 4] = ["succeeded", "failed", "cancelled", "timeout"];

impl Execution {
    pub(crate) fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.status.as_str())
    }

    pub(crate) fn target(&self) -> String {
        format!("{}.{}", self.node, self.name)
    }

    /// The document of `GET /api/v1/executions/{id}`.
    pub(crate) fn view(&self) -> Value {
        json!({
            "execution_id": self.id, "run_id": self.run_id, "status": self.status,
            "status_reason": self.status_reason, "result": self.result, "error": self.error,
            "error_details": self.error_details, "started_at": self.started_at,
            "completed_at": self.completed_at, "duration_ms": self.duration_ms,
            "webhook_registered": self.webhook_registered,
        })
    }
}

/// Everything the mock knows.
#[derive(Debug)]
pub struct MockState {
    pub(crate) config: Config,
    pub(crate) nodes: Mutex<HashMap<String, Node>>,
    pub(crate) executions: Mutex<HashMap<String, Execution>>,
    pub(crate) http: reqwest::Client,
}

impl MockState {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client");
        Self { config, nodes: Mutex::default(), executions: Mutex::default(), http }
    }

    /// Moves an execution to a terminal state (once; later transitions are
    /// refused) and fires its webhook (not for cancel).
    pub(crate) async fn finish(
        self: &Arc<Self>,
        id: &str,
        status: &str,
        result: Option<Value>,
        error: Option<String>,
        error_details: Option<Value>,
    ) -> bool {
        let finished = {
            let mut executions = self.executions.lock().await;
            let Some(exec) = executions.get_mut(id) else { return false };
            if exec.is_terminal() {
                return false;
            }
            exec.status = status.to_owned();
            exec.result = result;
            exec.error = error;
            exec.error_details = error_details;
            exec.completed_at = Some(now());
            exec.duration_ms = Some(exec.started.elapsed().as_millis() as u64);
            let _ = exec.done.send(true);
            exec.clone()
        };
        if status != "cancelled"
            && let Some(webhook) = finished.webhook.clone().filter(|_| finished.webhook_registered)
        {
            tokio::spawn(crate::webhooks::deliver(Arc::clone(self), webhook, finished));
        }
        true
    }
}

/// Polls every registered node's `/status`, as upstream does.
pub(crate) async fn poll_nodes(state: Arc<MockState>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(state.config.status_poll);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let nodes: Vec<(String, String)> = state
            .nodes
            .lock()
            .await
            .values()
            .map(|n| (n.registration.id.clone(), n.registration.base_url.clone()))
            .collect();
        for (id, base) in nodes {
            let url = format!("{}/status", base.trim_end_matches('/'));
            let reachable = match state.http.get(&url).timeout(Duration::from_secs(5)).send().await {
                Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["status"] == "running"),
                Err(_) => false,
            };
            if let Some(node) = state.nodes.lock().await.get_mut(&id) {
                node.reachable = reachable;
            }
        }
    }
}
