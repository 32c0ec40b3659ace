//! The gateway's side of commands: accept (sign, record, enqueue), answer
//! 202 with `Location`, or, with `Prefer: wait=N` (RFC 7240), wait for the
//! execution to finish and answer with it.
//!
//! Waiting does not poll in a tight loop: executions notify
//! `anchor_execution_finished` when they reach a final status (a trigger),
//! one listener per gateway fans the notifications out, and each waiter
//! re-reads its execution on a notification naming it (and once a second in
//! case a notification was missed).

use std::{
    path::Path,
    sync::{Arc, Weak},
    time::Duration,
};

use anchor_commands::{Command, CommandSigner, accept, callback::CallbackKey};
use anchor_domain::{ExecutionId, Role};
use anchor_store::{
    Database, StoreError, Workspace,
    executions::{Actor, Execution},
};
use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgListener;
use tokio::sync::{Mutex, broadcast};
use utoipa::ToSchema;

use crate::{auth::Caller, problem::Problem};

/// The longest `Prefer: wait` honoured (api.md).
pub const MAX_WAIT: Duration = Duration::from_secs(30);
const CHANNEL: &str = "anchor_execution_finished";

/// Keys and the completion listener, shared by the command routes.
#[derive(Debug)]
pub struct CommandDesk {
    pub signer: CommandSigner,
    pub callbacks: CallbackKey,
    /// Longest wait, below the request timeout.
    max_wait: Duration,
    finished: Mutex<Option<broadcast::Sender<String>>>,
}

impl CommandDesk {
    /// Loads (or creates) the installation's command and callback keys.
    pub fn load(data_dir: &Path, request_timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            signer: CommandSigner::load_or_create(data_dir)?,
            callbacks: CallbackKey::load_or_create(data_dir)?,
            max_wait: MAX_WAIT.min(request_timeout.saturating_sub(Duration::from_secs(1))),
            finished: Mutex::new(None),
        })
    }

    /// Subscribes to finished executions, starting the listener on first use.
    async fn subscribe(self: &Arc<Self>, db: &Database) -> Result<broadcast::Receiver<String>, StoreError> {
        let mut slot = self.finished.lock().await;
        if let Some(sender) = slot.as_ref() {
            return Ok(sender.subscribe());
        }
        let mut listener = PgListener::connect_with(db.pool()).await?;
        listener.listen(CHANNEL).await?;
        let (sender, receiver) = broadcast::channel(1024);
        tokio::spawn(fan_out(listener, db.clone(), Arc::downgrade(self), sender.clone()));
        *slot = Some(sender);
        Ok(receiver)
    }

    /// Waits up to `wait` for `id` to finish; returns it as last seen.
    async fn wait(
        self: &Arc<Self>,
        db: &Database,
        workspace: &Workspace,
        id: ExecutionId,
        wait: Duration,
    ) -> Result<Option<Execution>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut finished = self.subscribe(db).await?;
        let name = format!("{} {id}", workspace.schema_name());
        loop {
            let execution = read(db, workspace, id).await?;
            let done = execution.as_ref().is_none_or(|e| e.status.is_finished());
            if done || tokio::time::Instant::now() >= deadline {
                return Ok(execution);
            }
            let recheck = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
            loop {
                tokio::select! {
                    message = finished.recv() => match message {
                        Ok(m) if m == name => break,
                        Ok(_) => {}
                        Err(_) => break, // lagged or closed: re-read
                    },
                    () = tokio::time::sleep_until(recheck) => break,
                }
            }
        }
    }
}

/// Forwards notifications until the desk or the pool is gone; reconnects
/// on errors.
async fn fan_out(mut listener: PgListener, db: Database, desk: Weak<CommandDesk>, sender: broadcast::Sender<String>) {
    loop {
        tokio::select! {
            message = listener.recv() => match message {
                Ok(n) => { let _ = sender.send(n.payload().to_owned()); }
                Err(_) if db.pool().is_closed() => return,
                Err(e) => {
                    tracing::warn!(error = %e, "execution notifications interrupted; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            () = tokio::time::sleep(Duration::from_secs(5)) => {
                if desk.strong_count() == 0 {
                    return;
                }
            }
        }
    }
}

async fn read(db: &Database, workspace: &Workspace, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
    let mut tx = db.begin_workspace(workspace).await?;
    let execution = tx.execution(id).await?;
    tx.rollback().await?;
    Ok(execution)
}

/// `Prefer: wait=N` (RFC 7240): the seconds asked for, if any.
fn preferred_wait(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|p| p.trim().strip_prefix("wait=").and_then(|n| n.trim().trim_matches('"').parse().ok()))
}

/// `202 {execution_id, status}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accepted {
    #[schema(example = "exe_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    execution_id: String,
    /// `queued` (or where it got while the gateway waited).
    #[schema(example = "queued")]
    status: String,
}

