//! Service policies: business calendars and SLA policies. Configuration
//! (psa.md): written directly by those who manage the workspace's settings,
//! each write recorded as a change with its signed credential; read by every
//! member of staff. Every edit adds a version (the ones before are kept, for
//! the SLA clocks planned with them); `ETag` is the version and a write
//! with `If-Match` applies only to the version it names (412 otherwise).

use anchor_domain::{CalendarId, SlaPolicyId, TicketStatus};
use anchor_sla::{Calendar, SlaPolicy, ValidationErrors};
use anchor_store::service_policies::{CalendarRecord, Edit, PolicyRecord, Removal, VersionRecord};
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    commands::rfc3339,
    json::ApiJson,
    pagination::Page,
    path::{ObjectId, not_found},
    problem::{FieldError, Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(list_calendars, create_calendar))
        .routes(routes!(get_calendar, update_calendar, delete_calendar))
        .routes(routes!(list_calendar_versions))
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(get_policy, update_policy, delete_policy))
        .routes(routes!(list_policy_versions))
}

/// Statuses an SLA policy may pause on: a resolved or closed ticket's clocks
/// have stopped already.
const PAUSABLE: [TicketStatus; 4] =
    [TicketStatus::New, TicketStatus::Triaged, TicketStatus::InProgress, TicketStatus::WaitingOnClient];

/// A calendar as the API shows it: its definition with its name and dates.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Calendar)]
pub(crate) struct CalendarView {
    #[schema(example = "cal_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    id: String,
    name: String,
    /// Counts the edits, from 1; the `ETag`.
    version: i32,
    /// `time_zone`, `week` and `holidays`, as sent.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    definition: Map<String, Value>,
    created_at: String,
    updated_at: String,
}

