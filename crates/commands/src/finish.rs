//! Finishing an execution: one place decides the final status, result and
//! error, whether the news came from a webhook or from polling, and
//! publishes `execution.succeeded` or `execution.failed` through the outbox
//! in the same unit of work.

use anchor_domain::{ExecutionId, ExecutionStatus};
use anchor_events::{Event, EventSpec};
use anchor_store::{
    StoreError, WorkspaceTx,
    executions::{Actor, AgentFieldRun, EffectClaim, Execution},
};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use crate::CommandInput;

/// `execution.succeeded`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutionSucceeded {
    pub execution_id: ExecutionId,
    pub command: String,
    pub status: ExecutionStatus,
    pub actor: Actor,
    /// What the command did, e.g. `{"ticket_id"}`.
    pub result: Value,
}

impl Event for ExecutionSucceeded {
    const TYPE: &'static str = "execution.succeeded";
    const WHEN: &'static str = "A command's execution finished successfully.";
}

/// `execution.failed`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutionFailed {
    pub execution_id: ExecutionId,
    pub command: String,
    /// `failed`, `cancelled` or `timeout`.
    pub status: ExecutionStatus,
    pub actor: Actor,
    /// Why: `{code, message}`.
    pub error: Value,
}

impl Event for ExecutionFailed {
    const TYPE: &'static str = "execution.failed";
    const WHEN: &'static str = "A command's execution finished without success (failed, cancelled or timed out).";
}

/// The events every command's execution publishes.
pub const EVENTS: &[EventSpec] = &[EventSpec::of::<ExecutionSucceeded>(), EventSpec::of::<ExecutionFailed>()];

/// How AgentField says an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// AgentField's own `result` is not kept: the skill's recorded effect
    /// is the authority on what happened.
    Succeeded,
    /// `failed`, `cancelled` or `timeout`, with AgentField's reason.
    Failed { status: ExecutionStatus, reason: Option<String> },
}

/// An execution's `error`: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionError {
    pub code: String,
    pub message: String,
}

impl ExecutionError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into() }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("serialises")
    }
}

/// Finishes `execution` (which the caller locked in `tx`). Returns `false`
/// when it had finished already: the first news wins, later news changes
/// nothing.
pub async fn finish(tx: &mut WorkspaceTx, execution: &Execution, outcome: Outcome) -> Result<bool, StoreError> {
    if execution.status.is_finished() {
        return Ok(false);
    }
    // What the skill recorded is the authority on what happened: a refusal
    // carries its own error code, an effect that was applied is a success
    // even when AgentField reports a failure or lost track of it, and a
    // "success" with no effect recorded is not believed (every command is a
    // skill that records its effect before it answers; a control plane that
    // claims otherwise achieves nothing).
    let effect = tx.effect(execution.id).await?;
    let (status, result, error) = match (outcome, effect) {
        (_, Some(EffectClaim::Rejected(refusal))) => (ExecutionStatus::Failed, None, Some(refusal)),
        (_, Some(EffectClaim::Applied(result))) => (ExecutionStatus::Succeeded, Some(result), None),
        (Outcome::Succeeded, _) => {
            let error = ExecutionError::new(
                "no_effect_recorded",
                "AgentField reported success, but the skill recorded no effect for this execution",
            );
            (ExecutionStatus::Failed, None, Some(error.to_value()))
        }
        (Outcome::Failed { status, reason }, _) => {
            let error = match status {
                ExecutionStatus::Timeout => ExecutionError::new(
                    "agent_timeout",
                    reason.unwrap_or_else(|| "the agent node did not finish in time".into()),
                ),
                ExecutionStatus::Cancelled => {
                    ExecutionError::new("cancelled", reason.unwrap_or_else(|| "the execution was cancelled".into()))
                }
                _ => ExecutionError::new("agent_error", reason.unwrap_or_else(|| "the agent node failed".into())),
            };
            (status, None, Some(error.to_value()))
        }
    };
    finish_as(tx, execution.into(), status, result, error).await
}

/// Finishes `execution` with an outcome Anchor decided itself (the agent
/// node never became available, AgentField lost the execution, ...).
pub async fn fail(
    tx: &mut WorkspaceTx,
    execution: &Execution,
    status: ExecutionStatus,
    error: ExecutionError,
) -> Result<bool, StoreError> {
    if execution.status.is_finished() {
        return Ok(false);
    }
    if let Some(EffectClaim::Applied(result)) = tx.effect(execution.id).await? {
        return finish_as(tx, execution.into(), ExecutionStatus::Succeeded, Some(result), None).await;
    }
    finish_as(tx, execution.into(), status, None, Some(error.to_value())).await
}

/// Finishes the execution a skill just performed, in the skill's own unit of
/// work, from the outcome it records there (`result` when applied, the
/// refusal's record when refused): the waiting caller hears of it when the
/// effect commits, and AgentField's webhook, when it comes, finds it
/// finished and changes nothing. [`finish`] would decide the same from the
/// recorded effect whatever AgentField reports. `run`: where AgentField ran
/// it, recorded unless the hand-off has already.
pub async fn performed(
    tx: &mut WorkspaceTx,
    input: &CommandInput,
    run: Option<&AgentFieldRun<'_>>,
    outcome: Result<&Value, &Value>,
) -> Result<bool, StoreError> {
    let (status, result, error) = match outcome {
        Ok(result) => (ExecutionStatus::Succeeded, Some(result.clone()), None),
        Err(refusal) => (ExecutionStatus::Failed, None, Some(refusal.clone())),
    };
    let finishing = Finishing { id: input.execution_id, command: &input.command, actor: &input.actor, run };
    finish_as(tx, finishing, status, result, error).await
}

/// The execution being finished, as its events name it.
struct Finishing<'a> {
    id: ExecutionId,
    command: &'a str,
    actor: &'a Actor,
    run: Option<&'a AgentFieldRun<'a>>,
}

impl<'a> From<&'a Execution> for Finishing<'a> {
    fn from(execution: &'a Execution) -> Self {
        Self { id: execution.id, command: &execution.command, actor: &execution.actor, run: None }
    }
}

async fn finish_as(
    tx: &mut WorkspaceTx,
    execution: Finishing<'_>,
    status: ExecutionStatus,
    result: Option<Value>,
    error: Option<Value>,
) -> Result<bool, StoreError> {
    if !tx.finish_execution(execution.id, status, result.as_ref(), error.as_ref(), execution.run).await? {
        return Ok(false);
    }
    let (execution_id, command, actor) = (execution.id, execution.command.to_owned(), execution.actor.clone());
    match (result, error) {
        (Some(result), _) => {
            anchor_events::publish(tx, &ExecutionSucceeded { execution_id, command, status, actor, result }).await?
        }
        (None, error) => {
            let error = error.unwrap_or_default();
            anchor_events::publish(tx, &ExecutionFailed { execution_id, command, status, actor, error }).await?
        }
    };
    // Issuing the credential is part of finishing: same unit of work.
    tx.enqueue(anchor_outbox::topics::EVIDENCE_ISSUE, &json!({"execution_id": execution_id})).await?;
    tracing::info!(execution = %execution_id, %status, "execution finished");
    Ok(true)
}
