//! The Financials tab's configuration pages: rates (work types, rate cards,
//! staff rate roles) and the catalogue (services and products).
//! Configuration is written directly, not by command (psa.md): each form
//! checks what it is given with the API's own rules
//! ([`anchor_commands::catalogue`]), writes it, and records the change with
//! its signed credential in the same unit of work, as the API's `PUT`s do.

use anchor_auth::permissions::Permission;
use anchor_commands::{
    authorize::Grant,
    catalogue::{self, ConfigError, ConfigInvalid},
};
use anchor_store::{StoreError, WorkspaceTx, changes::NewChange, executions::Actor, sessions::WebSession};
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use maud::Markup;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    WebState,
    admin::fields,
    cmdb::{field, given},
    console::{frame, grant, not_signed_in, unavailable, urlencoding},
    financials_pages as view, pages,
    session::{MaybeSignedIn, SignedIn, same, same_origin},
};

/// A configuration form's POST once its CSRF token and origin hold and the
/// person may bill: its fields, the grant and the session.
struct ConfigPost {
    fields: Vec<(String, String)>,
    grant: Grant,
    session: WebSession,
}

impl ConfigPost {
    async fn read(
        state: &WebState,
        signed_in: Option<SignedIn>,
        headers: &HeaderMap,
        workspace: &str,
        body: &str,
        route: &'static str,
    ) -> Result<Self, Response> {
        let Some(SignedIn { session, .. }) = signed_in else { return Err(not_signed_in()) };
        let fields = fields(body);
        if !same(&session.csrf_token, field(&fields, "csrf_token").unwrap_or_default()) || !same_origin(state, headers)
        {
            return Err(pages::form_expired());
        }
        let grant = grant(state, &session, headers, workspace, Permission::BillingWrite, route).await?;
        Ok(Self { fields, grant, session })
    }

    /// A field, trimmed (empty when absent).
    fn text(&self, name: &str) -> String {
        field(&self.fields, name).unwrap_or_default().trim().to_owned()
    }

    /// Whether a checkbox (or a marker) was sent.
    fn flag(&self, name: &str) -> bool {
        given(&self.fields, name).is_some()
    }

    /// Records `action` on `target` by the person, in `tx`.
    async fn record(
        &self,
        tx: &mut WorkspaceTx,
        action: &str,
        target: &str,
        details: &impl Serialize,
    ) -> Result<(), StoreError> {
        let actor = Actor { issuer: self.session.issuer.clone(), subject: self.session.subject.clone() };
        let details = serde_json::to_value(details).unwrap_or_default();
        let change = NewChange { action, target, actor: &actor, actor_role: Some(self.grant.role), details };
        anchor_evidence::issue::record_change(tx, &change).await.map(drop)
    }

    /// Back to `page` of the Financials tab (post/redirect/get).
    fn done(&self, page: &str, saved: (&str, &str)) -> Response {
        let slug = urlencoding(self.grant.workspace.slug().as_str());
        let to = format!("/w/{slug}/console/financials/{page}?{}={}", saved.0, urlencoding(saved.1));
        Redirect::to(&to).into_response()
    }

    /// The page again, with what was sent and why it was refused.
    fn refused(&self, page: Result<Markup, StoreError>) -> Response {
        match page {
            Ok(markup) => pages::page(StatusCode::UNPROCESSABLE_ENTITY, markup),
            Err(e) => unavailable(e),
        }
    }
}

/// "Add" never replaces: a key in use is changed from its own form.
fn taken(code: &'static str, key: &str, what: &str) -> ConfigError {
    ConfigError::Invalid(ConfigInvalid {
        code,
        path: "/key",
        message: format!("{key} is taken: change that {what} instead (its Change link)"),
    })
}

