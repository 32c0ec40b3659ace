//! The whole platform in one test process: gateway, worker, agent node and
//! the AgentField mock, each started through its own `run` on a bound
//! listener with a shutdown token of its own (so a test can stop one role),
//! against a fresh database. The benchmark shares this file.

use std::{net::SocketAddr, time::Duration};

use anchor_agentfield::ClientConfig;
use anchor_auth::{DevIssuer, dev_issuer::DEV_ISSUER};
use anchor_commands::orchestrator::OrchestratorConfig;
use anchor_domain::{Role, WorkspaceName, WorkspaceSlug};
use anchor_outbox::DispatcherConfig;
use anchor_store::{
    Database, Workspace,
    access::{AuditContext, SubjectRef},
};
use anchor_testkit::TestDatabase;
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// The control plane's internal token, which the agent node requires.
pub(crate) const NODE_TOKEN: &str = "node-token-for-tests";

/// One role: its stop switch and its task.
pub(crate) struct Running {
    pub(crate) shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn spawn(task: impl Future<Output = anyhow::Result<()>> + Send + 'static, shutdown: CancellationToken) -> Self {
        Self { shutdown, task: tokio::spawn(task) }
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("role task").expect("role stopped cleanly");
    }
}

/// How to start the platform.
pub(crate) struct Options {
    /// `false`: AgentField's port is bound but nobody answers (a control
    /// plane that is down); start it later with [`Platform::start_agentfield`].
    pub(crate) agentfield_up: bool,
    /// Hosts the mock may call back; empty: no webhooks reach the gateway
    /// (loopback is refused, as upstream does), so only polling finishes
    /// executions.
    pub(crate) webhook_hosts: Vec<String>,
    pub(crate) reconcile_after: Duration,
    pub(crate) nats_url: Option<String>,
    /// The evidence store (default: a directory in the data dir).
    pub(crate) evidence_store: Option<anchor_evidence::store::EvidenceStore>,
    /// What one edge agent may do (default: the settings' defaults).
    pub(crate) telemetry: anchor_telemetry::limits::Limits,
    /// When unacknowledged critical alerts are escalated (default 15 min).
    pub(crate) alert_escalate_after: Duration,
    /// The portal's e-mail (default: off); an empty `public_url` becomes the gateway's.
    pub(crate) mail: Option<anchor_notify::MailConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            agentfield_up: true,
            webhook_hosts: vec!["127.0.0.1".into()],
            reconcile_after: Duration::from_secs(30),
            nats_url: None,
            evidence_store: None,
            telemetry: Default::default(),
            alert_escalate_after: anchor_worker::DEFAULT_ALERT_ESCALATE_AFTER,
            mail: None,
        }
    }
}

pub(crate) struct Platform {
    pub(crate) db: TestDatabase,
    /// The store as the application role, to arrange and inspect.
    pub(crate) store: Database,
    pub(crate) client: reqwest::Client,
    pub(crate) gateway_addr: SocketAddr,
    pub(crate) agentfield_addr: SocketAddr,
    pub(crate) node_addr: SocketAddr,
    pub(crate) data_dir: tempfile::TempDir,
    dev: DevIssuer,
    pub(crate) gateway: Option<Running>,
    pub(crate) worker: Option<Running>,
    pub(crate) node: Option<Running>,
    pub(crate) agentfield: Option<Running>,
    /// The listener of an AgentField that is "down".
    pending_agentfield: Option<(TcpListener, Vec<String>)>,
    worker_config: anchor_worker::Config,
}

