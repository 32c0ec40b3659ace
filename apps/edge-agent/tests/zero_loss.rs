//! The real agent binary against the real gateway.
//!
//! Exactly once: the agent talks to the gateway through a TCP proxy the test
//! controls. The gateway stops for a while and comes back; then the proxy
//! holds back the answer to a batch the gateway has already stored, and the
//! agent is killed with SIGKILL while it waits for that answer. Restarted,
//! it sends the batch again and the gateway acknowledges it as a duplicate.
//! Every sequence the agent made is stored once (or still spooled), and
//! every stored batch's samples are stored once.
//!
//! The spool's bound: with a tiny bound and the gateway away long enough,
//! the oldest batches are dropped; the drops reach the server as
//! `agent.batches_dropped` events, counted exactly, and the agent's drop
//! count clears once the server acknowledged them.
//!
//! Too large: against a gateway with a tiny body limit, a batch it answers
//! 413 is split and its halves delivered; the inventory, too large even
//! alone, is dropped and reported the same way.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_store::Database;
use anchor_testkit::TestDatabase;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
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
    start_gateway_with_limit(db, data_dir, listener, 1024 * 1024).await
}

async fn start_gateway_with_limit(
    db: &TestDatabase,
    data_dir: &Path,
    listener: TcpListener,
    body_limit_bytes: usize,
) -> Gateway {
    let addr = listener.local_addr().expect("addr");
    let config = anchor_gateway::Config {
        database_url: db.url().clone(),
        database_max_connections: 4,
        database_recycling: Default::default(),
        request_timeout: Duration::from_secs(30),
        body_limit_bytes,
        data_dir: data_dir.to_path_buf(),
        dev_issuer: true,
        issuers: Vec::new(),
        public_url: format!("http://{addr}"),
        oidc: None,
        evidence: anchor_evidence::EvidenceSetup::new(None, data_dir, None).expect("evidence"),
        webhook_allowlist: Default::default(),
        webhook_limits: Default::default(),
        access: Default::default(),
        telemetry: Default::default(),
        mail_enabled: false,
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

/// A TCP proxy in front of the gateway. While `hold` is set it swallows the
/// gateway's answers: the request has reached the gateway (and was stored)
/// but the agent never hears back. It counts the answers it swallowed and
/// the duplicate acknowledgements it passed on.
struct Proxy {
    addr: SocketAddr,
    hold: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
    duplicates: Arc<AtomicUsize>,
}

const DUPLICATE: &[u8] = br#""duplicate":true"#;

async fn start_proxy(upstream: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = Proxy {
        addr: listener.local_addr().expect("addr"),
        hold: Arc::default(),
        held: Arc::default(),
        duplicates: Arc::default(),
    };
    let (hold, held, duplicates) = (Arc::clone(&proxy.hold), Arc::clone(&proxy.held), Arc::clone(&proxy.duplicates));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (hold, held, duplicates) = (Arc::clone(&hold), Arc::clone(&held), Arc::clone(&duplicates));
            tokio::spawn(async move {
                // The gateway away: the agent's connection just closes.
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                let (mut from_agent, mut to_agent) = client.into_split();
                let (mut from_gateway, mut to_gateway) = server.into_split();
                let requests = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_agent, &mut to_gateway).await;
                    let _ = to_gateway.shutdown().await;
                });
                let mut buf = vec![0; 64 * 1024];
                // The end of the previous read, for a marker split between reads.
                let mut seen: Vec<u8> = Vec::new();
                loop {
                    let n = match from_gateway.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if hold.load(Ordering::SeqCst) {
                        held.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let found = seen.windows(DUPLICATE.len()).filter(|w| *w == DUPLICATE).count();
                    duplicates.fetch_add(found, Ordering::SeqCst);
                    seen.drain(..seen.len().saturating_sub(DUPLICATE.len() - 1));
                    if to_agent.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                requests.abort();
            });
        }
    });
    proxy
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

/// The sequence numbers the agent reserved so far.
fn made(state: &Path) -> i64 {
    std::fs::read_to_string(state.join("sequence")).expect("sequence").trim().parse().expect("a number")
}

