//! The Console's CMDB tab: the asset list (server-side filters, keyset
//! pages, each row with its agent's state and what is open on it, bulk
//! actions), an asset's page (summary, attributes, lifecycle buttons valid
//! now, relationships, the impact of its failure, open alerts and tickets)
//! and the form to add one. Every change is a command submitted through the
//! same desk as the API ([`crate::commands::submit_as`]).

use anchor_auth::permissions::Permission;
use anchor_commands::authorize::Grant;
use anchor_domain::{AssetId, AssetStatus, FieldKind, SchemaKey, SiteId, Tag};
use anchor_store::{
    cmdb::{AssetFilter, AssetRow, AssetType, Impact, Relationship},
    executions::Execution,
    sites::{ByName, Listing, Site},
};
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    WebState,
    admin::fields,
    commands::submit_as,
    console::{BulkItem, frame, grant, not_signed_in, submit_each, unavailable, urlencoding},
    pages,
    session::{MaybeSignedIn, SignedIn, random_token, same, same_origin},
};

/// Rows per page of the asset list.
const PAGE_ROWS: i64 = 50;
/// Assets offered as the other end of a new relationship.
const RELATABLE: i64 = 500;
/// Sites offered in filters and forms.
const SITES_SHOWN: i64 = 200;

/// The list's filters, as the query string carries them: the asset API's
/// parameters (`GET /api/v1/workspaces/{ws}/assets`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AssetListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default, rename = "type")]
    type_key: Option<String>,
    #[serde(default)]
    site_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    /// `true` or `false`.
    #[serde(default)]
    has_agent: Option<String>,
    /// The last asset of the previous page.
    #[serde(default)]
    after: Option<String>,
}

/// What the list shows, read back for the form.
#[derive(Debug, Default, Clone)]
pub(crate) struct AssetFilters {
    pub search: Option<String>,
    pub type_key: Option<SchemaKey>,
    pub site_id: Option<SiteId>,
    pub status: Option<AssetStatus>,
    pub tag: Option<Tag>,
    pub has_agent: Option<bool>,
}

impl AssetFilters {
    fn of(query: &AssetListQuery) -> Self {
        let pick = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        Self {
            search: pick(&query.q).map(|q| q.chars().take(200).collect()),
            type_key: pick(&query.type_key).and_then(|t| SchemaKey::parse(&t).ok()),
            site_id: pick(&query.site_id).and_then(|s| s.parse().ok()),
            status: pick(&query.status).as_deref().and_then(AssetStatus::parse),
            tag: pick(&query.tag).and_then(|t| Tag::parse(&t).ok()),
            has_agent: pick(&query.has_agent).and_then(|a| a.parse().ok()),
        }
    }

    /// The query string of these filters.
    pub(crate) fn query(&self) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        if let Some(q) = &self.search {
            pairs.append_pair("q", q);
        }
        if let Some(key) = &self.type_key {
            pairs.append_pair("type", key.as_str());
        }
        if let Some(site) = self.site_id {
            pairs.append_pair("site_id", &site.to_string());
        }
        if let Some(status) = self.status {
            pairs.append_pair("status", status.as_str());
        }
        if let Some(tag) = &self.tag {
            pairs.append_pair("tag", tag.as_str());
        }
        if let Some(has_agent) = self.has_agent {
            pairs.append_pair("has_agent", if has_agent { "true" } else { "false" });
        }
        pairs.finish()
    }

    fn filter(&self) -> AssetFilter {
        AssetFilter {
            search: self.search.clone(),
            statuses: self.status.into_iter().collect(),
            type_key: self.type_key.clone(),
            site_id: self.site_id,
            tag: self.tag.as_ref().map(|t| t.as_str().to_owned()),
            has_agent: self.has_agent,
            ids: Vec::new(),
        }
    }
}

/// One page of the asset list, with what its filters and forms need.
pub(crate) struct AssetListPage {
    pub rows: Vec<AssetRow>,
    pub next: Option<ByName>,
    pub types: Vec<AssetType>,
    pub sites: Vec<Site>,
    /// The bulk form's key (each asset's command gets one derived from it).
    pub bulk_key: String,
    /// Each machine's processor use, hour by hour, over the last day.
    pub sparks: std::collections::HashMap<AssetId, Vec<Option<f64>>>,
}

async fn sites(tx: &mut anchor_store::WorkspaceTx) -> Result<Vec<Site>, anchor_store::StoreError> {
    tx.sites(&Listing::default(), None, SITES_SHOWN).await
}

