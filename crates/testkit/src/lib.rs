//! A fresh database per test, on the real PostgreSQL server.
//!
//! Each test's database is a copy of a template that holds the migrated
//! platform schema (`anchor_template_<digest of the migrations>`, built once
//! per set of migrations, under an advisory lock so that concurrent test
//! processes build it once), then given an installation identity of its
//! own: database roles are cluster-wide, so two test databases must never
//! share the installation prefix of the roles their workspaces create.
//!
//! The server comes from `ANCHOR_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, a superuser). When it cannot
//! be reached the test fails with instructions; it never skips.

use std::time::{SystemTime, UNIX_EPOCH};

use anchor_store::{Database, migrate};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
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
        let name = fresh_name();
        let mut admin = admin_connection().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        Self::named(name)
    }

    /// Creates a database with the platform schema migrated: a copy of the
    /// template, with an installation identity of its own.
    pub async fn new() -> Self {
        sweep_leftovers_once().await;
        let template = template().await;
        let name = fresh_name();
        let mut admin = admin_connection().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")))
            .execute(&mut admin)
            .await
            .expect("copy the template database");
        let db = Self::named(name);
        let mut conn = PgConnection::connect(db.url.expose_secret()).await.expect("connect to the copy");
        sqlx::raw_sql(REKEY).execute(&mut conn).await.expect("give the copy its own installation identity");
        db
    }

    fn named(name: String) -> Self {
        let mut url = url::Url::parse(&server_url()).expect("ANCHOR_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Self { name, url: SecretString::from(url.to_string()) }
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

fn fresh_name() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs();
    format!("anchor_test_{now}_{:08x}", rand::rng().random::<u32>())
}

/// Template databases are named after this prefix and a digest of the
/// platform migrations they hold.
const TEMPLATE_PREFIX: &str = "anchor_template_";

fn template_name() -> String {
    let mut digest = Sha256::new();
    for migration in migrate::PLATFORM_MIGRATIONS {
        digest.update(migration.version.to_be_bytes());
        digest.update(migration.checksum());
    }
    let digest = digest.finalize();
    format!("{TEMPLATE_PREFIX}{}", digest.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>())
}

/// The template for this set of migrations, built if no process has yet.
async fn template() -> String {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut admin = admin_connection().await;
            // One builder across processes; the others wait, then find it.
            sqlx::query("SELECT pg_advisory_lock(hashtext('anchor test template'))")
                .execute(&mut admin)
                .await
                .expect("template lock");
            let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .expect("look for the template");
            if !exists {
                // Built under another name and renamed when complete, so a
                // crash half-way never leaves a template that looks ready.
                let building = format!("{name}_building");
                drop_database(&mut admin, &building).await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{building}\"")))
                    .execute(&mut admin)
                    .await
                    .expect("create the template");
                let db = TestDatabase::named(building.clone());
                let conn = db.connect(2).await;
                migrate::migrate_platform(conn.pool()).await.expect("platform migrations apply");
                conn.close().await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\"")))
                    .execute(&mut admin)
                    .await
                    .expect("name the template");
            }
            sqlx::query("SELECT pg_advisory_unlock(hashtext('anchor test template'))")
                .execute(&mut admin)
                .await
                .expect("template unlock");
            name
        })
        .await
        .clone()
}

/// Gives a copy of the template an installation id of its own, and its own
/// group role holding exactly the privileges the template's group holds in
/// this database (whatever the migrations granted it); repeats what the
/// migrations did to the database itself, which a copy does not inherit.
const REKEY: &str = "
DO $$
DECLARE
    old_group text;
    new_group text;
    fresh text := 'a' || substr(md5(pg_catalog.gen_random_uuid()::text), 1, 10);
    r record;
BEGIN
    SELECT id || '_ws__all' INTO old_group FROM platform.installation;
    new_group := fresh || '_ws__all';
    UPDATE platform.installation SET id = fresh;
    -- Privileges on the database itself are not copied with it.
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('CREATE ROLE %I NOLOGIN', new_group);
    FOR r IN SELECT n.nspname, a.privilege_type FROM pg_catalog.pg_namespace n, aclexplode(n.nspacl) a
              WHERE a.grantee = old_group::regrole LOOP
        EXECUTE format('GRANT %s ON SCHEMA %I TO %I', r.privilege_type, r.nspname, new_group);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_catalog.pg_proc p, aclexplode(p.proacl) a
              WHERE a.grantee = old_group::regrole LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', r.f, new_group);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', r.f, old_group);
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS t, c.relkind, a.privilege_type FROM pg_catalog.pg_class c, aclexplode(c.relacl) a
              WHERE a.grantee = old_group::regrole LOOP
        EXECUTE format('GRANT %s ON %s %s TO %I', r.privilege_type,
                       CASE r.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.t, new_group);
        EXECUTE format('REVOKE ALL ON %s FROM %I', r.t, old_group);
    END LOOP;
    FOR r IN SELECT n.nspname FROM pg_catalog.pg_namespace n, aclexplode(n.nspacl) a
              WHERE a.grantee = old_group::regrole LOOP
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', r.nspname, old_group);
    END LOOP;
END
$$;";

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
            // Templates of migrations that are no longer current.
            let templates: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname LIKE 'anchor\\_template\\_%' AND datname <> $1",
            )
            .bind(template_name())
            .fetch_all(&mut admin)
            .await
            .expect("list templates");
            let current = template_name();
            for name in templates.iter().filter(|n| !n.starts_with(&current)) {
                drop_database(&mut admin, name).await;
            }
            drop_roles(&mut admin, "^a[0-9a-f]{10}_ws_[a-z]").await;
            drop_roles(&mut admin, "^a[0-9a-f]{10}_ws__all$").await;
        })
        .await;
}
