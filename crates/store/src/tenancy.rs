//! Workspaces as the database sees them.
//!
//! Each workspace owns schema `ws_<slug>` and a database role of its own
//! (`<installation>_ws_<slug>`, NOLOGIN) that has privileges on that schema and
//! nothing else: no access to other workspace schemas, none to `platform`.
//! A [`WorkspaceTx`] is a transaction that switches to that role and schema
//! with `set_config(..., is_local => true)`, the function form of `SET LOCAL`,
//! so the switch ends with the transaction and never leaks to the next user of
//! a pooled connection. Isolation therefore does not depend on every query
//! being written correctly: a query naming another workspace's schema fails
//! with SQLSTATE 42501 (insufficient_privilege).
//!
//! The role switch is a guard against mistakes, not a sandbox for hostile SQL:
//! code inside a unit of work could `RESET ROLE`. Only our own code runs SQL.

use std::sync::Arc;

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use futures_util::{StreamExt, stream};
use serde::Serialize;
use sqlx::{PgConnection, Postgres, Transaction};
use time::OffsetDateTime;

use crate::{
    Database, StoreError,
    migrate::{self, Migration, Target, WORKSPACE_MIGRATIONS, quote_ident},
};

/// A registered workspace. Only the store makes these, from the registry, so
/// holding one means the workspace exists with the schema and role named here.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Workspace {
    #[serde(skip)]
    id: i64,
    slug: WorkspaceSlug,
    name: String,
    schema_name: String,
    #[serde(skip)]
    db_role: String,
    schema_version: i32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl Workspace {
    pub fn id(&self) -> i64 {
        self.id
    }
    pub fn slug(&self) -> &WorkspaceSlug {
        &self.slug
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn schema_name(&self) -> &str {
        &self.schema_name
    }
    /// The database role a unit of work of this workspace runs as.
    pub fn db_role(&self) -> &str {
        &self.db_role
    }
    /// The newest workspace migration applied to this workspace's schema.
    pub fn schema_version(&self) -> i32 {
        self.schema_version
    }
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    fn target(&self) -> Target<'_> {
        Target::Workspace { id: self.id, schema: &self.schema_name, slug: self.slug.as_str() }
    }
}

pub(crate) const SELECT_WORKSPACES: &str = "
    SELECT w.id, w.slug, w.name, w.schema_name, w.db_role, w.created_at,
           coalesce(max(m.version), 0) AS schema_version
      FROM platform.workspaces w
      LEFT JOIN platform.workspace_schema_migrations m ON m.workspace_id = w.id";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Id(i64),
    Slug(WorkspaceSlug),
}

/// Registry rows read in the last [`WorkspaceCache::FRESH`], by id and by
/// slug, so that the work of each command (hand-off, skill, callback, every
/// outbox handler) does not read the same row again and again. Safe because
/// what units of work depend on never changes once a workspace is
/// registered (its id, slug, schema and role; workspaces are not renamed or
/// deleted); its name and schema version may be up to `FRESH` old, and this
/// process's own migrations forget everything. Only found rows are kept, so
/// a workspace registered meanwhile is found at once.
#[derive(Debug, Default)]
pub(crate) struct WorkspaceCache {
    rows: std::sync::Mutex<std::collections::HashMap<CacheKey, (std::time::Instant, Workspace)>>,
}

impl WorkspaceCache {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(30);
    /// Beyond this many entries the cache starts again empty (bounded memory
    /// whatever the number of workspaces; a miss costs one indexed read).
    const MAX_ENTRIES: usize = 8192;

    fn get(&self, key: &CacheKey) -> Option<Workspace> {
        let rows = self.rows.lock().expect("not poisoned");
        rows.get(key).filter(|(at, _)| at.elapsed() < Self::FRESH).map(|(_, w)| w.clone())
    }

    fn put(&self, workspace: &Workspace) {
        let mut rows = self.rows.lock().expect("not poisoned");
        if rows.len() + 2 > Self::MAX_ENTRIES {
            rows.clear();
        }
        let now = std::time::Instant::now();
        rows.insert(CacheKey::Id(workspace.id), (now, workspace.clone()));
        rows.insert(CacheKey::Slug(workspace.slug.clone()), (now, workspace.clone()));
    }

    pub(crate) fn forget(&self) {
        self.rows.lock().expect("not poisoned").clear();
    }
}

/// Progress of a workspace migration run, reported after each workspace.
#[derive(Debug, Clone)]
pub struct MigrationProgress {
    pub done: usize,
    pub total: usize,
    pub slug: WorkspaceSlug,
    pub applied: u32,
}

/// Outcome of a workspace migration run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Workspaces that were behind when the run started.
    pub behind: usize,
    /// Migrations this run applied (another process may have applied the rest).
    pub applied: u32,
}

