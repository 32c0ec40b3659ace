//! What people do with an open alert: acknowledge it (someone is on it,
//! recorded with who and when) and snooze it (held from queues and
//! escalation for a while). Alerts open and resolve by their telemetry;
//! these commands change only how people handle them.

use anchor_auth::permissions::Permission;
use anchor_domain::{AlertId, AlertState};
use anchor_events::{Event, EventSpec};
use anchor_store::{WorkspaceTx, alerts::Alert, executions::Actor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::kit::{DomainCommand, Effect, Invalid, RefusalKind, Rejection};

pub const ALERT_NOT_FOUND: RefusalKind =
    RefusalKind { code: "alert_not_found", status: 404, when: "the alert does not exist in this workspace" };
pub const ALERT_RESOLVED: RefusalKind =
    RefusalKind { code: "alert_resolved", status: 409, when: "the alert is resolved: there is nothing to handle" };

/// The longest snooze, in minutes (a week).
pub const MAX_SNOOZE_MINUTES: u32 = 7 * 24 * 60;

/// Acknowledge an open alert: someone is on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"alert_id": "alr_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct AlertAcknowledge {
    pub alert_id: AlertId,
}

/// Snooze an open alert for a while; `minutes: 0` ends a snooze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"alert_id": "alr_01jd6m2h9x8k7v5t3r1p0n9q8w", "minutes": 60}))]
pub struct AlertSnooze {
    pub alert_id: AlertId,
    /// How long, up to a week (10,080 minutes).
    #[schemars(range(max = 10080))]
    pub minutes: u32,
}

/// `alert.acknowledged`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertAcknowledged {
    /// The alert, with who acknowledged it and when.
    pub alert: Alert,
    pub execution_id: anchor_domain::ExecutionId,
}

impl Event for AlertAcknowledged {
    const TYPE: &'static str = "alert.acknowledged";
    const WHEN: &'static str = "Someone acknowledged an open alert.";
}

/// `alert.snoozed`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertSnoozed {
    /// The alert, with `snoozed_until` (absent when a snooze ended).
    pub alert: Alert,
    pub execution_id: anchor_domain::ExecutionId,
}

impl Event for AlertSnoozed {
    const TYPE: &'static str = "alert.snoozed";
    const WHEN: &'static str = "An open alert was snoozed, or its snooze ended.";
}

/// What an alert command did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertRef {
    pub alert_id: AlertId,
    /// Whether anything changed (acknowledging an acknowledged alert does not).
    pub changed: bool,
}

/// The alert, if it is open; locked when `lock`.
async fn open(tx: &mut WorkspaceTx, id: AlertId, lock: bool) -> Result<Alert, Rejection> {
    let alert = if lock { tx.lock_alert(id).await? } else { tx.alert(id).await? };
    let alert = alert.ok_or_else(|| ALERT_NOT_FOUND.because(format!("no alert {id} in this workspace")))?;
    if alert.state == AlertState::Resolved {
        return Err(ALERT_RESOLVED.because(format!("alert {id} ({}) is resolved", alert.summary)).into());
    }
    Ok(alert)
}

impl DomainCommand for AlertAcknowledge {
    const NAME: &'static str = "alert.acknowledge";
    const SKILL: &'static str = "alert_acknowledge";
    const PERMISSION: Permission = Permission::AlertsManage;
    const SUMMARY: &'static str = "Acknowledge an open alert (someone is on it)";
    const REFUSALS: &'static [&'static RefusalKind] = &[&ALERT_NOT_FOUND, &ALERT_RESOLVED];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AlertAcknowledged>()];
    type Output = AlertRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        open(tx, self.alert_id, false).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<AlertRef, Rejection> {
        let now = open(effect.tx, self.alert_id, true).await?;
        if now.acknowledged_at.is_some() {
            return Ok(AlertRef { alert_id: self.alert_id, changed: false });
        }
        let alert = effect.tx.acknowledge_alert(self.alert_id, effect.actor).await?;
        effect.publish(&AlertAcknowledged { alert, execution_id: effect.execution }).await?;
        Ok(AlertRef { alert_id: self.alert_id, changed: true })
    }
}

