//! The one migration mechanism, for the `platform` schema and for every
//! workspace schema.
//!
//! A migration is numbered SQL, append-only: its SHA-256 is recorded when it is
//! applied and checked on every later run, so an edited migration is refused
//! rather than silently diverging between workspaces.
//!
//! Applying migrations to one target happens in one transaction that first
//! takes a transaction-scoped advisory lock for that target, then reads what is
//! applied. Two processes migrating at once therefore serialise per target, and
//! the second finds nothing left to do: running the migrator is idempotent and
//! safe to run concurrently.

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::StoreError;

/// One numbered, append-only schema change.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i32,
    pub name: Cow<'static, str>,
    pub sql: Cow<'static, str>,
}

impl Migration {
    pub const fn new(version: i32, name: &'static str, sql: &'static str) -> Self {
        Self { version, name: Cow::Borrowed(name), sql: Cow::Borrowed(sql) }
    }

    pub fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

/// Migrations of the `platform` schema.
pub static PLATFORM_MIGRATIONS: &[Migration] = &[
    Migration::new(1, "platform", include_str!("../migrations/platform/0001_platform.sql")),
    Migration::new(2, "access", include_str!("../migrations/platform/0002_access.sql")),
    Migration::new(3, "web_sign_in", include_str!("../migrations/platform/0003_web_sign_in.sql")),
    Migration::new(4, "idempotency", include_str!("../migrations/platform/0004_idempotency.sql")),
    Migration::new(5, "outbox", include_str!("../migrations/platform/0005_outbox.sql")),
    Migration::new(6, "callback_receipts", include_str!("../migrations/platform/0006_callback_receipts.sql")),
    Migration::new(7, "outbox_attempts", include_str!("../migrations/platform/0007_outbox_attempts.sql")),
    Migration::new(8, "evidence_keys", include_str!("../migrations/platform/0008_evidence_keys.sql")),
    Migration::new(9, "receipt_digests", include_str!("../migrations/platform/0009_receipt_digests.sql")),
    Migration::new(10, "agents", include_str!("../migrations/platform/0010_agents.sql")),
    Migration::new(
        11,
        "receipts_per_workspace",
        include_str!("../migrations/platform/0011_receipts_per_workspace.sql"),
    ),
    Migration::new(12, "outbox_hot_claims", include_str!("../migrations/platform/0012_outbox_hot_claims.sql")),
    Migration::new(
        13,
        "sealed_idempotent_responses",
        include_str!("../migrations/platform/0013_sealed_idempotent_responses.sql"),
    ),
    Migration::new(14, "bounded_refusals", include_str!("../migrations/platform/0014_bounded_refusals.sql")),
    Migration::new(15, "enrollment_bounds", include_str!("../migrations/platform/0015_enrollment_bounds.sql")),
    Migration::new(16, "outbox_async_claims", include_str!("../migrations/platform/0016_outbox_async_claims.sql")),
    Migration::new(17, "sla_schedule", include_str!("../migrations/platform/0017_sla_schedule.sql")),
    Migration::new(18, "member_lookup", include_str!("../migrations/platform/0018_member_lookup.sql")),
    Migration::new(19, "agent_states", include_str!("../migrations/platform/0019_agent_states.sql")),
    Migration::new(20, "teams", include_str!("../migrations/platform/0020_teams.sql")),
    Migration::new(21, "ops", include_str!("../migrations/platform/0021_ops.sql")),
    Migration::new(22, "shared_sla_schedule", include_str!("../migrations/platform/0022_shared_sla_schedule.sql")),
    Migration::new(23, "outbox_ready_notify", include_str!("../migrations/platform/0023_outbox_ready_notify.sql")),
    Migration::new(24, "portal", include_str!("../migrations/platform/0024_portal.sql")),
    Migration::new(25, "portal_links", include_str!("../migrations/platform/0025_portal_links.sql")),
];

/// Migrations of every workspace schema.
pub static WORKSPACE_MIGRATIONS: &[Migration] = &[
    Migration::new(1, "workspace_settings", include_str!("../migrations/workspace/0001_workspace_settings.sql")),
    Migration::new(
        2,
        "tickets_and_executions",
        include_str!("../migrations/workspace/0002_tickets_and_executions.sql"),
    ),
    Migration::new(3, "evidence", include_str!("../migrations/workspace/0003_evidence.sql")),
    Migration::new(4, "webhooks", include_str!("../migrations/workspace/0004_webhooks.sql")),
    Migration::new(5, "inbound_sources", include_str!("../migrations/workspace/0005_inbound_sources.sql")),
    Migration::new(6, "telemetry", include_str!("../migrations/workspace/0006_telemetry.sql")),
    Migration::new(7, "alerts", include_str!("../migrations/workspace/0007_alerts.sql")),
    Migration::new(8, "telemetry_upkeep", include_str!("../migrations/workspace/0008_telemetry_upkeep.sql")),
    Migration::new(9, "changes", include_str!("../migrations/workspace/0009_changes.sql")),
    Migration::new(10, "command_keys", include_str!("../migrations/workspace/0010_command_keys.sql")),
    Migration::new(11, "sites_contacts", include_str!("../migrations/workspace/0011_sites_contacts.sql")),
    Migration::new(12, "telemetry_series", include_str!("../migrations/workspace/0012_telemetry_series.sql")),
    Migration::new(13, "unattested", include_str!("../migrations/workspace/0013_unattested.sql")),
    Migration::new(14, "webhook_test_window", include_str!("../migrations/workspace/0014_webhook_test_window.sql")),
    Migration::new(15, "service_policies", include_str!("../migrations/workspace/0015_service_policies.sql")),
    Migration::new(16, "ticket_sla", include_str!("../migrations/workspace/0016_ticket_sla.sql")),
    Migration::new(17, "queues", include_str!("../migrations/workspace/0017_queues.sql")),
    Migration::new(18, "time_entries", include_str!("../migrations/workspace/0018_time_entries.sql")),
    Migration::new(19, "ticket_search", include_str!("../migrations/workspace/0019_ticket_search.sql")),
    Migration::new(20, "client_terms", include_str!("../migrations/workspace/0020_client_terms.sql")),
    Migration::new(21, "cmdb", include_str!("../migrations/workspace/0021_cmdb.sql")),
    Migration::new(22, "alert_handling", include_str!("../migrations/workspace/0022_alert_handling.sql")),
    Migration::new(23, "execution_handling", include_str!("../migrations/workspace/0023_execution_handling.sql")),
    Migration::new(24, "runbooks", include_str!("../migrations/workspace/0024_runbooks.sql")),
    Migration::new(25, "alert_escalation", include_str!("../migrations/workspace/0025_alert_escalation.sql")),
    Migration::new(26, "maintenance_windows", include_str!("../migrations/workspace/0026_maintenance_windows.sql")),
    Migration::new(27, "asset_history", include_str!("../migrations/workspace/0027_asset_history.sql")),
    Migration::new(28, "invoices", include_str!("../migrations/workspace/0028_invoices.sql")),
    Migration::new(29, "payments", include_str!("../migrations/workspace/0029_payments.sql")),
    Migration::new(30, "contracts", include_str!("../migrations/workspace/0030_contracts.sql")),
    Migration::new(31, "quotes", include_str!("../migrations/workspace/0031_quotes.sql")),
    Migration::new(32, "quote_contracts", include_str!("../migrations/workspace/0032_quote_contracts.sql")),
    Migration::new(33, "ticket_ratings", include_str!("../migrations/workspace/0033_ticket_ratings.sql")),
    Migration::new(34, "knowledge_base", include_str!("../migrations/workspace/0034_knowledge_base.sql")),
    Migration::new(35, "notifications", include_str!("../migrations/workspace/0035_notifications.sql")),
];

/// Advisory-lock class for migrations (`ANCH` in ASCII); the object id is 0
/// for the platform schema and the workspace id for a workspace schema.
const LOCK_CLASS: i32 = 0x414E_4348;

/// What a set of migrations is applied to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Platform,
    Workspace { id: i64, schema: &'a str, slug: &'a str },
}