impl Platform {
    pub(crate) async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub(crate) async fn start_with(options: Options) -> Self {
        // Warnings and errors of every role, shown with a failing test's
        // output (the runtime is the test's own thread): why a page answered
        // 503 is then in the failure, not lost.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                std::env::var("ANCHOR_TEST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            ))
            .try_init();
        let db = TestDatabase::new().await;
        let data_dir = tempfile::tempdir().expect("tempdir");
        let store = Database::connect(db.url(), 4).await.expect("connect");
        let gateway_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let agentfield_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let node_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gateway_addr = gateway_listener.local_addr().expect("addr");
        let agentfield_addr = agentfield_listener.local_addr().expect("addr");
        let node_addr = node_listener.local_addr().expect("addr");
        let agentfield_url = format!("http://{agentfield_addr}");
        let mut evidence = anchor_evidence::EvidenceSetup::new(None, data_dir.path(), None).expect("evidence");
        if let Some(store) = options.evidence_store {
            evidence.store = store;
        }

        let gateway_config = anchor_gateway::Config {
            database_url: db.url().clone(),
            database_max_connections: 8,
            database_recycling: Default::default(),
            request_timeout: Duration::from_secs(40),
            body_limit_bytes: 64 * 1024,
            data_dir: data_dir.path().to_path_buf(),
            dev_issuer: true,
            issuers: Vec::new(),
            public_url: format!("http://{gateway_addr}"),
            oidc: None,
            evidence: evidence.clone(),
            webhook_allowlist: anchor_webhooks::address::Allowlist::parse("127.0.0.1").expect("allowlist"),
            webhook_limits: Default::default(),
            access: Default::default(),
            telemetry: options.telemetry,
            mail_enabled: options.mail.is_some(),
        };
        let token = CancellationToken::new();
        let gateway = Running::spawn(anchor_gateway::run(gateway_config, gateway_listener, token.clone()), token);

        // AgentField answers quickly or not at all: the outbox does the waiting.
        let mut client = ClientConfig::new(&agentfield_url);
        client.timeout = Duration::from_millis(800);
        client.max_retries = 0;
        let mut orchestrator =
            OrchestratorConfig::new("anchor", format!("http://{gateway_addr}/api/v1/callbacks/agentfield"));
        orchestrator.reconcile_after = options.reconcile_after;
        orchestrator.node_grace = Duration::from_secs(10);
        let worker_config = anchor_worker::Config {
            database_url: db.url().clone(),
            database_max_connections: 8,
            database_recycling: Default::default(),
            dispatcher: DispatcherConfig { poll_interval: Duration::from_millis(500), ..DispatcherConfig::default() },
            nats_url: options.nats_url.clone(),
            agentfield: client.clone(),
            orchestrator,
            callbacks: anchor_commands::callback::CallbackKey::load_or_create(data_dir.path()).expect("key"),
            evidence,
            signer: std::sync::Arc::new(
                anchor_commands::CommandSigner::load_or_create(data_dir.path()).expect("signer"),
            ),
            webhooks: anchor_webhooks::delivery::DeliveryConfig {
                schedule: vec![Duration::from_millis(100); 7],
                allowlist: anchor_webhooks::address::Allowlist::parse("127.0.0.1").expect("allowlist"),
                ..anchor_webhooks::delivery::DeliveryConfig::default()
            },
            access_audit_retention: anchor_worker::DEFAULT_ACCESS_AUDIT_RETENTION,
            alert_escalate_after: options.alert_escalate_after,
            mail: options.mail.clone().map(|mut mail| {
                if mail.public_url.is_empty() {
                    mail.public_url = format!("http://{gateway_addr}");
                }
                mail
            }),
        };
        let token = CancellationToken::new();
        let worker = Running::spawn(anchor_worker::run(worker_config.clone(), token.clone()), token);

        let node_config = anchor_agent_node::Config {
            database_url: db.url().clone(),
            database_max_connections: 8,
            database_recycling: Default::default(),
            agentfield: client,
            node_id: "anchor".into(),
            base_url: format!("http://{node_addr}"),
            heartbeat_interval: Duration::from_secs(5),
            verifier: anchor_commands::CommandVerifier::load(data_dir.path(), None).expect("verifier"),
            internal_token: NODE_TOKEN.to_owned().into(),
            llm: None,
        };
        let token = CancellationToken::new();
        let node = Running::spawn(anchor_agent_node::run(node_config, node_listener, token.clone()), token);

        let dev = DevIssuer::load_or_create(data_dir.path()).expect("dev issuer");
        let mut platform = Self {
            db,
            store,
            client: anchor_testkit::http_client(),
            gateway_addr,
            agentfield_addr,
            node_addr,
            data_dir,
            dev,
            gateway: Some(gateway),
            worker: Some(worker),
            node: Some(node),
            agentfield: None,
            pending_agentfield: Some((agentfield_listener, options.webhook_hosts)),
            worker_config,
        };
        if options.agentfield_up {
            platform.start_agentfield();
            platform.wait_for_node().await;
        }
        platform
    }

    /// Brings up the AgentField mock on its (already bound) port.
    pub(crate) fn start_agentfield(&mut self) {
        let (listener, hosts) = self.pending_agentfield.take().expect("AgentField is not running yet");
        let config = anchor_agentfield_mock::Config {
            webhook_allowed_hosts: hosts,
            webhook_backoff: Duration::from_millis(200),
            node_timeout: Duration::from_secs(10),
            node_token: Some(NODE_TOKEN.to_owned()),
            ..anchor_agentfield_mock::Config::default()
        };
        let token = CancellationToken::new();
        self.agentfield = Some(Running::spawn(anchor_agentfield_mock::run(config, listener, token.clone()), token));
    }