impl DomainCommand for AlertSnooze {
    const NAME: &'static str = "alert.snooze";
    const SKILL: &'static str = "alert_snooze";
    const PERMISSION: Permission = Permission::AlertsManage;
    const SUMMARY: &'static str = "Snooze an open alert for a while (0 minutes ends the snooze)";
    const REFUSALS: &'static [&'static RefusalKind] = &[&ALERT_NOT_FOUND, &ALERT_RESOLVED];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<AlertSnoozed>()];
    type Output = AlertRef;

    fn validate(&self) -> Result<(), Invalid> {
        if self.minutes > MAX_SNOOZE_MINUTES {
            return Err(Invalid::at("/minutes", format!("at most {MAX_SNOOZE_MINUTES} minutes (a week)")));
        }
        Ok(())
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        open(tx, self.alert_id, false).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<AlertRef, Rejection> {
        let now = open(effect.tx, self.alert_id, true).await?;
        if self.minutes == 0 && now.snoozed_until.is_none() {
            return Ok(AlertRef { alert_id: self.alert_id, changed: false });
        }
        let minutes = i32::try_from(self.minutes).unwrap_or(i32::MAX);
        let alert = effect.tx.snooze_alert(self.alert_id, minutes).await?;
        effect.publish(&AlertSnoozed { alert, execution_id: effect.execution }).await?;
        Ok(AlertRef { alert_id: self.alert_id, changed: true })
    }
}

/// Put an open alert on the open ticket of another alert of the same
/// machine (alert automation only): simultaneous alerts on one machine are
/// one problem to work, on one ticket, which notes each alert that joins it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"alert_id": "alr_01jd6m2h9x8k7v5t3r1p0n9q8w", "ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct AlertGroup {
    pub alert_id: AlertId,
    pub ticket_id: anchor_domain::TicketId,
}

impl DomainCommand for AlertGroup {
    const NAME: &'static str = "alert.group";
    const SKILL: &'static str = "alert_group";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Put an alert on the ticket of another alert of its machine (automation)";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&crate::tickets::AUTOMATION_ONLY, &ALERT_NOT_FOUND, &ALERT_RESOLVED, &crate::tickets::TICKET_NOT_FOUND];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<crate::tickets::TicketUpdated>()];
    type Output = AlertRef;

    async fn check(&self, tx: &mut WorkspaceTx, actor: &Actor) -> Result<(), Rejection> {
        if actor.issuer != crate::command::SYSTEM_ISSUER {
            return Err(crate::tickets::AUTOMATION_ONLY.because("alerts are grouped by alert automation only").into());
        }
        open(tx, self.alert_id, false).await?;
        if tx.ticket(self.ticket_id).await?.is_none_or(|t| !t.status.is_open()) {
            let id = self.ticket_id;
            return Err(crate::tickets::TICKET_NOT_FOUND
                .because(format!("no open ticket {id} in this workspace"))
                .into());
        }
        Ok(())
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<AlertRef, Rejection> {
        self.check(effect.tx, effect.actor).await?;
        let alert = open(effect.tx, self.alert_id, true).await?;
        if alert.ticket_id == Some(self.ticket_id) {
            return Ok(AlertRef { alert_id: self.alert_id, changed: false });
        }
        effect.tx.link_alert_ticket(self.alert_id, self.ticket_id).await?;
        let body = format!("Another alert on the same machine joined this ticket: {}", alert.summary);
        let body: String = body.chars().take(20_000).collect();
        if let Ok(body) = anchor_domain::TicketText::parse(&body) {
            let note = crate::tickets::TicketComment {
                ticket_id: self.ticket_id,
                body,
                visibility: anchor_domain::CommentVisibility::Internal,
            };
            note.apply(effect).await?;
        }
        Ok(AlertRef { alert_id: self.alert_id, changed: true })
    }
}