impl Target<'_> {
    fn label(&self) -> String {
        match self {
            Target::Platform => "platform schema".to_owned(),
            Target::Workspace { slug, .. } => format!("workspace {slug}"),
        }
    }

    fn lock_object(&self) -> i32 {
        match self {
            Target::Platform => 0,
            // Ids beyond i32 share lock slots; sharing only serialises, it is
            // never incorrect.
            Target::Workspace { id, .. } => (*id % i64::from(i32::MAX)) as i32,
        }
    }
}

/// Applies the platform migrations. Safe to call from many processes at once.
pub async fn migrate_platform(pool: &PgPool) -> Result<u32, StoreError> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, Target::Platform).await?;
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS platform;
         CREATE TABLE IF NOT EXISTS platform.schema_migrations (
             version    integer PRIMARY KEY CHECK (version > 0),
             name       text NOT NULL,
             checksum   bytea NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .execute(&mut *tx)
    .await?;
    let applied = apply_pending(&mut tx, Target::Platform, PLATFORM_MIGRATIONS).await?;
    tx.commit().await?;
    if applied > 0 {
        tracing::info!(applied, "platform schema migrated");
    }
    Ok(applied)
}

/// Fails unless the platform schema is exactly at this binary's version.
pub async fn check_platform_current(pool: &PgPool) -> Result<(), StoreError> {
    let expected = latest(PLATFORM_MIGRATIONS);
    let applied: i32 = match sqlx::query_scalar::<_, Option<i32>>("SELECT max(version) FROM platform.schema_migrations")
        .fetch_one(pool)
        .await
    {
        Ok(v) => v.unwrap_or(0),
        // 42P01 undefined_table / 3F000 invalid_schema_name: never migrated.
        Err(e) if matches!(sqlstate(&e).as_deref(), Some("42P01" | "3F000")) => 0,
        Err(e) => return Err(e.into()),
    };
    if applied == expected { Ok(()) } else { Err(StoreError::PlatformBehind { applied, expected }) }
}