/// An execution as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutionView {
    #[schema(example = "exe_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    id: String,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled` or `timeout`.
    #[schema(example = "succeeded")]
    status: String,
    #[schema(example = "ticket.create")]
    command: String,
    #[schema(value_type = Object)]
    input: Value,
    /// What the command did, e.g. `{"ticket_id": "tkt_..."}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    result: Option<Value>,
    /// Why it did not succeed: `{"code", "message"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence_id: Option<String>,
    agentfield: AgentFieldRef,
    /// Who asked.
    actor: ActorView,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentFieldRef {
    execution_id: Option<String>,
    run_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActorView {
    issuer: String,
    subject: String,
}

impl From<Actor> for ActorView {
    fn from(a: Actor) -> Self {
        Self { issuer: a.issuer, subject: a.subject }
    }
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

impl From<Execution> for ExecutionView {
    fn from(e: Execution) -> Self {
        Self {
            id: e.id.to_string(),
            status: e.status.to_string(),
            command: e.command,
            input: e.input,
            result: e.result,
            error: e.error,
            evidence_id: e.evidence_id,
            agentfield: AgentFieldRef { execution_id: e.agentfield_execution_id, run_id: e.agentfield_run_id },
            actor: ActorView::from(e.actor),
            created_at: rfc3339(e.created_at),
            completed_at: e.completed_at.map(rfc3339),
        }
    }
}

pub(crate) fn execution_location(workspace: &Workspace, id: ExecutionId) -> String {
    format!("/api/v1/workspaces/{}/executions/{id}", workspace.slug())
}

/// Accepts `command` for `caller` in `workspace` and answers as api.md says.
pub(crate) async fn submit(
    desk: &Arc<CommandDesk>,
    db: &Database,
    workspace: &Workspace,
    caller: &Caller,
    role: Role,
    headers: &HeaderMap,
    command: Command,
) -> Result<Response, Problem> {
    let actor = Actor { issuer: caller.identity.issuer.clone(), subject: caller.identity.subject.clone() };
    let execution = accept(db, &desk.signer, workspace, &actor, Some(role), &command).await.map_err(|e| match e {
        anchor_commands::AcceptError::Store(e) => Problem::from(e),
        anchor_commands::AcceptError::Envelope(e) => {
            tracing::error!(error = %e, "cannot sign a command envelope");
            Problem::internal()
        }
    })?;
    let location = execution_location(workspace, execution.id);
    let wait = preferred_wait(headers).map(|n| Duration::from_secs(n).min(desk.max_wait));
    let mut seen = execution;
    if let Some(wait) = wait.filter(|w| !w.is_zero()) {
        // The command is already accepted: a failed wait must not turn into
        // an error (a retry would be a second command), only into a 202.
        match desk.wait(db, workspace, seen.id, wait).await {
            Ok(Some(latest)) => seen = latest,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, execution = %seen.id, "waiting for an accepted command failed; answering 202")
            }
        }
        let applied = HeaderValue::from_str(&format!("wait={}", wait.as_secs())).expect("ascii");
        if seen.status.is_finished() {
            let headers = [(header::LOCATION, HeaderValue::from_str(&location).expect("ascii"))];
            let mut response = (StatusCode::OK, headers, Json(ExecutionView::from(seen))).into_response();
            response.headers_mut().insert("preference-applied", applied);
            return Ok(response);
        }
    }
    let body = Accepted { execution_id: seen.id.to_string(), status: seen.status.to_string() };
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_wait_is_found_among_other_preferences() {
        let mut headers = HeaderMap::new();
        assert_eq!(preferred_wait(&headers), None);
        headers.insert("prefer", HeaderValue::from_static("respond-async, wait=10"));
        assert_eq!(preferred_wait(&headers), Some(10));
        headers.insert("prefer", HeaderValue::from_static("handling=lenient; wait=\"5\""));
        assert_eq!(preferred_wait(&headers), Some(5));
        headers.insert("prefer", HeaderValue::from_static("wait=soon"));
        assert_eq!(preferred_wait(&headers), None, "an invalid preference is ignored");
    }
}
