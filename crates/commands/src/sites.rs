//! Sites and contacts: the client's places and people. Created, changed
//! and archived by commands; archived rows stay for the history that points
//! at them.

use anchor_auth::permissions::Permission;
use anchor_domain::{
    Address, ContactId, Email, ExecutionId, Name, Phone, SiteId, SlaPolicyId, TimeZoneName, vocabulary::nullable,
};
use anchor_events::{Event, EventSpec};
use anchor_store::{
    StoreError, WorkspaceTx,
    executions::Actor,
    sites::{Contact, ContactFields, Site, SiteFields},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kit::{DomainCommand, Effect, RefusalKind, Rejection};

pub const SITE_NOT_FOUND: RefusalKind =
    RefusalKind { code: "site_not_found", status: 404, when: "the site does not exist in this workspace" };
pub const POLICY_NOT_FOUND: RefusalKind =
    RefusalKind { code: "sla_policy_not_found", status: 404, when: "the SLA policy does not exist in this workspace" };
pub const SITE_ARCHIVED: RefusalKind = RefusalKind { code: "site_archived", status: 409, when: "the site is archived" };
pub const SITE_NAME_TAKEN: RefusalKind =
    RefusalKind { code: "site_name_taken", status: 409, when: "another live site has this name" };
pub const CONTACT_NOT_FOUND: RefusalKind =
    RefusalKind { code: "contact_not_found", status: 404, when: "the contact does not exist in this workspace" };
pub const CONTACT_ARCHIVED: RefusalKind =
    RefusalKind { code: "contact_archived", status: 409, when: "the contact is archived" };
pub const EMAIL_TAKEN: RefusalKind =
    RefusalKind { code: "contact_email_taken", status: 409, when: "another live contact has this email address" };
pub const EMAIL_REQUIRED: RefusalKind = RefusalKind {
    code: "contact_email_required",
    status: 422,
    when: "portal access and invoices need an email address",
};
/// Changing a contact that has no email address into one who signs in to
/// the portal or receives invoices conflicts with how it is now.
pub const NO_EMAIL: RefusalKind = RefusalKind {
    code: "contact_has_no_email",
    status: 409,
    when: "portal access or invoices for a contact without an email address (give one with the change)",
};

/// Add a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"name": "Leeds office", "time_zone": "Europe/London",
    "address": {"line1": "1 Park Row", "city": "Leeds", "postal_code": "LS1 5AB", "country": "GB"}}))]
pub struct SiteCreate {
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    pub time_zone: TimeZoneName,
    /// The SLA policy of tickets at this site (unless their contact brings one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_policy_id: Option<SlaPolicyId>,
}

/// Change a site: only the members given change; `address: null` removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"site_id": "sit_01jd6m2h9x8k7v5t3r1p0n9q8w", "name": "Leeds head office"}))]
pub struct SiteUpdate {
    pub site_id: SiteId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub address: Option<Option<Address>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<TimeZoneName>,
    /// `null` takes the site's policy away.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub sla_policy_id: Option<Option<SlaPolicyId>>,
}

/// Archive a site: kept for history, no longer offered for new work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"site_id": "sit_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct SiteArchive {
    pub site_id: SiteId,
}

/// Add a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("allOf" = [
    {"if": {"properties": {"portal_access": {"const": true}}, "required": ["portal_access"]}, "then": {"required": ["email"], "properties": {"email": {"type": "string"}}}},
    {"if": {"properties": {"receives_invoices": {"const": true}}, "required": ["receives_invoices"]},
     "then": {"required": ["email"], "properties": {"email": {"type": "string"}}}}
]))]
#[schemars(example = serde_json::json!({"name": "Ann Smith", "email": "ann@example.com", "phone": "+44 20 7946 0958",
    "portal_access": true, "receives_invoices": false}))]
pub struct ContactCreate {
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
    /// Where they usually work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
    /// May sign in to the client portal (needs an email address).
    #[serde(default)]
    pub portal_access: bool,
    /// Receives the client's invoices (needs an email address).
    #[serde(default)]
    pub receives_invoices: bool,
    /// The SLA policy of this person's tickets (a VIP's premium terms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_policy_id: Option<SlaPolicyId>,
}

/// Change a contact: only the members given change; `null` clears an
/// email address, phone number or site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"contact_id": "con_01jd6m2h9x8k7v5t3r1p0n9q8w", "receives_invoices": true}))]
pub struct ContactUpdate {
    pub contact_id: ContactId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub email: Option<Option<Email>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub phone: Option<Option<Phone>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub site_id: Option<Option<SiteId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_access: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receives_invoices: Option<bool>,
    /// `null` takes the contact's policy away.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub sla_policy_id: Option<Option<SlaPolicyId>>,
}