/// `GET /w/{ws}/console/cmdb`.
pub(crate) async fn assets(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<AssetListQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/cmdb";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::AssetsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let filters = AssetFilters::of(&query);
    let filter = filters.filter();
    let after = query.after.as_deref().and_then(|a| a.parse::<ByName>().ok());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let mut rows = tx.asset_rows(&filter, after.as_ref(), PAGE_ROWS + 1).await?;
                let next = (rows.len() as i64 > PAGE_ROWS).then(|| {
                    rows.truncate(PAGE_ROWS as usize);
                    rows.last().map(|r| ByName::of(&r.asset.name, r.asset.id))
                });
                let types = tx.asset_types().await?;
                let sites = sites(tx).await?;
                let sparks = sparks(tx, &rows).await?;
                Ok(AssetListPage { rows, next: next.flatten(), types, sites, bulk_key: random_token(), sparks })
            })
        })
        .await;
    match read {
        Ok(list) => {
            let frame = cmdb_frame(&session, &grant);
            if crate::console::is_fragment(&headers) {
                pages::fragment(crate::cmdb_pages::asset_list_region(&frame, &filters, &list))
            } else {
                pages::page(StatusCode::OK, crate::cmdb_pages::asset_list(&frame, &filters, &list))
            }
        }
        Err(e) => unavailable(e),
    }
}

/// The frame of the CMDB's pages: "may write" is about assets here.
fn cmdb_frame<'a>(session: &'a anchor_store::sessions::WebSession, grant: &'a Grant) -> pages::ConsoleFrame<'a> {
    pages::ConsoleFrame { may_write: grant.allows(Permission::AssetsWrite), ..frame(session, grant) }
}

/// Everything an asset's page shows.
pub(crate) struct AssetPage {
    pub row: AssetRow,
    pub kind: Option<AssetType>,
    pub site: Option<Site>,
    pub sites: Vec<Site>,
    pub relationships: Vec<Relationship>,
    pub impact: Impact,
    /// Assets that may be the other end of a new relationship (by name).
    pub relatable: Vec<AssetRow>,
    pub outcome: Option<(Execution, &'static str)>,
    /// A fresh key for each form on the page.
    pub keys: Vec<String>,
    /// Its agent's telemetry over the chosen range (machines only).
    pub telemetry: Option<Telemetry>,
    /// What happened to it (commands and changes), newest first.
    pub history: Vec<anchor_store::cmdb::AssetEvent>,
    /// Its alerts, newest first (open and resolved).
    pub alerts: Vec<anchor_store::alerts::Alert>,
    /// Its agent's checks, each's latest result, failing first.
    pub checks: Vec<anchor_store::cmdb::CheckState>,
}

/// Alerts on an asset's page.
const ALERT_ROWS: i64 = 10;

/// Entries of an asset's history on its page.
const HISTORY_ROWS: i64 = 25;

/// A machine's metrics over a range, in spans.
pub(crate) struct Telemetry {
    /// `1h`, `24h` or `7d`.
    pub range: &'static str,
    pub from: time::OffsetDateTime,
    pub to: time::OffsetDateTime,
    pub step: time::Duration,
    pub buckets: Vec<anchor_store::cmdb::MetricBucket>,
}

/// The ranges a machine's charts show, and the metrics they draw.
pub(crate) const RANGES: [(&str, time::Duration); 3] =
    [("1h", time::Duration::HOUR), ("24h", time::Duration::DAY), ("7d", time::Duration::WEEK)];
pub(crate) const CHARTED: [&str; 3] = ["cpu.usage_percent", "memory.used_percent", "disk.used_percent"];
/// Spans per chart.
const SPANS: u32 = 60;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AssetQuery {
    /// The execution of the command that brought the person here.
    #[serde(default)]
    outcome: Option<String>,
    /// The charts' range: `1h`, `24h` (default) or `7d`.
    #[serde(default)]
    range: Option<String>,
}

/// `GET /w/{ws}/console/cmdb/assets/{id}`.
pub(crate) async fn asset(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<AssetQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/cmdb/assets/{id}";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::AssetsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let Ok(id) = id.parse::<AssetId>() else { return missing() };
    let outcome = query.outcome.as_deref().and_then(|o| o.parse::<anchor_domain::ExecutionId>().ok());
    let may_see_executions = grant.allows(Permission::ExecutionsRead);
    let (range, span) = RANGES.iter().copied().find(|(r, _)| Some(*r) == query.range.as_deref()).unwrap_or(RANGES[1]);
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let Some(row) = tx.asset_row(id).await? else { return Ok(None) };
                let telemetry = match row.asset.agent_id {
                    Some(agent) => {
                        let to = tx.clock().await?;
                        let from = to - span;
                        let buckets = tx.metric_buckets(agent, &CHARTED, from, to, SPANS).await?;
                        let step = span / SPANS;
                        Some(Telemetry { range, from, to, step, buckets })
                    }
                    None => None,
                };
                let kind = tx.asset_type(&row.asset.type_key).await?;
                let site = match row.asset.site_id {
                    Some(site) => tx.site(site).await?,
                    None => None,
                };
                let sites = sites(tx).await?;
                let relationships = tx.relationships_of(id).await?;
                let Some(impact) = tx.impact(id).await? else { return Ok(None) };
                let relatable = tx.asset_rows(&AssetFilter::default(), None, RELATABLE).await?;
                let outcome = match outcome.filter(|_| may_see_executions) {
                    Some(execution) => tx.execution(execution).await?.map(|e| {
                        let summary = anchor_commands::registry::find(&e.command).map_or("Command", |s| s.summary);
                        (e, summary)
                    }),
                    None => None,
                };
                let keys = (0..12 + relationships.len()).map(|_| random_token()).collect();
                let history = tx.asset_history(id, row.asset.agent_id, HISTORY_ROWS).await?;
                let alerts = tx.alerts_of_asset(id, ALERT_ROWS).await?;
                let checks = match row.asset.agent_id {
                    Some(agent) => tx.latest_checks(agent).await?,
                    None => Vec::new(),
                };
                Ok(Some(AssetPage {
                    history,
                    alerts,
                    checks,
                    row,
                    kind,
                    site,
                    sites,
                    relationships,
                    impact,
                    relatable,
                    outcome,
                    keys,
                    telemetry,
                }))
            })
        })
        .await;
    match read {
        Ok(Some(page)) => {
            pages::page(StatusCode::OK, crate::cmdb_pages::asset_page(&cmdb_frame(&session, &grant), &page))
        }
        Ok(None) => missing(),
        Err(e) => unavailable(e),
    }
}