/// A refusal as the form shows it: the field, then why.
fn sentence(e: &ConfigInvalid) -> String {
    let what = match e.path {
        "/name" => "Name",
        "/hourly_rate" => "Hourly rate",
        "/unit_price" => "Price",
        "/tax" => "Tax",
        "/key" => "Key",
        "/kind" => "Kind",
        "/role" => "Rate role",
        "/rates" => "Rates",
        _ => "Member",
    };
    format!("{what}: {}.", e.message)
}

/// The rates' page: work types (added and changed here), rate cards and
/// staff rate roles.
pub(crate) struct RatesPage {
    pub currency: Option<anchor_domain::Currency>,
    pub work_types: Vec<anchor_store::contracts::WorkTypeDef>,
    pub rate_cards: Vec<anchor_store::contracts::RateCard>,
    pub staff: Vec<anchor_store::contracts::StaffRateRole>,
    /// The workspace's members, whom a rate role may be given.
    pub members: Vec<anchor_store::queues::WorkspaceMember>,
    /// What was wrong with the staff rate role sent.
    pub staff_problem: Option<String>,
    pub taxes: Vec<String>,
    pub may_write: bool,
    /// The form's values: the work type being changed, or what was sent.
    pub form: WorkTypeForm,
    /// What was wrong with the work type sent.
    pub problem: Option<String>,
    /// The rate card form's values.
    pub card: RateCardForm,
    /// What was wrong with the rate card sent.
    pub card_problem: Option<String>,
    /// What was just saved: (`work type` or `rate card`, its key).
    pub saved: Option<(&'static str, String)>,
}

/// The rate card form's values.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateCardForm {
    pub key: String,
    pub name: String,
    /// (work type, role, hourly rate), as text.
    pub rows: Vec<(String, String, String)>,
    pub existing: bool,
}

/// The work type form's values.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkTypeForm {
    pub key: String,
    pub name: String,
    pub hourly_rate: String,
    pub tax: String,
    pub billable: bool,
    pub archived: bool,
    /// Changing an existing work type (its key is fixed).
    pub existing: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RatesQuery {
    /// The work type to change in the form.
    #[serde(default)]
    edit: Option<String>,
    /// The rate card to change in its form.
    #[serde(default)]
    card: Option<String>,
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    saved_card: Option<String>,
    #[serde(default)]
    saved_staff: Option<String>,
}

/// What the rates page is asked to show in its forms.
#[derive(Default)]
struct RatesAsk {
    form: Option<WorkTypeForm>,
    edit: Option<String>,
    problem: Option<String>,
    card: Option<RateCardForm>,
    edit_card: Option<String>,
    card_problem: Option<String>,
    staff_problem: Option<String>,
    saved: Option<(&'static str, String)>,
}

async fn rates_page(state: &WebState, grant: &Grant, ask: RatesAsk) -> Result<RatesPage, StoreError> {
    let RatesAsk { form, edit, problem, card, edit_card, card_problem, staff_problem, saved } = ask;
    let (currency, work_types, rate_cards, staff, members, taxes) = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let currency = tx.billing_profile().await?.map(|p| p.currency);
                let work_types = tx.work_types().await?;
                let rate_cards = tx.rate_cards().await?;
                let staff = tx.staff_rate_roles().await?;
                let members = tx.workspace_members().await?;
                let taxes: Vec<String> =
                    tx.tax_rates().await?.into_iter().filter(|t| !t.archived).map(|t| t.key).collect();
                Ok((currency, work_types, rate_cards, staff, members, taxes))
            })
        })
        .await?;
    let form = form.unwrap_or_else(|| {
        match edit.as_deref().and_then(|key| work_types.iter().find(|w| w.key.as_str() == key)) {
            Some(w) => WorkTypeForm {
                key: w.key.as_str().to_owned(),
                name: w.name.clone(),
                hourly_rate: w.hourly_rate.to_string(),
                tax: w.tax.clone(),
                billable: w.billable,
                archived: w.archived,
                existing: true,
            },
            None => WorkTypeForm { billable: true, ..WorkTypeForm::default() },
        }
    });
    // Only what exists is said to be saved (the address could name anything).
    let saved = saved.filter(|(what, key)| match *what {
        "Work type" => work_types.iter().any(|w| w.key.as_str() == key),
        "Staff rate role of" => staff.iter().any(|m| &m.subject == key),
        _ => rate_cards.iter().any(|c| &c.key == key),
    });
    let card =
        card.unwrap_or_else(|| match edit_card.as_deref().and_then(|key| rate_cards.iter().find(|c| c.key == key)) {
            Some(c) => RateCardForm {
                key: c.key.clone(),
                name: c.name.clone(),
                rows: c
                    .rates
                    .iter()
                    .map(|r| {
                        (r.work_type.as_str().to_owned(), r.role.clone().unwrap_or_default(), r.hourly_rate.to_string())
                    })
                    .collect(),
                existing: true,
            },
            None => RateCardForm::default(),
        });
    Ok(RatesPage {
        currency,
        work_types,
        rate_cards,
        staff,
        taxes,
        may_write: grant.allows(Permission::BillingWrite),
        form,
        problem,
        card,
        card_problem,
        members,
        staff_problem,
        saved,
    })
}