/// Per stored batch: its sequence, the samples and checks it declared, and
/// the samples and check results stored at its time. A batch stored twice
/// would show its rows twice.
async fn per_batch(store: &Database) -> Vec<(i64, i32, i32, i64, i64)> {
    sqlx::query_as(
        "SELECT b.sequence, b.samples, b.checks,
                (SELECT count(*) FROM ws_acme.metric_samples m WHERE m.agent_id = b.agent_id AND m.at = b.sent_at),
                (SELECT count(*) FROM ws_acme.check_results c WHERE c.agent_id = b.agent_id AND c.at = b.sent_at)
           FROM ws_acme.telemetry_ingest_batches b ORDER BY b.sequence",
    )
    .fetch_all(store.pool())
    .await
    .expect("per batch")
}

/// (samples declared by the stored batches, samples stored, checks declared, check results stored).
async fn totals(store: &Database) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT coalesce(sum(samples), 0) FROM ws_acme.telemetry_ingest_batches)::bigint,
                (SELECT count(*) FROM ws_acme.metric_samples),
                (SELECT coalesce(sum(checks), 0) FROM ws_acme.telemetry_ingest_batches)::bigint,
                (SELECT count(*) FROM ws_acme.check_results)",
    )
    .fetch_one(store.pool())
    .await
    .expect("totals")
}

/// A running agent whose stderr goes to `log`; killed if the test fails.
struct Running {
    child: Option<Child>,
}

impl Running {
    fn start(state: &Path, log: &Path) -> Self {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log");
        let child = agent(state).args(["run", "--interval", "1"]).stderr(log).spawn().expect("run the agent");
        Self { child: Some(child) }
    }

    fn signal(&mut self, signal: nix::sys::signal::Signal) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).expect("signal");
        child.wait().expect("reaped")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_until(what: &str, patience: Duration, log: &Path, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !ok().await {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the agent said:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A workspace `acme`, an enrollment token, and a gateway.
/// A listener on a port the kernel never hands out for outgoing connections
/// (Linux draws those from 32768-60999), so that, once a test stops its
/// gateway, no client socket of a test running beside it can take the port
/// before the gateway comes back on it.
async fn bind_below_ephemeral_range() -> TcpListener {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let mut next = clock ^ u64::from(std::process::id()).rotate_left(32);
    for _ in 0..1000 {
        next = next.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let port = 20_000 + (next >> 33) % 12_000;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port as u16)).await {
            return listener;
        }
    }
    panic!("no free port between 20000 and 32000");
}

/// The gateway's address again, after it stopped. The port is outside the
/// ephemeral range, so only another explicit bind could hold it: wait for it
/// rather than fail at once.
async fn rebind(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) if Instant::now() > deadline => panic!("the same address again ({addr}): {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn setup() -> (TestDatabase, Database, String, tempfile::TempDir, SocketAddr, Gateway) {
    let db = TestDatabase::new().await;
    let store = db.connect(4).await;
    let workspace = store
        .create_workspace(&WorkspaceSlug::parse("acme").expect("slug"), &WorkspaceName::parse("Acme").expect("name"))
        .await
        .expect("workspace");
    let (token, digest) = anchor_telemetry::enrollment::generate();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    store.create_enrollment_token(&workspace, &digest, "test", expires, 1, false).await.expect("token");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let listener = bind_below_ephemeral_range().await;
    let addr = listener.local_addr().expect("addr");
    let gateway = start_gateway(&db, data_dir.path(), listener).await;
    (db, store, token, data_dir, addr, gateway)
}

fn enroll(state: &Path, server: &str, token: &str, config: &str) {
    let out = agent(state).args(["enroll", "--server", server, "--token", token]).output().expect("enroll");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("enrolled as agt_"));
    std::fs::write(state.join("config.json"), config).expect("config");
}

fn log_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("agent.log")
}

