//! A fresh database per test, on the real PostgreSQL server.
//!
//! The server comes from `ANCHOR_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, a superuser). When it cannot
//! be reached the test fails with instructions; it never skips.

use std::time::{SystemTime, UNIX_EPOCH};

use anchor_store::{Database, migrate};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;

/// An HTTP client for tests. reqwest is built without a bundled TLS provider
/// (Anchor uses ring), so one is installed first.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Databases left behind by crashed or failed tests are dropped after this long.
const STALE_AFTER_SECS: u64 = 2 * 60 * 60;

/// The server's administrative URL.
pub fn server_url() -> String {
    std::env::var("ANCHOR_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER.to_owned())
}

async fn admin_connection() -> PgConnection {
    let url = server_url();
    match PgConnection::connect(&url).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "tests need PostgreSQL at {url} (set ANCHOR_TEST_DATABASE_URL to use another): {e}. \
             Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        ),
    }
}

/// A database of its own for one test, with the platform schema migrated.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: SecretString,
}

impl TestDatabase {
    /// Creates an empty database (no platform schema).
    pub async fn empty() -> Self {
        sweep_leftovers_once().await;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs();
        let name = format!("anchor_test_{now}_{:08x}", rand::rng().random::<u32>());
        let mut admin = admin_connection().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&server_url()).expect("ANCHOR_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Self { name, url: SecretString::from(url.to_string()) }
    }

    /// Creates a database and migrates the platform schema.
    pub async fn new() -> Self {
        let db = Self::empty().await;
        let conn = db.connect(4).await;
        migrate::migrate_platform(conn.pool()).await.expect("platform migrations apply");
        conn.close().await;
        db
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &SecretString {
        &self.url
    }

    pub async fn connect(&self, max_connections: u32) -> Database {
        Database::connect(&self.url, max_connections).await.expect("connect to test database")
    }

    /// Drops the database and the cluster-wide roles its workspaces created.
    pub async fn drop_now(self) {
        let mut admin = admin_connection().await;
        let installation: Option<String> = match PgConnection::connect(self.url.expose_secret()).await {
            Ok(mut conn) => sqlx::query_scalar("SELECT id FROM platform.installation")
                .fetch_optional(&mut conn)
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        drop_database(&mut admin, &self.name).await;
        if let Some(prefix) = installation {
            // Workspace roles first, then their group.
            drop_roles(&mut admin, &format!("^{prefix}_ws_[a-z]")).await;
            drop_roles(&mut admin, &format!("^{prefix}_ws__all$")).await;
        }
    }
}

async fn drop_database(admin: &mut PgConnection, name: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
        .execute(admin)
        .await
        .expect("drop test database");
}

async fn drop_roles(admin: &mut PgConnection, pattern: &str) {
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT rolname FROM pg_roles r
          WHERE rolname ~ $1
            AND NOT EXISTS (SELECT 1 FROM pg_shdepend d WHERE d.refobjid = r.oid)",
    )
    .bind(pattern)
    .fetch_all(&mut *admin)
    .await
    .expect("list roles");
    for role in roles {
        // Another test process may drop the same orphan first.
        let _ =
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{role}\""))).execute(&mut *admin).await;
    }
}

/// Removes what earlier runs left: old test databases, then roles no database
/// refers to any more (a workspace role always holds privileges in its
/// database, so an unreferenced one belongs to a dropped database).
async fn sweep_leftovers_once() {
    static SWEPT: OnceCell<()> = OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let mut admin = admin_connection().await;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
            let names: Vec<String> =
                sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'anchor\\_test\\_%'")
                    .fetch_all(&mut admin)
                    .await
                    .expect("list databases");
            for name in names {
                let created = name.split('_').nth(2).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
                if now.saturating_sub(created) > STALE_AFTER_SECS {
                    drop_database(&mut admin, &name).await;
                }
            }
            drop_roles(&mut admin, "^a[0-9a-f]{10}_ws_[a-z]").await;
            drop_roles(&mut admin, "^a[0-9a-f]{10}_ws__all$").await;
        })
        .await;
}
