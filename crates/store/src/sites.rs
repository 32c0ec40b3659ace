//! A workspace's sites and contacts. The row types are the views the API
//! answers with and the events carry. Writes are made by their skills.

use anchor_domain::{Address, ContactId, Email, Name, Phone, SiteId, SlaPolicyId, TimeZoneName};
use serde::Serialize;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{StoreError, WorkspaceTx};

/// A place of the client's: an office, a branch, a data centre.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct Site {
    #[schema(value_type = String, example = "sit_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: SiteId,
    #[schema(value_type = String, example = "Leeds office")]
    pub name: Name,
    #[sqlx(json(nullable))]
    #[schema(value_type = Option<Object>)]
    pub address: Option<Address>,
    /// IANA time zone: business hours and SLA clocks of the site run in it.
    #[schema(value_type = String, example = "Europe/London")]
    pub time_zone: TimeZoneName,
    /// The SLA policy its tickets follow (before the queue's and the workspace default).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "slp_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub sla_policy_id: Option<SlaPolicyId>,
    /// Set when it was archived: kept for history, no longer offered.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub archived_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// A person at the client.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema, utoipa::ToSchema)]
pub struct Contact {
    #[schema(value_type = String, example = "con_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub id: ContactId,
    #[schema(value_type = String, example = "Ann Smith")]
    pub name: Name,
    #[schema(value_type = Option<String>, example = "ann@example.com")]
    pub email: Option<Email>,
    #[schema(value_type = Option<String>, example = "+44 20 7946 0958")]
    pub phone: Option<Phone>,
    /// Where they usually work.
    #[schema(value_type = Option<String>)]
    pub site_id: Option<SiteId>,
    /// May sign in to the client portal (needs an email address).
    pub portal_access: bool,
    /// Receives the client's invoices (needs an email address).
    pub receives_invoices: bool,
    /// The SLA policy its tickets follow (before its site's, the queue's and the workspace default).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "slp_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    pub sla_policy_id: Option<SlaPolicyId>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    #[schemars(with = "Option<String>")]
    pub archived_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// A site's fields as a command sets them.
#[derive(Debug, Clone)]
pub struct SiteFields<'a> {
    pub name: &'a Name,
    pub address: Option<&'a Address>,
    pub time_zone: &'a TimeZoneName,
    pub sla_policy_id: Option<SlaPolicyId>,
}

/// A contact's fields as a command sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFields<'a> {
    pub name: &'a Name,
    pub email: Option<&'a Email>,
    pub phone: Option<&'a Phone>,
    pub site_id: Option<SiteId>,
    pub portal_access: bool,
    pub receives_invoices: bool,
    pub sla_policy_id: Option<SlaPolicyId>,
}

impl Contact {
    /// Its fields as a command would set them.
    pub fn fields(&self) -> ContactFields<'_> {
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

/// Live or archived rows, and words to look for.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Prefixes of words of the name (and the email, for contacts).
    pub search: Option<String>,
    /// Archived rows instead of live ones.
    pub archived: bool,
}

/// Which contacts to list, beyond a [`Listing`].
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub site_id: Option<SiteId>,
    pub portal_access: Option<bool>,
    pub receives_invoices: Option<bool>,
}

/// The keyset position of a row in a list ordered by name: the name as it
/// sorts, then the id. Cursors are its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByName {
    pub name: String,
    pub id: String,
}

impl ByName {
    pub fn of(name: &Name, id: impl ToString) -> Self {
        Self { name: name.as_str().to_lowercase(), id: id.to_string() }
    }
}

impl std::fmt::Display for ByName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\u{1f}{}", self.name, self.id)
    }
}

impl std::str::FromStr for ByName {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (name, id) = s.rsplit_once('\u{1f}').ok_or(())?;
        Ok(Self { name: name.to_owned(), id: id.to_owned() })
    }
}