impl From<CalendarRecord> for CalendarView {
    fn from(c: CalendarRecord) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name,
            version: c.version,
            definition: without_version(c.definition.0),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// An SLA policy as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SlaPolicy)]
pub(crate) struct PolicyView {
    #[schema(example = "slp_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    id: String,
    name: String,
    calendar_id: String,
    /// The workspace's default policy (used when nothing more specific applies).
    default: bool,
    /// Counts the edits, from 1; the `ETag`.
    version: i32,
    /// `targets`, `warning_percent`, `pausing_statuses` and `on_reopen`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    definition: Map<String, Value>,
    created_at: String,
    updated_at: String,
}

impl From<PolicyRecord> for PolicyView {
    fn from(p: PolicyRecord) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name,
            calendar_id: p.calendar_id.to_string(),
            default: p.is_default,
            version: p.version,
            definition: without_version(p.definition.0),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

/// One stored version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionView {
    version: i32,
    #[schema(value_type = Object)]
    definition: Value,
    created_at: String,
}

impl From<VersionRecord> for VersionView {
    fn from(v: VersionRecord) -> Self {
        Self { version: v.version, definition: v.definition.0, created_at: rfc3339(v.created_at) }
    }
}

fn without_version(definition: Value) -> Map<String, Value> {
    let mut members = match definition {
        Value::Object(members) => members,
        _ => Map::new(),
    };
    members.remove("version");
    members
}

/// `anchor_sla`'s field names (`week.monday[1]`) as JSON Pointers.
fn pointer(field: &str) -> String {
    if field.is_empty() {
        return String::new();
    }
    let mut out = String::from("/");
    out.push_str(&field.replace("][", "/").replace('[', "/").replace(']', "").replace('.', "/"));
    out
}

fn invalid(code: &str, errors: &ValidationErrors) -> Problem {
    let list: Vec<FieldError> =
        errors.errors().iter().map(|e| FieldError { path: pointer(&e.field), message: e.message.clone() }).collect();
    let first = list.first().map(|e| (e.path.clone(), e.message.clone())).unwrap_or_default();
    Problem::unprocessable(code, &first.0, first.1).with_errors(list)
}

/// The body's `name`: 1-120 characters, trimmed.
fn name_of(body: &mut Map<String, Value>, code: &str) -> Result<String, Problem> {
    match body.remove("name") {
        Some(Value::String(name)) if !name.trim().is_empty() && name.trim().chars().count() <= 120 => {
            Ok(name.trim().to_owned())
        }
        _ => Err(Problem::unprocessable(code, "/name", "a name of 1-120 characters")),
    }
}

/// serde reads a struct from a JSON array too (`[null, null]` for
/// `{"a": null, "b": null}`); the document says objects, so only objects are
/// read. `shape` lists where objects are expected: member names, `*` for
/// every member or item.
fn objects_only(value: &Value, shape: &[&[&str]], code: &str) -> Result<(), Problem> {
    fn walk(value: &Value, path: &[&str], at: String, code: &str) -> Result<(), Problem> {
        let Some((first, rest)) = path.split_first() else {
            return match value {
                Value::Object(_) | Value::Null => Ok(()),
                _ => Err(Problem::unprocessable(code, &at, "a JSON object")),
            };
        };
        let children: Vec<(String, &Value)> = match (value, *first) {
            (Value::Object(members), "*") => members.iter().map(|(k, v)| (k.clone(), v)).collect(),
            (Value::Array(items), "*") => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
            (Value::Object(members), name) => members.get(name).map(|v| (name.to_owned(), v)).into_iter().collect(),
            _ => Vec::new(),
        };
        for (name, child) in children {
            walk(child, rest, format!("{at}/{}", name.replace('~', "~0").replace('/', "~1")), code)?;
        }
        Ok(())
    }
    shape.iter().try_for_each(|path| walk(value, path, String::new(), code))
}

fn object(body: Value, code: &str) -> Result<Map<String, Value>, Problem> {
    match body {
        Value::Object(members) => Ok(members),
        _ => Err(Problem::unprocessable(code, "", "a JSON object")),
    }
}

/// What is left of a body once its own members are taken, as the JSON
/// `anchor_sla` reads: at version 1, since the store counts the versions.
fn at_first_version(mut members: Map<String, Value>, code: &str) -> Result<String, Problem> {
    if members.contains_key("version") {
        return Err(Problem::unprocessable(
            code,
            "/version",
            "the version is counted by Anchor; send If-Match instead",
        ));
    }
    members.insert("version".into(), json!(1));
    Ok(Value::Object(members).to_string())
}

/// The calendar a body describes (without its name), checked.
fn calendar_of(body: Value) -> Result<(String, Value), Problem> {
    const CODE: &str = "invalid_calendar";
    objects_only(&body, &[&["week"], &["week", "*", "*"], &["holidays", "*"]], CODE)?;
    let mut members = object(body, CODE)?;
    let name = name_of(&mut members, CODE)?;
    let calendar = Calendar::from_json(&at_first_version(members, CODE)?).map_err(|e| invalid(CODE, &e))?;
    Ok((name, serde_json::to_value(calendar).expect("a calendar serialises")))
}

/// The policy a body describes: name, calendar, default, definition.
fn policy_of(body: Value) -> Result<(String, CalendarId, bool, Value), Problem> {
    const CODE: &str = "invalid_sla_policy";
    objects_only(&body, &[&["targets"], &["targets", "*"]], CODE)?;
    let mut members = object(body, CODE)?;
    let name = name_of(&mut members, CODE)?;
    let calendar = match members.remove("calendar_id") {
        Some(Value::String(id)) => id.parse::<CalendarId>().map_err(|_| {
            Problem::unprocessable(CODE, "/calendar_id", format!("{id:?} is not a calendar id (cal_...)"))
        })?,
        _ => return Err(Problem::unprocessable(CODE, "/calendar_id", "the calendar whose hours the targets count")),
    };
    let default = match members.remove("default") {
        None => false,
        Some(Value::Bool(default)) => default,
        Some(_) => return Err(Problem::unprocessable(CODE, "/default", "true or false")),
    };
    let policy = SlaPolicy::from_json(&at_first_version(members, CODE)?).map_err(|e| invalid(CODE, &e))?;
    let mut errors = Vec::new();
    for priority in policy.targets.keys() {
        if anchor_domain::Priority::parse(priority).is_none() {
            errors.push(FieldError {
                path: format!("/targets/{priority}"),
                message: "a priority: p1, p2, p3 or p4".into(),
            });
        }
    }
    for status in &policy.pausing_statuses {
        if !PAUSABLE.iter().any(|s| s.as_str() == status) {
            errors.push(FieldError {
                path: "/pausing_statuses".into(),
                message: format!(
                    "{status:?} is not a status an open ticket has: new, triaged, in_progress, waiting_on_client"
                ),
            });
        }
    }
    if let Some(first) = errors.first() {
        return Err(Problem::unprocessable(CODE, &first.path, first.message.clone()).with_errors(errors));
    }
    Ok((name, calendar, default, serde_json::to_value(policy).expect("a policy serialises")))
}

/// The version `If-Match` names, if the header is there: `"3"` (or `W/"3"`).
/// A value that names no version can match nothing.
fn if_match(headers: &HeaderMap) -> Result<Option<i32>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        // An empty header asks for nothing (RFC 9110 wants a value; the
        // lenient reading is that none was sent).
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<i32>().map(Some).map_err(|_| precondition_failed(None))
}