// The agent's commands block; the gateway needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_batch_arrives_exactly_once_across_outages_and_a_kill_mid_send() {
    let (db, store, token, data_dir, addr, gateway) = setup().await;
    let proxy = start_proxy(addr).await;
    let state = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let log = log_path(&logs);
    enroll(
        state.path(),
        &format!("http://{}", proxy.addr),
        &token,
        &format!(
            r#"{{"checks": [{{"kind": "disk_free", "mount": "/", "min_free_percent": 1}}, {{"kind": "tcp", "address": "{addr}"}}]}}"#
        ),
    );

    let mut running = Running::start(state.path(), &log);
    wait_until("three batches", Duration::from_secs(30), &log, async || stored(&store).await.len() >= 3).await;

    // The gateway goes away; batches pile up in the spool.
    gateway.stop().await;
    wait_until("a spool", Duration::from_secs(30), &log, async || spooled(state.path()).len() >= 3).await;
    let during_outage = spooled(state.path()).len();
    let listener = rebind(addr).await;
    let gateway = start_gateway(&db, data_dir.path(), listener).await;
    wait_until("the spool to drain", Duration::from_secs(30), &log, async || spooled(state.path()).len() <= 1).await;

    // The next answer is held back: the gateway stored the batch, the agent
    // waits for the acknowledgement, and is killed while it waits.
    proxy.hold.store(true, Ordering::SeqCst);
    wait_until("an answer held back", Duration::from_secs(30), &log, async || proxy.held.load(Ordering::SeqCst) > 0)
        .await;
    running.signal(nix::sys::signal::Signal::SIGKILL);
    proxy.hold.store(false, Ordering::SeqCst);
    let at_kill = stored(&store).await;
    let in_flight: Vec<i64> = spooled(state.path()).into_iter().filter(|s| at_kill.contains(s)).collect();
    assert_eq!(
        in_flight,
        at_kill.last().copied().into_iter().collect::<Vec<_>>(),
        "exactly the batch whose answer was held is both stored and still spooled"
    );
    assert_eq!(proxy.duplicates.load(Ordering::SeqCst), 0, "no batch was sent twice so far");

    let mut running = Running::start(state.path(), &log);
    wait_until("the resend and more batches", Duration::from_secs(30), &log, async || {
        proxy.duplicates.load(Ordering::SeqCst) >= 1 && stored(&store).await.len() >= at_kill.len() + 3
    })
    .await;
    assert!(running.signal(nix::sys::signal::Signal::SIGTERM).success(), "SIGTERM stops the agent cleanly");

    // Accounting: every sequence the agent made is on the server or still
    // spooled, never both; none is missing (the kill landed mid-send, not
    // between reserving a number and spooling its batch); the server stored
    // each batch's samples and check results once.
    let server = stored(&store).await;
    let spool = spooled(state.path());
    let next = made(state.path());
    let overlap: Vec<i64> = spool.iter().filter(|s| server.contains(s)).copied().collect();
    let missing: Vec<i64> = (0..next).filter(|s| !server.contains(s) && !spool.contains(s)).collect();
    let duplicates = proxy.duplicates.load(Ordering::SeqCst);
    let batches = per_batch(&store).await;
    let wrong: Vec<_> =
        batches.iter().filter(|(_, s, c, ms, cs)| i64::from(*s) != *ms || i64::from(*c) != *cs).collect();
    let (declared, samples, declared_checks, checks) = totals(&store).await;
    println!(
        "zero-loss: {next} batches made, {} stored, {} still spooled, {during_outage} spooled during the outage, \
         killed with batch {in_flight:?} stored but unacknowledged, {duplicates} duplicate acknowledgements, \
         {} missing, {} stored in two places; {samples} samples stored of {declared} in the stored batches, \
         {checks} check results of {declared_checks}",
        server.len(),
        spool.len(),
        missing.len(),
        overlap.len()
    );
    assert_eq!(server.len() + spool.len(), next as usize, "stored {server:?}, spooled {spool:?}");
    assert!(missing.is_empty() && overlap.is_empty(), "missing {missing:?}, both {overlap:?}");
    assert_eq!(duplicates, in_flight.len(), "only the batch killed in flight was sent twice, and acknowledged once");
    assert!(wrong.is_empty(), "batches whose rows are not stored exactly once: {wrong:?}");
    assert_eq!((samples, checks), (declared, declared_checks));
    assert!(batches.iter().all(|(_, s, c, _, _)| *s > 5 && *c == 2), "{batches:?}");
    let status = agent(state.path()).arg("status").output().expect("status");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("agent:      agt_") && status.contains("dropped:    0 batches"), "{status}");

    gateway.stop().await;
    store.close().await;
    db.drop_now().await;
}

