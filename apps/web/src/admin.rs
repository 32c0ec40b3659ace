//! Admin Settings, its first section: service policies. SLA policies and
//! queues are edited with forms (configuration, psa.md: written directly,
//! each write recorded as a change with its signed credential, exactly as
//! the API's routes write them); calendars are listed. Only people who may
//! manage the workspace's settings reach it.

use anchor_auth::permissions::{Permission, grants};
use anchor_commands::authorize::{Asking, Denial, Grant, authorize};
use anchor_domain::{CalendarId, Priority, QueueId, Role, SlaPolicyId, TicketStatus};
use anchor_store::{
    access::SubjectRef,
    changes::NewChange,
    executions::Actor,
    queues::{Queue, QueueInput, WorkspaceMember},
    service_policies::{CalendarRecord, Edit, PolicyRecord},
    sessions::WebSession,
};
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde_json::{Map, Value, json};

use crate::{
    WebState, pages,
    session::{MaybeSignedIn, SignedIn, same, same_origin},
    signin::audit_context,
};

/// Statuses a policy may pause on (a resolved ticket's clocks have stopped).
pub(crate) const PAUSABLE: [TicketStatus; 4] =
    [TicketStatus::New, TicketStatus::Triaged, TicketStatus::InProgress, TicketStatus::WaitingOnClient];

/// Everything the service policies page shows.
pub(crate) struct ServicePolicies {
    pub calendars: Vec<CalendarRecord>,
    pub policies: Vec<PolicyRecord>,
    pub queues: Vec<Queue>,
    pub members: Vec<WorkspaceMember>,
}

async fn settings_grant(
    state: &WebState,
    session: &WebSession,
    headers: &HeaderMap,
    workspace: &str,
    route: &'static str,
) -> Result<Grant, Response> {
    admin_grant(state, session, headers, workspace, Permission::SettingsManage, route).await
}

/// The decision for an Admin settings page needing `permission`: a
/// workspace one is not in does not exist; a role without it is told what
/// it needs and whom to ask.
pub(crate) async fn admin_grant(
    state: &WebState,
    session: &WebSession,
    headers: &HeaderMap,
    workspace: &str,
    permission: Permission,
    route: &'static str,
) -> Result<Grant, Response> {
    let audit = audit_context(headers, &session.issuer, &session.subject);
    let asking =
        Asking { who: SubjectRef { issuer: &session.issuer, subject: &session.subject }, audit: &audit, route };
    match authorize(&state.db, asking, workspace, permission).await {
        Ok(Ok(grant)) => Ok(grant),
        Ok(Err(Denial::NotAMember)) => Err(pages::declined(
            StatusCode::NOT_FOUND,
            "No such workspace",
            "You are not a member of this workspace, or it does not exist.",
        )),
        Ok(Err(Denial::Role { role, permission })) => Err(pages::declined(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!(
                "This part of Admin settings needs {}; your role here is {role}. Ask an MSP admin of this workspace.",
                permission.name()
            ),
        )),
        Err(e) => Err(unavailable(e)),
    }
}

fn unavailable(e: anchor_store::StoreError) -> Response {
    tracing::error!(error = %e, "an Admin settings page could not be read or written");
    pages::declined(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong", "Try again shortly.")
}

async fn read_all(state: &WebState, grant: &Grant) -> Result<ServicePolicies, anchor_store::StoreError> {
    state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                Ok(ServicePolicies {
                    calendars: tx.calendars().await?,
                    policies: tx.sla_policies().await?,
                    queues: tx.queues().await?,
                    members: tx.workspace_members().await?,
                })
            })
        })
        .await
}

/// `GET /w/{ws}/admin`: the first section.
pub(crate) async fn admin(Path(workspace): Path<String>) -> Redirect {
    let slug: String = url::form_urlencoded::byte_serialize(workspace.as_bytes()).collect();
    Redirect::to(&format!("/w/{slug}/admin/service"))
}

