//! Gateway integration tests: the real application on 127.0.0.1:0 against a
//! fresh database per test.

mod errors;
mod operations;

use std::{net::SocketAddr, time::Duration};

use anchor_gateway::{AppState, Config};
use anchor_store::Database;
use anchor_testkit::TestDatabase;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) client: reqwest::Client,
    pub(crate) db: TestDatabase,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    /// Starts the gateway exactly as production does, through `run`.
    pub(crate) async fn spawn() -> Self {
        Self::spawn_on(TestDatabase::new().await).await
    }

    pub(crate) async fn spawn_on(db: TestDatabase) -> Self {
        let config = config(&db, Duration::from_secs(30));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(anchor_gateway::run(config, listener, shutdown.clone()));
        Self { addr, client: reqwest::Client::new(), db, shutdown, server }
    }

    /// Starts the same application with extra routes of the test's own
    /// mounted under the same middleware stack.
    pub(crate) async fn spawn_with(extra: Router<AppState>, request_timeout: Duration) -> Self {
        let db = TestDatabase::new().await;
        let config = config(&db, request_timeout);
        let state = AppState { db: Database::connect(db.url(), 2).await.expect("connect") };
        let app = anchor_gateway::app(&config, state, Some(extra));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await?;
            Ok(())
        });
        Self { addr, client: reqwest::Client::new(), db, shutdown, server }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    /// Stops the server gracefully and drops the database.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.expect("server task").expect("server ran cleanly");
        self.db.drop_now().await;
    }
}

fn config(db: &TestDatabase, request_timeout: Duration) -> Config {
    Config { database_url: db.url().clone(), database_max_connections: 4, request_timeout, body_limit_bytes: 64 * 1024 }
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