/// `GET /w/{ws}/console/financials/rates`.
pub(crate) async fn rates(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<RatesQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/rates";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    let saved = match (query.saved, query.saved_card, query.saved_staff) {
        (Some(key), _, _) => Some(("Work type", key)),
        (None, Some(key), _) => Some(("Rate card", key)),
        (None, None, Some(subject)) => Some(("Staff rate role of", subject)),
        _ => None,
    };
    let ask = RatesAsk { edit: query.edit, edit_card: query.card, saved, ..RatesAsk::default() };
    match rates_page(&state, &grant, ask).await {
        Ok(page) => pages::page(StatusCode::OK, view::rates(&frame(&session, &grant), &page)),
        Err(e) => unavailable(e),
    }
}

/// Rows the rate card form offers after the rates a card has.
pub(crate) const BLANK_RATE_ROWS: usize = 3;

/// A member as a form's option names them: issuer and subject, each
/// URL-encoded, joined by a space (which neither then holds).
pub(crate) fn member_value(issuer: &str, subject: &str) -> String {
    format!("{} {}", urlencoding(issuer), urlencoding(subject))
}

/// The catalogue's page: services and products with their prices, and the
/// form that adds or changes one.
pub(crate) struct CataloguePage {
    pub currency: Option<anchor_domain::Currency>,
    pub items: Vec<anchor_store::contracts::CatalogueItem>,
    pub taxes: Vec<String>,
    pub may_write: bool,
    pub form: CatalogueForm,
    pub problem: Option<String>,
    pub saved: Option<String>,
}