/// `GET /w/{ws}/admin/service`: calendars, SLA policies and queues, with
/// forms to add and change policies and queues.
pub(crate) async fn service(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return Redirect::to("/").into_response() };
    let grant = match settings_grant(&state, &session, &headers, &workspace, "GET /w/{ws}/admin/service").await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    match read_all(&state, &grant).await {
        Ok(all) => {
            let saved = query.get("saved").map(String::as_str).filter(|s| ["policy", "queue", "calendar"].contains(s));
            pages::page(StatusCode::OK, pages::service_policies(&admin_frame(&session, &grant), &all, &[], saved))
        }
        Err(e) => unavailable(e),
    }
}

fn admin_frame<'a>(session: &'a WebSession, grant: &'a Grant) -> pages::ConsoleFrame<'a> {
    pages::ConsoleFrame { may_admin: true, ..crate::console::frame(session, grant) }
}

/// A form's fields, in order, repeated names kept.
pub(crate) fn fields(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// A refusal of one form field, for people.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub field: String,
    pub message: String,
}

fn problem(field: &str, message: impl Into<String>) -> Problem {
    Problem { field: field.to_owned(), message: message.into() }
}

/// The form's policy as `anchor_sla::SlaPolicy` JSON, or what is wrong with it.
fn policy_definition(form: &[(String, String)]) -> Result<Value, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut targets = Map::new();
    for priority in Priority::ALL {
        let mut clocks = Map::new();
        for clock in ["first_response", "next_update", "resolution"] {
            let name = format!("{}_{clock}", priority.as_str());
            let raw = field(form, &name).trim();
            if raw.is_empty() {
                continue;
            }
            match raw.parse::<u32>() {
                Ok(minutes) if minutes <= anchor_sla::MAX_TARGET_MINUTES => {
                    clocks.insert(format!("{clock}_minutes"), json!(minutes));
                }
                _ => problems.push(problem(
                    &name,
                    format!(
                        "{} {}: whole minutes, 0 to {}",
                        priority.as_str().to_uppercase(),
                        clock.replace('_', " "),
                        anchor_sla::MAX_TARGET_MINUTES
                    ),
                )),
            }
        }
        if !clocks.is_empty() {
            targets.insert(priority.as_str().to_owned(), Value::Object(clocks));
        }
    }
    if targets.is_empty() && problems.is_empty() {
        problems.push(problem("targets", "Give at least one target (minutes) for some priority."));
    }
    let warning = match field(form, "warning_percent").trim() {
        "" => 80,
        raw => raw.parse::<u8>().ok().filter(|w| (1..=100).contains(w)).unwrap_or_else(|| {
            problems.push(problem("warning_percent", "Warn at: a whole percentage, 1 to 100."));
            80
        }),
    };
    let pausing: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "pausing")
        .map(|(_, v)| v.as_str())
        .filter(|v| PAUSABLE.iter().any(|s| s.as_str() == *v))
        .collect();
    let on_reopen = if field(form, "on_reopen") == "restart" { "restart" } else { "resume" };
    if !problems.is_empty() {
        return Err(problems);
    }
    let definition = json!({"version": 1, "targets": targets, "warning_percent": warning,
                            "pausing_statuses": pausing, "on_reopen": on_reopen});
    match anchor_sla::SlaPolicy::from_json(&definition.to_string()) {
        Ok(_) => Ok(definition),
        Err(errors) => Err(errors.errors().iter().map(|e| problem(&e.field, e.message.clone())).collect()),
    }
}

fn record_change<'a>(
    grant: &'a Grant,
    actor: &'a Actor,
    action: &'a str,
    target: &'a str,
    details: Value,
) -> NewChange<'a> {
    NewChange { action, target, actor, actor_role: Some(grant.role), details }
}