/// The agent's count of drops not yet acknowledged as reported, from `status`.
async fn drops_pending(state: &Path) -> u64 {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_anchor-edge-agent"))
        .arg("--state-dir")
        .arg(state)
        .arg("status")
        .output()
        .await
        .expect("status");
    let out = String::from_utf8_lossy(&out.stdout);
    let line = out.lines().find_map(|l| l.strip_prefix("dropped:")).unwrap_or_else(|| panic!("no drop count: {out}"));
    line.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_spool_bound_the_oldest_batches_are_dropped_and_reported_exactly() {
    let (db, store, token, data_dir, addr, gateway) = setup().await;
    let state = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let log = log_path(&logs);
    // Room for a few batches (without an inventory, a few hundred bytes
    // each): the first, with the inventory, goes as soon as the next
    // arrives, and the oldest once the server has been away a few intervals.
    enroll(
        state.path(),
        &format!("http://{addr}"),
        &token,
        r#"{"spool_max_bytes": 2048, "checks": [{"kind": "disk_free", "mount": "/", "min_free_percent": 1}]}"#,
    );
    gateway.stop().await;
    let mut running = Running::start(state.path(), &log);
    wait_until("batches dropped at the bound", Duration::from_secs(30), &log, async || {
        drops_pending(state.path()).await >= 4
    })
    .await;
    let bytes: u64 = std::fs::read_dir(state.path().join("spool"))
        .expect("spool")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json.gz"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    // A batch larger than the bound by itself is kept, alone.
    assert!(bytes <= 2048 || spooled(state.path()).len() == 1, "the spool keeps its bound: {bytes} bytes");
    let listener = rebind(addr).await;
    let gateway = start_gateway(&db, data_dir.path(), listener).await;
    wait_until("the report acknowledged", Duration::from_secs(30), &log, async || {
        drops_pending(state.path()).await == 0 && spooled(state.path()).len() <= 1
    })
    .await;
    assert!(running.signal(nix::sys::signal::Signal::SIGTERM).success(), "SIGTERM stops the agent cleanly");

    let server = stored(&store).await;
    let spool = spooled(state.path());
    let next = made(state.path());
    let dropped: Vec<i64> = (0..next).filter(|s| !server.contains(s) && !spool.contains(s)).collect();
    let events: Vec<Value> =
        sqlx::query_scalar("SELECT events FROM ws_acme.telemetry_ingest_batches ORDER BY sequence")
            .fetch_all(store.pool())
            .await
            .expect("events");
    let reports: Vec<&Value> = events
        .iter()
        .flat_map(|e| e.as_array().into_iter().flatten())
        .filter(|e| e["kind"] == "agent.batches_dropped")
        .collect();
    let count: u64 = reports.iter().map(|r| r["count"].as_u64().expect("count")).sum();
    let spool_full: u64 = reports.iter().map(|r| r["reasons"]["spool_full"].as_u64().expect("reason")).sum();
    let mut listed: Vec<i64> = reports
        .iter()
        .flat_map(|r| r["sequences"].as_array().expect("list").iter().map(|s| s.as_i64().expect("n")))
        .collect();
    listed.sort_unstable();
    let (declared, samples, declared_checks, checks) = totals(&store).await;
    println!(
        "zero-loss: spool bound 2048 bytes: {next} batches made, {} stored, {} still spooled, {} dropped at the bound \
         ({dropped:?}); the server got {} drop reports counting {count} ({spool_full} spool_full, sequences {listed:?}); \
         {samples} samples stored of {declared}, {checks} check results of {declared_checks}",
        server.len(),
        spool.len(),
        dropped.len(),
        reports.len()
    );
    assert!(dropped.len() >= 4, "{dropped:?}");
    assert_eq!(
        (count, spool_full),
        (dropped.len() as u64, dropped.len() as u64),
        "each drop reported once: {reports:?}"
    );
    assert_eq!(listed, dropped, "the reports name the batches that never arrived");
    assert!(dropped.contains(&0), "the oldest went first");
    assert_eq!((samples, checks), (declared, declared_checks));
    assert!(std::fs::read_to_string(&log).expect("log").contains("warning: dropped batch 0 (spool_full)"));

    gateway.stop().await;
    store.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_too_large_for_the_server_are_split_and_a_single_item_too_large_is_dropped_and_reported() {
    let (db, store, token, data_dir, addr, gateway) = setup().await;
    let state = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let log = log_path(&logs);
    enroll(
        state.path(),
        &format!("http://{addr}"),
        &token,
        r#"{"checks": [{"kind": "disk_free", "mount": "/", "min_free_percent": 1}]}"#,
    );
    // Room for a few metrics per batch, never for the inventory (the
    // package list alone is larger), which goes with the agent's first batch.
    const LIMIT: usize = 600;
    gateway.stop().await;
    let listener = rebind(addr).await;
    let gateway = start_gateway_with_limit(&db, data_dir.path(), listener, LIMIT).await;
    let mut running = Running::start(state.path(), &log);
    wait_until("the drop reported and acknowledged", Duration::from_secs(30), &log, async || {
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        said.contains("dropped batch") && drops_pending(state.path()).await == 0 && stored(&store).await.len() >= 3
    })
    .await;
    assert!(running.signal(nix::sys::signal::Signal::SIGTERM).success(), "SIGTERM stops the agent cleanly");

    // Each split, from the agent's log: the batch and its two halves.
    let said = std::fs::read_to_string(&log).expect("log");
    let splits: Vec<(i64, i64, i64)> = said
        .lines()
        .filter_map(|l| l.split_once("the server found batch ")?.1.split_once(" too large; split into batches "))
        .map(|(parent, halves)| {
            let (a, b) = halves.split_once(" and ").expect("two halves");
            (parent.parse().expect("n"), a.parse().expect("n"), b.parse().expect("n"))
        })
        .collect();
    let server = stored(&store).await;
    let spool = spooled(state.path());
    let next = made(state.path());
    let events: Vec<Value> = sqlx::query_scalar("SELECT events FROM ws_acme.telemetry_ingest_batches")
        .fetch_all(store.pool())
        .await
        .expect("events");
    let reports: Vec<&Value> = events
        .iter()
        .flat_map(|e| e.as_array().into_iter().flatten())
        .filter(|e| e["kind"] == "agent.batches_dropped")
        .collect();
    let mut dropped: Vec<i64> = reports
        .iter()
        .flat_map(|r| r["sequences"].as_array().expect("list").iter().map(|s| s.as_i64().expect("n")))
        .collect();
    dropped.sort_unstable();
    let too_large: u64 = reports.iter().map(|r| r["reasons"]["too_large"].as_u64().expect("reason")).sum();
    let count: u64 = reports.iter().map(|r| r["count"].as_u64().expect("count")).sum();
    let (declared, samples, declared_checks, checks) = totals(&store).await;
    println!(
        "zero-loss: body limit {LIMIT} bytes: {next} batches made, {} splits ({splits:?}), {} stored, {} still spooled, \
         dropped as too large {dropped:?}, reported {count} ({too_large} too_large); {samples} samples stored of {declared}, \
         {checks} check results of {declared_checks}",
        splits.len(),
        server.len(),
        spool.len(),
    );
    assert!(!splits.is_empty(), "the first batch was split: {said}");
    // Every number the agent used was stored once, is still spooled, was
    // split into two that are accounted for in turn, or was dropped and
    // reported: nothing else.
    for s in 0..next {
        let places = [
            server.contains(&s),
            spool.contains(&s),
            splits.iter().any(|(parent, _, _)| *parent == s),
            dropped.contains(&s),
        ];
        assert_eq!(places.iter().filter(|p| **p).count(), 1, "batch {s}: stored, spooled, split, dropped: {places:?}");
    }
    assert_eq!((count, too_large), (dropped.len() as u64, dropped.len() as u64));
    // Only the inventory is too large alone: one drop, of a half.
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert!(splits.iter().any(|(_, a, b)| dropped[0] == *a || dropped[0] == *b));
    assert_eq!((samples, checks), (declared, declared_checks));
    assert!(said.contains("warning: dropped batch"), "{said}");

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
    store.create_enrollment_token(&workspace, &digest, "load", expires, 40, false).await.expect("token");
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
    assert!(report.contains("simulated 40 agents") && report.contains(", 0 errors"), "{report}");
    assert!(report.contains("of 40.0 intended") && report.contains("p99") && report.contains("behind schedule"));
    assert_eq!(store.agents(&workspace).await.expect("agents").len(), 40);
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_acme.telemetry_ingest_batches")
        .fetch_one(store.pool())
        .await
        .expect("count");
    let delivered: i64 = report
        .split(" batches delivered")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the delivered count");
    assert_eq!(batches, delivered, "every batch the simulator counts as delivered is stored");
    assert!(batches >= 80, "{batches} batches");
    gateway.stop().await;
    store.close().await;
    db.drop_now().await;
}
