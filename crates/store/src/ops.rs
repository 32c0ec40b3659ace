//! The Ops centre's read model (`platform.ops_items`) and what the Ops page
//! reads: its queues across every workspace a person may see, dead letters
//! of the outbox, and the installation's runtime health.
//!
//! The model is written in one place: [`WorkspaceTx::refresh_ops_item`],
//! which reads the item again in its workspace and hands what it found to
//! `platform.ops_put` (a `SECURITY DEFINER` function that takes the workspace
//! from the unit of work's role and keeps a newer version over an older one).
//! The worker calls it for every domain event about an alert, a ticket or an
//! execution, so the model follows the outbox; [`Database::rebuild_ops`]
//! reads a workspace's open items again (after a restore, or for a workspace
//! older than the model).

use anchor_domain::{AlertId, ExecutionId, Role, TicketId};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{Database, StoreError, Workspace, WorkspaceTx, access::SubjectRef};

/// An item the read model follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpsItem {
    Alert(AlertId),
    Ticket(TicketId),
    Execution(ExecutionId),
}

/// The workspaces a person sees one queue in: all of them (a team granted a
/// role everywhere), or these (by id; empty: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Within {
    All,
    Only(Vec<i64>),
}

impl Within {
    fn bind(&self) -> Option<Vec<i64>> {
        match self {
            Within::All => None,
            Within::Only(ids) => Some(ids.clone()),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Within::Only(ids) if ids.is_empty())
    }

    pub fn contains(&self, workspace: i64) -> bool {
        match self {
            Within::All => true,
            Within::Only(ids) => ids.contains(&workspace),
        }
    }
}

/// Where a person holds roles: in every workspace (a team's grant to all,
/// present and future), and in each workspace named (a membership, a team's
/// grant there), each list most powerful first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub everywhere: Vec<Role>,
    pub workspaces: Vec<(i64, Vec<Role>)>,
}

impl Reach {
    /// The workspaces where any role held there grants what `grants` asks.
    pub fn within(&self, grants: impl Fn(&[Role]) -> bool) -> Within {
        if grants(&self.everywhere) {
            return Within::All;
        }
        Within::Only(
            self.workspaces
                .iter()
                .filter(|(_, roles)| grants(&[roles.as_slice(), self.everywhere.as_slice()].concat()))
                .map(|(id, _)| *id)
                .collect(),
        )
    }
}

/// What one person may see of each queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsView {
    /// Critical alerts and agents offline (`alerts.read`).
    pub alerts: Within,
    /// Unassigned tickets and SLA risk (`tickets.read`).
    pub tickets: Within,
    /// Failed workflows (`executions.read`).
    pub executions: Within,
    /// Failed outbox events (`ops.manage`).
    pub events: Within,
}

/// The five queues of the Ops centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    Critical,
    Unassigned,
    SlaRisk,
    FailedWorkflows,
    FailedEvents,
}

impl Queue {
    pub const ALL: [Queue; 5] =
        [Queue::Critical, Queue::Unassigned, Queue::SlaRisk, Queue::FailedWorkflows, Queue::FailedEvents];

    /// Its name in URLs (`?queue=`).
    pub fn key(self) -> &'static str {
        match self {
            Queue::Critical => "critical",
            Queue::Unassigned => "unassigned",
            Queue::SlaRisk => "sla",
            Queue::FailedWorkflows => "workflows",
            Queue::FailedEvents => "events",
        }
    }

    pub fn from_key(key: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.key() == key)
    }

    /// Its title on the page.
    pub fn title(self) -> &'static str {
        match self {
            Queue::Critical => "Critical alerts",
            Queue::Unassigned => "Unassigned tickets",
            Queue::SlaRisk => "SLA risk",
            Queue::FailedWorkflows => "Failed workflows",
            Queue::FailedEvents => "Failed events and jobs",
        }
    }
}

/// How many items each queue holds for one viewer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct QueueCounts {
    pub critical: i64,
    pub unassigned: i64,
    pub sla_risk: i64,
    pub failed_workflows: i64,
    pub failed_events: i64,
}