fn missing() -> Response {
    pages::declined(StatusCode::NOT_FOUND, "No such asset", "There is no such asset in this workspace.")
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewAssetQuery {
    #[serde(default, rename = "type")]
    type_key: Option<String>,
}

/// `GET /w/{ws}/console/cmdb/new`: choose a type, then fill in its fields.
pub(crate) async fn new_asset(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<NewAssetQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/cmdb/new";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::AssetsWrite, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let chosen = query.type_key.as_deref().and_then(|t| SchemaKey::parse(t).ok());
    let read = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let types = tx.asset_types().await?;
                let sites = sites(tx).await?;
                Ok((types, sites))
            })
        })
        .await;
    match read {
        Ok((types, sites)) => {
            let kind = chosen.and_then(|key| types.iter().find(|t| t.key == key).cloned());
            let markup = crate::cmdb_pages::new_asset(
                &cmdb_frame(&session, &grant),
                &types,
                kind.as_ref(),
                &sites,
                &random_token(),
            );
            pages::page(StatusCode::OK, markup)
        }
        Err(e) => unavailable(e),
    }
}

/// The bulk revocation of the selected machines' agents: an administrative
/// change (`enrollment.manage`) made as the API's `DELETE .../agents/{id}`
/// makes it (the agent refused from now on, its open alerts resolved, a
/// change record with its signed credential), one agent at a time.
async fn revoke_agents(
    state: &WebState,
    session: &anchor_store::sessions::WebSession,
    headers: &HeaderMap,
    workspace: &str,
    rows: &[AssetRow],
    names: &[(AssetId, Option<String>)],
    slug: &str,
) -> Response {
    let route = "POST /w/{ws}/console/cmdb/bulk";
    let grant = match grant(state, session, headers, workspace, Permission::EnrollmentManage, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let actor = anchor_store::executions::Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let mut items = Vec::new();
    for (id, name) in names {
        let href = format!("/w/{slug}/console/cmdb/assets/{id}");
        let row = rows.iter().find(|r| r.asset.id == *id);
        let (outcome, message) = match row.map(|r| (r.asset.agent_id, r.agent_status.as_deref())) {
            None => ("failed", "no such asset here".to_owned()),
            Some((None, _)) => ("skipped", "it has no agent".to_owned()),
            Some((_, Some("revoked"))) => ("skipped", "its agent is revoked already".to_owned()),
            Some((Some(agent), _)) => match revoke_agent(state, &grant, &actor, agent).await {
                Ok(1) => ("updated", "agent revoked; its open alert resolved".to_owned()),
                Ok(resolved) => ("updated", format!("agent revoked; {resolved} open alerts resolved")),
                Err(e) => {
                    tracing::error!(error = %e, %agent, "an agent could not be revoked");
                    ("failed", "Anchor could not revoke it; try again".to_owned())
                }
            },
        };
        items.push(BulkItem { href, title: name.clone(), outcome, message });
    }
    let back = format!("/w/{slug}/console/cmdb");
    let frame = cmdb_frame(session, &grant);
    pages::page(StatusCode::OK, pages::bulk_result(&frame, "Revoke their agents".to_owned(), "Assets", &items, &back))
}

async fn revoke_agent(
    state: &WebState,
    grant: &Grant,
    actor: &anchor_store::executions::Actor,
    agent: anchor_domain::AgentId,
) -> Result<usize, anchor_store::StoreError> {
    let Some((mut tx, resolved)) = anchor_telemetry::alerts::revoke_agent(&state.db, &grant.workspace, agent).await?
    else {
        return Ok(0);
    };
    let target = agent.to_string();
    let change = anchor_store::changes::NewChange {
        action: "agent.revoked",
        target: &target,
        actor,
        actor_role: Some(grant.role),
        details: json!({"alerts_resolved": resolved}),
    };
    anchor_evidence::issue::record_change(&mut tx, &change).await?;
    tx.commit().await?;
    Ok(resolved)
}

/// Hours in an asset list row's sparkline.
const SPARK_HOURS: u32 = 24;

/// Each machine's processor use over the last 24 hours, hour by hour
/// (`None` where it was silent), for the rows that have an agent.
async fn sparks(
    tx: &mut anchor_store::WorkspaceTx,
    rows: &[AssetRow],
) -> Result<std::collections::HashMap<AssetId, Vec<Option<f64>>>, anchor_store::StoreError> {
    let agents: Vec<(anchor_domain::AgentId, AssetId)> =
        rows.iter().filter_map(|r| r.asset.agent_id.map(|a| (a, r.asset.id))).collect();
    if agents.is_empty() {
        return Ok(Default::default());
    }
    let to = time::OffsetDateTime::now_utc();
    let from = to - time::Duration::hours(i64::from(SPARK_HOURS));
    let ids: Vec<anchor_domain::AgentId> = agents.iter().map(|(a, _)| *a).collect();
    let points = tx.sparklines(&ids, "cpu.usage_percent", from, to, SPARK_HOURS).await?;
    let mut sparks = std::collections::HashMap::new();
    for (agent, asset) in agents {
        let mut values = vec![None; SPARK_HOURS as usize];
        for (_, at, value) in points.iter().filter(|(a, ..)| *a == agent) {
            let hour = ((*at - from).whole_hours()).clamp(0, i64::from(SPARK_HOURS) - 1) as usize;
            values[hour] = Some(*value);
        }
        sparks.insert(asset, values);
    }
    Ok(sparks)
}

pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A non-empty field, trimmed.
pub(crate) fn given<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    field(fields, name).map(str::trim).filter(|v| !v.is_empty())
}