impl Database {
    /// Provisions a workspace in one transaction: registry row, schema, role,
    /// grants, and every workspace migration. It exists completely or not at all.
    #[tracing::instrument(skip(self, name), fields(workspace = %slug))]
    pub async fn create_workspace(&self, slug: &WorkspaceSlug, name: &WorkspaceName) -> Result<Workspace, StoreError> {
        let mut tx = self.begin().await?;
        let installation: String =
            sqlx::query_scalar("SELECT id FROM platform.installation").fetch_one(&mut *tx).await?;
        let schema = slug.schema_name();
        let role = format!("{installation}_{schema}");
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO platform.workspaces (slug, name, schema_name, db_role) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING
             RETURNING id",
        )
        .bind(slug.as_str())
        .bind(name.as_str())
        .bind(&schema)
        .bind(&role)
        .fetch_optional(&mut *tx)
        .await?;
        // Schema name and role follow from the slug one-to-one, so a conflict
        // on any of the unique columns (a racing twin trips whichever index it
        // reaches first) means the same thing: the workspace exists.
        let Some(id) = inserted else {
            return Err(StoreError::WorkspaceExists(slug.clone()));
        };

        // The workspace role's only membership: the installation's group,
        // which holds the one path into the platform schema (the outbox).
        let group = format!("{installation}_ws__all");
        let (s, r, g) = (quote_ident(&schema), quote_ident(&role), quote_ident(&group));
        let ddl = format!(
            "CREATE SCHEMA {s};
             CREATE ROLE {r} NOLOGIN INHERIT IN ROLE {g};
             GRANT {r} TO CURRENT_USER;
             GRANT USAGE ON SCHEMA {s} TO {r};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {r};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT EXECUTE ON FUNCTIONS TO {r};"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl)).execute(&mut *tx).await?;
        let target = Target::Workspace { id, schema: &schema, slug: slug.as_str() };
        migrate::apply_pending(&mut tx, target, WORKSPACE_MIGRATIONS).await?;
        tx.commit().await?;
        tracing::info!(schema = %schema, "workspace provisioned");
        self.workspace(slug).await?.ok_or_else(|| StoreError::WorkspaceNotFound(slug.clone()))
    }

