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
pub mod evidence;
pub mod executions;
pub mod idempotency;
pub mod migrate;
pub mod sessions;
pub mod sites;
pub mod tenancy;
pub mod tickets;
pub mod webhooks;

mod error;

use std::time::Duration;

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
}

impl Database {
    /// Connects and checks the server is reachable. `max_connections` bounds
    /// this process's share of the server.
    pub async fn connect(url: &SecretString, max_connections: u32) -> Result<Self, StoreError> {
        let options: PgConnectOptions =
            url.expose_secret().parse().map_err(|e: sqlx::Error| StoreError::InvalidUrl(e.to_string()))?;
        let options = options.application_name("anchor");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(StoreError::Unreachable)?;
        Ok(Self { pool })
    }

    /// Wraps an existing pool (tests and tools that build their own).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for platform-level queries run as the application role. Code
    /// that touches a workspace's data goes through [`tenancy`] instead.
    pub fn pool(&self) -> &PgPool {
        &self.pool
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