/// The catalogue form's values.
#[derive(Debug, Clone, Default)]
pub(crate) struct CatalogueForm {
    pub key: String,
    pub kind: String,
    pub name: String,
    pub unit_code: String,
    pub unit_price: String,
    pub tax: String,
    pub archived: bool,
    pub existing: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CatalogueQuery {
    #[serde(default)]
    edit: Option<String>,
    #[serde(default)]
    saved: Option<String>,
}

async fn catalogue_page(
    state: &WebState,
    grant: &Grant,
    form: Option<CatalogueForm>,
    edit: Option<String>,
    problem: Option<String>,
    saved: Option<String>,
) -> Result<CataloguePage, StoreError> {
    let (currency, items, taxes) = state
        .db
        .read(&grant.workspace, |tx| {
            Box::pin(async move {
                let currency = tx.billing_profile().await?.map(|p| p.currency);
                let items = tx.catalogue_items().await?;
                let taxes: Vec<String> =
                    tx.tax_rates().await?.into_iter().filter(|t| !t.archived).map(|t| t.key).collect();
                Ok((currency, items, taxes))
            })
        })
        .await?;
    let form = form.unwrap_or_else(|| match edit.as_deref().and_then(|key| items.iter().find(|i| i.key == key)) {
        Some(i) => CatalogueForm {
            key: i.key.clone(),
            kind: i.kind.clone(),
            name: i.name.clone(),
            unit_code: i.unit_code.as_str().to_owned(),
            unit_price: i.unit_price.to_string(),
            tax: i.tax.clone(),
            archived: i.archived,
            existing: true,
        },
        None => CatalogueForm { kind: "service".to_owned(), unit_code: "MON".to_owned(), ..CatalogueForm::default() },
    });
    let saved = saved.filter(|key| items.iter().any(|i| &i.key == key));
    let may_write = grant.allows(Permission::BillingWrite);
    Ok(CataloguePage { currency, items, taxes, may_write, form, problem, saved })
}

/// `GET /w/{ws}/console/financials/catalogue`.
pub(crate) async fn catalogue(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    Query(query): Query<CatalogueQuery>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return not_signed_in() };
    let route = "GET /w/{ws}/console/financials/catalogue";
    let grant = match grant(&state, &session, &headers, &workspace, Permission::BillingRead, route).await {
        Ok(grant) => grant,
        Err(page) => return page,
    };
    match catalogue_page(&state, &grant, None, query.edit, None, query.saved).await {
        Ok(page) => pages::page(StatusCode::OK, view::catalogue(&frame(&session, &grant), &page)),
        Err(e) => unavailable(e),
    }
}

/// `POST /w/{ws}/console/financials/rates/work-types`: add a work type or
/// change one, with the checks of `PUT .../billing/work-types/{key}`.
pub(crate) async fn save_work_type(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let route = "POST /w/{ws}/console/financials/rates/work-types";
    let post = match ConfigPost::read(&state, signed_in, &headers, &workspace, &body, route).await {
        Ok(post) => post,
        Err(page) => return page,
    };
    let form = WorkTypeForm {
        key: post.text("key"),
        name: post.text("name"),
        hourly_rate: post.text("hourly_rate"),
        tax: post.text("tax"),
        billable: post.flag("billable"),
        archived: post.flag("archived"),
        existing: post.flag("existing"),
    };
    let again = async |problem: String| {
        let ask = RatesAsk { form: Some(form.clone()), problem: Some(problem), ..RatesAsk::default() };
        post.refused(
            rates_page(&state, &post.grant, ask).await.map(|p| view::rates(&frame(&post.session, &post.grant), &p)),
        )
    };
    let Ok(key) = anchor_domain::WorkType::parse(&form.key) else {
        return again("Key: 1 to 60 of a-z, 0-9 and _, starting with a letter (time entries carry it).".to_owned())
            .await;
    };
    let Ok(rate) = form.hourly_rate.parse::<Decimal>() else {
        return again("Hourly rate: a number such as 95.00.".to_owned()).await;
    };
    let saved = async {
        let def = catalogue::work_type(key, &form.name, form.billable, rate, form.tax.clone(), form.archived)?;
        let mut tx = state.db.begin_workspace(&post.grant.workspace).await?;
        catalogue::live_tax(&mut tx, catalogue::INVALID_WORK_TYPE, &def.tax).await?;
        if !form.existing && tx.work_types().await?.iter().any(|w| w.key == def.key) {
            return Err(taken(catalogue::INVALID_WORK_TYPE, def.key.as_str(), "work type"));
        }
        let created = tx.save_work_type(&def).await?;
        let action = if created { "work_type.created" } else { "work_type.updated" };
        post.record(&mut tx, action, def.key.as_str(), &def).await?;
        tx.commit().await?;
        Ok::<_, ConfigError>(def.key)
    }
    .await;
    match saved {
        Ok(key) => post.done("rates", ("saved", key.as_str())),
        Err(ConfigError::Invalid(e)) => again(sentence(&e)).await,
        Err(ConfigError::Store(e)) => unavailable(e),
    }
}

