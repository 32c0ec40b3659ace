//! Accepting a command: the execution row, its signed envelope and the
//! hand-off event, in one unit of work. Once this commits the command is
//! durable: whatever is down, it is handed off when it can be. People's
//! commands get here through [`crate::submit`]; alert automation calls
//! [`accept_in`] itself.

use std::time::Duration;

use anchor_domain::{ExecutionId, Role};
use anchor_store::{
    Database, StoreError, Workspace, WorkspaceTx,
    executions::{Actor, Execution, NewExecution},
};
use serde_json::json;

use crate::{Command, CommandInput, CommandSigner, EnvelopeError, HANDOFF_TOPIC};

/// Hand-off attempts spent on real failures (database errors, panics); an
/// AgentField outage spends none (the hand-off is postponed instead).
pub(crate) const HANDOFF_MAX_ATTEMPTS: i32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// [`accept_in`] in a unit of work of its own (no idempotency key): tools
/// and tests that have decided already.
#[tracing::instrument(skip_all, fields(workspace = %workspace.slug(), command = command.name()))]
pub async fn accept(
    db: &Database,
    signer: &CommandSigner,
    workspace: &Workspace,
    actor: &Actor,
    actor_role: Option<Role>,
    command: &Command,
) -> Result<Execution, AcceptError> {
    let mut tx = db.begin_workspace(workspace).await?;
    let execution = accept_in(&mut tx, signer, actor, actor_role, command, None).await?;
    tx.commit().await?;
    tracing::info!(execution = %execution.id, "command accepted");
    Ok(execution)
}

/// Records `command` as a queued execution on behalf of `actor` (in
/// `actor_role` at this moment, with the idempotency key it came with), and
/// the outbox event that hands it to AgentField, inside the caller's unit of
/// work: the caller decides and accepts under the same locks, and the
/// command is durable once the caller commits.
pub async fn accept_in(
    tx: &mut WorkspaceTx,
    signer: &CommandSigner,
    actor: &Actor,
    actor_role: Option<Role>,
    command: &Command,
    idempotency_key: Option<&str>,
) -> Result<Execution, AcceptError> {
    let id = ExecutionId::new();
    let args = command.args();
    let envelope = signer.sign(id, tx.workspace().slug().as_str(), actor, command.name(), &args)?;
    let execution = tx
        .insert_execution(&NewExecution {
            id,
            command: command.name(),
            input: &args,
            actor,
            actor_role,
            envelope: &envelope,
            idempotency_key,
        })
        .await?;
    // The event carries what the hand-off sends, so that a first delivery
    // need not read the execution back (see `orchestrator::HandOff`).
    let input = CommandInput {
        execution_id: id,
        workspace: tx.workspace().slug().to_string(),
        actor: actor.clone(),
        command: command.name().to_owned(),
        args,
        envelope,
    };
    let created_at = execution.created_at.unix_timestamp_nanos() / 1_000_000;
    let payload = json!({"execution_id": id, "input": input, "created_at_ms": created_at});
    tx.enqueue_with(HANDOFF_TOPIC, &payload, Duration::ZERO, HANDOFF_MAX_ATTEMPTS).await?;
    Ok(execution)
}