    /// This installation's random id (it prefixes the roles it creates).
    pub async fn installation_id(&self) -> Result<String, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM platform.installation").fetch_one(self.pool()).await?)
    }

    /// Every workspace, by slug.
    pub async fn workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_WORKSPACES} GROUP BY w.id ORDER BY w.slug")))
            .fetch_all(self.pool())
            .await?)
    }

    /// The workspace with this registry id (outbox events carry the id).
    pub async fn workspace_by_id(&self, id: i64) -> Result<Option<Workspace>, StoreError> {
        self.registered(CacheKey::Id(id)).await
    }

    /// The workspace with this slug, if registered.
    pub async fn workspace(&self, slug: &WorkspaceSlug) -> Result<Option<Workspace>, StoreError> {
        self.registered(CacheKey::Slug(slug.clone())).await
    }

    /// The registry row `key` names: from the cache while fresh, else read
    /// (and kept when found).
    async fn registered(&self, key: CacheKey) -> Result<Option<Workspace>, StoreError> {
        if let Some(known) = self.workspaces.get(&key) {
            return Ok(Some(known));
        }
        let query = match &key {
            CacheKey::Id(id) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_WORKSPACES} WHERE w.id = $1 GROUP BY w.id")))
                    .bind(*id)
            }
            CacheKey::Slug(slug) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_WORKSPACES} WHERE w.slug = $1 GROUP BY w.id")))
                    .bind(slug.clone())
            }
        };
        let found: Option<Workspace> = query.fetch_optional(self.pool()).await?;
        Ok(found.inspect(|w| self.workspaces.put(w)))
    }

    /// Opens a unit of work for `workspace`: a transaction running as the
    /// workspace's role with `search_path` set to its schema. One round trip:
    /// `BEGIN` and the switch travel as one simple query.
    pub async fn begin_workspace(&self, workspace: &Workspace) -> Result<WorkspaceTx, StoreError> {
        self.begin_workspace_setting(workspace, &[]).await
    }

    /// [`Self::begin_workspace`] for bookkeeping that is redone when it is
    /// lost: its commit does not wait for the write-ahead log to reach the
    /// disk (`synchronous_commit = off`). A crash may forget the last such
    /// commits, never half of one, and never one that a later synchronous
    /// commit (of any session) depends on: the log is flushed in order. Only
    /// for work whose loss its caller redoes (an outbox event that is then
    /// delivered again, say).
    pub async fn begin_workspace_async_commit(&self, workspace: &Workspace) -> Result<WorkspaceTx, StoreError> {
        self.begin_workspace_setting(workspace, &[("synchronous_commit", "off")]).await
    }

    async fn begin_workspace_setting(
        &self,
        workspace: &Workspace,
        settings: &[(&str, &str)],
    ) -> Result<WorkspaceTx, StoreError> {
        let search_path = format!("{}, pg_temp", quote_ident(&workspace.schema_name));
        let mut set = vec![("role", workspace.db_role.as_str()), ("search_path", search_path.as_str())];
        set.extend_from_slice(settings);
        let set: Vec<String> = set
            .iter()
            .map(|(name, value)| format!("set_config({}, {}, true)", literal(name), literal(value)))
            .collect();
        // The names come from the registry (and the settings from our own
        // code), written as escaped literals: a simple query takes no
        // parameters.
        let begin = format!("BEGIN; SELECT {}", set.join(", "));
        let pool = self.pool().clone();
        let tx = crate::begun(async move { pool.begin_with(sqlx::AssertSqlSafe(begin)).await }).await?;
        Ok(WorkspaceTx { tx, workspace: workspace.clone() })
    }

    /// [`Self::begin_workspace`] whose statements and lock waits each end
    /// after `limit` (`statement_timeout`, `lock_timeout`; SQLSTATE 57014 and
    /// 55P03), so that a request cannot hold a pooled connection for long.
    /// Set with the role and search path: no round trip more.
    pub async fn begin_workspace_within(
        &self,
        workspace: &Workspace,
        limit: std::time::Duration,
    ) -> Result<WorkspaceTx, StoreError> {
        let limit = format!("{}ms", limit.as_millis().max(1));
        self.begin_workspace_setting(workspace, &[("statement_timeout", &limit), ("lock_timeout", &limit)]).await
    }

    /// Runs `read` in a unit of work for `workspace` that is rolled back
    /// however it ends: `db.read(ws, |tx| Box::pin(tx.site(id)))`.
    pub async fn read<T, F>(&self, workspace: &Workspace, read: F) -> Result<T, StoreError>
    where
        F: for<'t> FnOnce(&'t mut WorkspaceTx) -> futures_util::future::BoxFuture<'t, Result<T, StoreError>>,
    {
        let mut tx = self.begin_workspace(workspace).await?;
        let value = read(&mut tx).await?;
        tx.discard();
        Ok(value)
    }

    /// Brings every workspace schema to the newest workspace migration.
    pub async fn migrate_workspaces(
        &self,
        concurrency: usize,
        progress: impl Fn(MigrationProgress) + Send + Sync,
    ) -> Result<MigrationReport, StoreError> {
        self.migrate_workspaces_with(WORKSPACE_MIGRATIONS, concurrency, progress).await
    }

    /// [`Self::migrate_workspaces`] with an explicit migration set (benchmarks
    /// and tests append migrations of their own).
    pub async fn migrate_workspaces_with(
        &self,
        migrations: &[Migration],
        concurrency: usize,
        progress: impl Fn(MigrationProgress) + Send + Sync,
    ) -> Result<MigrationReport, StoreError> {
        self.check_workspace_checksums(migrations).await?;
        let latest = migrate::latest(migrations);
        let behind: Vec<Workspace> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_WORKSPACES} GROUP BY w.id HAVING coalesce(max(m.version), 0) < $1 ORDER BY w.id"
        )))
        .bind(latest)
        .fetch_all(self.pool())
        .await?;
        let total = behind.len();
        let migrations: Arc<[Migration]> = migrations.into();
        let progress = &progress;
        let done = std::sync::atomic::AtomicUsize::new(0);
        let done = &done;
        let mut results = stream::iter(behind)
            .map(|workspace| {
                let migrations = Arc::clone(&migrations);
                async move {
                    let mut tx = self.begin().await?;
                    let applied = migrate::apply_pending(&mut tx, workspace.target(), &migrations).await?;
                    tx.commit().await?;
                    let done = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    progress(MigrationProgress { done, total, slug: workspace.slug.clone(), applied });
                    Ok::<u32, StoreError>(applied)
                }
            })
            .buffer_unordered(concurrency.max(1));
        let mut report = MigrationReport { behind: total, applied: 0 };
        let mut first_error = None;
        // Let every started workspace finish; report the first failure.
        while let Some(result) = results.next().await {
            match result {
                Ok(n) => report.applied += n,
                Err(e) if first_error.is_none() => first_error = Some(e),
                Err(e) => tracing::error!(error = %e, "workspace migration failed"),
            }
        }
        self.workspaces.forget();
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Refuses to run when any workspace has a migration this binary does not
    /// know or whose text changed since it was applied.
    async fn check_workspace_checksums(&self, migrations: &[Migration]) -> Result<(), StoreError> {
        let versions: Vec<i32> = migrations.iter().map(|m| m.version).collect();
        let checksums: Vec<Vec<u8>> = migrations.iter().map(Migration::checksum).collect();
        let drift: Option<(String, i32, String, bool)> = sqlx::query_as(
            "SELECT w.slug, m.version, m.name, e.version IS NULL AS unknown
               FROM platform.workspace_schema_migrations m
               JOIN platform.workspaces w ON w.id = m.workspace_id
               LEFT JOIN unnest($1::int[], $2::bytea[]) AS e(version, checksum) ON e.version = m.version
              WHERE e.version IS NULL OR e.checksum <> m.checksum
              ORDER BY w.slug, m.version
              LIMIT 1",
        )
        .bind(&versions)
        .bind(&checksums)
        .fetch_optional(self.pool())
        .await?;
        let Some((slug, version, name, unknown)) = drift else { return Ok(()) };
        let target = format!("workspace {slug}");
        if unknown {
            Err(StoreError::SchemaNewerThanBinary { target, applied: version, known: migrate::latest(migrations) })
        } else {
            Err(StoreError::ChecksumMismatch { target, version, name })
        }
    }
}