fn precondition_failed(current: Option<i32>) -> Problem {
    let detail = match current {
        Some(current) => format!("the current version is {current}; read it again and apply the change to it"),
        None => "If-Match names no version of this resource".to_owned(),
    };
    Problem::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", detail)
}

fn name_taken(what: &str) -> Problem {
    Problem::new(StatusCode::CONFLICT, "name_taken", format!("another {what} has this name"))
}

/// A unique-name violation becomes 409; anything else passes.
fn unique(e: anchor_store::StoreError, what: &str) -> Problem {
    if e.sqlstate().as_deref() == Some("23505") { name_taken(what) } else { e.into() }
}

fn with_etag(status: StatusCode, version: i32, body: impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

const CALENDAR_EXAMPLE: &str = r#"{"name": "Berlin office", "time_zone": "Europe/Berlin",
  "week": {"monday": [{"start": "09:00", "end": "17:00"}], "tuesday": [{"start": "09:00", "end": "17:00"}],
           "wednesday": [{"start": "09:00", "end": "17:00"}], "thursday": [{"start": "09:00", "end": "17:00"}],
           "friday": [{"start": "09:00", "end": "17:00"}]},
  "holidays": [{"kind": "date", "date": "2026-05-25", "name": "Whit Monday"}]}"#;

/// The workspace's business calendars.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/calendars", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<CalendarView>)))]
pub(crate) async fn list_calendars(
    scope: WorkspaceScope<perm::WorkspaceRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<CalendarView>>, Problem> {
    let calendars = state.db.read(&scope.workspace, |tx| Box::pin(tx.calendars())).await?;
    Ok(Json(Page { items: calendars.into_iter().map(CalendarView::from).collect(), next_cursor: None }))
}

/// Add a business calendar.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/calendars", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = crate::schemas::CalendarDocument,
    responses((status = 201, body = CalendarView),
              (status = 409, description = "Another calendar has this name", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid calendar; `errors` names every bad field", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_calendar(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, Problem> {
    let (name, definition) = calendar_of(body)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let calendar = tx.insert_calendar(&name, &definition).await.map_err(|e| unique(e, "calendar"))?;
    let view = CalendarView::from(calendar);
    changes::record(&mut tx, &scope, "calendar.created", &view.id, json!(view)).await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::CREATED, view.version, view))
}

/// A business calendar at its current version.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/calendars/{id}", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Calendar id")),
    responses((status = 200, body = CalendarView),
              (status = 404, description = "No such calendar", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_calendar(
    scope: WorkspaceScope<perm::WorkspaceRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<CalendarId>,
) -> Result<Response, Problem> {
    let calendar = state.db.read(&scope.workspace, |tx| Box::pin(tx.calendar(id))).await?;
    let view = CalendarView::from(calendar.ok_or_else(|| not_found(&id))?);
    Ok(with_etag(StatusCode::OK, view.version, view))
}

/// Change a business calendar: a new version, which re-plans the SLA clocks
/// of open tickets from now on (closed ones keep theirs).
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/calendars/{id}", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Calendar id"),
           ("If-Match" = Option<String>, Header, description = "The version (`ETag`) the change applies to")),
    request_body = crate::schemas::CalendarDocument,
    responses((status = 200, body = CalendarView),
              (status = 404, description = "No such calendar", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "Another calendar has this name", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 412, description = "The calendar changed since the version named in If-Match", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid calendar", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn update_calendar(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<CalendarId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, Problem> {
    // The body first: a request that is wrong in itself gets that answer,
    // whatever its preconditions (RFC 9110, 13.2.1).
    let (name, definition) = calendar_of(body)?;
    let expected = if_match(&headers)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let view = match tx.update_calendar(id, expected, &name, &definition).await.map_err(|e| unique(e, "calendar"))? {
        Edit::Done(calendar) => CalendarView::from(calendar),
        Edit::Missing => return Err(not_found(&id)),
        Edit::Stale { current } => return Err(precondition_failed(Some(current))),
    };
    let replanned = sla_replanned(anchor_commands::sla::calendar_edited(&mut tx, id).await)?;
    let mut details = json!(view);
    details["tickets_replanned"] = json!(replanned);
    changes::record(&mut tx, &scope, "calendar.updated", &view.id, details).await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, view.version, view))
}

