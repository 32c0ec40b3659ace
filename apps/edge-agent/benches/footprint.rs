//! The agent's footprint while it runs at a 10 s interval against the real
//! gateway: peak resident memory and CPU share, against the targets
//! (< 15 MB, < 1 % of a core) and beside a baseline measured in the same
//! run (a `sleep` process: the smallest a process gets here).
//!
//! `cargo bench -p anchor-edge-agent --bench footprint`;
//! `ANCHOR_BENCH_SECONDS` (default 30).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_testkit::TestDatabase;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// (peak RSS in kB, CPU seconds) of a process, sampled each 200 ms for `span`.
fn watch(child: &Child, span: Duration) -> (u64, f64) {
    let pid = child.id();
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = || -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or_default();
        (field(11) + field(12)) / ticks // utime, stime
    };
    let start_cpu = cpu();
    let mut peak = 0;
    let until = Instant::now() + span;
    while Instant::now() < until {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        peak = peak.max(rss);
        std::thread::sleep(Duration::from_millis(200));
    }
    (peak, cpu() - start_cpu)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::var("ANCHOR_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let db = TestDatabase::new().await;
    let store = db.connect(4).await;
    let workspace = store
        .create_workspace(&WorkspaceSlug::parse("bench").expect("slug"), &WorkspaceName::parse("Bench").expect("name"))
        .await
        .expect("workspace");
    let (token, digest) = anchor_telemetry::enrollment::generate();
    store
        .create_enrollment_token(
            &workspace,
            &digest,
            "bench",
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            None,
        )
        .await
        .expect("token");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = anchor_gateway::Config {
        database_url: db.url().clone(),
        database_max_connections: 4,
        request_timeout: Duration::from_secs(30),
        body_limit_bytes: 1024 * 1024,
        data_dir: data_dir.path().to_path_buf(),
        dev_issuer: true,
        issuers: Vec::new(),
        public_url: format!("http://{addr}"),
        oidc: None,
        evidence: anchor_evidence::EvidenceSetup::new(None, data_dir.path(), None).expect("evidence"),
        webhook_allowlist: Default::default(),
    };
    let stop = CancellationToken::new();
    let server = tokio::spawn(anchor_gateway::run(config, listener, stop.clone()));
    let state = tempfile::tempdir().expect("tempdir");
    let binary = env!("CARGO_BIN_EXE_anchor-edge-agent");
    let enrolled = tokio::task::spawn_blocking({
        let (state, token) = (state.path().to_path_buf(), token.clone());
        move || {
            Command::new(binary)
                .arg("--state-dir")
                .arg(&state)
                .args(["enroll", "--server", &format!("http://{addr}"), "--token", &token])
                .output()
                .expect("enroll")
        }
    })
    .await
    .expect("join");
    assert!(enrolled.status.success(), "{}", String::from_utf8_lossy(&enrolled.stderr));
    let span = Duration::from_secs(seconds);
    let (agent, baseline) = tokio::task::spawn_blocking({
        let state = state.path().to_path_buf();
        move || {
            let mut agent = Command::new(binary)
                .arg("--state-dir")
                .arg(&state)
                .args(["run", "--interval", "10"])
                .stderr(Stdio::null())
                .spawn()
                .expect("run");
            let measured = watch(&agent, span);
            let _ = agent.kill();
            let _ = agent.wait();
            let mut sleeper = Command::new("sleep").arg(seconds.to_string()).spawn().expect("sleep");
            let baseline = watch(&sleeper, Duration::from_secs(2));
            let _ = sleeper.kill();
            let _ = sleeper.wait();
            (measured, baseline)
        }
    })
    .await
    .expect("join");
    let (rss, cpu) = agent;
    let share = cpu / span.as_secs_f64() * 100.0;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_bench.telemetry_ingest_batches")
        .fetch_one(store.pool())
        .await
        .expect("count");
    println!("edge agent footprint over {seconds} s at a 10 s interval ({stored} batches delivered)");
    println!("  baseline, a sleep process: {} kB resident", baseline.0);
    println!(
        "  agent: peak {rss} kB resident ({:.1}x the baseline; {:.0}% of the 15 MB target: {}), CPU {share:.2}% of a core ({:.0}% of the 1% target: {})",
        rss as f64 / baseline.0.max(1) as f64,
        rss as f64 / (15.0 * 1024.0) * 100.0,
        if rss < 15 * 1024 { "met" } else { "NOT met" },
        share / 1.0 * 100.0,
        if share < 1.0 { "met" } else { "NOT met" }
    );
    stop.cancel();
    server.await.expect("task").expect("gateway");
    store.close().await;
    db.drop_now().await;
}
