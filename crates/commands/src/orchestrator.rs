//! The worker's side of commands: outbox handlers that hand executions to
//! AgentField and, when no webhook arrives, reconcile them by polling.
//!
//! - `agentfield.execute` (written with the execution when it was accepted):
//!   async execute of the command's skill with the bare [`CommandInput`] and
//!   a webhook signed with the execution's own secret. AgentField down or
//!   overloaded: the event is postponed (no attempt spent) with a pause that
//!   grows with the wait, so the command waits, durable, for as long as the
//!   outage lasts and completes soon after AgentField is back. The agent
//!   node not registered: postponed for [`OrchestratorConfig::node_grace`],
//!   then the execution fails visibly (`agent_node_unavailable`). Delivered
//!   twice (a worker died after the call): AgentField may run the skill
//!   twice, which acts once.
//! - `agentfield.reconcile` (scheduled by the hand-off): asks AgentField how
//!   the execution is doing, finishes it when AgentField has, looks again
//!   every `reconcile_after` while it runs, and gives up at the deadline
//!   (`timeout`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anchor_agentfield::{AgentFieldClient, AgentFieldError, ExecuteRequest, WebhookRegistration};
use anchor_domain::{ExecutionId, ExecutionStatus};
use anchor_outbox::{HandlerError, Handlers, OutboxEvent};
use anchor_store::{Database, StoreError, Workspace, executions::Execution, tenancy::DEFAULT_MAX_ATTEMPTS};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::{
    HANDOFF_TOPIC, RECONCILE_TOPIC,
    callback::{self, CallbackKey},
    command::CommandInput,
    finish::{self, ExecutionError, Outcome},
};

/// How the worker reaches AgentField and how patient it is.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// The agent node that hosts Anchor's skills (`<node>.<skill>` targets).
    pub node_id: String,
    /// Where AgentField posts execution webhooks: the gateway's
    /// `/api/v1/callbacks/agentfield`.
    pub callback_url: String,
    /// First look at an execution when no webhook came.
    pub reconcile_after: Duration,
    /// An execution still running this long after hand-off is given up.
    pub deadline: Duration,
    /// How long the agent node may stay unregistered (as this worker sees
    /// it, counted from the first "unknown target" after a success) before
    /// hand-offs fail with `agent_node_unavailable`. Counted in time, not in
    /// attempts, so a control plane that just came back from an outage gets
    /// the node's next heartbeat to re-register.
    pub node_grace: Duration,
}

impl OrchestratorConfig {
    pub fn new(node_id: impl Into<String>, callback_url: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            callback_url: callback_url.into(),
            reconcile_after: Duration::from_secs(30),
            deadline: Duration::from_secs(600),
            node_grace: Duration::from_secs(60),
        }
    }
}

/// The handlers' shared state.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    db: Database,
    agentfield: AgentFieldClient,
    callbacks: CallbackKey,
    config: OrchestratorConfig,
    /// Since when the agent node has been unknown to AgentField, as seen by
    /// this worker; cleared by any successful hand-off.
    node_missing_since: Arc<Mutex<Option<Instant>>>,
}

