//! PostgreSQL, the system of record.
//!
//! - [`Database`] is the process's connection pool.
//! - [`migrate`] is the one migration mechanism, applied to the `platform`
//!   schema and to every workspace schema.
//! - [`tenancy`] provisions workspaces (schema `ws_<slug>` and a database role
//!   of its own) and opens a workspace's unit of work, a transaction that runs
//!   as that role: the database itself refuses cross-workspace access.

pub mod access;
pub mod agents;
pub mod alerts;
pub mod changes;
pub mod cmdb;
pub mod contracts;
pub mod evidence;
pub mod executions;
pub mod idempotency;
pub mod invoices;
pub mod kb;
pub mod maintenance;
pub mod migrate;
pub mod notifications;
pub mod ops;
pub mod portal;
pub mod queues;
pub mod quotes;
pub mod reports;
pub mod runbooks;
pub mod service_policies;
pub mod sessions;
pub mod sites;
pub mod teams;
pub mod tenancy;
pub mod ticket_search;
pub mod ticket_sla;
pub mod ticket_views;
pub mod tickets;
pub mod time_entries;
pub mod webhooks;

mod error;

use std::{
    hash::{BuildHasher, RandomState},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

pub use error::StoreError;
pub use tenancy::{Workspace, WorkspaceTx};

/// The process's PostgreSQL pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    pool: PgPool,
    /// Registry rows read recently (see [`tenancy::WorkspaceCache`]).
    workspaces: Arc<tenancy::WorkspaceCache>,
}

/// When a pooled connection is closed and replaced by a fresh one.
///
/// Each PostgreSQL server process caches the catalogue entries of every
/// table, index and type it has touched, and never shrinks that cache. With
/// one schema per workspace, a connection therefore grows with every
/// workspace it serves (about 225 KB for one whose ten tables a unit of work
/// read: some 2 GB after 10,000; the `provision` benchmark prints the
/// figures). Replacing connections bounds that growth: by age, and by uses,
/// which also bounds it when the pool is busy enough to serve every workspace
/// within one lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recycling {
    /// A connection older than this is closed when it is next released or
    /// found idle (`database_max_lifetime`).
    pub max_lifetime: Duration,
    /// A connection is closed after about this many checkouts from the
    /// pool, each of which may serve another workspace (`database_max_uses`);
    /// 0: no cap. See [`Recycling::sampling`].
    pub max_uses: u32,
}

impl Recycling {
    /// The settings' defaults (`database_max_lifetime`, `database_max_uses`).
    pub const DEFAULT: Self = Self { max_lifetime: Duration::from_secs(30 * 60), max_uses: 200 };

    /// Uses are counted in the connection's own server session (the pool
    /// keeps no state per connection), which costs a round trip. So one
    /// release in this many, picked at random, is counted, as this many uses:
    /// the count is right on average (within about a quarter of the cap for
    /// one connection) for a round trip per this many releases. Caps below 32
    /// are counted exactly.
    pub fn sampling(&self) -> u32 {
        (self.max_uses / 16).clamp(1, 64)
    }
}

impl Default for Recycling {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A pooled connection idle this long is checked before it is handed out.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Adds `$1` to a connection's count of uses, kept in a setting of its own
/// server session (set outside any transaction, so never rolled back), and
/// answers the new count.
const COUNT_USES: &str = "SELECT set_config('anchor.pool_uses',
        (coalesce(nullif(current_setting('anchor.pool_uses', true), ''), '0')::bigint + $1)::text, false)::bigint";

impl Database {
    /// Connects and checks the server is reachable. `max_connections` bounds
    /// this process's share of the server. Connections are recycled as
    /// [`Recycling::DEFAULT`] says.
    pub async fn connect(url: &SecretString, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(url, max_connections, Recycling::DEFAULT).await
    }

    /// [`Self::connect`], replacing connections as `recycling` says.
    pub async fn connect_with(
        url: &SecretString,
        max_connections: u32,
        recycling: Recycling,
    ) -> Result<Self, StoreError> {
        let options: PgConnectOptions =
            url.expose_secret().parse().map_err(|e: sqlx::Error| StoreError::InvalidUrl(e.to_string()))?;
        let options = options.application_name("anchor");
        let mut pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .max_lifetime(recycling.max_lifetime)
            // The pool checks a connection as it takes it back; one that
            // has sat idle since is checked again before it is handed out,
            // one in steady use is not (a round trip saved per checkout).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_CHECK {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        if recycling.max_uses > 0 {
            let max_uses = i64::from(recycling.max_uses);
            let sampling = u64::from(recycling.sampling());
            let (seed, releases) = (RandomState::new(), AtomicU64::new(0));
            // After the transaction of the use has ended (sqlx finishes a
            // dropped one's rollback first); an error closes the connection.
            pool = pool.after_release(move |conn, _| {
                let counted = sampling == 1 || seed.hash_one(releases.fetch_add(1, Ordering::Relaxed)) % sampling == 0;
                Box::pin(async move {
                    if !counted {
                        return Ok(true);
                    }
                    let uses: i64 = sqlx::query_scalar(COUNT_USES).bind(sampling as i64).fetch_one(conn).await?;
                    Ok(uses < max_uses)
                })
            });
        }
        let pool = pool.connect_with(options).await.map_err(StoreError::Unreachable)?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool (tests and tools that build their own).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool, workspaces: Arc::default() }
    }

    /// The pool, for platform-level queries run as the application role. Code
    /// that touches a workspace's data goes through [`tenancy`] instead.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction on a pooled connection, begun so that a caller that
    /// goes away mid-way cannot leave the connection inside it (see [`begun`]).
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let pool = self.pool.clone();
        begun(async move { pool.begin().await }).await
    }

    /// A connection of its own that listens for `channel`'s notifications.
    pub async fn listen(&self, channel: &str) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(channel).await?;
        Ok(listener)
    }

    /// Readiness: the server answers and the platform schema is at the version
    /// this binary expects.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::Unreachable)?;
        migrate::check_platform_current(&self.pool).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Runs `begin` (a pool's `begin` or `begin_with`) in a task of its own.
///
/// sqlx counts a transaction as open only once its `BEGIN` has answered,
/// and the guard that rolls back a transaction whose caller went away looks
/// at that count: a caller dropped while `BEGIN` (with our `set_config`s) is
/// on the wire leaves the connection inside a transaction sqlx does not know
/// about, with the workspace's role set, and the pool hands it to the next
/// caller (whose platform reads are then refused, and whose transaction is
/// then aborted). A closed page's live stream, or a timeout, is such a caller.
/// In a task of its own the begin always completes; if the caller is gone by
/// then, the transaction is dropped as an open one and rolled back before
/// the connection is used again.
pub(crate) async fn begun<F>(begin: F) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError>
where
    F: std::future::Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>> + Send + 'static,
{
    match tokio::spawn(begin).await {
        Ok(tx) => Ok(tx?),
        Err(e) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!(
            "beginning a transaction failed: {e}"
        ))))),
    }
}