/// The attributes of a form (`attr.<key>` fields) as the type's fields
/// read them: numbers as numbers, ticked boxes as `true`; what does not
/// parse is passed as typed, so the command names what is wrong with it. An
/// empty field is `null` when `clear` (an edit removes it), left out
/// otherwise.
fn attributes(fields: &[(String, String)], kind: Option<&AssetType>, clear: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(kind) = kind else { return out };
    for def in kind.fields.iter() {
        let name = format!("attr.{}", def.key);
        let raw = field(fields, &name).map(str::trim);
        let value = match (def.kind, raw) {
            (FieldKind::Boolean, raw) => {
                // A checkbox sends nothing when unticked; its hidden twin says it was on the form.
                if field(fields, &format!("{name}.shown")).is_none() {
                    continue;
                }
                Value::Bool(raw.is_some())
            }
            (_, None | Some("")) if clear => Value::Null,
            (_, None | Some("")) => continue,
            (FieldKind::Integer, Some(raw)) => raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n)),
            (FieldKind::Number, Some(raw)) => {
                raw.parse::<f64>().ok().filter(|n| n.is_finite()).map_or_else(|| json!(raw), |n| json!(n))
            }
            (_, Some(raw)) => json!(raw),
        };
        out.insert(def.key.as_str().to_owned(), value);
    }
    out
}