/// How long to wait before asking a control plane that is down (or busy)
/// again: a quarter of how long the execution has waited so far, between
/// 1 s and 60 s, with jitter. Stateless, so it holds across workers and
/// restarts, and a queue of thousands of commands costs AgentField at most
/// one request per command a minute while it is away.
fn outage_pause(waiting_since: OffsetDateTime) -> Duration {
    use rand::Rng;
    let waited = (OffsetDateTime::now_utc() - waiting_since).unsigned_abs();
    let pause = (waited / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    pause.mul_f64(rand::rng().random_range(0.75..=1.0))
}

#[derive(Debug, Deserialize)]
struct ExecutionEvent {
    execution_id: ExecutionId,
}

/// An `agentfield.execute` event: the execution, and (written since events
/// carry it) the command as accepted and when.
#[derive(Debug, Deserialize)]
struct HandOff {
    #[serde(default)]
    input: Option<CommandInput>,
    #[serde(default)]
    created_at_ms: Option<i64>,
}

fn retry(e: &StoreError) -> HandlerError {
    HandlerError::retry(format!("database: {e}"))
}

impl Orchestrator {
    pub fn new(db: Database, agentfield: AgentFieldClient, callbacks: CallbackKey, config: OrchestratorConfig) -> Self {
        Self { db, agentfield, callbacks, config, node_missing_since: Arc::default() }
    }

    /// Registers the two topics.
    pub fn register(self, handlers: Handlers) -> Handlers {
        let this = Arc::new(self);
        let handoff = Arc::clone(&this);
        handlers
            .on(HANDOFF_TOPIC, move |event| {
                let this = Arc::clone(&handoff);
                async move { this.hand_off(event).await }
            })
            .on(RECONCILE_TOPIC, move |event| {
                let this = Arc::clone(&this);
                async move { this.reconcile(event).await }
            })
    }

    /// The event's workspace and execution, or a permanent error for an event
    /// that can never be delivered.
    async fn load(&self, event: &OutboxEvent) -> Result<Option<(Workspace, Execution)>, HandlerError> {
        let parsed: ExecutionEvent = serde_json::from_value(event.payload.clone())
            .map_err(|e| HandlerError::Permanent(format!("malformed {} event: {e}", event.topic)))?;
        let workspace_id =
            event.workspace_id.ok_or_else(|| HandlerError::Permanent("execution event without a workspace".into()))?;
        let Some(workspace) = self.db.workspace_by_id(workspace_id).await.map_err(|e| retry(&e))? else {
            return Ok(None); // the workspace was deleted
        };
        let mut tx = self.db.begin_workspace(&workspace).await.map_err(|e| retry(&e))?;
        let execution = tx.execution(parsed.execution_id).await.map_err(|e| retry(&e))?;
        tx.discard();
        Ok(execution.map(|execution| (workspace, execution)))
    }

    /// What to hand off: from the event itself on its first delivery (it
    /// carries the command as accepted, and nothing can have happened to
    /// the execution before its first hand-off), read back otherwise (a
    /// redelivery after a worker stopped, or an event written before events
    /// carried their input), when it is skipped if handed off before.
    async fn to_hand_off(
        &self,
        event: &OutboxEvent,
    ) -> Result<Option<(Workspace, CommandInput, OffsetDateTime)>, HandlerError> {
        if event.attempt <= 1
            && let Ok(HandOff { input: Some(input), created_at_ms: Some(ms), .. }) =
                serde_json::from_value::<HandOff>(event.payload.clone())
            && let Some(workspace_id) = event.workspace_id
            && let Ok(created_at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        {
            let workspace = self.db.workspace_by_id(workspace_id).await.map_err(|e| retry(&e))?;
            return Ok(workspace.map(|workspace| (workspace, input, created_at)));
        }
        let Some((workspace, execution)) = self.load(event).await? else { return Ok(None) };
        if execution.status.is_finished() || execution.agentfield_execution_id.is_some() {
            return Ok(None); // handed off before (this is a redelivery)
        }
        let input = CommandInput {
            execution_id: execution.id,
            workspace: workspace.slug().to_string(),
            actor: execution.actor,
            command: execution.command,
            args: execution.input,
            envelope: execution.envelope,
        };
        Ok(Some((workspace, input, execution.created_at)))
    }

    #[tracing::instrument(skip_all, fields(outbox_id = event.id, attempt = event.attempt))]
    async fn hand_off(&self, event: OutboxEvent) -> Result<(), HandlerError> {
        let Some((workspace, input, created_at)) = self.to_hand_off(&event).await? else { return Ok(()) };
        let execution_id = input.execution_id;
        let Some(skill) = crate::registry::find(&input.command).map(|spec| spec.skill) else {
            let error = ExecutionError::new("unknown_command", format!("no skill performs {}", input.command));
            return self.fail(&workspace, execution_id, ExecutionStatus::Failed, error).await;
        };
        let slug = workspace.slug().to_string();
        let actor_id = input.actor.subject.clone();
        let exec_id = execution_id.to_string();
        let request = ExecuteRequest {
            target: format!("{}.{skill}", self.config.node_id),
            input: serde_json::to_value(&input).expect("serialises"),
            webhook: Some(WebhookRegistration {
                url: self.config.callback_url.clone(),
                secret: Some(self.callbacks.secret_for(&slug, &exec_id)),
                headers: Some(HashMap::from([
                    (callback::WORKSPACE_HEADER.to_owned(), slug.clone()),
                    (callback::EXECUTION_HEADER.to_owned(), exec_id.clone()),
                ])),
            }),
            actor_id: Some(actor_id),
            ..ExecuteRequest::default()
        };
        match self.agentfield.execute_async(&request).await {
            Ok(accepted) => {
                self.node_missing_since.lock().expect("not poisoned").take();
                if !accepted.webhook_registered {
                    tracing::warn!(
                        error = accepted.webhook_error.as_deref().unwrap_or(""),
                        "AgentField will not call back (allow the gateway's host in AGENTFIELD_WEBHOOK_ALLOWED_HOSTS); polling instead"
                    );
                }
                // Redone if a crash forgets it (the hand-off event is then
                // delivered again, and AgentField runs a skill that acts
                // once), so its commit need not wait for the disk: a
                // callback waiting for this row is not kept waiting.
                let mut tx = self.db.begin_workspace_async_commit(&workspace).await.map_err(|e| retry(&e))?;
                tx.mark_handed_off(execution_id, &accepted.execution_id, &accepted.run_id, &request.target)
                    .await
                    .map_err(|e| retry(&e))?;
                let payload = json!({"execution_id": execution_id});
                tx.enqueue_with(RECONCILE_TOPIC, &payload, self.config.reconcile_after, DEFAULT_MAX_ATTEMPTS)
                    .await
                    .map_err(|e| retry(&e))?;
                tx.commit().await.map_err(|e| retry(&e))?;
                tracing::info!(execution = %execution_id, agentfield = %accepted.execution_id, "handed off to AgentField");
                Ok(())
            }
            Err(AgentFieldError::UnknownTarget(message)) => {
                let missing_for =
                    self.node_missing_since.lock().expect("not poisoned").get_or_insert_with(Instant::now).elapsed();
                if missing_for < self.config.node_grace {
                    let reason = format!("agent node not registered (for {} s): {message}", missing_for.as_secs());
                    return Err(HandlerError::postpone(reason, Duration::from_secs(2)));
                }
                let error = ExecutionError::new(
                    "agent_node_unavailable",
                    format!("no agent node serves {}: {message}", request.target),
                );
                self.fail(&workspace, execution_id, ExecutionStatus::Failed, error).await
            }
            // Down, overloaded or unreachable: the command waits, durable,
            // for as long as the outage lasts.
            Err(e) if e.is_retryable() => Err(HandlerError::postpone(e.to_string(), outage_pause(created_at))),
            Err(e) => Err(HandlerError::retry(e.to_string())),
        }
    }

    #[tracing::instrument(skip_all, fields(outbox_id = event.id, attempt = event.attempt))]
    async fn reconcile(&self, event: OutboxEvent) -> Result<(), HandlerError> {
        let Some((workspace, execution)) = self.load(&event).await? else { return Ok(()) };
        if execution.status.is_finished() {
            return Ok(());
        }
        let Some(agentfield_id) = execution.agentfield_execution_id.clone() else { return Ok(()) };
        let outcome = match self.agentfield.execution(&agentfield_id).await {
            Ok(status) if status.status.is_terminal() => {
                use anchor_agentfield::ExecutionStatus as Af;
                match status.status {
                    Af::Succeeded => Outcome::Succeeded,
                    other => Outcome::Failed {
                        status: match other {
                            Af::Cancelled => ExecutionStatus::Cancelled,
                            Af::Timeout => ExecutionStatus::Timeout,
                            _ => ExecutionStatus::Failed,
                        },
                        reason: status.error.or(status.status_reason),
                    },
                }
            }
            Ok(_) => {
                let handed_off = execution.handed_off_at.unwrap_or(execution.created_at);
                if OffsetDateTime::now_utc() - handed_off < self.config.deadline {
                    return Err(HandlerError::postpone("still running at AgentField", self.config.reconcile_after));
                }
                if let Err(e) = self.agentfield.cancel(&agentfield_id, Some("deadline passed")).await {
                    tracing::warn!(error = %e, "could not cancel the overdue execution at AgentField");
                }
                let error = ExecutionError::new(
                    "execution_timeout",
                    format!("not finished {} s after hand-off", self.config.deadline.as_secs()),
                );
                return self.fail(&workspace, execution.id, ExecutionStatus::Timeout, error).await;
            }
            Err(AgentFieldError::NotFound) => {
                let error = ExecutionError::new("agentfield_lost", "AgentField no longer knows this execution");
                return self.fail(&workspace, execution.id, ExecutionStatus::Failed, error).await;
            }
            Err(e) if e.is_retryable() => {
                let handed_off = execution.handed_off_at.unwrap_or(execution.created_at);
                return Err(HandlerError::postpone(e.to_string(), outage_pause(handed_off)));
            }
            Err(e) => return Err(HandlerError::retry(e.to_string())),
        };
        let mut tx = self.db.begin_workspace(&workspace).await.map_err(|e| retry(&e))?;
        let Some(execution) = tx.lock_execution(execution.id).await.map_err(|e| retry(&e))? else { return Ok(()) };
        if finish::finish(&mut tx, &execution, outcome).await.map_err(|e| retry(&e))? {
            tracing::info!(execution = %execution.id, "finished by reconciliation (no webhook came)");
        }
        tx.commit().await.map_err(|e| retry(&e))
    }

    async fn fail(
        &self,
        workspace: &Workspace,
        id: ExecutionId,
        status: ExecutionStatus,
        error: ExecutionError,
    ) -> Result<(), HandlerError> {
        let mut tx = self.db.begin_workspace(workspace).await.map_err(|e| retry(&e))?;
        let Some(execution) = tx.lock_execution(id).await.map_err(|e| retry(&e))? else { return Ok(()) };
        finish::fail(&mut tx, &execution, status, error).await.map_err(|e| retry(&e))?;
        tx.commit().await.map_err(|e| retry(&e))
    }
}
