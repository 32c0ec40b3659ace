//! The agent's footprint while it runs at a 10 s interval against the real
//! gateway: peak resident memory (the kernel's high-water mark, `VmHWM`, so
//! no short peak between samples is missed) and CPU time over the whole
//! run, against the targets (< 15 MB, < 1 % of a core) and beside a
//! baseline measured the same way in the same run (a `sleep` process: the
//! smallest a process gets here).
//!
//! `cargo bench -p anchor-edge-agent --bench footprint`;
//! `ANCHOR_BENCH_SECONDS` (default 65: at least 6 batches, the first at the
//! start and one every 10 s).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_testkit::TestDatabase;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// (peak RSS in kB, CPU seconds) of a live process over its whole life so far.
fn footprint(child: &Child) -> (u64, f64) {
    let pid = child.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is alive");
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process is alive");
    // The fields after the command name (which may hold spaces): utime and
    // stime are the 14th and 15th of the line, the 12th and 13th here.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).expect("utime and stime");
    (peak, (field(11) + field(12)) / clock_ticks())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::var("ANCHOR_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(65);
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
            1,
            false,
        )
        .await
        .expect("token");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = anchor_gateway::Config {
        database_url: db.url().clone(),
        database_max_connections: 4,
        database_recycling: Default::default(),
        request_timeout: Duration::from_secs(30),
        body_limit_bytes: 1024 * 1024,
        data_dir: data_dir.path().to_path_buf(),
        dev_issuer: true,
        issuers: Vec::new(),
        public_url: format!("http://{addr}"),
        oidc: None,
        evidence: anchor_evidence::EvidenceSetup::new(None, data_dir.path(), None).expect("evidence"),
        webhook_allowlist: Default::default(),
        webhook_limits: Default::default(),
        access: Default::default(),
        telemetry: Default::default(),
        mail_enabled: false,
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
            let began = Instant::now();
            std::thread::sleep(span);
            let measured = (footprint(&agent), began.elapsed());
            let _ = agent.kill();
            let _ = agent.wait();
            let mut sleeper = Command::new("sleep").arg(seconds.to_string()).spawn().expect("sleep");
            let began = Instant::now();
            std::thread::sleep(Duration::from_secs(2));
            let baseline = (footprint(&sleeper), began.elapsed());
            let _ = sleeper.kill();
            let _ = sleeper.wait();
            (measured, baseline)
        }
    })
    .await
    .expect("join");
    let ((rss, cpu), lived) = agent;
    let ((baseline_rss, baseline_cpu), baseline_lived) = baseline;
    let share = cpu / lived.as_secs_f64() * 100.0;
    let baseline_share = baseline_cpu / baseline_lived.as_secs_f64() * 100.0;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_bench.telemetry_ingest_batches")
        .fetch_one(store.pool())
        .await
        .expect("count");
    println!("edge agent footprint over {:.0} s at a 10 s interval ({stored} batches delivered)", lived.as_secs_f64());
    println!("  baseline, a sleep process: peak {baseline_rss} kB resident, CPU {baseline_share:.2}% of a core");
    println!(
        "  agent: peak {rss} kB resident ({:.1}x the baseline; {:.0}% of the 15 MB target: {}), CPU {cpu:.2} s = {share:.3}% of a core ({:.0}% of the 1% target: {})",
        rss as f64 / baseline_rss.max(1) as f64,
        rss as f64 / (15.0 * 1024.0) * 100.0,
        if rss < 15 * 1024 { "met" } else { "NOT met" },
        share / 1.0 * 100.0,
        if share < 1.0 { "met" } else { "NOT met" }
    );
    assert!(stored >= 6, "the run covers at least 6 batches: {stored} delivered; raise ANCHOR_BENCH_SECONDS");
    stop.cancel();
    server.await.expect("task").expect("gateway");
    store.close().await;
    db.drop_now().await;
}
