//! Alert evaluation, inside the ingest unit of work. Each rule watches a
//! condition per (agent, subject): a metric crossing a threshold (per
//! mount, interface ...), a failing check (per check), an agent gone quiet.
//! A condition must hold for the rule's duration before its alert opens,
//! and be clear as long before it resolves; one live alert per (rule,
//! agent, subject); an alert that comes back within a minute of resolving is
//! the same alert re-opened, its flap counted (no second alert, no second
//! ticket: automation reopens the one it had). One batch opens (or
//! re-opens) at most the agent's `max_alerts_per_batch`: a condition past it
//! keeps its clock and opens with a later batch. Transitions publish
//! `alert.opened`, `alert.reopened` or `alert.resolved` and are routed to
//! automation (`alert.route`) through the outbox, in the same unit of work.

use anchor_domain::{AgentId, RuleKind};
use anchor_edge_protocol::{Batch, Labels};
use anchor_store::{
    StoreError, WorkspaceTx,
    alerts::{Alert, Condition, Rule},
};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Outbox topic: hand an alert transition to automation.
pub const ROUTE_TOPIC: &str = anchor_outbox::topics::ALERT_ROUTE;
/// A re-breach within this long of resolving re-opens the same alert.
pub const FLAP_WINDOW_SECS: i64 = 60;

/// What a condition is about on an agent.
fn subject_of(labels: Option<&Labels>) -> String {
    let Some(labels) = labels.filter(|l| !l.is_empty()) else { return String::new() };
    for key in ["mount", "interface", "device", "name"] {
        if let Some(v) = labels.get(key) {
            return v;
        }
    }
    labels.json().to_owned()
}

fn breaches(rule: &Rule, value: f64) -> bool {
    let threshold = rule.threshold.unwrap_or(f64::NAN);
    rule.comparison.is_some_and(|c| c.holds(value, threshold))
}

/// One observation of one condition.
#[derive(Debug)]
pub struct Observation<'a> {
    pub rule: &'a Rule,
    pub agent: AgentId,
    pub hostname: &'a str,
    pub subject: String,
    pub breach: bool,
    pub value: Option<f64>,
    pub at: OffsetDateTime,
    pub detail: String,
    /// Whether this observation may open (or re-open) an alert; when not, a
    /// breach still starts or keeps the condition's clock.
    pub may_open: bool,
}

/// Applies an observation; returns the alert and `opened`, `reopened` or
/// `resolved` when it changed state.
pub async fn observe(tx: &mut WorkspaceTx, o: Observation<'_>) -> Result<Option<(Alert, &'static str)>, StoreError> {
    let rule = o.rule;
    let mut condition: Condition = tx.lock_condition(rule.id, o.agent, &o.subject).await?;
    let open = tx.open_alert(rule.id, o.agent, &o.subject).await?;
    // An offline rule's duration is part of its test already.
    let hold = if rule.kind == RuleKind::AgentOffline {
        time::Duration::ZERO
    } else {
        time::Duration::seconds(i64::from(rule.duration_secs))
    };
    let mut transition = None;
    if o.breach {
        condition.clear_since = None;
        let since = *condition.breaching_since.get_or_insert(o.at);
        match open {
            Some(alert) => tx.touch_alert(alert.id, o.value).await?,
            None if o.at - since >= hold && o.may_open => {
                if let Some(previous) = tx.recently_resolved(rule.id, o.agent, &o.subject, FLAP_WINDOW_SECS).await? {
                    transition = Some((tx.reopen_alert(previous.id, o.value).await?, "reopened"));
                } else {
                    let asset = tx.agent_asset(o.agent).await?;
                    let at_subject = if o.subject.is_empty() { String::new() } else { format!(" ({})", o.subject) };
                    let summary = format!("{}: {} on {}{at_subject}", rule.name, o.detail, o.hostname);
                    let alert =
                        tx.insert_alert(rule.id, o.agent, asset, &o.subject, rule.severity, &summary, o.value).await?;
                    transition = Some((alert, "opened"));
                }
            }
            None => {}
        }
    } else {
        condition.breaching_since = None;
        match open {
            Some(alert) => {
                let since = *condition.clear_since.get_or_insert(o.at);
                if o.at - since >= hold {
                    let resolved = tx.resolve_alert(alert.id, o.value).await?;
                    condition.clear_since = None;
                    transition = Some((resolved, "resolved"));
                }
            }
            None => condition.clear_since = None,
        }
    }
    tx.set_condition(rule.id, o.agent, &o.subject, condition).await?;
    if let Some((alert, kind)) = &transition {
        announce(tx, alert, kind).await?;
    }
    Ok(transition)
}