/// Delete a business calendar that no SLA policy uses.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/calendars/{id}", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Calendar id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such calendar", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "SLA policies use it, or tickets' SLA clocks were planned with it", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_calendar(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<CalendarId>,
) -> Result<StatusCode, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    match tx.delete_calendar(id).await? {
        Removal::Deleted => {}
        Removal::Missing => return Err(not_found(&id)),
        Removal::InUse => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "calendar_in_use",
                "SLA policies count their targets in this calendar; move them to another calendar first",
            ));
        }
        Removal::UsedByTickets | Removal::UsedByQueues => return Err(used_by_tickets("calendar")),
    }
    changes::record(&mut tx, &scope, "calendar.deleted", id, json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of a business calendar, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/calendars/{id}/versions", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Calendar id")),
    responses((status = 200, body = Page<VersionView>),
              (status = 404, description = "No such calendar", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn list_calendar_versions(
    scope: WorkspaceScope<perm::WorkspaceRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<CalendarId>,
) -> Result<Json<Page<VersionView>>, Problem> {
    let versions = state.db.read(&scope.workspace, |tx| Box::pin(tx.calendar_versions(id))).await?;
    if versions.is_empty() {
        return Err(not_found(&id));
    }
    Ok(Json(Page { items: versions.into_iter().map(VersionView::from).collect(), next_cursor: None }))
}

/// The workspace's SLA policies (one is the default).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/sla-policies", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<PolicyView>)))]
pub(crate) async fn list_policies(
    scope: WorkspaceScope<perm::WorkspaceRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<PolicyView>>, Problem> {
    let policies = state.db.read(&scope.workspace, |tx| Box::pin(tx.sla_policies())).await?;
    Ok(Json(Page { items: policies.into_iter().map(PolicyView::from).collect(), next_cursor: None }))
}

/// Checks that the calendar a policy names exists (in `tx`'s workspace).
async fn calendar_exists(tx: &mut anchor_store::WorkspaceTx, id: CalendarId) -> Result<(), Problem> {
    match tx.calendar(id).await? {
        Some(_) => Ok(()),
        None => Err(Problem::unprocessable(
            "invalid_sla_policy",
            "/calendar_id",
            format!("no calendar {id} in this workspace"),
        )),
    }
}

/// Add an SLA policy; `default: true` makes it the workspace's default.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/sla-policies", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = crate::schemas::SlaPolicyDocument,
    responses((status = 201, body = PolicyView),
              (status = 409, description = "Another policy has this name", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid policy; `errors` names every bad field", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_policy(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, Problem> {
    let (name, calendar, default, definition) = policy_of(body)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    calendar_exists(&mut tx, calendar).await?;
    let policy =
        tx.insert_sla_policy(&name, calendar, default, &definition).await.map_err(|e| unique(e, "SLA policy"))?;
    let view = PolicyView::from(policy);
    changes::record(&mut tx, &scope, "sla_policy.created", &view.id, json!(view)).await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::CREATED, view.version, view))
}

/// An SLA policy at its current version.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/sla-policies/{id}", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Policy id")),
    responses((status = 200, body = PolicyView),
              (status = 404, description = "No such policy", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_policy(
    scope: WorkspaceScope<perm::WorkspaceRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<SlaPolicyId>,
) -> Result<Response, Problem> {
    let policy = state.db.read(&scope.workspace, |tx| Box::pin(tx.sla_policy(id))).await?;
    let view = PolicyView::from(policy.ok_or_else(|| not_found(&id))?);
    Ok(with_etag(StatusCode::OK, view.version, view))
}

/// Change an SLA policy: a new version, which re-plans the open tickets
/// under it from now on, keeping the time they have used and been paused.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/sla-policies/{id}", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Policy id"),
           ("If-Match" = Option<String>, Header, description = "The version (`ETag`) the change applies to")),
    request_body = crate::schemas::SlaPolicyDocument,
    responses((status = 200, body = PolicyView),
              (status = 404, description = "No such policy", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "Another policy has this name, or the default would be left without one", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 412, description = "The policy changed since the version named in If-Match", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "Invalid policy", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn update_policy(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<SlaPolicyId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, Problem> {
    let (name, calendar, default, definition) = policy_of(body)?;
    let expected = if_match(&headers)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let Some(before) = tx.sla_policy(id).await? else { return Err(not_found(&id)) };
    if before.is_default && !default {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "default_required",
            "this is the workspace's default policy; make another policy the default instead",
        ));
    }
    calendar_exists(&mut tx, calendar).await?;
    let edited = tx
        .update_sla_policy(id, expected, &name, calendar, default, &definition)
        .await
        .map_err(|e| unique(e, "SLA policy"))?;
    let view = match edited {
        Edit::Done(policy) => PolicyView::from(policy),
        Edit::Missing => return Err(not_found(&id)),
        Edit::Stale { current } => return Err(precondition_failed(Some(current))),
    };
    let replanned = sla_replanned(anchor_commands::sla::policy_edited(&mut tx, id).await)?;
    let mut details = json!(view);
    details["tickets_replanned"] = json!(replanned);
    changes::record(&mut tx, &scope, "sla_policy.updated", &view.id, details).await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, view.version, view))
}

/// Delete an SLA policy (not the default).
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/sla-policies/{id}", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Policy id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such policy", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "It is the default policy, queues use it, or tickets' SLA clocks were planned with it", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_policy(
    scope: WorkspaceScope<perm::SettingsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<SlaPolicyId>,
) -> Result<StatusCode, Problem> {
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    match tx.delete_sla_policy(id).await? {
        Removal::Deleted => {}
        Removal::Missing => return Err(not_found(&id)),
        Removal::InUse => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "default_required",
                "this is the workspace's default policy; make another policy the default first",
            ));
        }
        Removal::UsedByTickets => return Err(used_by_tickets("policy")),
        Removal::UsedByQueues => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "policy_in_use",
                "queues, sites or contacts give this policy to their tickets; choose another policy for them first",
            ));
        }
    }
    changes::record(&mut tx, &scope, "sla_policy.deleted", id, json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of an SLA policy, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/sla-policies/{id}/versions", tag = "service policies", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Policy id")),
    responses((status = 200, body = Page<VersionView>),
              (status = 404, description = "No such policy", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn list_policy_versions(
    scope: WorkspaceScope<perm::WorkspaceRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<SlaPolicyId>,
) -> Result<Json<Page<VersionView>>, Problem> {
    let versions = state.db.read(&scope.workspace, |tx| Box::pin(tx.sla_policy_versions(id))).await?;
    if versions.is_empty() {
        return Err(not_found(&id));
    }
    Ok(Json(Page { items: versions.into_iter().map(VersionView::from).collect(), next_cursor: None }))
}

/// The calendar example of the request schema, for the docs.
pub(crate) fn calendar_example() -> Value {
    serde_json::from_str(CALENDAR_EXAMPLE).expect("the example is JSON")
}

/// An edit re-plans the open tickets it touches in the same unit of work; a
/// ticket whose stored clocks cannot be replayed refuses the edit rather
/// than being left on a plan that no longer matches its configuration.
fn sla_replanned(result: Result<usize, anchor_commands::sla::SlaError>) -> Result<usize, Problem> {
    match result {
        Ok(n) => Ok(n),
        Err(anchor_commands::sla::SlaError::Store(e)) => Err(e.into()),
        Err(anchor_commands::sla::SlaError::Broken(why)) => {
            tracing::error!(why, "open tickets could not be re-planned after a service policy edit");
            Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "replan_failed",
                "the open tickets' SLA clocks could not be re-planned with this change; nothing was changed",
            ))
        }
    }
}

