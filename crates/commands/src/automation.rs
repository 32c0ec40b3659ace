//! Automation on alerts (outbox topic `alert.route`): the agent node's
//! `triage_alert` reasoner decides through AgentField, and the decision is
//! carried out as ordinary commands (`ticket.create` linked to the asset
//! and the alert, `ticket.resolve` and `ticket.reopen` with a note)
//! accepted on behalf of Anchor's system actor: signed envelopes,
//! executions, evidence, as for people.
//!
//! Every route event reconciles the alert's ticket with the alert as it is
//! *now*, not with the transition that caused the event, so events that
//! arrive late, twice or out of order change nothing wrong:
//! - while a command for the alert is still running, the event waits for it
//!   (a recovery that comes before the ticket exists resolves it once it
//!   does);
//! - the decision is taken on a snapshot of the alert and its ticket, and
//!   carried out only if, under the alert's row lock, that snapshot still
//!   holds; otherwise the event decides again.

use std::{sync::Arc, time::Duration};

use anchor_agentfield::{AgentFieldClient, ExecuteRequest};
use anchor_domain::AlertId;
use anchor_outbox::{HandlerError, Handlers, OutboxEvent};
use anchor_store::{Database, StoreError, Workspace, WorkspaceTx, alerts::Alert, executions::Actor};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Command, CommandSigner, accept_in, command::SYSTEM_ISSUER};

pub use anchor_outbox::topics::ALERT_ROUTE as ROUTE_TOPIC;

/// The system actor's subject for alert automation.
pub const ALERTING: &str = "alerting";

/// How long an event waits for a command still running for its alert.
const WAIT_FOR_RUNNING: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct AlertRouter {
    db: Database,
    agentfield: AgentFieldClient,
    signer: Arc<CommandSigner>,
    node_id: String,
}

#[derive(Debug, Deserialize)]
struct Route {
    alert_id: AlertId,
    transition: String,
}

fn retry(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::retry(e.to_string())
}

/// What automation knows about an alert when it decides.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    alert: Alert,
    /// The status of the alert's ticket, if it has one.
    ticket_status: Option<String>,
    /// A command for the alert that has not finished yet.
    in_flight: Option<String>,
}

impl Snapshot {
    async fn read(tx: &mut WorkspaceTx, alert: Alert) -> Result<Self, StoreError> {
        let ticket_status = match alert.ticket_id {
            Some(ticket) => tx.ticket(ticket).await?.map(|t| t.status.as_str().to_owned()),
            None => None,
        };
        let in_flight = tx.alert_command_in_flight(alert.id).await?;
        Ok(Self { alert, ticket_status, in_flight })
    }

    /// The same situation, as far as the decision goes (values and counters
    /// that move with every sample do not count).
    fn same_situation(&self, other: &Self) -> bool {
        let key =
            |s: &Self| (s.alert.state, s.alert.ticket_id, s.alert.flaps, s.ticket_status.clone(), s.in_flight.clone());
        key(self) == key(other)
    }
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

    async fn snapshot(&self, workspace: &Workspace, alert: AlertId) -> Result<Option<Snapshot>, StoreError> {
        let mut tx = self.db.begin_workspace(workspace).await?;
        let snapshot = match tx.alert(alert).await? {
            Some(alert) => Some(Snapshot::read(&mut tx, alert).await?),
            None => None,
        };
        tx.rollback().await?;
        Ok(snapshot)
    }