/// `ann smi` -> `ann:* & smi:*`: every word, as a prefix. Characters that
/// mean something to `to_tsquery` are dropped.
pub(crate) fn prefixes(search: &str) -> Option<String> {
    let words: Vec<String> = search
        .split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || "@._-".contains(*c)).collect::<String>())
        .filter(|w| !w.is_empty())
        .map(|w| format!("'{w}':*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

/// A table of rows that are read by id, written whole and archived.
struct Table {
    name: &'static str,
    columns: &'static str,
}

const SITES: Table = Table {
    name: "sites",
    columns: "id, name, address, time_zone, sla_policy_id, archived_at, created_at, updated_at",
};
const CONTACTS: Table = Table {
    name: "contacts",
    columns: "id, name, email, phone, site_id, portal_access, receives_invoices, sla_policy_id, archived_at, created_at, \
              updated_at",
};

impl WorkspaceTx {
    /// The row with this id; with `lock`, locked until this unit of work ends.
    async fn row<T, I>(&mut self, table: &Table, id: I, lock: bool) -> Result<Option<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
        I: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        let Table { name, columns } = table;
        let lock = if lock { " FOR UPDATE" } else { "" };
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {columns} FROM {name} WHERE id = $1{lock}")))
            .bind(id)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Archives the row with this id and answers it as it now is.
    async fn archive<T, I>(&mut self, table: &Table, id: I) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
        I: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        let Table { name, columns } = table;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE {name} SET archived_at = now(), updated_at = now() WHERE id = $1 RETURNING {columns}"
        )))
        .bind(id)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn site(&mut self, id: SiteId) -> Result<Option<Site>, StoreError> {
        self.row(&SITES, id, false).await
    }

    /// The site, locked until this unit of work ends.
    pub async fn lock_site(&mut self, id: SiteId) -> Result<Option<Site>, StoreError> {
        self.row(&SITES, id, true).await
    }

    /// Sites by name, after `after`.
    pub async fn sites(
        &mut self,
        listing: &Listing,
        after: Option<&ByName>,
        limit: i64,
    ) -> Result<Vec<Site>, StoreError> {
        let columns = SITES.columns;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM sites
              WHERE (archived_at IS NOT NULL) = $1
                AND ($2::text IS NULL OR to_tsvector('simple', name) @@ to_tsquery('simple', $2))
                AND ($3::text IS NULL OR (lower(name), id) > ($3, $4))
              ORDER BY lower(name), id LIMIT $5"
        )))
        .bind(listing.archived)
        .bind(listing.search.as_deref().and_then(prefixes))
        .bind(after.map(|a| a.name.as_str()))
        .bind(after.map(|a| a.id.as_str()))
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// The live site called `name`, other than `except`.
    pub async fn site_named(&mut self, name: &Name, except: Option<SiteId>) -> Result<Option<SiteId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM sites WHERE lower(name) = lower($1) AND archived_at IS NULL AND id IS DISTINCT FROM $2",
        )
        .bind(name)
        .bind(except)
        .fetch_optional(self.conn())
        .await?)
    }

    /// Writes the site: a new one, or new fields for an existing one.
    pub async fn save_site(&mut self, id: SiteId, fields: &SiteFields<'_>) -> Result<Site, StoreError> {
        let columns = SITES.columns;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO sites (id, name, address, time_zone, sla_policy_id) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE
                SET name = excluded.name, address = excluded.address, time_zone = excluded.time_zone,
                    sla_policy_id = excluded.sla_policy_id, updated_at = now()
             RETURNING {columns}"
        )))
        .bind(id)
        .bind(fields.name)
        .bind(fields.address.map(Json))
        .bind(fields.time_zone)
        .bind(fields.sla_policy_id)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn archive_site(&mut self, id: SiteId) -> Result<Site, StoreError> {
        self.archive(&SITES, id).await
    }

    pub async fn contact(&mut self, id: ContactId) -> Result<Option<Contact>, StoreError> {
        self.row(&CONTACTS, id, false).await
    }

    /// The contact, locked until this unit of work ends.
    pub async fn lock_contact(&mut self, id: ContactId) -> Result<Option<Contact>, StoreError> {
        self.row(&CONTACTS, id, true).await
    }

    /// Contacts by name, after `after`.
    pub async fn contacts(
        &mut self,
        listing: &Listing,
        filter: &ContactFilter,
        after: Option<&ByName>,
        limit: i64,
    ) -> Result<Vec<Contact>, StoreError> {
        let columns = CONTACTS.columns;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM contacts
              WHERE (archived_at IS NOT NULL) = $1
                AND ($2::text IS NULL OR search @@ to_tsquery('simple', $2))
                AND ($3::text IS NULL OR (lower(name), id) > ($3, $4))
                AND ($5::text IS NULL OR site_id = $5)
                AND ($6::boolean IS NULL OR portal_access = $6)
                AND ($7::boolean IS NULL OR receives_invoices = $7)
              ORDER BY lower(name), id LIMIT $8"
        )))
        .bind(listing.archived)
        .bind(listing.search.as_deref().and_then(prefixes))
        .bind(after.map(|a| a.name.as_str()))
        .bind(after.map(|a| a.id.as_str()))
        .bind(filter.site_id)
        .bind(filter.portal_access)
        .bind(filter.receives_invoices)
        .bind(limit)
        .fetch_all(self.conn())
        .await?)
    }

    /// The live contact with this email address, other than `except`.
    pub async fn contact_with_email(
        &mut self,
        email: &Email,
        except: Option<ContactId>,
    ) -> Result<Option<ContactId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM contacts
              WHERE lower(email) = lower($1) AND archived_at IS NULL AND id IS DISTINCT FROM $2",
        )
        .bind(email)
        .bind(except)
        .fetch_optional(self.conn())
        .await?)
    }

    /// Writes the contact: a new one, or new fields for an existing one.
    pub async fn save_contact(&mut self, id: ContactId, fields: &ContactFields<'_>) -> Result<Contact, StoreError> {
        let columns = CONTACTS.columns;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO contacts (id, name, email, phone, site_id, portal_access, receives_invoices, sla_policy_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE
                SET name = excluded.name, email = excluded.email, phone = excluded.phone,
                    site_id = excluded.site_id, portal_access = excluded.portal_access,
                    receives_invoices = excluded.receives_invoices, sla_policy_id = excluded.sla_policy_id,
                    updated_at = now()
             RETURNING {columns}"
        )))
        .bind(id)
        .bind(fields.name)
        .bind(fields.email)
        .bind(fields.phone)
        .bind(fields.site_id)
        .bind(fields.portal_access)
        .bind(fields.receives_invoices)
        .bind(fields.sla_policy_id)
        .fetch_one(self.conn())
        .await?)
    }

    pub async fn archive_contact(&mut self, id: ContactId) -> Result<Contact, StoreError> {
        self.archive(&CONTACTS, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_are_word_prefixes_without_operators() {
        assert_eq!(prefixes("Ann  smi"), Some("'Ann':* & 'smi':*".into()));
        assert_eq!(prefixes("a'b & !c"), Some("'ab':* & 'c':*".into()));
        assert_eq!(prefixes("  &| "), None);
    }

    #[test]
    fn name_cursors_round_trip() {
        let at = ByName { name: "leeds office".into(), id: "sit_x".into() };
        assert_eq!(at.to_string().parse::<ByName>(), Ok(at));
        assert!("no separator".parse::<ByName>().is_err());
    }
}
