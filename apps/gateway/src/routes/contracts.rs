//! Contracts and what prices the work: the catalogue (work types, services
//! and products), rate cards and staff rate roles (configuration, written
//! directly by those who may bill, each write recorded with its signed
//! credential); contracts and the billing run (commands answered 202 with an
//! execution), with the run's preview and history.

use anchor_commands::{
    billing::{BillingRunCommand, check_period, plan},
    catalogue::{self, ConfigError, ConfigInvalid},
    contracts::{ContractActivate, ContractCancel, ContractCreate, ContractResume, ContractSuspend, ContractUpdate},
    kit::Rejection,
};
use anchor_domain::{ContractId, UnitCode, WorkType};
use anchor_store::{
    contracts::{BillingRun, CatalogueItem, Contract, Rate, RateCard, StaffRateRole, WorkTypeDef},
    reports::{AgeingRow, RevenueRow, UnbilledTimeRow},
};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use time::Date;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{WorkspaceScope, perm},
    changes,
    json::ApiJson,
    pagination::{ApiQuery, Page},
    path::{ObjectId, not_found},
    problem::{Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    const CONTRACT: &str = "contract";
    ApiRoutes::new()
        .routes(routes!(list_work_types))
        .routes(routes!(put_work_type))
        .routes(routes!(list_catalogue))
        .routes(routes!(put_catalogue_item))
        .routes(routes!(list_rate_cards))
        .routes(routes!(put_rate_card))
        .routes(routes!(list_staff_rates, put_staff_rate))
        .routes(routes!(list_contracts))
        .routes(routes!(get_contract))
        .command::<ContractCreate>("/api/v1/workspaces/{ws}/contracts")
        .change_on::<ContractUpdate>("/api/v1/workspaces/{ws}/contracts/{id}", "contract_id", CONTRACT)
        .command_on::<ContractActivate>("/api/v1/workspaces/{ws}/contracts/{id}/activate", "contract_id", CONTRACT)
        .command_on::<ContractSuspend>("/api/v1/workspaces/{ws}/contracts/{id}/suspend", "contract_id", CONTRACT)
        .command_on::<ContractResume>("/api/v1/workspaces/{ws}/contracts/{id}/resume", "contract_id", CONTRACT)
        .command_on::<ContractCancel>("/api/v1/workspaces/{ws}/contracts/{id}/cancel", "contract_id", CONTRACT)
        .routes(routes!(list_billing_runs))
        .routes(routes!(preview_billing_run))
        .routes(routes!(unbilled_time_report))
        .routes(routes!(revenue_report))
        .routes(routes!(ageing_report))
        .command::<BillingRunCommand>("/api/v1/workspaces/{ws}/billing/runs")
}

/// A key in a path: 1 to `max` of a-z, 0-9 and _, starting with a letter.
fn key(key: &str, max: usize, what: &str) -> Result<(), Problem> {
    if catalogue::is_key(key, max) {
        Ok(())
    } else {
        Err(Problem::not_found(format!("{what} key is 1 to {max} of a-z, 0-9 and _, starting with a letter")))
    }
}

fn invalid(e: ConfigInvalid) -> Problem {
    Problem::unprocessable(e.code, e.path, e.message)
}

fn config_problem(e: ConfigError) -> Problem {
    match e {
        ConfigError::Invalid(e) => invalid(e),
        ConfigError::Store(e) => e.into(),
    }
}

/// Work types, with their default rates (archived last).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/work-types", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<WorkTypeDef>)))]
pub(crate) async fn list_work_types(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<WorkTypeDef>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.work_types())).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// A work type as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkTypeBody {
    #[schema(min_length = 1, max_length = 100, example = "Remote support")]
    name: String,
    /// Whether its time is billable unless said otherwise (default true).
    #[serde(default = "yes")]
    billable: bool,
    /// The default hourly rate: a decimal string, at most two decimals.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "95.00")]
    hourly_rate: Decimal,
    /// The key of the tax rate its time is charged at outside a contract.
    #[schema(example = "standard")]
    tax: String,
    #[serde(default)]
    archived: bool,
}

fn yes() -> bool {
    true
}

/// Add a work type, or change one (time already approved keeps its rate).
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/billing/work-types/{key}", tag = "billing",
    security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"),
           ("key" = String, Path, description = "The code time entries carry (`^[a-z][a-z0-9_]{0,59}$`)")),
    request_body = WorkTypeBody,
    responses((status = 200, description = "Replaced", body = WorkTypeDef),
              (status = 201, description = "Added", body = WorkTypeDef),
              (status = 422, description = "Invalid", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_work_type(
    scope: WorkspaceScope<perm::BillingWrite>,
    State(state): State<AppState>,
    Path((_, key_text)): Path<(String, String)>,
    ApiJson(body): ApiJson<WorkTypeBody>,
) -> Result<Response, Problem> {
    key(&key_text, 60, "a work type")?;
    let key = WorkType::parse(&key_text).map_err(|e| Problem::not_found(e.to_string()))?;
    let def = catalogue::work_type(key, &body.name, body.billable, body.hourly_rate, body.tax, body.archived)
        .map_err(invalid)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    catalogue::live_tax(&mut tx, catalogue::INVALID_WORK_TYPE, &def.tax).await.map_err(config_problem)?;
    let created = tx.save_work_type(&def).await?;
    let action = if created { "work_type.created" } else { "work_type.updated" };
    changes::record(&mut tx, &scope, action, &key_text, json!(def)).await?;
    tx.commit().await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(def)).into_response())
}