/// `POST /w/{ws}/admin/service/policies`: add a policy, or change one (`id`).
pub(crate) async fn save_policy(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return Redirect::to("/").into_response() };
    let form = fields(&body);
    if !same(&session.csrf_token, field(&form, "csrf_token")) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/admin/service/policies";
    let grant = match settings_grant(&state, &session, &headers, &workspace, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let mut problems = Vec::new();
    let name = field(&form, "name").trim().to_owned();
    if name.is_empty() || name.chars().count() > 120 {
        problems.push(problem("name", "Name: 1 to 120 characters."));
    }
    let calendar = field(&form, "calendar_id").parse::<CalendarId>().ok();
    if calendar.is_none() {
        problems.push(problem("calendar_id", "Choose the calendar its targets count in."));
    }
    let id = match field(&form, "id") {
        "" => None,
        raw => match raw.parse::<SlaPolicyId>() {
            Ok(id) => Some(id),
            Err(_) => return pages::declined(StatusCode::NOT_FOUND, "No such policy", "Reload the page."),
        },
    };
    let definition = policy_definition(&form).map_err(|p| problems.extend(p)).ok();
    let default = field(&form, "default") == "yes";
    let (Some(calendar), Some(definition), true) = (calendar, definition, problems.is_empty()) else {
        return again(&state, &session, &grant, problems).await;
    };
    let actor = Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let saved = async {
        let mut tx = state.db.begin_workspace(&grant.workspace).await?;
        if tx.calendar(calendar).await?.is_none() {
            return Ok(Err(vec![problem("calendar_id", "That calendar no longer exists.")]));
        }
        let record = match id {
            None => match tx.insert_sla_policy(&name, calendar, default, &definition).await {
                Ok(record) => record,
                Err(e) if e.sqlstate().as_deref() == Some("23505") => {
                    return Ok(Err(vec![problem("name", "Another policy has this name.")]));
                }
                Err(e) => return Err(e),
            },
            Some(id) => {
                let Some(before) = tx.sla_policy(id).await? else {
                    return Ok(Err(vec![problem("id", "That policy no longer exists.")]));
                };
                if before.is_default && !default {
                    return Ok(Err(vec![problem(
                        "default",
                        "This is the workspace's default policy; make another policy the default instead.",
                    )]));
                }
                match tx.update_sla_policy(id, None, &name, calendar, default, &definition).await {
                    Ok(Edit::Done(record)) => record,
                    Ok(_) => return Ok(Err(vec![problem("id", "That policy no longer exists.")])),
                    Err(e) if e.sqlstate().as_deref() == Some("23505") => {
                        return Ok(Err(vec![problem("name", "Another policy has this name.")]));
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let replanned = match id {
            Some(id) => match anchor_commands::sla::policy_edited(&mut tx, id).await {
                Ok(n) => n,
                Err(anchor_commands::sla::SlaError::Store(e)) => return Err(e),
                Err(anchor_commands::sla::SlaError::Broken(why)) => {
                    tracing::error!(why, "open tickets could not be re-planned after a policy edit");
                    return Ok(Err(vec![problem(
                        "targets",
                        "Open tickets could not be re-planned; nothing was changed.",
                    )]));
                }
            },
            None => 0,
        };
        let mut details = json!({"id": record.id, "name": record.name, "calendar_id": record.calendar_id,
                                 "version": record.version, "default": record.is_default});
        if let (Some(details), Some(definition)) = (details.as_object_mut(), record.definition.0.as_object()) {
            details.extend(definition.iter().filter(|(k, _)| *k != "version").map(|(k, v)| (k.clone(), v.clone())));
        }
        details["tickets_replanned"] = json!(replanned);
        let action = if id.is_some() { "sla_policy.updated" } else { "sla_policy.created" };
        let target = record.id.to_string();
        anchor_evidence::issue::record_change(&mut tx, &record_change(&grant, &actor, action, &target, details))
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
    .await;
    match saved {
        Ok(Ok(())) => saved_redirect(&grant, "policy"),
        Ok(Err(problems)) => again(&state, &session, &grant, problems).await,
        Err(e) => unavailable(e),
    }
}

/// `POST /w/{ws}/admin/service/queues`: add a queue, or change one (`id`).
pub(crate) async fn save_queue(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return Redirect::to("/").into_response() };
    let form = fields(&body);
    if !same(&session.csrf_token, field(&form, "csrf_token")) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/admin/service/queues";
    let grant = match settings_grant(&state, &session, &headers, &workspace, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let mut problems = Vec::new();
    let name = field(&form, "name").trim().to_owned();
    if name.is_empty() || name.chars().count() > 120 || name.chars().any(char::is_control) {
        problems.push(problem("name", "Name: 1 to 120 characters on one line."));
    }
    let description = field(&form, "description").trim().to_owned();
    if description.chars().count() > 2000 {
        problems.push(problem("description", "Description: at most 2,000 characters."));
    }
    let policy = match field(&form, "sla_policy_id") {
        "" => None,
        raw => raw.parse::<SlaPolicyId>().ok().or_else(|| {
            problems.push(problem("sla_policy_id", "Choose a policy from the list."));
            None
        }),
    };
    let id = match field(&form, "id") {
        "" => None,
        raw => match raw.parse::<QueueId>() {
            Ok(id) => Some(id),
            Err(_) => return pages::declined(StatusCode::NOT_FOUND, "No such queue", "Reload the page."),
        },
    };
    // Members are `issuer subject` pairs of the workspace's staff.
    let members: Vec<Actor> = form
        .iter()
        .filter(|(k, _)| k == "member")
        .filter_map(|(_, v)| v.split_once(' '))
        .map(|(issuer, subject)| Actor { issuer: issuer.to_owned(), subject: subject.to_owned() })
        .collect();
    if !problems.is_empty() {
        return again(&state, &session, &grant, problems).await;
    }
    let actor = Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let saved = async {
        let mut tx = state.db.begin_workspace(&grant.workspace).await?;
        if let Some(policy) = policy
            && tx.sla_policy(policy).await?.is_none()
        {
            return Ok(Err(vec![problem("sla_policy_id", "That policy no longer exists.")]));
        }
        for member in &members {
            let role = tx.member_role(member).await?.and_then(|r| Role::parse(&r).ok());
            if !role.is_some_and(|r| grants(r, Permission::TicketsWrite)) {
                return Ok(Err(vec![problem(
                    "members",
                    format!("{} is not staff of this workspace who may work tickets.", member.subject),
                )]));
            }
        }
        let input = QueueInput { name: &name, description: &description, sla_policy_id: policy, members: &members };
        let written = match id {
            None => tx.insert_queue(&input).await.map(Some),
            Some(id) => tx.update_queue(id, &input).await,
        };
        let queue = match written {
            Ok(Some(queue)) => queue,
            Ok(None) => return Ok(Err(vec![problem("id", "That queue no longer exists.")])),
            Err(e) if e.sqlstate().as_deref() == Some("23505") => {
                return Ok(Err(vec![problem("name", "Another queue has this name.")]));
            }
            Err(e) => return Err(e),
        };
        let action = if id.is_some() { "queue.updated" } else { "queue.created" };
        let target = queue.id.to_string();
        anchor_evidence::issue::record_change(&mut tx, &record_change(&grant, &actor, action, &target, json!(queue)))
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
    .await;
    match saved {
        Ok(Ok(())) => saved_redirect(&grant, "queue"),
        Ok(Err(problems)) => again(&state, &session, &grant, problems).await,
        Err(e) => unavailable(e),
    }
}

fn saved_redirect(grant: &Grant, what: &str) -> Response {
    Redirect::to(&format!("/w/{}/admin/service?saved={what}", grant.workspace.slug().as_str())).into_response()
}

/// The page again, with what was wrong (422).
async fn again(state: &WebState, session: &WebSession, grant: &Grant, problems: Vec<Problem>) -> Response {
    match read_all(state, grant).await {
        Ok(all) => pages::page(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::service_policies(&admin_frame(session, grant), &all, &problems, None),
        ),
        Err(e) => unavailable(e),
    }
}

const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// A weekday's windows as people write them: `09:00-12:00, 13:00-17:00`.
fn windows(day: &str, raw: &str) -> Result<Vec<Value>, Problem> {
    let mut out = Vec::new();
    for part in raw.split([',', ';']).map(str::trim).filter(|p| !p.is_empty()) {
        let Some((start, end)) = part.split_once('-') else {
            return Err(problem(day, format!("{}: write hours as 09:00-17:00, not {part:?}.", capitalised(day))));
        };
        out.push(json!({"start": start.trim(), "end": end.trim()}));
    }
    Ok(out)
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().collect::<String>() + chars.as_str())
}

/// Holidays, one a line: `2026-05-25 Whit Monday`, `2026-12-24..2027-01-01
/// Winter closure`, `every 12-25 Christmas Day`.
fn holidays(raw: &str) -> Result<Vec<Value>, Problem> {
    let mut out = Vec::new();
    for (n, line) in raw.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty()) {
        let (when, name) = line.split_once(' ').map_or((line, ""), |(w, rest)| (w, rest.trim()));
        let (when, name) = if when == "every" {
            name.split_once(' ').map_or((name, ""), |(w, rest)| (w, rest.trim()))
        } else {
            (when, name)
        };
        let name = (!name.is_empty()).then(|| name.to_owned());
        let bad = || {
            problem(
                "holidays",
                format!(
                    "Holiday line {}: write 2026-05-25 Name, 2026-12-24..2027-01-01 Name or every 12-25 Name, not {line:?}.",
                    n + 1
                ),
            )
        };
        let holiday = if line.starts_with("every ") {
            let (month, day) = when.split_once('-').ok_or_else(bad)?;
            json!({"kind": "yearly", "month": month.parse::<u8>().map_err(|_| bad())?,
                   "day": day.parse::<u8>().map_err(|_| bad())?, "name": name})
        } else if let Some((from, to)) = when.split_once("..") {
            json!({"kind": "range", "from": from, "to": to, "name": name})
        } else {
            json!({"kind": "date", "date": when, "name": name})
        };
        out.push(holiday);
    }
    Ok(out)
}

/// The form's calendar as `anchor_sla::Calendar` JSON, or what is wrong with it.
fn calendar_definition(form: &[(String, String)]) -> Result<Value, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut week = Map::new();
    for day in WEEKDAYS {
        match windows(day, field(form, day)) {
            Ok(list) if !list.is_empty() => {
                week.insert(day.to_owned(), Value::Array(list));
            }
            Ok(_) => {}
            Err(p) => problems.push(p),
        }
    }
    let holidays = holidays(field(form, "holidays")).map_err(|p| problems.push(p)).unwrap_or_default();
    let zone = field(form, "time_zone").trim();
    if !problems.is_empty() {
        return Err(problems);
    }
    let definition = json!({"version": 1, "time_zone": zone, "week": week, "holidays": holidays});
    let readable = |field: &str, message: &str| {
        let place = field.split(['.', '[']).nth(1).filter(|_| field.starts_with("week.")).map(capitalised);
        match place {
            Some(day) => problem(field, format!("{day}: {message}")),
            None if field.starts_with("holidays") => problem(field, format!("Holidays: {message}")),
            None if field == "time_zone" => problem(field, format!("Time zone: {message}")),
            None => problem(field, capitalised(message)),
        }
    };
    let calendar = anchor_sla::Calendar::from_json(&definition.to_string())
        .map_err(|errors| errors.errors().iter().map(|e| readable(&e.field, &e.message)).collect::<Vec<_>>())?;
    anchor_sla::BusinessCalendar::new(&calendar)
        .map_err(|errors| errors.errors().iter().map(|e| readable(&e.field, &e.message)).collect::<Vec<_>>())?;
    Ok(definition)
}

/// `POST /w/{ws}/admin/service/calendars`: add a calendar, or change one (`id`);
/// a change re-plans the open tickets that count in it.
pub(crate) async fn save_calendar(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return Redirect::to("/").into_response() };
    let form = fields(&body);
    if !same(&session.csrf_token, field(&form, "csrf_token")) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let route = "POST /w/{ws}/admin/service/calendars";
    let grant = match settings_grant(&state, &session, &headers, &workspace, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let mut problems = Vec::new();
    let name = field(&form, "name").trim().to_owned();
    if name.is_empty() || name.chars().count() > 120 {
        problems.push(problem("name", "Name: 1 to 120 characters."));
    }
    let id = match field(&form, "id") {
        "" => None,
        raw => match raw.parse::<CalendarId>() {
            Ok(id) => Some(id),
            Err(_) => return pages::declined(StatusCode::NOT_FOUND, "No such calendar", "Reload the page."),
        },
    };
    let definition = calendar_definition(&form).map_err(|p| problems.extend(p)).ok();
    let (Some(definition), true) = (definition, problems.is_empty()) else {
        return again(&state, &session, &grant, problems).await;
    };
    let actor = Actor { issuer: session.issuer.clone(), subject: session.subject.clone() };
    let saved = async {
        let mut tx = state.db.begin_workspace(&grant.workspace).await?;
        let written = match id {
            None => tx.insert_calendar(&name, &definition).await.map(Some),
            Some(id) => tx.update_calendar(id, None, &name, &definition).await.map(|e| match e {
                Edit::Done(record) => Some(record),
                _ => None,
            }),
        };
        let record = match written {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(Err(vec![problem("id", "That calendar no longer exists.")])),
            Err(e) if e.sqlstate().as_deref() == Some("23505") => {
                return Ok(Err(vec![problem("name", "Another calendar has this name.")]));
            }
            Err(e) => return Err(e),
        };
        let replanned = match id {
            Some(id) => match anchor_commands::sla::calendar_edited(&mut tx, id).await {
                Ok(n) => n,
                Err(anchor_commands::sla::SlaError::Store(e)) => return Err(e),
                Err(anchor_commands::sla::SlaError::Broken(why)) => {
                    tracing::error!(why, "open tickets could not be re-planned after a calendar edit");
                    return Ok(Err(vec![problem(
                        "week",
                        "Open tickets could not be re-planned; nothing was changed.",
                    )]));
                }
            },
            None => 0,
        };
        let mut details = json!({"id": record.id, "name": record.name, "version": record.version});
        if let (Some(details), Some(definition)) = (details.as_object_mut(), record.definition.0.as_object()) {
            details.extend(definition.iter().filter(|(k, _)| *k != "version").map(|(k, v)| (k.clone(), v.clone())));
        }
        details["tickets_replanned"] = json!(replanned);
        let action = if id.is_some() { "calendar.updated" } else { "calendar.created" };
        let target = record.id.to_string();
        anchor_evidence::issue::record_change(&mut tx, &record_change(&grant, &actor, action, &target, details))
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
    .await;
    match saved {
        Ok(Ok(())) => saved_redirect(&grant, "calendar"),
        Ok(Err(problems)) => again(&state, &session, &grant, problems).await,
        Err(e) => unavailable(e),
    }
}

/// A calendar's week and holidays as the form shows them.
pub(crate) fn calendar_fields(definition: &Value) -> (Vec<(&'static str, String)>, String) {
    let week = WEEKDAYS
        .iter()
        .map(|day| {
            let text = definition["week"][*day]
                .as_array()
                .map(|windows| {
                    windows
                        .iter()
                        .map(|w| format!("{}-{}", w["start"].as_str().unwrap_or(""), w["end"].as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            (*day, text)
        })
        .collect();
    let holidays = definition["holidays"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|h| {
                    let name = h["name"].as_str().map(|n| format!(" {n}")).unwrap_or_default();
                    match h["kind"].as_str() {
                        Some("range") => {
                            format!("{}..{}{name}", h["from"].as_str().unwrap_or(""), h["to"].as_str().unwrap_or(""))
                        }
                        Some("yearly") => format!(
                            "every {:02}-{:02}{name}",
                            h["month"].as_u64().unwrap_or(0),
                            h["day"].as_u64().unwrap_or(0)
                        ),
                        _ => format!("{}{name}", h["date"].as_str().unwrap_or("")),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    (week, holidays)
}