/// `POST /w/{ws}/console/financials/rates/rate-cards`: add a rate card or
/// change one, with the checks of `PUT .../billing/rate-cards/{key}`. A row
/// without a rate is left out.
pub(crate) async fn save_rate_card(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    use anchor_store::contracts::Rate;

    let route = "POST /w/{ws}/console/financials/rates/rate-cards";
    let post = match ConfigPost::read(&state, signed_in, &headers, &workspace, &body, route).await {
        Ok(post) => post,
        Err(page) => return page,
    };
    let count = post.text("rows").parse::<usize>().unwrap_or(0).min(200 + BLANK_RATE_ROWS);
    let rows: Vec<(String, String, String)> = (1..=count)
        .map(|n| {
            (post.text(&format!("work_type_{n}")), post.text(&format!("role_{n}")), post.text(&format!("rate_{n}")))
        })
        .filter(|(_, _, rate)| !rate.is_empty())
        .collect();
    let form = RateCardForm { key: post.text("key"), name: post.text("name"), rows, existing: post.flag("existing") };
    let again = async |problem: String| {
        let ask = RatesAsk { card: Some(form.clone()), card_problem: Some(problem), ..RatesAsk::default() };
        post.refused(
            rates_page(&state, &post.grant, ask).await.map(|p| view::rates(&frame(&post.session, &post.grant), &p)),
        )
    };
    if !catalogue::is_key(&form.key, 60) {
        return again("Key: 1 to 60 of a-z, 0-9 and _, starting with a letter (contracts name it).".to_owned()).await;
    }
    let mut rates = Vec::with_capacity(form.rows.len());
    for (n, (work_type, role, rate)) in form.rows.iter().enumerate() {
        let Ok(work_type) = anchor_domain::WorkType::parse(work_type) else {
            return again(format!("Rate {}: choose its work type.", n + 1)).await;
        };
        let Ok(hourly_rate) = rate.parse::<Decimal>() else {
            return again(format!("Rate {}: the hourly rate is a number such as 95.00.", n + 1)).await;
        };
        rates.push(Rate { work_type, role: (!role.is_empty()).then(|| role.clone()), hourly_rate });
    }
    let saved = async {
        let card = catalogue::rate_card(form.key.clone(), &form.name, rates)?;
        let mut tx = state.db.begin_workspace(&post.grant.workspace).await?;
        if !form.existing && tx.rate_card(&card.key).await?.is_some() {
            return Err(taken(catalogue::INVALID_RATE_CARD, &card.key, "rate card"));
        }
        let created = tx.save_rate_card(&card).await?;
        let action = if created { "rate_card.created" } else { "rate_card.updated" };
        post.record(&mut tx, action, &card.key, &card).await?;
        tx.commit().await?;
        Ok::<_, ConfigError>(card.key)
    }
    .await;
    match saved {
        Ok(key) => post.done("rates", ("saved_card", &key)),
        Err(ConfigError::Invalid(e)) => again(sentence(&e)).await,
        Err(ConfigError::Store(e)) => unavailable(e),
    }
}