/// Services and products with their prices (archived last).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/catalogue", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<CatalogueItem>)))]
pub(crate) async fn list_catalogue(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<CatalogueItem>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.catalogue_items())).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// A catalogue item as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CatalogueItemBody {
    /// `service` or `product`.
    #[schema(example = "service")]
    kind: String,
    #[schema(min_length = 1, max_length = 200, example = "Cloud backup, per seat")]
    name: String,
    /// UN/ECE Recommendation 20 (`C62` one, `MON` month, `HUR` hour).
    #[schema(value_type = String, example = "MON")]
    unit_code: UnitCode,
    /// A decimal string, at most four decimals.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "12.50")]
    unit_price: Decimal,
    #[schema(example = "standard")]
    tax: String,
    #[serde(default)]
    archived: bool,
}

/// Add a service or product, or change one (documents keep their lines).
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/billing/catalogue/{key}", tag = "billing",
    security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"),
           ("key" = String, Path, description = "The item's key (`^[a-z][a-z0-9_]{0,59}$`)")),
    request_body = CatalogueItemBody,
    responses((status = 200, description = "Replaced", body = CatalogueItem),
              (status = 201, description = "Added", body = CatalogueItem),
              (status = 422, description = "Invalid", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_catalogue_item(
    scope: WorkspaceScope<perm::BillingWrite>,
    State(state): State<AppState>,
    Path((_, key_text)): Path<(String, String)>,
    ApiJson(body): ApiJson<CatalogueItemBody>,
) -> Result<Response, Problem> {
    key(&key_text, 60, "a catalogue item")?;
    let item = catalogue::catalogue_item(
        key_text.clone(),
        body.kind,
        &body.name,
        body.unit_code,
        body.unit_price,
        body.tax,
        body.archived,
    )
    .map_err(invalid)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    catalogue::live_tax(&mut tx, catalogue::INVALID_CATALOGUE_ITEM, &item.tax).await.map_err(config_problem)?;
    let created = tx.save_catalogue_item(&item).await?;
    let action = if created { "catalogue_item.created" } else { "catalogue_item.updated" };
    changes::record(&mut tx, &scope, action, &key_text, json!(item)).await?;
    tx.commit().await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(item)).into_response())
}

/// Rate cards: hourly rates by work type and staff rate role.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/rate-cards", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<RateCard>)))]
pub(crate) async fn list_rate_cards(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<RateCard>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.rate_cards())).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// A rate card as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateCardBody {
    #[schema(min_length = 1, max_length = 100, example = "Standard rates 2027")]
    name: String,
    /// At most 200; one per work type and role (a rate without a role is
    /// for every role the card does not name).
    rates: Vec<Rate>,
}

/// Add a rate card, or change one (time already approved keeps its rate).
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/billing/rate-cards/{key}", tag = "billing",
    security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"),
           ("key" = String, Path, description = "The card's key (`^[a-z][a-z0-9_]{0,59}$`)")),
    request_body = RateCardBody,
    responses((status = 200, description = "Replaced", body = RateCard),
              (status = 201, description = "Added", body = RateCard),
              (status = 422, description = "Invalid", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_rate_card(
    scope: WorkspaceScope<perm::BillingWrite>,
    State(state): State<AppState>,
    Path((_, key_text)): Path<(String, String)>,
    ApiJson(body): ApiJson<RateCardBody>,
) -> Result<Response, Problem> {
    key(&key_text, 60, "a rate card")?;
    let card = catalogue::rate_card(key_text.clone(), &body.name, body.rates).map_err(invalid)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let created = tx.save_rate_card(&card).await?;
    let action = if created { "rate_card.created" } else { "rate_card.updated" };
    changes::record(&mut tx, &scope, action, &key_text, json!(card)).await?;
    tx.commit().await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(card)).into_response())
}