impl QueueCounts {
    pub fn of(&self, queue: Queue) -> i64 {
        match queue {
            Queue::Critical => self.critical,
            Queue::Unassigned => self.unassigned,
            Queue::SlaRisk => self.sla_risk,
            Queue::FailedWorkflows => self.failed_workflows,
            Queue::FailedEvents => self.failed_events,
        }
    }
}

/// One row of the alert, ticket or workflow queues.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OpsRow {
    pub workspace_id: i64,
    pub workspace_slug: String,
    pub workspace_name: String,
    pub kind: String,
    pub item_id: String,
    pub title: String,
    pub detail: Value,
    pub acknowledged: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub held_until: Option<OffsetDateTime>,
    pub at_risk: bool,
    pub unassigned: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// A dead letter of the outbox: an event (or a scheduled job) that failed
/// every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub workspace_id: i64,
    pub workspace_slug: String,
    pub workspace_name: String,
    pub topic: String,
    /// The domain event's type, for `event.publish`.
    pub event_type: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A recurring job's last run.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct JobRun {
    pub name: String,
    pub every_secs: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

impl JobRun {
    /// Ran within two of its periods (a worker is running it).
    pub fn on_time(&self, now: OffsetDateTime) -> bool {
        self.last_run_at.is_some_and(|at| now - at <= time::Duration::seconds(2 * i64::from(self.every_secs) + 30))
    }
}

/// The installation's runtime health as the database sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// One round trip to PostgreSQL.
    pub database_ms: f64,
    /// Outbox events waiting (due now), and how long the oldest has waited.
    pub outbox_pending: i64,
    pub outbox_oldest_secs: Option<i64>,
    /// Domain events waiting to be published on the event bus.
    pub bus_pending: i64,
    pub bus_oldest_secs: Option<i64>,
    /// Commands waiting to be handed to AgentField.
    pub handoff_pending: i64,
    pub handoff_oldest_secs: Option<i64>,
    /// Dead letters in the whole installation (every workspace and none).
    pub outbox_failed: i64,
    /// Agents the viewer may see that have been silent past the offline
    /// threshold, of all their agents not revoked.
    pub agents_offline: i64,
    pub agents: i64,
    /// Seconds since the newest telemetry from the viewer's agents.
    pub telemetry_age_secs: Option<i64>,
    pub jobs: Vec<JobRun>,
}

/// How long an agent is silent before the Ops centre counts it offline
/// (the built-in `agent_offline` rule's default).
pub const OFFLINE_AFTER_SECS: i64 = 240;

impl WorkspaceTx {
    /// Reads `item` again and puts what it is now into the read model: in a
    /// queue, or out of every queue. Safe to call any number of times and
    /// in any order (an older reading never replaces a newer one).
    pub async fn refresh_ops_item(&mut self, item: &OpsItem) -> Result<(), StoreError> {
        // The version is taken before the reading, in a statement of its
        // own: a reading that missed a change began before that change
        // committed, so before any refresh the change caused.
        let version: OffsetDateTime = sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(self.conn()).await?;
        let put = match item {
            OpsItem::Alert(id) => self.alert_item(*id).await?,
            OpsItem::Ticket(id) => {
                // The open alerts on it show it on their rows (automation's
                // own, and those grouped onto it).
                let alerts: Vec<AlertId> =
                    sqlx::query_scalar("SELECT id FROM alerts WHERE ticket_id = $1 AND state = 'open'")
                        .bind(id)
                        .fetch_all(self.conn())
                        .await?;
                for alert in alerts {
                    if let Some(put) = self.alert_item(alert).await? {
                        self.ops_put(version, put).await?;
                    }
                }
                self.ticket_item(*id).await?
            }
            OpsItem::Execution(id) => self.execution_item(*id).await?,
        };
        let Some(put) = put else { return Ok(()) };
        self.ops_put(version, put).await
    }