/// Archive a contact: kept for history; no portal access, no invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"contact_id": "con_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct ContactArchive {
    pub contact_id: ContactId,
}

macro_rules! changed {
    ($($ty:ident { $field:ident: $row:ty, $doc:literal } = $name:literal, $when:literal;)+) => {$(
        #[doc = concat!("`", $name, "`.")]
        #[derive(Debug, Serialize, JsonSchema)]
        pub struct $ty {
            #[doc = $doc]
            pub $field: $row,
            pub execution_id: ExecutionId,
        }

        impl Event for $ty {
            const TYPE: &'static str = $name;
            const WHEN: &'static str = $when;
        }
    )+};
}

changed!(
    SiteCreated { site: Site, "The site as `GET .../sites/{id}` shows it" } = "site.created", "A site was added.";
    SiteUpdated { site: Site, "The site as `GET .../sites/{id}` shows it after the change" } = "site.updated",
        "A site's name, address or time zone changed.";
    SiteArchived { site: Site, "The site as `GET .../sites/{id}` shows it, with `archived_at`" } = "site.archived",
        "A site was archived.";
    ContactCreated { contact: Contact, "The contact as `GET .../contacts/{id}` shows it" } = "contact.created",
        "A contact was added.";
    ContactUpdated { contact: Contact, "The contact as `GET .../contacts/{id}` shows it after the change" } =
        "contact.updated", "A contact's details, site, portal access or billing role changed.";
    ContactArchived { contact: Contact, "The contact as `GET .../contacts/{id}` shows it, with `archived_at`" } =
        "contact.archived", "A contact was archived.";
);

/// What a site command did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SiteRef {
    pub site_id: SiteId,
}

/// What a contact command did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContactRef {
    pub contact_id: ContactId,
}

/// The site, if it is live; locked when `lock`.
async fn live_site(tx: &mut WorkspaceTx, id: SiteId, lock: bool) -> Result<Site, Rejection> {
    let site = if lock { tx.lock_site(id).await? } else { tx.site(id).await? };
    let site = site.ok_or_else(|| SITE_NOT_FOUND.because(format!("no site {id} in this workspace")))?;
    match site.archived_at {
        Some(_) => Err(SITE_ARCHIVED.because(format!("site {id} ({}) is archived", site.name)).into()),
        None => Ok(site),
    }
}

/// The contact, if it is live; locked when `lock`.
pub(crate) async fn live_contact(tx: &mut WorkspaceTx, id: ContactId, lock: bool) -> Result<Contact, Rejection> {
    let contact = if lock { tx.lock_contact(id).await? } else { tx.contact(id).await? };
    let contact = contact.ok_or_else(|| CONTACT_NOT_FOUND.because(format!("no contact {id} in this workspace")))?;
    match contact.archived_at {
        Some(_) => Err(CONTACT_ARCHIVED.because(format!("contact {id} ({}) is archived", contact.name)).into()),
        None => Ok(contact),
    }
}

pub(crate) async fn check_site(tx: &mut WorkspaceTx, id: Option<SiteId>) -> Result<(), Rejection> {
    match id {
        Some(id) => live_site(tx, id, false).await.map(drop),
        None => Ok(()),
    }
}

async fn check_policy(tx: &mut WorkspaceTx, id: Option<SlaPolicyId>) -> Result<(), Rejection> {
    match id {
        Some(id) if tx.sla_policy(id).await?.is_none() => {
            Err(POLICY_NOT_FOUND.because(format!("no SLA policy {id} in this workspace")).into())
        }
        _ => Ok(()),
    }
}

async fn check_site_name(tx: &mut WorkspaceTx, name: &Name, except: Option<SiteId>) -> Result<(), Rejection> {
    match tx.site_named(name, except).await? {
        Some(other) => Err(SITE_NAME_TAKEN.because(format!("site {other} is already called {name:?}")).into()),
        None => Ok(()),
    }
}

/// A contact as it would be: the email rules hold, the site is live.
async fn check_contact(
    tx: &mut WorkspaceTx,
    fields: &ContactFields<'_>,
    except: Option<ContactId>,
) -> Result<(), Rejection> {
    if fields.email.is_none() && (fields.portal_access || fields.receives_invoices) {
        let refusal = if except.is_some() { &NO_EMAIL } else { &EMAIL_REQUIRED };
        return Err(refusal.because("portal access and invoices need the contact's email address").into());
    }
    if let Some(email) = fields.email
        && let Some(other) = tx.contact_with_email(email, except).await?
    {
        return Err(EMAIL_TAKEN.because(format!("contact {other} already has the email address {email}")).into());
    }
    check_policy(tx, fields.sla_policy_id).await?;
    check_site(tx, fields.site_id).await
}