/// The rate role of each member of staff who has one.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/staff-rates", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<StaffRateRole>)))]
pub(crate) async fn list_staff_rates(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<StaffRateRole>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.staff_rate_roles())).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// Set the rate role a member of staff's hours are priced by.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/billing/staff-rates", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    request_body = StaffRateRole,
    responses((status = 200, description = "Replaced", body = StaffRateRole),
              (status = 201, description = "Set", body = StaffRateRole),
              (status = 422, description = "Invalid", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_staff_rate(
    scope: WorkspaceScope<perm::BillingWrite>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StaffRateRole>,
) -> Result<Response, Problem> {
    let role = catalogue::staff_rate(&body.issuer, &body.subject, body.role).map_err(invalid)?;
    let mut tx = state.db.begin_workspace(&scope.workspace).await?;
    let created = tx.save_staff_rate_role(&role).await?;
    let target = format!("{}#{}", role.issuer, role.subject);
    changes::record(&mut tx, &scope, "staff_rate.saved", target, json!(role)).await?;
    tx.commit().await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(role)).into_response())
}

/// Contracts: active first, then drafts, suspended and cancelled.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/contracts", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<Contract>)))]
pub(crate) async fn list_contracts(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<Contract>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.contracts())).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// A contract, with its block-hours balance.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/contracts/{id}", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Contract id")),
    responses((status = 200, body = Contract)))]
pub(crate) async fn get_contract(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<ContractId>,
) -> Result<Json<Contract>, Problem> {
    let found = state.db.read(&scope.workspace, |tx| Box::pin(tx.contract(id))).await?;
    found.map(Json).ok_or_else(|| not_found(&id))
}

/// The latest billing runs, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/runs", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<BillingRun>)))]
pub(crate) async fn list_billing_runs(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<BillingRun>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.billing_runs(100))).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PeriodQuery {
    /// The first day of the period (`2026-11-01`).
    #[param(value_type = String, format = Date)]
    period_start: String,
    /// The last day of the period, inclusive.
    #[param(value_type = String, format = Date)]
    period_end: String,
}

fn day(path: &str, text: &str) -> Result<Date, Problem> {
    Date::parse(text, &time::format_description::well_known::Iso8601::DATE)
        .map_err(|_| Problem::unprocessable("invalid_period", path, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// What a billing run for the period would make, without making it: the
/// draft invoices with their lines and totals, the block hours it would
/// buy, draw and expire, and the approved time it would leave unbilled.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/runs/preview", tag = "billing", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), PeriodQuery),
    responses((status = 200, body = crate::schemas::BillingPlanDocument),
              (status = 409, description = "No billing profile yet", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn preview_billing_run(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PeriodQuery>,
) -> Result<Json<anchor_commands::billing::Plan>, Problem> {
    let (from, to) = (day("/period_start", &query.period_start)?, day("/period_end", &query.period_end)?);
    check_period(from, to).map_err(|e| Problem::unprocessable("invalid_period", e.path, e.message))?;
    let planned = state
        .db
        .read(&scope.workspace, |tx| {
            Box::pin(async move {
                match plan(tx, from, to, false).await {
                    Ok(plan) => Ok(Ok(plan)),
                    Err(Rejection::Refused(refusal)) => Ok(Err(refusal)),
                    Err(Rejection::Store(e)) => Err(e),
                }
            })
        })
        .await?;
    planned
        .map(Json)
        .map_err(|r| Problem::new(StatusCode::from_u16(r.status).unwrap_or(StatusCode::CONFLICT), &r.code, r.message))
}

/// Approved billable time not invoiced yet, by contract and work type, with
/// its value at the rates fixed when it was approved.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/reports/unbilled-time", tag = "billing",
    security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<UnbilledTimeRow>)))]
pub(crate) async fn unbilled_time_report(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<UnbilledTimeRow>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.unbilled_time_report())).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// Revenue by contract over a period: finalized invoices less credit notes,
/// net of tax, by issue date.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/reports/revenue", tag = "billing",
    security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), PeriodQuery),
    responses((status = 200, body = Page<RevenueRow>),
              (status = 422, description = "Invalid period", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn revenue_report(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PeriodQuery>,
) -> Result<Json<Page<RevenueRow>>, Problem> {
    let (from, to) = (day("/period_start", &query.period_start)?, day("/period_end", &query.period_end)?);
    if to < from {
        return Err(Problem::unprocessable(
            "invalid_period",
            "/period_end",
            "the period ends on or after the day it starts",
        ));
    }
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.revenue_report(from, to))).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// Open invoice balances by days past due (`not_due`, `1_30`, `31_60`,
/// `61_90`, `over_90`); they add up to the client's `outstanding`.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/billing/reports/ageing", tag = "billing",
    security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = Page<AgeingRow>)))]
pub(crate) async fn ageing_report(
    scope: WorkspaceScope<perm::BillingRead>,
    State(state): State<AppState>,
) -> Result<Json<Page<AgeingRow>>, Problem> {
    let items = state.db.read(&scope.workspace, |tx| Box::pin(tx.ageing_report())).await?;
    Ok(Json(Page { items, next_cursor: None }))
}
