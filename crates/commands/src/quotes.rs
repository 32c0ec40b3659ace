//! Quotes (psa.md "Quote"): priced like an invoice, valid until a day,
//! kept in versions.
//!
//! - `quote.create`: a draft, numbered `Q-000001` onwards.
//! - `quote.revise`: new content; a sent quote becomes a draft of its next
//!   version (what was sent stays as it was).
//! - `quote.send`: freezes the version and its SHA-256 (of its RFC 8785
//!   canonical JSON): what the client sees and decides on.
//! - `quote.accept` / `quote.decline`: the client's decision on the exact
//!   version it names by digest, before the quote expires; who (as they
//!   name themselves, and the actor) and when are recorded, and the
//!   command's signed evidence attests them.
//! - `quote.convert`: an accepted quote becomes a draft invoice with its
//!   lines.
//! - `quote.convert_to_contract`: an accepted quote for a recurring service
//!   becomes a draft fixed-fee contract whose fee per cycle is the quote's
//!   net total, at the one tax rate its lines share.

use anchor_auth::permissions::Permission;
use anchor_domain::{
    BillingCycle, ContractId, ContractKind, ContractName, InvoiceId, InvoiceKind, InvoiceNote, PurchaseOrder, QuoteId,
    money::totals,
};
use anchor_events::{Event, EventSpec};
use anchor_store::{
    WorkspaceTx,
    executions::Actor,
    quotes::{Decider, Quote, QuoteContent, QuoteLine},
    time_entries::iso_date,
};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::Date;

use crate::{
    contracts::{ContractUpdated, TERMS_UNKNOWN, Terms},
    invoices::{InvoiceCreated, LineArgs, TAX_RATE_UNKNOWN, check_lines, profile, rates, write_lines},
    kit::{DomainCommand, Effect, Invalid, RefusalKind, Rejection},
};

pub const QUOTE_NOT_FOUND: RefusalKind =
    RefusalKind { code: "quote_not_found", status: 404, when: "the quote does not exist in this workspace" };
pub const QUOTE_STATE: RefusalKind = RefusalKind {
    code: "quote_transition_not_allowed",
    status: 409,
    when: "the quote's state does not allow it (only a draft or sent quote is revised, a draft sent, a sent one decided, an accepted one converted)",
};
pub const QUOTE_EXPIRED: RefusalKind =
    RefusalKind { code: "quote_expired", status: 409, when: "the quote is past the day it is valid until" };
pub const QUOTE_CHANGED: RefusalKind = RefusalKind {
    code: "quote_version_mismatch",
    status: 409,
    when: "the digest given is not the version sent now (the quote was revised since it was read)",
};
pub const QUOTE_TAXES_DIFFER: RefusalKind = RefusalKind {
    code: "quote_taxes_differ",
    status: 409,
    when: "a contract charges at one tax rate, and the quote's lines are at several (convert it to an invoice instead)",
};
pub const QUOTE_CURRENCY: RefusalKind = RefusalKind {
    code: "quote_currency_changed",
    status: 409,
    when: "the quote's currency is not the one the workspace bills in now",
};
pub const QUOTE_EMPTY: RefusalKind =
    RefusalKind { code: "quote_empty", status: 422, when: "a quote without lines is not sent" };

/// A quote's content, as the commands give it.
macro_rules! quote_content {
    ($(#[$doc:meta])* $ty:ident { $($extra:tt)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $ty {
            $($extra)*
            /// 1 to 200 characters.
            #[schemars(length(min = 1, max = 200))]
            pub title: String,
            /// The last day it may be accepted.
            #[serde(with = "iso_date")]
            #[schemars(with = "String", extend("format" = "date"))]
            pub valid_until: Date,
            /// Up to 500.
            #[serde(default)]
            pub lines: Vec<LineArgs>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub note: Option<InvoiceNote>,
        }

        impl $ty {
            fn check_content(&self) -> Result<(), Invalid> {
                let title = self.title.trim();
                if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
                    return Err(Invalid::at("/title", "1 to 200 characters, no control characters"));
                }
                check_lines(&self.lines)
            }
        }
    };
}

quote_content!(
    /// Create a draft quote in the client's currency.
    QuoteCreate {}
);
quote_content!(
    /// Replace a draft's or sent quote's content (a sent one becomes the
    /// draft of its next version).
    QuoteRevise {
        pub quote_id: QuoteId,
    }
);

/// Send a draft quote: its version is frozen with its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteSend {
    pub quote_id: QuoteId,
}