    #[tracing::instrument(skip_all, fields(outbox_id = event.id))]
    async fn route(&self, event: OutboxEvent) -> Result<(), HandlerError> {
        let route: Route = serde_json::from_value(event.payload.clone())
            .map_err(|e| HandlerError::Permanent(format!("malformed alert.route event: {e}")))?;
        let Some(workspace_id) = event.workspace_id else { return Ok(()) };
        let Some(workspace) = self.db.workspace_by_id(workspace_id).await.map_err(retry)? else { return Ok(()) };
        let Some(seen) = self.snapshot(&workspace, route.alert_id).await.map_err(retry)? else { return Ok(()) };
        if let Some(command) = &seen.in_flight {
            return Err(HandlerError::postpone(format!("waiting for {command} on this alert"), WAIT_FOR_RUNNING));
        }
        // A held alert (a maintenance window, a snooze) opens no ticket
        // until it is released; automation decides then, on the alert as it
        // is (recovered meanwhile: nothing to do).
        if let Some(until) = seen.alert.snoozed_until
            && seen.alert.ticket_id.is_none()
        {
            let left = until - time::OffsetDateTime::now_utc();
            if left.is_positive() {
                let wait = Duration::try_from(left).unwrap_or(Duration::from_secs(60));
                return Err(HandlerError::postpone("the alert is held (maintenance or snooze)", wait));
            }
        }
        let request = ExecuteRequest {
            target: format!("{}.triage_alert", self.node_id),
            input: json!({
                "transition": route.transition,
                "alert": seen.alert,
                "ticket": seen.ticket_status.as_ref().map(|status| json!({"status": status})),
            }),
            actor_id: Some(ALERTING.to_owned()),
            ..ExecuteRequest::default()
        };
        let decision = match self.agentfield.execute(&request).await {
            Ok(answer) => answer.result,
            Err(e) if e.is_retryable() => return Err(HandlerError::postpone(e.to_string(), Duration::from_secs(15))),
            Err(e) => return Err(retry(e)),
        };
        let Some(command) = command_for(&seen.alert, &decision).map_err(HandlerError::Permanent)? else {
            return Ok(());
        };

        let mut tx = self.db.begin_workspace(&workspace).await.map_err(retry)?;
        let Some(alert) = tx.lock_alert(seen.alert.id).await.map_err(retry)? else { return Ok(()) };
        let now = Snapshot::read(&mut tx, alert).await.map_err(retry)?;
        if !now.same_situation(&seen) {
            tx.rollback().await.map_err(retry)?;
            return Err(HandlerError::postpone("the alert changed while automation decided", Duration::ZERO));
        }
        // Simultaneous alerts on one machine are one ticket: a new alert
        // joins the open ticket of another open alert of its machine, and a
        // recovery resolves a shared ticket only with the last of them.
        // Decisions for one machine take turns (a lock on the agent until
        // this unit of work ends), so two alerts opening together make one
        // ticket: the second waits for the first's.
        let shared = Shared::read(&mut tx, &now.alert).await.map_err(retry)?;
        if shared.creating {
            tx.rollback().await.map_err(retry)?;
            return Err(HandlerError::postpone("another alert of the machine is opening its ticket", WAIT_FOR_RUNNING));
        }
        let command = match (command.name(), shared.open_ticket) {
            ("ticket.create", Some(ticket)) => {
                Command::parse("alert.group", json!({"alert_id": now.alert.id, "ticket_id": ticket}))
                    .map_err(|e| HandlerError::Permanent(e.to_string()))?
            }
            ("ticket.resolve", _) if shared.others_open => {
                tx.rollback().await.map_err(retry)?;
                return Ok(());
            }
            _ => command,
        };
        let actor = Actor { issuer: SYSTEM_ISSUER.to_owned(), subject: ALERTING.to_owned() };
        accept_in(&mut tx, &self.signer, &actor, None, &command, None).await.map_err(retry)?;
        tx.commit().await.map_err(retry)?;
        tracing::info!(alert = %now.alert.id, command = command.name(), "automation acted on an alert");
        Ok(())
    }
}

/// Other open alerts of an alert's machine.
struct Shared {
    /// The open ticket of another open alert of the machine.
    open_ticket: Option<anchor_domain::TicketId>,
    /// Another open alert is on the alert's own ticket.
    others_open: bool,
    /// Another open alert of the machine has its ticket being opened.
    creating: bool,
}

impl Shared {
    async fn read(tx: &mut WorkspaceTx, alert: &Alert) -> Result<Self, StoreError> {
        tx.lock_machine_alerts(alert.agent_id).await?;
        let open_ticket = tx.open_ticket_of_machine(alert.agent_id, alert.id).await?;
        let others_open = match alert.ticket_id {
            Some(ticket) => tx.other_open_alerts_on_ticket(ticket, alert.id).await? > 0,
            None => false,
        };
        let creating = tx.machine_ticket_in_flight(alert.agent_id, alert.id).await?;
        Ok(Self { open_ticket, others_open, creating })
    }
}

/// The command that carries out the reasoner's decision, if any.
fn command_for(alert: &Alert, decision: &Value) -> Result<Option<Command>, String> {
    let ticket = || alert.ticket_id.ok_or_else(|| format!("{decision} needs the alert's ticket"));
    let command = match decision["action"].as_str() {
        Some("open_ticket") => Command::parse(
            "ticket.create",
            json!({
                "title": decision["title"].as_str().unwrap_or(&alert.summary),
                "description": format!("Opened by Anchor for alert {}.\n{}", alert.id, alert.summary),
                "priority": decision["priority"].as_str().unwrap_or("p2"),
                "asset_id": alert.asset_id,
                "alert_id": alert.id,
            }),
        ),
        Some("resolve_ticket") => Command::parse(
            "ticket.resolve",
            json!({"ticket_id": ticket()?, "note": decision["note"].as_str().unwrap_or("Recovered."), "alert_id": alert.id}),
        ),
        Some("reopen_ticket") => Command::parse(
            "ticket.reopen",
            json!({"ticket_id": ticket()?, "note": decision["note"].as_str().unwrap_or("The alert came back."),
                   "alert_id": alert.id}),
        ),
        _ => return Ok(None),
    };
    command.map(Some).map_err(|e| e.to_string())
}