/// Publishes `alert.<kind>` and routes the alert to automation, in the
/// caller's unit of work.
macro_rules! alert_events {
    ($($ty:ident = $name:literal, $when:literal;)+) => {$(
        #[doc = concat!("`", $name, "`.")]
        #[derive(Debug, serde::Serialize, schemars::JsonSchema)]
        pub struct $ty {
            /// The alert as `GET .../alerts` shows it.
            pub alert: Alert,
        }

        impl anchor_events::Event for $ty {
            const TYPE: &'static str = $name;
            const WHEN: &'static str = $when;
        }
    )+};
}

alert_events!(
    AlertOpened = "alert.opened",
        "A monitoring condition on an agent's machine held for its rule's duration: a new alert.";
    AlertReopened = "alert.reopened",
        "An alert that resolved less than a minute ago came back (a flap): the same alert, its `flaps` counted.";
    AlertResolved = "alert.resolved", "An alert's condition was clear for its rule's duration.";
);

/// The events alerts publish.
pub const EVENTS: &[anchor_events::EventSpec] = &[
    anchor_events::EventSpec::of::<AlertOpened>(),
    anchor_events::EventSpec::of::<AlertReopened>(),
    anchor_events::EventSpec::of::<AlertResolved>(),
];

async fn announce(tx: &mut WorkspaceTx, alert: &Alert, kind: &str) -> Result<(), StoreError> {
    let alert_data = alert.clone();
    match kind {
        "opened" => anchor_events::publish(tx, &AlertOpened { alert: alert_data }).await?,
        "reopened" => anchor_events::publish(tx, &AlertReopened { alert: alert_data }).await?,
        _ => anchor_events::publish(tx, &AlertResolved { alert: alert_data }).await?,
    };
    tx.enqueue(ROUTE_TOPIC, &json!({"alert_id": alert.id, "transition": kind})).await?;
    Ok(())
}

/// Revokes `agent` of `workspace` (its requests are refused from now on) and
/// resolves its open alerts, in a unit of work it answers open, with how
/// many, for the caller to record the change in and commit. `None`: no such
/// agent there.
pub async fn revoke_agent(
    db: &anchor_store::Database,
    workspace: &anchor_store::Workspace,
    agent: AgentId,
) -> Result<Option<(WorkspaceTx, usize)>, StoreError> {
    if !db.revoke_agent(workspace, agent).await? {
        return Ok(None);
    }
    let mut tx = db.begin_workspace(workspace).await?;
    let resolved = retire_agent(&mut tx, agent).await?;
    Ok(Some((tx, resolved)))
}

/// A revoked agent reports no more: its open alerts are resolved (and their
/// tickets, through automation), since nothing would ever clear them.
/// Returns how many.
pub async fn retire_agent(tx: &mut WorkspaceTx, agent: AgentId) -> Result<usize, StoreError> {
    let open = tx.open_alerts_of_agent(agent).await?;
    for alert in &open {
        let resolved = tx.resolve_alert(alert.id, None).await?;
        announce(tx, &resolved, "resolved").await?;
    }
    Ok(open.len())
}