/// Accept a sent quote: the exact version named by its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteAccept {
    pub quote_id: QuoteId,
    /// The `sha256` of the version decided on, as `GET .../quotes/{id}` shows it.
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: String,
    /// Who accepts, as they name themselves (1 to 200 characters).
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
}

/// Decline a sent quote, with a reason if given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteDecline {
    pub quote_id: QuoteId,
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: String,
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2000))]
    pub reason: Option<String>,
}

/// Turn an accepted quote into a draft invoice with its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteConvert {
    pub quote_id: QuoteId,
}

/// Turn an accepted quote into a draft fixed-fee contract: its name is the
/// quote's title, its fee per cycle the quote's net total, its tax the one
/// rate all the quote's lines are at. The contract is put in force with
/// `contract.activate`, as any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"quote_id": "qte_01jd6m2h9x8k7v5t3r1p0n9q8w",
    "starts_on": "2027-01-01", "billing_cycle": "monthly"}))]
pub struct QuoteToContract {
    pub quote_id: QuoteId,
    #[serde(with = "iso_date")]
    #[schemars(with = "String", extend("format" = "date"))]
    pub starts_on: Date,
    /// None: it runs until cancelled.
    #[serde(default, with = "iso_date::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date"))]
    pub ends_on: Option<Date>,
    /// How often the quoted total is charged: `monthly` (the default), `quarterly` or `yearly`.
    #[serde(default = "monthly")]
    pub billing_cycle: BillingCycle,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_order: Option<PurchaseOrder>,
}

fn monthly() -> BillingCycle {
    BillingCycle::Monthly
}

/// `quote.updated`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QuoteUpdated {
    /// `created`, `revised`, `sent`, `accepted`, `declined` or `converted` (to an invoice or a contract).
    pub change: &'static str,
    /// The quote as `GET .../quotes/{id}` shows it.
    pub quote: Quote,
    pub actor: Actor,
    pub execution_id: anchor_domain::ExecutionId,
}

impl Event for QuoteUpdated {
    const TYPE: &'static str = "quote.updated";
    const WHEN: &'static str =
        "A quote was created, revised, sent, accepted, declined or converted to an invoice or a contract.";
}

/// What a command did to a quote.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QuoteRef {
    pub quote_id: QuoteId,
    pub number: String,
    pub state: String,
    pub version: i32,
    /// The digest of the version sent, once sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The draft invoice, once converted to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<InvoiceId>,
    /// The draft contract, once converted to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<ContractId>,
}

pub(crate) const EVENTS: &[EventSpec] = &[EventSpec::of::<QuoteUpdated>()];

pub(crate) async fn quote(tx: &mut WorkspaceTx, id: QuoteId, lock: bool) -> Result<Quote, Rejection> {
    let found = if lock { tx.lock_quote(id).await? } else { tx.quote(id).await? };
    found.ok_or_else(|| QUOTE_NOT_FOUND.because(format!("no quote {id} in this workspace")).into())
}

fn in_state(q: &Quote, allowed: &[&str], doing: &str) -> Result<(), Rejection> {
    if allowed.contains(&q.state.as_str()) {
        Ok(())
    } else {
        Err(QUOTE_STATE.because(format!("quote {} is {}: it cannot be {doing}", q.number, q.state)).into())
    }
}

async fn changed(effect: &mut Effect<'_>, id: QuoteId, change: &'static str) -> Result<QuoteRef, Rejection> {
    let q = quote(effect.tx, id, false).await?;
    let answer = QuoteRef {
        quote_id: q.id,
        number: q.number.clone(),
        state: q.state.clone(),
        version: q.version,
        sha256: q.sha256.clone(),
        invoice_id: q.invoice_id,
        contract_id: q.contract_id,
    };
    let event = QuoteUpdated { change, quote: q, actor: effect.actor.clone(), execution_id: effect.execution };
    effect.publish(&event).await?;
    Ok(answer)
}

/// Prices `lines` by the workspace's tax rates, as an invoice's would be.
async fn priced(
    tx: &mut WorkspaceTx,
    lines: &[LineArgs],
) -> Result<(Vec<QuoteLine>, [rust_decimal::Decimal; 3]), Rejection> {
    let currency = profile(tx).await?.currency;
    let rates = rates(tx, lines).await?;
    let inputs: Vec<_> = lines.iter().zip(&rates).map(|(l, r)| l.input(r.category, r.rate)).collect();
    let computed = totals(currency, &inputs);
    let rows = lines
        .iter()
        .zip(&computed.lines)
        .map(|(l, net)| QuoteLine {
            description: l.description.as_str().to_owned(),
            quantity: l.quantity,
            unit_code: l.unit_code.as_str().to_owned(),
            unit_price: l.unit_price,
            discount_percent: l.discount_percent.unwrap_or_default(),
            tax: l.tax.clone(),
            net: *net,
        })
        .collect();
    Ok((rows, [computed.net, computed.tax, computed.gross]))
}