/// A racing twin got the name or email first: the same refusal as if it had
/// been seen before.
fn taken(e: StoreError, refusal: &'static RefusalKind) -> Rejection {
    if e.sqlstate().as_deref() == Some("23505") {
        refusal.because("another live row took it a moment ago").into()
    } else {
        e.into()
    }
}

/// The site as it would be after the change.
type SiteState = (Name, Option<Address>, TimeZoneName, Option<SlaPolicyId>);

fn site_fields(site: &SiteUpdate, now: &Site) -> Result<SiteState, Rejection> {
    Ok((
        site.name.clone().unwrap_or_else(|| now.name.clone()),
        site.address.clone().unwrap_or_else(|| now.address.clone()),
        site.time_zone.clone().unwrap_or_else(|| now.time_zone.clone()),
        site.sla_policy_id.unwrap_or(now.sla_policy_id),
    ))
}

impl DomainCommand for SiteCreate {
    const NAME: &'static str = "site.create";
    const SKILL: &'static str = "site_create";
    const PERMISSION: Permission = Permission::ClientsWrite;
    const SUMMARY: &'static str = "Add a site";
    const REFUSALS: &'static [&'static RefusalKind] = &[&SITE_NAME_TAKEN, &POLICY_NOT_FOUND];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<SiteCreated>()];
    type Output = SiteRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        check_policy(tx, self.sla_policy_id).await?;
        check_site_name(tx, &self.name, None).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<Self::Output, Rejection> {
        self.check(effect.tx, effect.actor).await?;
        let fields = SiteFields {
            name: &self.name,
            address: self.address.as_ref(),
            time_zone: &self.time_zone,
            sla_policy_id: self.sla_policy_id,
        };
        let site = effect.tx.save_site(SiteId::new(), &fields).await.map_err(|e| taken(e, &SITE_NAME_TAKEN))?;
        let site_id = site.id;
        effect.publish(&SiteCreated { site, execution_id: effect.execution }).await?;
        Ok(SiteRef { site_id })
    }
}

impl DomainCommand for SiteUpdate {
    const NAME: &'static str = "site.update";
    const SKILL: &'static str = "site_update";
    const PERMISSION: Permission = Permission::ClientsWrite;
    const SUMMARY: &'static str = "Change a site";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&SITE_NOT_FOUND, &SITE_ARCHIVED, &SITE_NAME_TAKEN, &POLICY_NOT_FOUND];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<SiteUpdated>()];
    type Output = SiteRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let now = live_site(tx, self.site_id, false).await?;
        let (name, _, _, policy) = site_fields(self, &now)?;
        check_policy(tx, policy).await?;
        check_site_name(tx, &name, Some(self.site_id)).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<Self::Output, Rejection> {
        let now = live_site(effect.tx, self.site_id, true).await?;
        let (name, address, time_zone, policy) = site_fields(self, &now)?;
        if (&name, &address, &time_zone, policy) == (&now.name, &now.address, &now.time_zone, now.sla_policy_id) {
            // A change that changes nothing succeeds, and tells nobody.
            return Ok(SiteRef { site_id: self.site_id });
        }
        check_policy(effect.tx, policy).await?;
        check_site_name(effect.tx, &name, Some(self.site_id)).await?;
        let fields =
            SiteFields { name: &name, address: address.as_ref(), time_zone: &time_zone, sla_policy_id: policy };
        let site = effect.tx.save_site(self.site_id, &fields).await.map_err(|e| taken(e, &SITE_NAME_TAKEN))?;
        effect.publish(&SiteUpdated { site, execution_id: effect.execution }).await?;
        Ok(SiteRef { site_id: self.site_id })
    }
}

impl DomainCommand for SiteArchive {
    const NAME: &'static str = "site.archive";
    const SKILL: &'static str = "site_archive";
    const PERMISSION: Permission = Permission::ClientsWrite;
    const SUMMARY: &'static str = "Archive a site";
    const REFUSALS: &'static [&'static RefusalKind] = &[&SITE_NOT_FOUND, &SITE_ARCHIVED];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<SiteArchived>()];
    type Output = SiteRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        live_site(tx, self.site_id, false).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<Self::Output, Rejection> {
        live_site(effect.tx, self.site_id, true).await?;
        let site = effect.tx.archive_site(self.site_id).await?;
        effect.publish(&SiteArchived { site, execution_id: effect.execution }).await?;
        Ok(SiteRef { site_id: self.site_id })
    }
}

