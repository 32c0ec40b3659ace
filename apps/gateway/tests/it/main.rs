//! Gateway integration tests: the real application on 127.0.0.1:0 against a
//! fresh database per test.

mod access;
mod contract;
mod errors;
mod idempotency;
mod matrix;
mod operations;
mod pages;
mod service_policies;
mod teams;
mod ticket_search;
mod webhooks;

use std::{net::SocketAddr, time::Duration};

use anchor_auth::{DevIssuer, dev_issuer::DEV_ISSUER};
use anchor_config::IssuerSettings;
use anchor_domain::{Role, WorkspaceName, WorkspaceSlug};
use anchor_gateway::{AppState, Config};
use anchor_store::{
    Database, Workspace,
    access::{AuditContext, SubjectRef},
};
use anchor_testkit::TestDatabase;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) client: reqwest::Client,
    pub(crate) db: TestDatabase,
    /// The store, as the application role, for arranging test data.
    pub(crate) store: Database,
    /// The dev issuer the app trusts (its key is in `_data_dir`).
    pub(crate) dev: DevIssuer,
    _data_dir: tempfile::TempDir,
    shutdown: CancellationToken,
    /// `None` once stopped by [`TestApp::stop_server`].
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts the gateway exactly as production does, through `run`.
    pub(crate) async fn spawn() -> Self {
        Self::spawn_on(TestDatabase::new().await, Vec::new()).await
    }

    pub(crate) async fn spawn_on(db: TestDatabase, issuers: Vec<IssuerSettings>) -> Self {
        Self::spawn_configured(db, |config| config.issuers = issuers).await
    }

    /// Starts the gateway through `run` with the test configuration as `configure` leaves it.
    pub(crate) async fn spawn_configured(db: TestDatabase, configure: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut config = config(&db, Duration::from_secs(30), data_dir.path());
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let dev = DevIssuer::load_or_create(data_dir.path()).expect("dev issuer");
        let store = Database::connect(db.url(), 4).await.expect("connect");
        let server = Some(tokio::spawn(anchor_gateway::run(config, listener, shutdown.clone())));
        Self { addr, client: anchor_testkit::http_client(), db, store, dev, _data_dir: data_dir, shutdown, server }
    }

    /// Starts the same application with extra routes of the test's own
    /// mounted under the same middleware stack.
    pub(crate) async fn spawn_with(extra: Router<AppState>, request_timeout: Duration) -> Self {
        let db = TestDatabase::new().await;
        let data_dir = tempfile::tempdir().expect("tempdir");
        let config = config(&db, request_timeout, data_dir.path());
        let store = Database::connect(db.url(), 4).await.expect("connect");
        let state = AppState::new(&config, store.clone()).expect("state");
        let app = anchor_gateway::app(&config, state, Some(extra));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let server = Some(tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(token.cancelled_owned())
                .await?;
            Ok(())
        }));
        let dev = DevIssuer::load_or_create(data_dir.path()).expect("dev issuer");
        Self { addr, client: anchor_testkit::http_client(), db, store, dev, _data_dir: data_dir, shutdown, server }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    /// A dev-issuer access token for `subject`.
    pub(crate) fn token(&self, subject: &str) -> String {
        self.dev.issue(subject, Duration::from_secs(600)).expect("issue")
    }

    pub(crate) async fn get_as(&self, path: &str, subject: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(self.token(subject)).send().await.expect("request")
    }

    pub(crate) async fn workspace(&self, slug: &str, name: &str) -> Workspace {
        let slug = WorkspaceSlug::parse(slug).expect("slug");
        self.store.create_workspace(&slug, &WorkspaceName::parse(name).expect("name")).await.expect("create")
    }

    pub(crate) async fn member(&self, workspace: &Workspace, subject: &str, role: Role) {
        let who = SubjectRef { issuer: DEV_ISSUER, subject };
        self.store.set_member(workspace, who, role, &AuditContext::default()).await.expect("member");
    }

    pub(crate) async fn platform_admin(&self, subject: &str) {
        let who = SubjectRef { issuer: DEV_ISSUER, subject };
        self.store.grant_platform_role(who, Role::PlatformAdmin, &AuditContext::default()).await.expect("grant");
    }

    /// Stops the server gracefully (what it kept in memory, such as
    /// aggregated refusals, is written) and keeps the database.
    pub(crate) async fn stop_server(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran cleanly");
        }
    }

    /// Stops the server gracefully and drops the database.
    pub(crate) async fn stop(mut self) {
        self.stop_server().await;
        self.store.close().await;
        self.db.drop_now().await;
    }
}

fn config(db: &TestDatabase, request_timeout: Duration, data_dir: &std::path::Path) -> Config {
    Config {
        database_url: db.url().clone(),
        database_max_connections: 4,
        database_recycling: Default::default(),
        request_timeout,
        body_limit_bytes: 64 * 1024,
        data_dir: data_dir.to_path_buf(),
        dev_issuer: true,
        issuers: Vec::new(),
        public_url: "http://127.0.0.1".to_owned(),
        oidc: None,
        evidence: anchor_evidence::EvidenceSetup::new(None, data_dir, None).expect("evidence"),
        webhook_allowlist: Default::default(),
        webhook_limits: Default::default(),
        access: Default::default(),
        telemetry: Default::default(),
        mail_enabled: false,
    }
}

/// A fresh Idempotency-Key.
pub(crate) fn key() -> String {
    format!("test-{:032x}", rand_key())
}

fn rand_key() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    nanos ^ u128::from(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Asserts an RFC 9457 response and returns its body.
pub(crate) async fn problem(response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "every error is problem+json"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:anchor:problem:{code}"));
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    body
}