impl DomainCommand for QuoteCreate {
    const NAME: &'static str = "quote.create";
    const SKILL: &'static str = "quote_create";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Create a draft quote";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&crate::invoices::PROFILE_MISSING, &TAX_RATE_UNKNOWN];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = QuoteRef;

    fn validate(&self) -> Result<(), Invalid> {
        self.check_content()
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        priced(tx, &self.lines).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<QuoteRef, Rejection> {
        let currency = profile(effect.tx).await?.currency;
        let (lines, [net, tax, gross]) = priced(effect.tx, &self.lines).await?;
        let content = QuoteContent {
            title: self.title.trim(),
            valid_until: self.valid_until,
            note: self.note.as_ref().map(InvoiceNote::as_str),
            lines: &lines,
            net,
            tax,
            gross,
        };
        let id = QuoteId::new();
        effect.tx.insert_quote(id, currency, &content, effect.execution).await?;
        changed(effect, id, "created").await
    }
}

impl DomainCommand for QuoteRevise {
    const NAME: &'static str = "quote.revise";
    const SKILL: &'static str = "quote_revise";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Revise a quote (a sent one becomes its next version's draft)";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&QUOTE_NOT_FOUND, &QUOTE_STATE, &TAX_RATE_UNKNOWN];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = QuoteRef;

    fn validate(&self) -> Result<(), Invalid> {
        self.check_content()
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        in_state(&quote(tx, self.quote_id, false).await?, &["draft", "sent"], "revised")?;
        priced(tx, &self.lines).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<QuoteRef, Rejection> {
        in_state(&quote(effect.tx, self.quote_id, true).await?, &["draft", "sent"], "revised")?;
        let (lines, [net, tax, gross]) = priced(effect.tx, &self.lines).await?;
        let content = QuoteContent {
            title: self.title.trim(),
            valid_until: self.valid_until,
            note: self.note.as_ref().map(InvoiceNote::as_str),
            lines: &lines,
            net,
            tax,
            gross,
        };
        effect.tx.revise_quote(self.quote_id, &content, effect.execution).await?;
        changed(effect, self.quote_id, "revised").await
    }
}

/// What a version says, as the client sees it and its digest covers.
fn version_content(q: &Quote) -> serde_json::Value {
    json!({
        "quote": q.number,
        "version": q.version,
        "title": q.title,
        "valid_until": q.valid_until.to_string(),
        "currency": q.currency.code(),
        "lines": q.lines,
        "net": q.net.to_string(),
        "tax": q.tax.to_string(),
        "gross": q.gross.to_string(),
        "note": q.note,
    })
}

impl DomainCommand for QuoteSend {
    const NAME: &'static str = "quote.send";
    const SKILL: &'static str = "quote_send";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Send a quote: its version and digest are frozen";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&QUOTE_NOT_FOUND, &QUOTE_STATE, &QUOTE_EMPTY];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = QuoteRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let q = quote(tx, self.quote_id, false).await?;
        sendable(&q)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<QuoteRef, Rejection> {
        let q = quote(effect.tx, self.quote_id, true).await?;
        sendable(&q)?;
        let content = version_content(&q);
        let bytes = anchor_crypto::canonical::to_vec(&content).expect("a quote's content has no non-finite numbers");
        let sha256 = sha256_hex(&bytes);
        effect.tx.send_quote(q.id, q.version, &content, &sha256, effect.execution).await?;
        changed(effect, q.id, "sent").await
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn sendable(q: &Quote) -> Result<(), Rejection> {
    in_state(q, &["draft"], "sent")?;
    if q.lines.is_empty() {
        return Err(QUOTE_EMPTY.because(format!("quote {} has no lines", q.number)).into());
    }
    Ok(())
}

/// A decision is on the version sent now, before it expires.
pub(crate) async fn decidable(tx: &mut WorkspaceTx, q: &Quote, sha256: &str) -> Result<(), Rejection> {
    in_state(q, &["sent"], "decided on")?;
    if q.sha256.as_deref() != Some(sha256) {
        return Err(QUOTE_CHANGED
            .because(format!("quote {} version {} has another digest: read it again", q.number, q.version))
            .into());
    }
    let today = tx.clock().await?.date();
    if q.valid_until < today {
        return Err(QUOTE_EXPIRED.because(format!("quote {} was valid until {}", q.number, q.valid_until)).into());
    }
    Ok(())
}

/// Records the client's decision (`accepted` or `declined`) on the version
/// named by `sha256`, by the actor under the name they gave.
pub(crate) async fn decide(
    effect: &mut Effect<'_>,
    id: QuoteId,
    sha256: &str,
    name: &str,
    state: &'static str,
    reason: Option<&str>,
) -> Result<QuoteRef, Rejection> {
    let q = quote(effect.tx, id, true).await?;
    decidable(effect.tx, &q, sha256).await?;
    let by = Decider {
        issuer: effect.actor.issuer.clone(),
        subject: effect.actor.subject.clone(),
        name: name.trim().to_owned(),
    };
    effect.tx.decide_quote(q.id, state, &by, sha256, reason, effect.execution).await?;
    changed(effect, q.id, state).await
}

fn name_of(name: &str) -> Result<(), Invalid> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        Err(Invalid::at("/name", "1 to 200 characters, no control characters"))
    } else {
        Ok(())
    }
}

impl DomainCommand for QuoteAccept {
    const NAME: &'static str = "quote.accept";
    const SKILL: &'static str = "quote_accept";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Accept a sent quote (the exact version named by its digest)";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&QUOTE_NOT_FOUND, &QUOTE_STATE, &QUOTE_CHANGED, &QUOTE_EXPIRED];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = QuoteRef;

