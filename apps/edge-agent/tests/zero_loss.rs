//! The real agent binary against the real gateway: enroll, send, the
//! gateway stops for a while and comes back, the agent is killed with
//! SIGKILL and restarted; every batch the agent made arrives exactly once.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_store::Database;
use anchor_testkit::TestDatabase;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn agent(state: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_anchor-edge-agent"));
    command.arg("--state-dir").arg(state);
    command
}

struct Gateway {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_gateway(db: &TestDatabase, data_dir: &Path, listener: TcpListener) -> Gateway {
    let addr = listener.local_addr().expect("addr");
    let config = anchor_gateway::Config {
        database_url: db.url().clone(),
        database_max_connections: 4,
        request_timeout: Duration::from_secs(30),
        body_limit_bytes: 1024 * 1024,
        data_dir: data_dir.to_path_buf(),
        dev_issuer: true,
        issuers: Vec::new(),
        public_url: format!("http://{addr}"),
        oidc: None,
        evidence: anchor_evidence::EvidenceSetup::new(None, data_dir, None).expect("evidence"),
        webhook_allowlist: Default::default(),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(anchor_gateway::run(config, listener, stop.clone()));
    Gateway { stop, task }
}

impl Gateway {
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("task").expect("gateway stopped cleanly");
    }
}

/// Sequences the server stored, in order.
async fn stored(store: &Database) -> Vec<i64> {
    sqlx::query_scalar("SELECT sequence FROM ws_acme.telemetry_ingest_batches ORDER BY sequence")
        .fetch_all(store.pool())
        .await
        .expect("sequences")
}

/// Sequences still in the agent's spool.
fn spooled(state: &Path) -> Vec<i64> {
    let mut sequences: Vec<i64> = std::fs::read_dir(state.join("spool"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".json.gz").and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    sequences.sort_unstable();
    sequences
}

async fn wait_until(what: &str, patience: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn run_agent(state: &Path) -> Child {
    agent(state).args(["run", "--interval", "1"]).stderr(Stdio::null()).spawn().expect("run the agent")
}

// The agent's commands block; the gateway needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_batch_arrives_exactly_once_across_outages_and_kills() {
    let db = TestDatabase::new().await;
    let store = db.connect(4).await;
    let workspace = store
        .create_workspace(&WorkspaceSlug::parse("acme").expect("slug"), &WorkspaceName::parse("Acme").expect("name"))
        .await
        .expect("workspace");
    let (token, digest) = anchor_telemetry::enrollment::generate();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    store.create_enrollment_token(&workspace, &digest, "test", expires, Some(1)).await.expect("token");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let gateway = start_gateway(&db, data_dir.path(), listener).await;

    let state = tempfile::tempdir().expect("tempdir");
    let out = agent(state.path())
        .args(["enroll", "--server", &format!("http://{addr}"), "--token", &token])
        .output()
        .expect("enroll");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("enrolled as agt_"));
    std::fs::write(
        state.path().join("config.json"),
        format!(r#"{{"checks": [{{"kind": "disk_free", "mount": "/", "min_free_percent": 1}}, {{"kind": "tcp", "address": "{addr}"}}]}}"#),
    )
    .expect("config");

    let mut running = run_agent(state.path());
    wait_until("three batches", Duration::from_secs(30), async || stored(&store).await.len() >= 3).await;

    // The gateway goes away; batches pile up in the spool.
    gateway.stop().await;
    wait_until("a spool", Duration::from_secs(30), async || spooled(state.path()).len() >= 3).await;
    let during = spooled(state.path()).len();
    let listener = TcpListener::bind(addr).await.expect("the same address again");
    let gateway = start_gateway(&db, data_dir.path(), listener).await;
    wait_until("the spool to drain", Duration::from_secs(60), async || spooled(state.path()).len() <= 1).await;

    // Killed without warning, restarted.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(running.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("kill");
    running.wait().expect("reaped");
    let after_kill = stored(&store).await.len();
    let mut running = run_agent(state.path());
    wait_until("more batches after the restart", Duration::from_secs(30), async || {
        stored(&store).await.len() >= after_kill + 3
    })
    .await;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(running.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("term");
    assert!(running.wait().expect("exit").success(), "SIGTERM stops the agent cleanly");

    // Accounting: every sequence the agent used is on the server or still
    // spooled, never both, never twice. A number may be skipped only by a
    // kill between reserving it and spooling its batch.
    let server = stored(&store).await;
    let spool = spooled(state.path());
    let next: i64 =
        std::fs::read_to_string(state.path().join("sequence")).expect("sequence").trim().parse().expect("n");
    let duplicates = server.windows(2).filter(|w| w[0] == w[1]).count();
    let overlap = spool.iter().filter(|s| server.contains(s)).count();
    let missing: Vec<i64> = (0..next).filter(|s| !server.contains(s) && !spool.contains(s)).collect();
    println!(
        "zero-loss: {next} batches made, {} stored, {} still spooled, {during} spooled during the outage, \
         {duplicates} duplicates, {} skipped numbers ({missing:?})",
        server.len(),
        spool.len(),
        missing.len()
    );
    assert_eq!((duplicates, overlap), (0, 0));
    assert!(missing.len() <= 1, "at most the number reserved when the agent was killed: {missing:?}");
    let status = agent(state.path()).arg("status").output().expect("status");
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("agent:      agt_"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    // Checks and metrics arrived too.
    let (checks, samples): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM ws_acme.check_results), (SELECT count(*) FROM ws_acme.metric_samples)",
    )
    .fetch_one(store.pool())
    .await
    .expect("counts");
    assert!(
        checks >= 2 * server.len() as i64 && samples > 5 * server.len() as i64,
        "{checks} checks, {samples} samples"
    );
    gateway.stop().await;
    store.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_enrolls_many_agents_and_reports_latency() {
    let db = TestDatabase::new().await;
    let store = db.connect(4).await;
    let workspace = store
        .create_workspace(&WorkspaceSlug::parse("acme").expect("slug"), &WorkspaceName::parse("Acme").expect("name"))
        .await
        .expect("workspace");
    let (token, digest) = anchor_telemetry::enrollment::generate();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    store.create_enrollment_token(&workspace, &digest, "load", expires, Some(40)).await.expect("token");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let gateway = start_gateway(&db, data_dir.path(), listener).await;
    let state = tempfile::tempdir().expect("tempdir");
    let out = agent(state.path())
        .args(["simulate", "--server", &format!("http://{addr}"), "--token", &token])
        .args(["--agents", "40", "--interval", "1", "--duration", "3", "--threads", "8"])
        .output()
        .expect("simulate");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(report.contains("simulated 40 agents") && report.contains(", 0 failed"), "{report}");
    assert_eq!(store.agents(&workspace).await.expect("agents").len(), 40);
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_acme.telemetry_ingest_batches")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert!(batches >= 80, "{batches} batches");
    gateway.stop().await;
    store.close().await;
    db.drop_now().await;
}