pub(crate) fn latest(migrations: &[Migration]) -> i32 {
    migrations.last().map_or(0, |m| m.version)
}

async fn lock(conn: &mut PgConnection, target: Target<'_>) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(target.lock_object())
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes the target's lock, then applies what is pending, inside the caller's
/// transaction. Returns how many migrations it applied.
pub(crate) async fn apply_pending(
    conn: &mut PgConnection,
    target: Target<'_>,
    migrations: &[Migration],
) -> Result<u32, StoreError> {
    lock(conn, target).await?;
    let applied: Vec<(i32, Vec<u8>)> = match target {
        Target::Platform => sqlx::query_as("SELECT version, checksum FROM platform.schema_migrations ORDER BY version"),
        Target::Workspace { id, .. } => sqlx::query_as(
            "SELECT version, checksum FROM platform.workspace_schema_migrations WHERE workspace_id = $1 ORDER BY version",
        )
        .bind(id),
    }
    .fetch_all(&mut *conn)
    .await?;

    let known = latest(migrations);
    for (version, checksum) in &applied {
        match migrations.iter().find(|m| m.version == *version) {
            Some(m) if m.checksum() == *checksum => {}
            Some(m) => {
                return Err(StoreError::ChecksumMismatch {
                    target: target.label(),
                    version: *version,
                    name: m.name.to_string(),
                });
            }
            None => {
                return Err(StoreError::SchemaNewerThanBinary { target: target.label(), applied: *version, known });
            }
        }
    }

    let search_path = match target {
        // Empty: platform SQL must qualify every name.
        Target::Platform => "".to_owned(),
        Target::Workspace { schema, .. } => quote_ident(schema),
    };
    sqlx::query("SELECT set_config('search_path', $1, true)").bind(&search_path).execute(&mut *conn).await?;

    let mut count = 0;
    for migration in migrations.iter().filter(|m| !applied.iter().any(|(v, _)| *v == m.version)) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(migration.sql.as_ref())).execute(&mut *conn).await.map_err(|source| {
            StoreError::MigrationFailed {
                target: target.label(),
                version: migration.version,
                name: migration.name.to_string(),
                source,
            }
        })?;
        let record = match target {
            Target::Platform => {
                sqlx::query("INSERT INTO platform.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)")
            }
            Target::Workspace { .. } => sqlx::query(
                "INSERT INTO platform.workspace_schema_migrations (version, name, checksum, workspace_id)
                 VALUES ($1, $2, $3, $4)",
            ),
        }
        .bind(migration.version)
        .bind(migration.name.as_ref())
        .bind(migration.checksum());
        let record = match target {
            Target::Platform => record,
            Target::Workspace { id, .. } => record.bind(id),
        };
        record.execute(&mut *conn).await?;
        count += 1;
    }
    sqlx::query("SELECT set_config('search_path', '', true)").execute(&mut *conn).await?;
    Ok(count)
}

/// Quotes an identifier for PostgreSQL. Our identifiers are built from
/// validated slugs, so this is belt and braces.
pub(crate) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_well_formed(set: &[Migration]) {
        for (i, m) in set.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "migration versions are consecutive from 1: {}", m.name);
            assert!(!m.sql.trim().is_empty());
        }
    }

    #[test]
    fn migration_sets_are_consecutive() {
        assert_well_formed(PLATFORM_MIGRATIONS);
        assert_well_formed(WORKSPACE_MIGRATIONS);
    }

    #[test]
    fn checksum_changes_with_the_text() {
        let a = Migration::new(1, "a", "CREATE TABLE t (id int);");
        let b = Migration::new(1, "a", "CREATE TABLE t (id bigint);");
        assert_ne!(a.checksum(), b.checksum());
        assert_eq!(a.checksum().len(), 32);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("ws_acme"), "\"ws_acme\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