    fn validate(&self) -> Result<(), Invalid> {
        name_of(&self.name)
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let q = quote(tx, self.quote_id, false).await?;
        decidable(tx, &q, &self.sha256).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<QuoteRef, Rejection> {
        decide(effect, self.quote_id, &self.sha256, &self.name, "accepted", None).await
    }
}

impl DomainCommand for QuoteDecline {
    const NAME: &'static str = "quote.decline";
    const SKILL: &'static str = "quote_decline";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Decline a sent quote";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&QUOTE_NOT_FOUND, &QUOTE_STATE, &QUOTE_CHANGED, &QUOTE_EXPIRED];
    const EVENTS: &'static [EventSpec] = EVENTS;
    type Output = QuoteRef;

    fn validate(&self) -> Result<(), Invalid> {
        name_of(&self.name)?;
        match &self.reason {
            Some(r) if r.trim().is_empty() || r.chars().count() > 2000 => {
                Err(Invalid::at("/reason", "1 to 2000 characters"))
            }
            _ => Ok(()),
        }
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let q = quote(tx, self.quote_id, false).await?;
        decidable(tx, &q, &self.sha256).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<QuoteRef, Rejection> {
        let reason = self.reason.as_deref().map(str::trim);
        decide(effect, self.quote_id, &self.sha256, &self.name, "declined", reason).await
    }
}

impl DomainCommand for QuoteConvert {
    const NAME: &'static str = "quote.convert";
    const SKILL: &'static str = "quote_convert";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Turn an accepted quote into a draft invoice";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[&QUOTE_NOT_FOUND, &QUOTE_STATE, &TAX_RATE_UNKNOWN];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<QuoteUpdated>(), EventSpec::of::<InvoiceCreated>()];
    type Output = QuoteRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        in_state(&quote(tx, self.quote_id, false).await?, &["accepted"], "converted")
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<QuoteRef, Rejection> {
        let q = quote(effect.tx, self.quote_id, true).await?;
        in_state(&q, &["accepted"], "converted")?;
        let lines: Vec<LineArgs> = q
            .lines
            .iter()
            .map(|l| {
                let unreadable = |e: String| {
                    Rejection::from(QUOTE_STATE.because(format!("a line of {} no longer reads: {e}", q.number)))
                };
                Ok(LineArgs {
                    description: anchor_domain::LineDescription::parse(&l.description)
                        .map_err(|e| unreadable(e.to_string()))?,
                    quantity: l.quantity,
                    unit_code: anchor_domain::UnitCode::parse(&l.unit_code).map_err(|e| unreadable(e.to_string()))?,
                    unit_price: l.unit_price,
                    discount_percent: (!l.discount_percent.is_zero()).then_some(l.discount_percent),
                    tax: l.tax.clone(),
                })
            })
            .collect::<Result<_, Rejection>>()?;
        let id = InvoiceId::new();
        let note = InvoiceNote::parse(&format!("As quoted in {} (version {}).", q.number, q.version)).ok();
        effect
            .tx
            .insert_invoice(id, InvoiceKind::Invoice, q.currency, None, None, note.as_ref(), effect.execution)
            .await?;
        write_lines(effect.tx, id, q.currency, &lines).await?;
        effect.tx.convert_quote(q.id, id, effect.execution).await?;
        crate::invoices::created(effect, id).await?;
        changed(effect, q.id, "converted").await
    }
}

/// The one tax rate all of `q`'s lines are at.
fn one_tax(q: &Quote) -> Result<&str, Rejection> {
    let mut taxes = q.lines.iter().map(|l| l.tax.as_str());
    let first = taxes.next().ok_or_else(|| QUOTE_EMPTY.because(format!("quote {} has no lines", q.number)))?;
    match taxes.find(|t| *t != first) {
        None => Ok(first),
        Some(other) => Err(QUOTE_TAXES_DIFFER
            .because(format!("quote {} has lines at {first:?} and at {other:?}", q.number))
            .into()),
    }
}

/// What the contract made from `q` is named.
fn contract_name(q: &Quote) -> Result<ContractName, Rejection> {
    ContractName::parse(&q.title)
        .map_err(|e| QUOTE_STATE.because(format!("the title of {} does not name a contract: {e}", q.number)).into())
}

/// The contract `q` becomes on `args`, checked as `contract.create` checks
/// a contract, in the workspace's currency.
async fn contract_of(tx: &mut WorkspaceTx, q: &Quote, args: &QuoteToContract) -> Result<(), Rejection> {
    in_state(q, &["accepted"], "converted")?;
    let currency = profile(tx).await?.currency;
    if q.currency != currency {
        return Err(QUOTE_CURRENCY
            .because(format!(
                "quote {} is in {}, and this workspace now bills in {}",
                q.number,
                q.currency.code(),
                currency.code()
            ))
            .into());
    }
    let tax = one_tax(q)?;
    let name = contract_name(q)?;
    let terms = args.terms(&name, tax, q.net, None);
    crate::contracts::check(tx, ContractKind::FixedFee, terms).await
}

impl QuoteToContract {
    fn terms<'a>(
        &'a self,
        name: &'a ContractName,
        tax: &'a str,
        amount: Decimal,
        note: Option<&'a InvoiceNote>,
    ) -> Terms<'a> {
        Terms {
            name,
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            billing_cycle: self.billing_cycle,
            rate_card: None,
            rate_overrides: &[],
            sla_policy_id: None,
            purchase_order: self.purchase_order.as_ref(),
            tax,
            amount: Some(amount),
            unit_source: None,
            unit_asset_type: None,
            block_hours: None,
            overage_rate: None,
            rollover: false,
            note,
        }
    }
}

impl DomainCommand for QuoteToContract {
    const NAME: &'static str = "quote.convert_to_contract";
    const SKILL: &'static str = "quote_convert_to_contract";
    const PERMISSION: Permission = Permission::BillingWrite;
    const SUMMARY: &'static str = "Turn an accepted quote into a draft fixed-fee contract";
    const TAGS: &'static [&'static str] = &["billing"];
    const REFUSALS: &'static [&'static RefusalKind] = &[
        &QUOTE_NOT_FOUND,
        &QUOTE_STATE,
        &QUOTE_TAXES_DIFFER,
        &QUOTE_EMPTY,
        &QUOTE_CURRENCY,
        &crate::invoices::PROFILE_MISSING,
        &TERMS_UNKNOWN,
    ];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<QuoteUpdated>(), EventSpec::of::<ContractUpdated>()];
    type Output = QuoteRef;

    fn validate(&self) -> Result<(), Invalid> {
        if self.ends_on.is_some_and(|e| e < self.starts_on) {
            return Err(Invalid::at("/ends_on", "a contract ends on or after the day it starts"));
        }
        Ok(())
    }

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let q = quote(tx, self.quote_id, false).await?;
        contract_of(tx, &q, self).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<QuoteRef, Rejection> {
        let q = quote(effect.tx, self.quote_id, true).await?;
        contract_of(effect.tx, &q, self).await?;
        let tax = one_tax(&q)?;
        let name = contract_name(&q)?;
        let note = InvoiceNote::parse(&format!("As quoted in {} (version {}).", q.number, q.version)).ok();
        let terms = self.terms(&name, tax, q.net, note.as_ref());
        let id = crate::contracts::insert(effect, ContractKind::FixedFee, terms).await?;
        effect.tx.convert_quote_to_contract(q.id, id, effect.execution).await?;
        changed(effect, q.id, "converted").await
    }
}