    async fn ops_put(&mut self, version: OffsetDateTime, put: Put) -> Result<(), StoreError> {
        sqlx::query(
            "SELECT platform.ops_put($1, $2, $3, $4, $5, $6, $7, critical => $8, held_until => $9,
                                     acknowledged => $10, unassigned => $11, at_risk => $12, due_at => $13)",
        )
        .bind(put.kind)
        .bind(put.item_id)
        .bind(version)
        .bind(put.open)
        .bind(put.since)
        .bind(put.title)
        .bind(put.detail)
        .bind(put.critical)
        .bind(put.held_until)
        .bind(put.acknowledged)
        .bind(put.unassigned)
        .bind(put.at_risk)
        .bind(put.due_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn alert_item(&mut self, id: AlertId) -> Result<Option<Put>, StoreError> {
        let Some(alert) = self.alert(id).await? else { return Ok(None) };
        let asset_name: Option<String> = match &alert.asset_id {
            Some(asset) => {
                sqlx::query_scalar("SELECT name FROM assets WHERE id = $1")
                    .bind(asset)
                    .fetch_optional(self.conn())
                    .await?
            }
            None => None,
        };
        Ok(Some(Put {
            kind: "alert",
            item_id: id.to_string(),
            open: alert.state == anchor_domain::AlertState::Open,
            since: Some(alert.opened_at),
            title: clip(&alert.summary),
            detail: json!({
                "severity": alert.severity, "subject": alert.subject, "value": alert.value,
                "asset_id": alert.asset_id, "asset_name": asset_name, "ticket_id": alert.ticket_id,
                "acknowledged_by": alert.acknowledged_by.as_ref().map(|a| &a.0.subject),
                "escalated_at": alert.escalated_at.map(crate::ops::rfc3339),
            }),
            critical: alert.severity == anchor_domain::Severity::Critical,
            held_until: alert.snoozed_until,
            acknowledged: alert.acknowledged_at.is_some(),
            ..Put::default()
        }))
    }

    async fn ticket_item(&mut self, id: TicketId) -> Result<Option<Put>, StoreError> {
        let Some(ticket) = self.ticket(id).await? else { return Ok(None) };
        let queue: Option<String> = match ticket.queue_id {
            Some(queue) => {
                sqlx::query_scalar("SELECT name FROM queues WHERE id = $1")
                    .bind(queue)
                    .fetch_optional(self.conn())
                    .await?
            }
            None => None,
        };
        let sla = ticket.sla_state.as_str();
        Ok(Some(Put {
            kind: "ticket",
            item_id: id.to_string(),
            open: ticket.status.is_open() && ticket.merged_into.is_none(),
            since: Some(ticket.created_at),
            title: clip(ticket.title.as_str()),
            detail: json!({
                "priority": ticket.priority, "status": ticket.status, "sla_state": sla, "queue": queue,
                "assignee": ticket.assignee.as_ref().map(|a| &a.0.subject), "asset_id": ticket.asset_id,
                "alert_id": ticket.alert_id,
            }),
            unassigned: ticket.assignee.is_none(),
            at_risk: matches!(sla, "warning" | "breached"),
            due_at: ticket.sla_due_at,
            ..Put::default()
        }))
    }

    async fn execution_item(&mut self, id: ExecutionId) -> Result<Option<Put>, StoreError> {
        let Some(execution) = self.execution(id).await? else { return Ok(None) };
        let handled: Option<String> = sqlx::query_scalar("SELECT handled_how FROM executions WHERE id = $1")
            .bind(id)
            .fetch_one(self.conn())
            .await?;
        // A person's request refused by the domain's rules was answered to
        // that person; what failed otherwise, or failed automation, is
        // operations' work.
        let refused = execution.error.as_ref().is_some_and(|e| e.get("status").is_some());
        let automated = execution.actor.issuer == "urn:anchor:system";
        let failed = matches!(execution.status.as_str(), "failed" | "timeout") && (!refused || automated);
        let error = execution.error.clone().unwrap_or(Value::Null);
        Ok(Some(Put {
            kind: "execution",
            item_id: id.to_string(),
            open: failed && handled.is_none(),
            since: Some(execution.completed_at.unwrap_or(execution.created_at)),
            title: clip(&format!(
                "{}: {}",
                execution.command,
                error["message"].as_str().or(error["code"].as_str()).unwrap_or("failed")
            )),
            detail: json!({
                "command": execution.command, "status": execution.status, "error": error,
                "actor": execution.actor.subject, "handled": handled,
            }),
            ..Put::default()
        }))
    }

    /// Marks a failed execution dealt with (`how`: `retried`, with the new
    /// execution, or `dismissed`), by `who`, and takes it out of the queue.
    /// False when it is not a failed execution still waiting.
    pub async fn handle_failed_execution(
        &mut self,
        id: ExecutionId,
        how: &str,
        retried_as: Option<ExecutionId>,
        who: &crate::executions::Actor,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET handled_how = $2, handled_at = now(), retried_as = $3,
                    handled_by = jsonb_build_object('issuer', $4::text, 'subject', $5::text)
              WHERE id = $1 AND status IN ('failed', 'timeout') AND handled_how IS NULL",
        )
        .bind(id)
        .bind(how)
        .bind(retried_as)
        .bind(&who.issuer)
        .bind(&who.subject)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.refresh_ops_item(&OpsItem::Execution(id)).await?;
        Ok(true)
    }