/// Delivery attempts of an outbox event unless its producer says otherwise
/// (with the outbox's backoff, about an hour of trying).
pub const DEFAULT_MAX_ATTEMPTS: i32 = 12;

/// A workspace's unit of work: a transaction running as the workspace's own
/// database role, with its schema first on the `search_path`. Dropping it
/// without [`commit`](Self::commit) rolls back.
#[derive(Debug)]
pub struct WorkspaceTx {
    tx: Transaction<'static, Postgres>,
    workspace: Workspace,
}

/// Turns a transaction of the store's own (which may have written platform
/// rows already) into `workspace`'s unit of work, so that both commit or
/// neither does: the same switch of role and search path as
/// [`Database::begin_workspace`], for the rest of the transaction.
pub(crate) async fn enter_workspace(
    mut tx: Transaction<'static, Postgres>,
    workspace: &Workspace,
) -> Result<WorkspaceTx, StoreError> {
    let search_path = format!("{}, pg_temp", quote_ident(&workspace.schema_name));
    sqlx::query("SELECT set_config('role', $1, true), set_config('search_path', $2, true)")
        .bind(&workspace.db_role)
        .bind(search_path)
        .execute(&mut *tx)
        .await?;
    Ok(WorkspaceTx { tx, workspace: workspace.clone() })
}

impl WorkspaceTx {
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The connection, for queries against the workspace's own tables
    /// (unqualified names resolve to its schema).
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The database's clock now (not the transaction's start): the clock
    /// that stamps rows, so times compared with them agree.
    pub async fn clock(&mut self) -> Result<OffsetDateTime, StoreError> {
        Ok(sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(self.conn()).await?)
    }

    /// Writes an outbox event of this workspace in this transaction: it is
    /// delivered if and only if the transaction commits.
    pub async fn enqueue(&mut self, topic: &str, payload: &serde_json::Value) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT platform.enqueue($1, $2)")
            .bind(topic)
            .bind(payload)
            .fetch_one(&mut *self.tx)
            .await?)
    }

    /// [`Self::enqueue`], delivered no earlier than `delay` from now (a
    /// scheduled job), given up after `max_attempts` (see
    /// [`DEFAULT_MAX_ATTEMPTS`]).
    pub async fn enqueue_with(
        &mut self,
        topic: &str,
        payload: &serde_json::Value,
        delay: std::time::Duration,
        max_attempts: i32,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT platform.enqueue($1, $2, make_interval(secs => $3), $4)")
            .bind(topic)
            .bind(payload)
            .bind(delay.as_secs_f64())
            .bind(max_attempts)
            .fetch_one(&mut *self.tx)
            .await?)
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// Ends a unit of work that wrote nothing, without waiting: the rollback
    /// is queued on the connection and goes out before anything else does
    /// (at the latest when the pool takes the connection back), so the
    /// caller saves a round trip. For reads; a unit of work that may have
    /// written and must be seen undone before the caller goes on uses
    /// [`Self::rollback`].
    pub fn discard(self) {
        drop(self.tx);
    }
}

/// `value` as an SQL string literal (an escape string, whatever
/// `standard_conforming_strings` says).
fn literal(value: &str) -> String {
    format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(super::literal("ws_acme"), "E'ws_acme'");
        assert_eq!(super::literal(r#""ws_a", pg_temp"#), r#"E'"ws_a", pg_temp'"#);
        assert_eq!(super::literal(r"it's \ here"), r"E'it''s \\ here'");
    }
}
