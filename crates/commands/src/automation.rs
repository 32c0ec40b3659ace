//! Automation on alerts (outbox topic `alert.route`): the agent node's
//! `triage_alert` reasoner decides through AgentField, and the decision is
//! carried out as ordinary commands (`ticket.create` linked to the asset
//! and the alert, `ticket.resolve` with a note) accepted on behalf of
//! Anchor's system actor: signed envelopes, executions, evidence, as for
//! people. Redelivery is harmless: a command already accepted for the
//! alert is not accepted again.

use std::sync::Arc;

use anchor_agentfield::{AgentFieldClient, ExecuteRequest};
use anchor_outbox::{HandlerError, Handlers, OutboxEvent};
use anchor_store::{Database, StoreError, executions::Actor};
use serde::Deserialize;
use serde_json::json;

use crate::{Command, CommandSigner, accept, command::SYSTEM_ISSUER};

pub use anchor_telemetry::alerts::ROUTE_TOPIC;

/// The system actor's subject for alert automation.
pub const ALERTING: &str = "alerting";

#[derive(Debug)]
pub struct AlertRouter {
    db: Database,
    agentfield: AgentFieldClient,
    signer: Arc<CommandSigner>,
    node_id: String,
}

#[derive(Debug, Deserialize)]
struct Route {
    alert_id: String,
    transition: String,
}

fn retry(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::retry(e.to_string())
}

impl AlertRouter {
    pub fn new(
        db: Database,
        agentfield: AgentFieldClient,
        signer: Arc<CommandSigner>,
        node_id: impl Into<String>,
    ) -> Self {
        Self { db, agentfield, signer, node_id: node_id.into() }
    }

    pub fn register(self, handlers: Handlers) -> Handlers {
        let this = Arc::new(self);
        handlers.on(ROUTE_TOPIC, move |event| {
            let this = Arc::clone(&this);
            async move { this.route(event).await }
        })
    }

    #[tracing::instrument(skip_all, fields(outbox_id = event.id))]
    async fn route(&self, event: OutboxEvent) -> Result<(), HandlerError> {
        let route: Route = serde_json::from_value(event.payload.clone())
            .map_err(|e| HandlerError::Permanent(format!("malformed alert.route event: {e}")))?;
        let Some(workspace_id) = event.workspace_id else { return Ok(()) };
        let Some(workspace) = self.db.workspace_by_id(workspace_id).await.map_err(retry)? else { return Ok(()) };
        let mut tx = self.db.begin_workspace(&workspace).await.map_err(retry)?;
        let alert = tx.alert(&route.alert_id).await.map_err(retry)?;
        tx.rollback().await.map_err(retry)?;
        let Some(alert) = alert else { return Ok(()) };
        let request = ExecuteRequest {
            target: format!("{}.triage_alert", self.node_id),
            input: json!({"transition": route.transition, "alert": alert}),
            actor_id: Some(ALERTING.to_owned()),
            ..ExecuteRequest::default()
        };
        let decision = self.agentfield.execute(&request).await.map_err(retry)?.result;
        let actor = Actor { issuer: SYSTEM_ISSUER.to_owned(), subject: ALERTING.to_owned() };
        let command = match decision["action"].as_str() {
            Some("open_ticket") => {
                if self.already(&workspace, "ticket.create", &alert.id).await.map_err(retry)? {
                    return Ok(());
                }
                let description = format!("Opened by Anchor for alert {}.\n{}", alert.id, alert.summary);
                Command::parse(
                    "ticket.create",
                    json!({
                        "title": decision["title"].as_str().unwrap_or(&alert.summary),
                        "description": description,
                        "priority": decision["priority"].as_str().unwrap_or("p2"),
                        "asset_id": alert.asset_id,
                        "alert_id": alert.id,
                    }),
                )
            }
            Some("resolve_ticket") => {
                let Some(ticket) = alert.ticket_id.clone() else {
                    // The ticket is still being opened: try again shortly.
                    if self.already(&workspace, "ticket.create", &alert.id).await.map_err(retry)? {
                        return Err(HandlerError::retry("the alert's ticket is not open yet"));
                    }
                    return Ok(());
                };
                if self.already(&workspace, "ticket.resolve", &alert.id).await.map_err(retry)? {
                    return Ok(());
                }
                let note = decision["note"].as_str().unwrap_or("Recovered.");
                Command::parse("ticket.resolve", json!({"ticket_id": ticket, "note": note, "alert_id": alert.id}))
            }
            _ => return Ok(()),
        };
        let command = command.map_err(HandlerError::Permanent)?;
        accept(&self.db, &self.signer, &workspace, &actor, None, &command).await.map_err(retry)?;
        tracing::info!(alert = %alert.id, command = command.name(), "automation acted on an alert");
        Ok(())
    }

    /// Whether `command` was accepted for this alert before.
    async fn already(
        &self,
        workspace: &anchor_store::Workspace,
        command: &str,
        alert: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_workspace(workspace).await?;
        let found = tx.execution_for_alert(command, alert).await?;
        tx.rollback().await?;
        Ok(found)
    }
}
