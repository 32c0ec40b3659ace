//! The control plane's documents, as `agentfield.md` specifies them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where AgentField posts the execution's completion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct WebhookRegistration {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::HashMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Pending,
    Queued,
    Waiting,
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
    Timeout,
    /// Batch status only: the id is unknown.
    NotFound,
    /// A status this client does not know (a newer control plane).
    #[serde(other)]
    Unknown,
}

impl ExecutionStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled | Self::Timeout)
    }
}

/// The `error_category` of an error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCategory {
    AgentError,
    AgentTimeout,
    AgentUnreachable,
    BadResponse,
    ConcurrencyLimit,
    LlmUnavailable,
    InternalError,
    Other(String),
}

impl From<&str> for ErrorCategory {
    fn from(s: &str) -> Self {
        match s {
            "agent_error" => Self::AgentError,
            "agent_timeout" => Self::AgentTimeout,
            "agent_unreachable" => Self::AgentUnreachable,
            "bad_response" => Self::BadResponse,
            "concurrency_limit" => Self::ConcurrencyLimit,
            "llm_unavailable" => Self::LlmUnavailable,
            "internal_error" => Self::InternalError,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// 200 of sync execute.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct SyncExecution {
    pub execution_id: String,
    pub run_id: String,
    pub status: ExecutionStatus,
    #[serde(default)]
    pub result: Value,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub webhook_registered: bool,
}

/// 202 of async execute.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct AsyncAccepted {
    pub execution_id: String,
    pub run_id: String,
    #[serde(default)]
    pub workflow_id: Option<String>,
    pub status: ExecutionStatus,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub enqueued_at: Option<String>,
    #[serde(default)]
    pub webhook_registered: bool,
    #[serde(default)]
    pub webhook_error: Option<String>,
}

/// An execution's state.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Execution {
    #[serde(default)]
    pub execution_id: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    pub status: ExecutionStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_details: Option<Value>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub webhook_registered: Option<bool>,
}

/// 200 of cancel.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Cancelled {
    pub execution_id: String,
    pub previous_status: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub cancelled_at: Option<String>,
}

/// Health of the control plane.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Health {
    pub status: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub checks: Option<Value>,
}

/// A function (reasoner or skill) a node offers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeFunction {
    pub id: String,
    pub input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// `POST /api/v1/nodes/register`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeRegistration {
    pub id: String,
    pub base_url: String,
    pub version: String,
    /// New per process: a new instance fails the previous one's in-flight
    /// executions.
    pub instance_id: String,
    pub reasoners: Vec<NodeFunction>,
    pub skills: Vec<NodeFunction>,
    pub communication_config: Value,
    pub metadata: Value,
}