/// `alert.escalated`: a critical alert nobody acknowledged in time.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct AlertEscalated {
    /// The alert, with `escalated_at`.
    pub alert: Alert,
    /// The escalation time it went unacknowledged for, in minutes.
    pub after_minutes: u64,
}

impl anchor_events::Event for AlertEscalated {
    const TYPE: &'static str = "alert.escalated";
    const WHEN: &'static str = "A critical alert stayed open, unacknowledged and not snoozed for the escalation time \
                                (`alert_escalate_after`): its ticket goes to P1 with a note (once per alert).";
}

/// How long escalation waits for automation to open an alert's ticket.
const TICKET_GRACE: Duration = Duration::from_secs(300);

/// The events automation publishes on its own.
pub const EVENTS: &[anchor_events::EventSpec] = &[anchor_events::EventSpec::of::<AlertEscalated>()];

/// Escalates the critical alerts nobody acknowledged within `after` (the
/// worker's recurring job `alerts.escalate`): found through the Ops read
/// model in one statement whatever the number of workspaces, then each
/// decided again under its row lock in its workspace. An escalated alert is
/// marked (once), announced (`alert.escalated`, for webhooks that page
/// someone), and its ticket, if it has one, is raised to P1 with an internal
/// note, by commands on behalf of Anchor's system actor (signed envelopes,
/// executions, evidence). Returns how many were escalated.
pub async fn escalate_unacknowledged(db: &Database, signer: &CommandSigner, after: Duration) -> Result<usize, String> {
    let candidates = db.escalation_candidates(after, 200).await.map_err(|e| e.to_string())?;
    let mut escalated = 0;
    for (workspace_id, alert) in candidates {
        let Ok(alert) = alert.parse::<AlertId>() else { continue };
        let Some(workspace) = db.workspace_by_id(workspace_id).await.map_err(|e| e.to_string())? else { continue };
        match escalate(db, signer, &workspace, alert, after).await {
            Ok(true) => escalated += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(%alert, workspace = %workspace.slug(), error = %e, "an alert could not be escalated")
            }
        }
    }
    Ok(escalated)
}

async fn escalate(
    db: &Database,
    signer: &CommandSigner,
    workspace: &Workspace,
    id: AlertId,
    after: Duration,
) -> Result<bool, String> {
    let mut tx = db.begin_workspace(workspace).await.map_err(|e| e.to_string())?;
    let Some(alert) = tx.lock_alert(id).await.map_err(|e| e.to_string())? else { return Ok(false) };
    let now = time::OffsetDateTime::now_utc();
    let due = alert.state == anchor_domain::AlertState::Open
        && alert.severity == anchor_domain::Severity::Critical
        && alert.acknowledged_at.is_none()
        && alert.escalated_at.is_none()
        && alert.snoozed_until.is_none_or(|until| until <= now)
        && now - alert.opened_at >= after;
    // Automation opens an alert's ticket within seconds; give it a few
    // minutes before escalating an alert that has none.
    let waiting_for_ticket = alert.ticket_id.is_none() && now - alert.opened_at < after + TICKET_GRACE;
    if !due || waiting_for_ticket {
        tx.rollback().await.map_err(|e| e.to_string())?;
        return Ok(false);
    }
    let alert = tx.mark_alert_escalated(id).await.map_err(|e| e.to_string())?;
    let minutes = after.as_secs() / 60;
    anchor_events::publish(&mut tx, &AlertEscalated { alert: alert.clone(), after_minutes: minutes })
        .await
        .map_err(|e| e.to_string())?;
    if let Some(ticket) = alert.ticket_id {
        let actor = Actor { issuer: SYSTEM_ISSUER.to_owned(), subject: ALERTING.to_owned() };
        let note = format!(
            "Escalated by Anchor: the critical alert “{}” was not acknowledged within {minutes} minutes.",
            alert.summary
        );
        for (name, args) in [
            ("ticket.set_priority", json!({"ticket_id": ticket, "priority": "p1"})),
            ("ticket.comment", json!({"ticket_id": ticket, "body": note, "visibility": "internal"})),
        ] {
            let command = Command::parse(name, args).map_err(|e| e.to_string())?;
            accept_in(&mut tx, signer, &actor, None, &command, None).await.map_err(|e| e.to_string())?;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    tracing::info!(alert = %id, workspace = %workspace.slug(), "escalated an unacknowledged critical alert");
    Ok(true)
}