    /// Starts a worker again (after the test stopped the first one).
    pub(crate) fn start_worker(&mut self) {
        self.start_worker_with(|_| {});
    }

    /// Starts a worker again with its settings adjusted.
    pub(crate) fn start_worker_with(&mut self, adjust: impl FnOnce(&mut anchor_worker::Config)) {
        assert!(self.worker.is_none(), "a worker is running");
        let mut config = self.worker_config.clone();
        adjust(&mut config);
        let token = CancellationToken::new();
        self.worker = Some(Running::spawn(anchor_worker::run(config, token.clone()), token));
    }

    /// Waits until the agent node is registered with AgentField.
    pub(crate) async fn wait_for_node(&self) {
        let url = format!("http://{}/api/v1/discovery/capabilities", self.agentfield_addr);
        for _ in 0..200 {
            if let Ok(response) = self.client.get(&url).send().await
                && let Ok(body) = response.json::<Value>().await
                && body.to_string().contains("ticket_create")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the agent node never registered");
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway_addr)
    }

    pub(crate) fn token(&self, subject: &str) -> String {
        self.dev.issue(subject, Duration::from_secs(900)).expect("token")
    }

    /// A workspace with `subject` as a member in `role`.
    pub(crate) async fn workspace(&self, slug: &str, subject: &str, role: Role) -> Workspace {
        self.named_workspace(slug, "Test client", subject, role).await
    }

    /// A workspace named `name` with `subject` as a member in `role`.
    pub(crate) async fn named_workspace(&self, slug: &str, name: &str, subject: &str, role: Role) -> Workspace {
        let slug = WorkspaceSlug::parse(slug).expect("slug");
        let workspace =
            self.store.create_workspace(&slug, &WorkspaceName::parse(name).expect("name")).await.expect("create");
        self.member(&workspace, subject, role).await;
        workspace
    }

    pub(crate) async fn member(&self, workspace: &Workspace, subject: &str, role: Role) {
        let who = SubjectRef { issuer: DEV_ISSUER, subject };
        self.store.set_member(workspace, who, role, &AuditContext::default()).await.expect("member");
    }

    /// POSTs a command with a fresh idempotency key.
    pub(crate) async fn post(&self, path: &str, subject: &str, body: &Value, wait: Option<u64>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(path))
            .bearer_auth(self.token(subject))
            .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
            .json(body);
        if let Some(seconds) = wait {
            request = request.header("prefer", format!("wait={seconds}"));
        }
        request.send().await.expect("request")
    }

    pub(crate) async fn get(&self, path: &str, subject: &str) -> Value {
        let response = self.client.get(self.url(path)).bearer_auth(self.token(subject)).send().await.expect("get");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    /// DELETEs `path` with a fresh idempotency key.
    pub(crate) async fn delete(&self, path: &str, subject: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(self.token(subject))
            .header("idempotency-key", format!("key-{:032x}", rand::random::<u128>()))
            .send()
            .await
            .expect("delete")
    }

    /// Polls the execution at `location` until it finishes (or `patience`).
    pub(crate) async fn finished(&self, location: &str, subject: &str, patience: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let execution = self.get(location, subject).await;
            let status = execution["status"].as_str().unwrap_or_default().to_owned();
            if !["queued", "running"].contains(&status.as_str()) {
                return execution;
            }
            assert!(tokio::time::Instant::now() < deadline, "still {status} after {patience:?}: {execution}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Domain events written to the outbox for publication, by type.
    pub(crate) async fn events(&self, kind: &str) -> Vec<Value> {
        sqlx::query_scalar(
            "SELECT payload->'data' FROM platform.outbox_events
              WHERE topic = 'event.publish' AND payload->>'type' = $1 ORDER BY id",
        )
        .bind(kind)
        .fetch_all(self.store.pool())
        .await
        .expect("events")
    }

    pub(crate) async fn stop(mut self) {
        for role in
            [self.gateway.take(), self.worker.take(), self.node.take(), self.agentfield.take()].into_iter().flatten()
        {
            role.stop().await;
        }
        self.store.close().await;
        self.db.drop_now().await;
    }
}

/// The `Location` of a 202.
pub(crate) fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").and_then(|v| v.to_str().ok()).expect("Location").to_owned()
}