    /// The open alerts, open tickets and failed executions of this
    /// workspace, for [`Database::rebuild_ops`].
    async fn open_ops_items(&mut self) -> Result<Vec<OpsItem>, StoreError> {
        let ids: Vec<(String, String)> = sqlx::query_as(
            "SELECT 'alert', id FROM alerts WHERE state = 'open'
             UNION ALL SELECT 'ticket', id FROM tickets WHERE status NOT IN ('resolved', 'closed')
             UNION ALL SELECT 'execution', id FROM executions
                        WHERE status IN ('failed', 'timeout') AND handled_how IS NULL
                          AND completed_at > now() - interval '30 days'",
        )
        .fetch_all(self.conn())
        .await?;
        Ok(ids
            .into_iter()
            .filter_map(|(kind, id)| match kind.as_str() {
                "alert" => id.parse().ok().map(OpsItem::Alert),
                "ticket" => id.parse().ok().map(OpsItem::Ticket),
                _ => id.parse().ok().map(OpsItem::Execution),
            })
            .collect())
    }
}

/// What `platform.ops_put` is given.
#[derive(Debug, Default)]
struct Put {
    kind: &'static str,
    item_id: String,
    open: bool,
    since: Option<OffsetDateTime>,
    title: String,
    detail: Value,
    critical: bool,
    held_until: Option<OffsetDateTime>,
    acknowledged: bool,
    unassigned: bool,
    at_risk: bool,
    due_at: Option<OffsetDateTime>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The open critical alerts nobody acknowledged for `after` (not snoozed,
/// not escalated yet), oldest first, at most `limit`: (workspace id, alert id).
const ESCALATION_CANDIDATES: &str = "SELECT o.workspace_id, o.item_id FROM platform.ops_items o
  WHERE o.open AND o.kind = 'alert' AND o.critical AND NOT o.acknowledged
    AND (o.held_until IS NULL OR o.held_until <= now()) AND o.detail->>'escalated_at' IS NULL
    AND o.since <= now() - make_interval(secs => $1)
  ORDER BY o.since LIMIT $2";

fn clip(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The conditions that put an item in each queue (`o` is `platform.ops_items`).
const CRITICAL: &str = "o.open AND o.kind = 'alert' AND o.critical AND (o.held_until IS NULL OR o.held_until <= now())";
const UNASSIGNED: &str = "o.open AND o.kind = 'ticket' AND o.unassigned";
const SLA_RISK: &str = "o.open AND o.kind = 'ticket' AND o.at_risk";
const FAILED: &str = "o.open AND o.kind = 'execution'";

impl Database {
    /// [`ESCALATION_CANDIDATES`], from the read model: one statement
    /// whatever the number of workspaces.
    pub async fn escalation_candidates(
        &self,
        after: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(ESCALATION_CANDIDATES).bind(after.as_secs_f64()).bind(limit).fetch_all(self.pool()).await?)
    }

    /// Where `who` holds roles, in one statement.
    pub async fn ops_reach(&self, who: SubjectRef<'_>) -> Result<Reach, StoreError> {
        let rows: Vec<(Option<i64>, Vec<Role>)> = sqlx::query_as(
            "WITH me AS (SELECT id FROM platform.subjects WHERE issuer = $1 AND subject = $2)
             SELECT r.workspace_id, array_agg(DISTINCT r.role ORDER BY r.role)
               FROM (SELECT m.workspace_id, m.role FROM platform.memberships m
                      WHERE m.subject_id = (SELECT id FROM me)
                     UNION ALL
                     SELECT g.workspace_id, g.role FROM platform.team_members t
                       JOIN platform.team_grants g ON g.team_id = t.team_id
                      WHERE t.subject_id = (SELECT id FROM me)) r
              GROUP BY r.workspace_id",
        )
        .bind(who.issuer)
        .bind(who.subject)
        .fetch_all(self.pool())
        .await?;
        let mut reach = Reach::default();
        for (workspace, roles) in rows {
            match workspace {
                Some(id) => reach.workspaces.push((id, roles)),
                None => reach.everywhere = roles,
            }
        }
        Ok(reach)
    }

    /// Reads every open item of `workspace` again into the read model.
    /// Returns how many.
    pub async fn rebuild_ops(&self, workspace: &Workspace) -> Result<usize, StoreError> {
        let mut tx = self.begin_workspace(workspace).await?;
        let items = tx.open_ops_items().await?;
        for item in &items {
            tx.refresh_ops_item(item).await?;
        }
        tx.commit().await?;
        Ok(items.len())
    }

    /// Drops items that left every queue more than a day ago.
    pub async fn prune_ops(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM platform.ops_items WHERE NOT open AND updated_at < now() - interval '1 day'")
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }

    /// How many items each queue holds for a viewer: one statement.
    pub async fn ops_counts(&self, view: &OpsView) -> Result<QueueCounts, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT count(*) FROM platform.ops_items o WHERE {CRITICAL}
                       AND ($1::bigint[] IS NULL OR o.workspace_id = ANY($1))) AS critical,
                    (SELECT count(*) FROM platform.ops_items o WHERE {UNASSIGNED}
                       AND ($2::bigint[] IS NULL OR o.workspace_id = ANY($2))) AS unassigned,
                    (SELECT count(*) FROM platform.ops_items o WHERE {SLA_RISK}
                       AND ($2::bigint[] IS NULL OR o.workspace_id = ANY($2))) AS sla_risk,
                    (SELECT count(*) FROM platform.ops_items o WHERE {FAILED}
                       AND ($3::bigint[] IS NULL OR o.workspace_id = ANY($3))) AS failed_workflows,
                    (SELECT count(*) FROM platform.outbox_events e WHERE e.settled AND e.delivered_at IS NULL
                       AND e.workspace_id IS NOT NULL
                       AND ($4::bigint[] IS NULL OR e.workspace_id = ANY($4))) AS failed_events"
        )))
        .bind(view.alerts.bind())
        .bind(view.tickets.bind())
        .bind(view.executions.bind())
        .bind(view.events.bind())
        .fetch_one(self.pool())
        .await?)
    }

    /// The first `limit` items of an alert, ticket or workflow queue, in the
    /// order people work them: critical alerts not yet acknowledged first,
    /// then newest; tickets by the nearest deadline; failures newest first.
    pub async fn ops_queue(&self, view: &OpsView, queue: Queue, limit: i64) -> Result<Vec<OpsRow>, StoreError> {
        let (condition, within, order) = match queue {
            Queue::Critical => (CRITICAL, &view.alerts, "o.acknowledged, o.since DESC"),
            Queue::Unassigned => (UNASSIGNED, &view.tickets, "o.due_at NULLS LAST, o.since"),
            Queue::SlaRisk => (SLA_RISK, &view.tickets, "o.due_at NULLS LAST, o.since"),
            Queue::FailedWorkflows => (FAILED, &view.executions, "o.since DESC"),
            Queue::FailedEvents => return Ok(Vec::new()),
        };
        if within.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT o.workspace_id, w.slug AS workspace_slug, w.name AS workspace_name, o.kind, o.item_id, o.title, o.detail,
                    o.acknowledged, o.held_until, o.at_risk, o.unassigned, o.due_at, o.since
               FROM platform.ops_items o JOIN platform.workspaces w ON w.id = o.workspace_id
              WHERE {condition} AND ($1::bigint[] IS NULL OR o.workspace_id = ANY($1))
              ORDER BY {order}, o.item_id LIMIT $2"
        )))
        .bind(within.bind())
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The dead letters of the workspaces in `within`, newest first.
    pub async fn dead_letters(&self, within: &Within, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        if within.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "SELECT e.id, e.workspace_id, w.slug AS workspace_slug, w.name AS workspace_name, e.topic,
                    CASE WHEN e.topic = 'event.publish' THEN e.payload->>'type' END AS event_type,
                    e.attempts, e.last_error, e.created_at
               FROM platform.outbox_events e JOIN platform.workspaces w ON w.id = e.workspace_id
              WHERE e.settled AND e.delivered_at IS NULL AND ($1::bigint[] IS NULL OR e.workspace_id = ANY($1))
              ORDER BY e.created_at DESC, e.id DESC LIMIT $2",
        )
        .bind(within.bind())
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Sends a dead letter of `workspace` back to the outbox with a fresh
    /// attempt budget (`replay`), or drops it (`discard`), noting who.
    /// False when it is not a dead letter of that workspace (any more).
    pub async fn handle_dead_letter(
        &self,
        workspace: &Workspace,
        id: i64,
        replay: bool,
        who: &str,
    ) -> Result<bool, StoreError> {
        let sql = if replay {
            "UPDATE platform.outbox_events
                SET state = 'pending', attempts = 0, available_at = now(), last_error = NULL, handled_by = $3
              WHERE id = $1 AND workspace_id = $2 AND settled AND state = 'failed'"
        } else {
            "DELETE FROM platform.outbox_events WHERE id = $1 AND workspace_id = $2 AND settled AND state = 'failed'"
        };
        let done = sqlx::query(sql).bind(id).bind(workspace.id()).bind(who).execute(self.pool()).await?;
        if done.rows_affected() > 0 {
            // Pages following the queues hear of it like of any other change.
            sqlx::query("SELECT pg_notify('anchor_ops', $1)")
                .bind(workspace.id().to_string())
                .execute(self.pool())
                .await?;
        }
        Ok(done.rows_affected() > 0)
    }

    /// The runtime health, with agent figures for the workspaces in `agents`.
    pub async fn ops_health(&self, agents: &Within) -> Result<Health, StoreError> {
        let started = std::time::Instant::now();
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        let database_ms = started.elapsed().as_secs_f64() * 1000.0;
        #[allow(clippy::type_complexity)]
        let figures: (i64, Option<i64>, i64, Option<i64>, i64, Option<i64>, i64, i64, i64, Option<i64>) = sqlx::query_as(
            "WITH due AS (SELECT topic, created_at FROM platform.outbox_events
                           WHERE NOT settled AND state = 'pending' AND available_at <= now())
             SELECT (SELECT count(*) FROM due),
                    (SELECT extract(epoch FROM now() - min(created_at))::bigint FROM due),
                    (SELECT count(*) FROM due WHERE topic = 'event.publish'),
                    (SELECT extract(epoch FROM now() - min(created_at))::bigint FROM due WHERE topic = 'event.publish'),
                    (SELECT count(*) FROM due WHERE topic = 'agentfield.execute'),
                    (SELECT extract(epoch FROM now() - min(created_at))::bigint FROM due WHERE topic = 'agentfield.execute'),
                    (SELECT count(*) FROM platform.outbox_events WHERE settled AND delivered_at IS NULL),
                    count(*) FILTER (WHERE a.last_seen_at IS NULL OR a.last_seen_at < now() - make_interval(secs => $2)),
                    count(*),
                    extract(epoch FROM now() - max(a.last_seen_at))::bigint
               FROM platform.agents a
              WHERE a.revoked_at IS NULL AND ($1::bigint[] IS NULL OR a.workspace_id = ANY($1))",
        )
        .bind(agents.bind())
        .bind(OFFLINE_AFTER_SECS as f64)
        .fetch_one(self.pool())
        .await?;
        let jobs: Vec<JobRun> = sqlx::query_as(
            "SELECT name, every_secs, last_run_at, last_error FROM platform.recurring_jobs ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        let (
            outbox_pending,
            outbox_oldest_secs,
            bus_pending,
            bus_oldest_secs,
            handoff_pending,
            handoff_oldest_secs,
            outbox_failed,
            offline,
            agents,
            age,
        ) = figures;
        Ok(Health {
            database_ms,
            outbox_pending,
            outbox_oldest_secs,
            bus_pending,
            bus_oldest_secs,
            handoff_pending,
            handoff_oldest_secs,
            outbox_failed,
            agents_offline: offline,
            agents,
            telemetry_age_secs: age,
            jobs,
        })
    }
}