/// A calendar or policy that tickets' clock logs name stays: their
/// deadlines are recomputed from it.
fn used_by_tickets(what: &str) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        &format!("{}_in_use", if what == "policy" { "policy" } else { "calendar" }),
        format!(
            "tickets' SLA clocks were planned with this {what}, and their deadlines are recomputed from it; \
             it cannot be deleted (rename it, or stop using it for new tickets)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_become_json_pointers() {
        assert_eq!(pointer("week.monday[1]"), "/week/monday/1");
        assert_eq!(pointer("holidays[0]"), "/holidays/0");
        assert_eq!(pointer("targets.p1.resolution_minutes"), "/targets/p1/resolution_minutes");
        assert_eq!(pointer("time_zone"), "/time_zone");
        assert_eq!(pointer(""), "");
    }

    #[test]
    fn arrays_are_not_read_as_objects() {
        let policy = json!({"name": "x", "calendar_id": "cal_00000000000000000000000001",
                            "targets": {"p4": [null, null]}});
        let refused = policy_of(policy).expect_err("refused");
        assert_eq!(refused.document().errors[0].path, "/targets/p4");
        let mut calendar = calendar_example();
        calendar["week"]["monday"] = json!([["09:00", "17:00"]]);
        let refused = calendar_of(calendar).expect_err("refused");
        assert_eq!(refused.document().errors[0].path, "/week/monday/0");
    }

    #[test]
    fn the_example_is_a_valid_calendar() {
        calendar_of(calendar_example()).expect("valid");
    }
}