/// The command's arguments from a CMDB form (empty fields left out, so the
/// command's own parsing names what is missing).
fn arguments(command: &str, fields: &[(String, String)], kind: Option<&AssetType>) -> Result<Value, String> {
    let mut args = Map::new();
    let mut put = |name: &str| {
        if let Some(value) = given(fields, name) {
            args.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    };
    match command {
        "asset.create" => {
            for name in ["name", "site_id", "serial", "hostname", "purchased_on", "warranty_until", "status"] {
                put(name);
            }
            if let Some(key) = given(fields, "type") {
                args.insert("type".into(), json!(key));
            }
            let attributes = attributes(fields, kind, false);
            if !attributes.is_empty() {
                args.insert("attributes".into(), Value::Object(attributes));
            }
        }
        "asset.update" => {
            put("asset_id");
            put("name");
            for name in ["serial", "hostname", "purchased_on", "warranty_until"] {
                let value = given(fields, name).map_or(Value::Null, |v| json!(v));
                args.insert(name.to_owned(), value);
            }
            args.insert("attributes".into(), Value::Object(attributes(fields, kind, true)));
        }
        "asset.move" => {
            put("asset_id");
            args.insert("site_id".into(), given(fields, "site_id").map_or(Value::Null, |s| json!(s)));
        }
        "asset.tag" => {
            put("asset_id");
            let add: Vec<&str> = given(fields, "add")
                .map(|a| a.split([',', ' ']).filter(|t| !t.is_empty()).collect())
                .unwrap_or_default();
            let remove: Vec<&str> = fields.iter().filter(|(k, _)| k == "remove").map(|(_, v)| v.as_str()).collect();
            args.insert("add".into(), json!(add));
            args.insert("remove".into(), json!(remove));
        }
        "asset.set_status" => {
            put("asset_id");
            put("status");
        }
        "asset.retire" => put("asset_id"),
        "asset.relate" => {
            put("asset_id");
            put("kind");
            put("target_id");
        }
        "asset.unrelate" => put("relationship_id"),
        "alert.acknowledge" => put("alert_id"),
        "alert.snooze" => {
            put("alert_id");
            if let Some(minutes) = given(fields, "minutes") {
                let minutes: u32 = minutes.parse().map_err(|_| "Minutes: a whole number, up to a week.".to_owned())?;
                args.insert("minutes".into(), json!(minutes));
            }
        }
        "ticket.create" => {
            put("title");
            put("asset_id");
            put("priority");
        }
        other => return Err(format!("The command {other:?} is not offered on this page.")),
    }
    Ok(Value::Object(args))
}

/// `POST /w/{ws}/console/cmdb/act`: a command from a CMDB form; back to the
/// asset, whose page shows what the command did.
pub(crate) async fn act(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let fields = fields(&body);
    if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let command = field(&fields, "command").unwrap_or_default().to_owned();
    let route = "POST /w/{ws}/console/cmdb/act";
    // The asset type whose fields the form shows, for reading its attributes.
    let kind = match given(&fields, "type").and_then(|t| SchemaKey::parse(t).ok()) {
        Some(key) if ["asset.create", "asset.update"].contains(&command.as_str()) => {
            let read_grant = match grant(&state, &session, &headers, &workspace, Permission::AssetsRead, route).await {
                Ok(grant) => grant,
                Err(page) => return page,
            };
            match state.db.read(&read_grant.workspace, |tx| Box::pin(async move { tx.asset_type(&key).await })).await {
                Ok(kind) => kind,
                Err(e) => return unavailable(e),
            }
        }
        _ => None,
    };
    let args = match arguments(&command, &fields, kind.as_ref()) {
        Ok(args) => args,
        Err(message) => return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Not offered here", &message),
    };
    let key = field(&fields, "idempotency_key");
    let receipt = match submit_as(&state, &workspace, &session, &headers, &command, args, key, route).await {
        Ok(receipt) => receipt,
        Err(page) => return page,
    };
    let slug = receipt.workspace.slug().as_str().to_owned();
    let execution = &receipt.execution;
    if command == "ticket.create"
        && let Some(ticket) = execution.result.as_ref().and_then(|r| r["ticket_id"].as_str())
    {
        return Redirect::to(&format!(
            "/w/{slug}/console/service/tickets/{}?outcome={}",
            urlencoding(ticket),
            execution.id
        ))
        .into_response();
    }
    if command.starts_with("alert.") {
        return Redirect::to(&format!("/w/{slug}/console/monitoring?outcome={}", execution.id)).into_response();
    }
    let asset = given(&fields, "back_to")
        .or_else(|| given(&fields, "asset_id"))
        .map(str::to_owned)
        .or_else(|| execution.result.as_ref().and_then(|r| r["asset_id"].as_str()).map(str::to_owned));
    match asset {
        Some(asset) => {
            Redirect::to(&format!("/w/{slug}/console/cmdb/assets/{}?outcome={}", urlencoding(&asset), execution.id))
                .into_response()
        }
        None => Redirect::to(&format!("/w/{slug}/executions/{}", execution.id)).into_response(),
    }
}

/// At most this many assets in one bulk action.
const BULK_MAX: usize = 100;

/// `POST /w/{ws}/console/cmdb/bulk`: one command per selected asset (tag,
/// move to a site, open a ticket about it, retire), each through the normal
/// command path; the answer lists each asset's outcome.
pub(crate) async fn bulk(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let fields = fields(&body);
    if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let selected: Vec<AssetId> =
        fields.iter().filter(|(k, _)| k == "asset").filter_map(|(_, v)| v.parse().ok()).collect();
    if selected.is_empty() {
        return pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing selected",
            "Select assets in the list first, then choose what to do with them.",
        );
    }
    if selected.len() > BULK_MAX {
        return pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Too many assets",
            &format!("At most {BULK_MAX} assets at a time."),
        );
    }
    let action = field(&fields, "action").unwrap_or_default();
    let value = if action == "tag" { given(&fields, "tag") } else { given(&fields, "site_id") };
    let summary = match (action, value) {
        ("tag", Some(tag)) => format!("Tag “{tag}”"),
        ("move", Some(_)) => "Move to a site".to_owned(),
        ("move", None) => "Take off their site".to_owned(),
        ("ticket", _) => "Open a ticket about each".to_owned(),
        ("retire", _) => "Retire".to_owned(),
        ("revoke", _) => "Revoke their agents".to_owned(),
        _ => {
            return pages::declined(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unknown action",
                "Choose an action from the list (a tag needs its name).",
            );
        }
    };
    let route = "POST /w/{ws}/console/cmdb/bulk";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::AssetsRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let filter = AssetFilter { statuses: AssetStatus::ALL.to_vec(), ids: selected.clone(), ..AssetFilter::default() };
    let limit = selected.len() as i64;
    let rows = match state
        .db
        .read(&grant.workspace, |tx| Box::pin(async move { tx.asset_rows(&filter, None, limit).await }))
        .await
    {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    let names: Vec<(AssetId, Option<String>)> = selected
        .iter()
        .map(|id| (*id, rows.iter().find(|r| r.asset.id == *id).map(|r| r.asset.name.as_str().to_owned())))
        .collect();
    let slug = urlencoding(grant.workspace.slug().as_str());
    if action == "revoke" {
        return revoke_agents(&state, &session, &headers, &workspace, &rows, &names, &slug).await;
    }
    let jobs = names
        .into_iter()
        .map(|(id, name)| {
            let asset = id.to_string();
            let (command, args) = match action {
                "tag" => ("asset.tag", json!({"asset_id": asset, "add": [value]})),
                "move" => ("asset.move", json!({"asset_id": asset, "site_id": value})),
                "ticket" => {
                    let title = format!("Check {}", name.as_deref().unwrap_or(&asset));
                    ("ticket.create", json!({"title": title, "priority": "p3", "asset_id": asset}))
                }
                _ => ("asset.retire", json!({"asset_id": asset})),
            };
            crate::console::BulkJob {
                href: format!("/w/{slug}/console/cmdb/assets/{asset}"),
                id: asset,
                title: name,
                command,
                args,
            }
        })
        .collect();
    let key = field(&fields, "idempotency_key").unwrap_or_default();
    let items: Vec<BulkItem> = match submit_each(&state, &grant, key, jobs).await {
        Ok(items) => items,
        Err(page) => return page,
    };
    let back = format!("/w/{slug}/console/cmdb");
    pages::page(StatusCode::OK, pages::bulk_result(&cmdb_frame(&session, &grant), summary, "Assets", &items, &back))
}