impl ContactCreate {
    fn fields(&self) -> ContactFields<'_> {
        ContactFields {
            name: &self.name,
            email: self.email.as_ref(),
            phone: self.phone.as_ref(),
            site_id: self.site_id,
            portal_access: self.portal_access,
            receives_invoices: self.receives_invoices,
            sla_policy_id: self.sla_policy_id,
        }
    }
}

impl DomainCommand for ContactCreate {
    const NAME: &'static str = "contact.create";
    const SKILL: &'static str = "contact_create";
    const PERMISSION: Permission = Permission::ClientsWrite;
    const SUMMARY: &'static str = "Add a contact";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&EMAIL_REQUIRED, &EMAIL_TAKEN, &SITE_NOT_FOUND, &SITE_ARCHIVED, &POLICY_NOT_FOUND];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<ContactCreated>()];
    type Output = ContactRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        check_contact(tx, &self.fields(), None).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<Self::Output, Rejection> {
        self.check(effect.tx, effect.actor).await?;
        let contact =
            effect.tx.save_contact(ContactId::new(), &self.fields()).await.map_err(|e| taken(e, &EMAIL_TAKEN))?;
        let contact_id = contact.id;
        effect.publish(&ContactCreated { contact, execution_id: effect.execution }).await?;
        Ok(ContactRef { contact_id })
    }
}

impl ContactUpdate {
    /// The contact as it would be after the change.
    fn merged<'a>(&'a self, now: &'a Contact) -> Result<ContactFields<'a>, Rejection> {
        Ok(ContactFields {
            name: self.name.as_ref().unwrap_or(&now.name),
            email: self.email.as_ref().map_or(now.email.as_ref(), Option::as_ref),
            phone: self.phone.as_ref().map_or(now.phone.as_ref(), Option::as_ref),
            site_id: self.site_id.unwrap_or(now.site_id),
            portal_access: self.portal_access.unwrap_or(now.portal_access),
            receives_invoices: self.receives_invoices.unwrap_or(now.receives_invoices),
            sla_policy_id: self.sla_policy_id.unwrap_or(now.sla_policy_id),
        })
    }
}

impl DomainCommand for ContactUpdate {
    const NAME: &'static str = "contact.update";
    const SKILL: &'static str = "contact_update";
    const PERMISSION: Permission = Permission::ClientsWrite;
    const SUMMARY: &'static str = "Change a contact";
    const REFUSALS: &'static [&'static RefusalKind] = &[
        &CONTACT_NOT_FOUND,
        &CONTACT_ARCHIVED,
        &NO_EMAIL,
        &EMAIL_TAKEN,
        &SITE_NOT_FOUND,
        &SITE_ARCHIVED,
        &POLICY_NOT_FOUND,
    ];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<ContactUpdated>()];
    type Output = ContactRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let now = live_contact(tx, self.contact_id, false).await?;
        check_contact(tx, &self.merged(&now)?, Some(self.contact_id)).await
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<Self::Output, Rejection> {
        let now = live_contact(effect.tx, self.contact_id, true).await?;
        let fields = self.merged(&now)?;
        if fields == now.fields() {
            // A change that changes nothing succeeds, and tells nobody.
            return Ok(ContactRef { contact_id: self.contact_id });
        }
        check_contact(effect.tx, &fields, Some(self.contact_id)).await?;
        let contact = effect.tx.save_contact(self.contact_id, &fields).await.map_err(|e| taken(e, &EMAIL_TAKEN))?;
        effect.publish(&ContactUpdated { contact, execution_id: effect.execution }).await?;
        Ok(ContactRef { contact_id: self.contact_id })
    }
}

impl DomainCommand for ContactArchive {
    const NAME: &'static str = "contact.archive";
    const SKILL: &'static str = "contact_archive";
    const PERMISSION: Permission = Permission::ClientsWrite;
    const SUMMARY: &'static str = "Archive a contact";
    const REFUSALS: &'static [&'static RefusalKind] = &[&CONTACT_NOT_FOUND, &CONTACT_ARCHIVED];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<ContactArchived>()];
    type Output = ContactRef;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        live_contact(tx, self.contact_id, false).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<Self::Output, Rejection> {
        live_contact(effect.tx, self.contact_id, true).await?;
        let contact = effect.tx.archive_contact(self.contact_id).await?;
        effect.publish(&ContactArchived { contact, execution_id: effect.execution }).await?;
        Ok(ContactRef { contact_id: self.contact_id })
    }
}
