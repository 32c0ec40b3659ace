//! Keeps the Ops centre's read model (`platform.ops_items`) following the
//! outbox: every domain event about an alert, a ticket or an execution makes
//! the item be read again in its workspace and put into the model. The
//! events carry the item, but the model is written from the item as it is
//! now, so redeliveries and events handled out of order change nothing.

use anchor_outbox::{HandlerError, OutboxEvent};
use anchor_store::{Database, ops::OpsItem};
use serde_json::Value;

/// The items a domain event (an `event.publish` payload) is about.
pub fn items_of(payload: &Value) -> Vec<OpsItem> {
    let kind = payload["type"].as_str().unwrap_or_default();
    let data = &payload["data"];
    let id = |value: &Value| value.as_str().map(str::to_owned);
    let mut items = Vec::new();
    match kind.split_once('.').map_or(kind, |(entity, _)| entity) {
        "alert" => items.extend(id(&data["alert"]["id"]).and_then(|a| a.parse().ok()).map(OpsItem::Alert)),
        "ticket" | "sla" => {
            let ticket = &data["ticket"];
            items.extend(
                id(&ticket["id"]).or_else(|| id(&data["ticket_id"])).and_then(|t| t.parse().ok()).map(OpsItem::Ticket),
            );
            // A ticket opened for an alert shows on the alert's row.
            if kind == "ticket.created" {
                items.extend(id(&ticket["alert_id"]).and_then(|a| a.parse().ok()).map(OpsItem::Alert));
            }
        }
        "execution" if kind == "execution.failed" => {
            items.extend(id(&data["execution_id"]).and_then(|e| e.parse().ok()).map(OpsItem::Execution));
        }
        _ => {}
    }
    items
}

/// The outbox step: refreshes what `event` is about.
pub async fn project(db: &Database, event: &OutboxEvent) -> Result<(), HandlerError> {
    let items = items_of(&event.payload);
    let Some(workspace_id) = event.workspace_id else { return Ok(()) };
    if items.is_empty() {
        return Ok(());
    }
    let workspace = match db.workspace_by_id(workspace_id).await {
        Ok(Some(workspace)) => workspace,
        Ok(None) => return Ok(()),
        Err(e) => return Err(HandlerError::retry(format!("ops read model: {e}"))),
    };
    let refresh = async {
        let mut tx = db.begin_workspace(&workspace).await?;
        for item in &items {
            tx.refresh_ops_item(item).await?;
        }
        tx.commit().await
    };
    refresh.await.map_err(|e| HandlerError::retry(format!("ops read model: {e}")))
}

/// The recurring job: reads every workspace's open items again (the model
/// of a workspace older than it, or after a restore), one workspace at a
/// time, then drops items that left every queue a day ago. Says what it did.
pub async fn rebuild(db: &Database) -> Result<String, String> {
    let workspaces = db.workspaces().await.map_err(|e| e.to_string())?;
    let mut items = 0;
    let mut failed = 0;
    for workspace in workspaces {
        match db.rebuild_ops(&workspace).await {
            Ok(n) => items += n,
            Err(e) => {
                failed += 1;
                tracing::warn!(workspace = %workspace.slug(), error = %e, "ops read model could not be rebuilt");
            }
        }
    }
    let pruned = db.prune_ops().await.map_err(|e| e.to_string())?;
    if failed > 0 {
        return Err(format!("{failed} workspaces could not be read again (logged)"));
    }
    Ok(format!("{items} open items read again, {pruned} closed items dropped"))
}