/// Evaluates every enabled rule against a batch, opening (or re-opening) at
/// most `max_opened` alerts; returns the transitions it caused,
/// `[{"alert_id", "transition"}]`.
pub async fn evaluate(
    tx: &mut WorkspaceTx,
    agent: AgentId,
    hostname: &str,
    batch: &Batch,
    max_opened: usize,
) -> Result<Value, StoreError> {
    let rules: Vec<Rule> = tx.rules().await?.into_iter().filter(|r| r.enabled).collect();
    let live: std::collections::HashSet<(anchor_domain::RuleId, String)> =
        tx.live_conditions(agent).await?.into_iter().collect();
    let now = OffsetDateTime::now_utc();
    let mut transitions = Vec::new();
    let mut opened = 0;
    for rule in &rules {
        let mut observations = Vec::new();
        match rule.kind {
            RuleKind::Metric => {
                // The latest sample per subject.
                let mut latest: std::collections::BTreeMap<String, (&OffsetDateTime, f64)> = Default::default();
                for m in batch.metrics.iter().filter(|m| Some(m.name.as_str()) == rule.metric.as_deref()) {
                    let subject = subject_of(m.labels.as_ref());
                    if latest.get(&subject).is_none_or(|(at, _)| **at <= m.at) {
                        latest.insert(subject, (&m.at, m.value));
                    }
                }
                for (subject, (at, value)) in latest {
                    let detail = format!(
                        "{} is {value:.1} ({} {})",
                        rule.metric.as_deref().unwrap_or_default(),
                        rule.comparison.map_or("", |c| c.as_str()),
                        rule.threshold.unwrap_or_default()
                    );
                    observations.push((subject, breaches(rule, value), Some(value), *at, detail));
                }
            }
            RuleKind::Check => {
                for c in &batch.checks {
                    let detail = format!("check {} is {}: {}", c.name, c.status, c.output);
                    observations.push((c.name.clone(), c.status == "failing", None, c.at, detail));
                }
            }
            // A batch is proof of life.
            RuleKind::AgentOffline => {
                observations.push((String::new(), false, None, now, "the agent reports again".into()))
            }
        }
        for (subject, breach, value, at, detail) in observations {
            // Clear, no clock running, no alert open: nothing to record.
            if !breach && !live.contains(&(rule.id, subject.clone())) {
                continue;
            }
            let may_open = opened < max_opened;
            let o = Observation { rule, agent, hostname, subject, breach, value, at, detail, may_open };
            if let Some((alert, kind)) = observe(tx, o).await? {
                opened += usize::from(kind != "resolved");
                transitions.push(json!({"alert_id": alert.id, "transition": kind}));
            }
        }
    }
    Ok(Value::Array(transitions))
}

/// The job behind "agent offline": agents silent for longer than a rule's
/// duration get an alert (a batch resolves it). Returns the alerts opened.
/// One workspace's trouble does not keep the others from being checked.
pub async fn check_offline(db: &anchor_store::Database) -> Result<usize, StoreError> {
    let silent = db.silent_agents(30).await?;
    let mut by_workspace: std::collections::BTreeMap<i64, Vec<anchor_store::agents::Agent>> = Default::default();
    for agent in silent {
        by_workspace.entry(agent.workspace_id).or_default().push(agent);
    }
    let mut opened = 0;
    let mut failure = None;
    for (workspace_id, agents) in by_workspace {
        match check_workspace_offline(db, workspace_id, &agents).await {
            Ok(n) => opened += n,
            Err(e) => {
                tracing::error!(workspace_id, error = %e, "agent-offline check failed for a workspace");
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) if opened == 0 => Err(e),
        _ => Ok(opened),
    }
}

async fn check_workspace_offline(
    db: &anchor_store::Database,
    workspace_id: i64,
    agents: &[anchor_store::agents::Agent],
) -> Result<usize, StoreError> {
    let Some(workspace) = db.workspace_by_id(workspace_id).await? else { return Ok(0) };
    let mut tx = db.begin_workspace(&workspace).await?;
    let rules: Vec<Rule> =
        tx.rules().await?.into_iter().filter(|r| r.enabled && r.kind == RuleKind::AgentOffline).collect();
    let mut opened = 0;
    for rule in &rules {
        for agent in agents {
            let agent_id = agent.id;
            // Under the condition's lock (which ingest takes too), the
            // workspace's own record of the last batch is the truth: a batch
            // that arrived since the silent agents were listed counts.
            tx.lock_condition(rule.id, agent_id, "").await?;
            let last_batch = tx.last_batch_at(agent_id).await?;
            let last = [agent.last_seen_at, last_batch].into_iter().flatten().max().unwrap_or(agent.enrolled_at);
            let now = tx.clock().await?;
            let silent_for = now - last;
            if silent_for.whole_seconds() < i64::from(rule.duration_secs) {
                continue;
            }
            let o = Observation {
                rule,
                agent: agent_id,
                hostname: &agent.hostname,
                subject: String::new(),
                breach: true,
                value: Some(silent_for.whole_seconds() as f64),
                at: now,
                detail: format!("no report for {} s", silent_for.whole_seconds()),
                may_open: true,
            };
            opened += usize::from(observe(&mut tx, o).await?.is_some_and(|(_, kind)| kind != "resolved"));
        }
    }
    tx.commit().await?;
    Ok(opened)
}