/// `POST /w/{ws}/console/financials/rates/staff`: give a member of staff a
/// rate role, with the checks of `PUT .../billing/staff-rates`.
pub(crate) async fn save_staff_rate(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let route = "POST /w/{ws}/console/financials/rates/staff";
    let post = match ConfigPost::read(&state, signed_in, &headers, &workspace, &body, route).await {
        Ok(post) => post,
        Err(page) => return page,
    };
    let again = async |problem: String| {
        let ask = RatesAsk { staff_problem: Some(problem), ..RatesAsk::default() };
        post.refused(
            rates_page(&state, &post.grant, ask).await.map(|p| view::rates(&frame(&post.session, &post.grant), &p)),
        )
    };
    let decode =
        |text: &str| url::form_urlencoded::parse(format!("x={text}").as_bytes()).next().map(|(_, v)| v.into_owned());
    let member = post.text("member");
    let Some((issuer, subject)) = member.split_once(' ').and_then(|(i, s)| Some((decode(i)?, decode(s)?))) else {
        return again("Choose the member of staff.".to_owned()).await;
    };
    let saved = async {
        let staff = catalogue::staff_rate(&issuer, &subject, post.text("role"))?;
        let mut tx = state.db.begin_workspace(&post.grant.workspace).await?;
        // Only a member of this workspace is given a rate role here.
        if !tx.workspace_members().await?.iter().any(|m| m.issuer == staff.issuer && m.subject == staff.subject) {
            return Err(ConfigError::Invalid(ConfigInvalid {
                code: catalogue::INVALID_STAFF_RATE,
                path: "/subject",
                message: "that person is not a member of this workspace".to_owned(),
            }));
        }
        tx.save_staff_rate_role(&staff).await?;
        post.record(&mut tx, "staff_rate.saved", &format!("{}#{}", staff.issuer, staff.subject), &staff).await?;
        tx.commit().await?;
        Ok::<_, ConfigError>(staff.subject)
    }
    .await;
    match saved {
        Ok(subject) => post.done("rates", ("saved_staff", &subject)),
        Err(ConfigError::Invalid(e)) => again(sentence(&e)).await,
        Err(ConfigError::Store(e)) => unavailable(e),
    }
}

/// `POST /w/{ws}/console/financials/catalogue`: add a service or product,
/// or change one, with the checks of `PUT .../billing/catalogue/{key}`.
pub(crate) async fn save_catalogue_item(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    body: String,
) -> Response {
    let route = "POST /w/{ws}/console/financials/catalogue";
    let post = match ConfigPost::read(&state, signed_in, &headers, &workspace, &body, route).await {
        Ok(post) => post,
        Err(page) => return page,
    };
    let form = CatalogueForm {
        key: post.text("key"),
        kind: post.text("kind"),
        name: post.text("name"),
        unit_code: post.text("unit_code"),
        unit_price: post.text("unit_price"),
        tax: post.text("tax"),
        archived: post.flag("archived"),
        existing: post.flag("existing"),
    };
    let again = async |problem: String| {
        let page = catalogue_page(&state, &post.grant, Some(form.clone()), None, Some(problem), None).await;
        post.refused(page.map(|p| view::catalogue(&frame(&post.session, &post.grant), &p)))
    };
    if !catalogue::is_key(&form.key, 60) {
        return again("Key: 1 to 60 of a-z, 0-9 and _, starting with a letter.".to_owned()).await;
    }
    let Ok(unit_code) = anchor_domain::UnitCode::parse(&form.unit_code) else {
        return again("Unit: choose one.".to_owned()).await;
    };
    let Ok(price) = form.unit_price.parse::<Decimal>() else {
        return again("Price: a number such as 12.50.".to_owned()).await;
    };
    let saved = async {
        let item = catalogue::catalogue_item(
            form.key.clone(),
            form.kind.clone(),
            &form.name,
            unit_code,
            price,
            form.tax.clone(),
            form.archived,
        )?;
        let mut tx = state.db.begin_workspace(&post.grant.workspace).await?;
        catalogue::live_tax(&mut tx, catalogue::INVALID_CATALOGUE_ITEM, &item.tax).await?;
        if !form.existing && tx.catalogue_items().await?.iter().any(|i| i.key == item.key) {
            return Err(taken(catalogue::INVALID_CATALOGUE_ITEM, &item.key, "item"));
        }
        let created = tx.save_catalogue_item(&item).await?;
        let action = if created { "catalogue_item.created" } else { "catalogue_item.updated" };
        post.record(&mut tx, action, &item.key, &item).await?;
        tx.commit().await?;
        Ok::<_, ConfigError>(item.key)
    }
    .await;
    match saved {
        Ok(key) => post.done("catalogue", ("saved", &key)),
        Err(ConfigError::Invalid(e)) => again(sentence(&e)).await,
        Err(ConfigError::Store(e)) => unavailable(e),
    }
}
