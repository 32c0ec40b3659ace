//! The Console's Monitoring tab: alerts (open or resolved, newest first,
//! each with the asset it is on and the ticket automation opened), the
//! workspace's agents with their state, and the alert rules in effect.
//! Read-only: rules are configured through the API (and, later, Admin
//! settings); alerts change by their telemetry.

use anchor_auth::permissions::Permission;
use anchor_domain::{AgentId, AlertId, AlertState};
use anchor_store::{
    agents::{Agent, offline_after},
    alerts::{Alert, Rule},
    cmdb::{AssetFilter, AssetRow},
};
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Deserialize;

use crate::{
    WebState,
    console::{frame, grant, not_signed_in, unavailable},
    pages,
    session::{MaybeSignedIn, SignedIn},
};

/// Rows per page.
const PAGE_ROWS: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AlertQuery {
    /// `open` (default), `resolved` or `all`.
    #[serde(default)]
    state: Option<String>,
    /// The last alert of the previous page.
    #[serde(default)]
    before: Option<String>,
    /// The execution of the command that brought the person here.
    #[serde(default)]
    outcome: Option<String>,
}

/// One page of alerts, with the assets they are on (by id).
pub(crate) struct AlertPage {
    pub state: Option<AlertState>,
    pub alerts: Vec<Alert>,
    pub assets: Vec<AssetRow>,
    pub next: Option<AlertId>,
    pub rules: Vec<Rule>,
    pub outcome: Option<(anchor_store::executions::Execution, &'static str)>,
    /// A fresh key for each form on the page.
    pub keys: Vec<String>,
}

/// `GET /w/{ws}/console/monitoring`: alerts.
pub(crate) async fn alerts(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<AlertQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/monitoring";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::AlertsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let wanted = match query.state.as_deref() {
        Some("all") => None,
        Some("resolved") => Some(AlertState::Resolved),
        _ => Some(AlertState::Open),
    };
    let before = query.before.as_deref().and_then(|b| b.parse::<AlertId>().ok());
    let outcome = query.outcome.as_deref().and_then(|o| o.parse::<anchor_domain::ExecutionId>().ok());
    let may_see_executions = grant.allows(Permission::ExecutionsRead);
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let mut alerts = tx.alerts(wanted, before, PAGE_ROWS + 1).await?;
                let next = (alerts.len() as i64 > PAGE_ROWS).then(|| {
                    alerts.truncate(PAGE_ROWS as usize);
                    alerts.last().map(|a| a.id)
                });
                let ids: Vec<_> = alerts.iter().filter_map(|a| a.asset_id).collect();
                let filter =
                    AssetFilter { statuses: anchor_domain::AssetStatus::ALL.to_vec(), ids, ..AssetFilter::default() };
                let assets =
                    if filter.ids.is_empty() { Vec::new() } else { tx.asset_rows(&filter, None, PAGE_ROWS).await? };
                let rules = tx.rules().await?;
                let outcome = match outcome.filter(|_| may_see_executions) {
                    Some(execution) => tx.execution(execution).await?.map(|e| {
                        let summary = anchor_commands::registry::find(&e.command).map_or("Command", |s| s.summary);
                        (e, summary)
                    }),
                    None => None,
                };
                let keys = (0..alerts.len() * 2).map(|_| crate::session::random_token()).collect();
                Ok(AlertPage { state: wanted, alerts, assets, next: next.flatten(), rules, outcome, keys })
            })
        })
        .await;
    match read {
        Ok(page) => pages::page(StatusCode::OK, crate::cmdb_pages::alerts(&frame(&session, &grant), &page)),
        Err(e) => unavailable(e),
    }
}

/// The agents' page: each agent with its state and its machine's asset.
pub(crate) struct AgentPage {
    pub agents: Vec<(Agent, &'static str)>,
    /// Each agent's machine: (agent, asset, name).
    pub assets: Vec<(AgentId, anchor_domain::AssetId, anchor_domain::Name)>,
    pub next: Option<AgentId>,
    pub offline_after: time::Duration,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AgentQuery {
    #[serde(default)]
    after: Option<String>,
}

/// `GET /w/{ws}/console/monitoring/agents`.
pub(crate) async fn agents(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<AgentQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/monitoring/agents";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::AssetsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let after = query.after.as_deref().and_then(|a| a.parse::<AgentId>().ok());
    let mut agents = match state.db.agents_page(&grant.workspace, after, PAGE_ROWS + 1).await {
        Ok(agents) => agents,
        Err(e) => return unavailable(e),
    };
    let next = (agents.len() as i64 > PAGE_ROWS).then(|| {
        agents.truncate(PAGE_ROWS as usize);
        agents.last().map(|a| a.id)
    });
    let agent_ids: Vec<AgentId> = agents.iter().map(|a| a.id).collect();
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let rules = tx.rules().await?;
                let now = tx.clock().await?;
                let assets = tx.assets_of_agents(&agent_ids).await?;
                Ok((rules, now, assets))
            })
        })
        .await;
    let (rules, now, assets) = match read {
        Ok(read) => read,
        Err(e) => return unavailable(e),
    };
    let window = offline_after(&rules);
    let agents = agents
        .into_iter()
        .map(|a| {
            let status = a.status(now, window);
            (a, status)
        })
        .collect();
    let page = AgentPage { agents, assets, next: next.flatten(), offline_after: window };
    pages::page(StatusCode::OK, crate::cmdb_pages::agents(&frame(&session, &grant), &page))
}

/// `GET /w/{ws}/console/monitoring/rules`: the alert rules in effect.
pub(crate) async fn rules(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/monitoring/rules";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::AlertsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    match state.db.read(&grant.workspace, |tx| Box::pin(tx.rules())).await {
        Ok(rules) => pages::page(StatusCode::OK, crate::cmdb_pages::rules(&frame(&session, &grant), &rules)),
        Err(e) => unavailable(e),
    }
}
