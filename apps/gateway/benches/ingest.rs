//! Telemetry ingest over HTTP (gzip batches, signed agent tokens, the whole
//! gateway path: authentication, decompression, validation, one unit of
//! work per batch) against a raw `COPY` of the same rows into the same
//! table, measured in the same run. Target: >= 40% of the raw rate.
//!
//! Then the gateway's memory under hostile agents: the `anchor-gateway`
//! binary, with the default settings, while `ANCHOR_BENCH_WORST_AGENTS`
//! (default 20) agents each send the worst batch the limits allow at once
//! (4 MiB once decompressed, the most metrics with the most labels, the
//! most checks and events, the rest an inventory; every series new). It
//! prints the gateway's resident memory before and its peak (`VmHWM`).
//!
//! `cargo bench -p anchor-gateway --bench ingest --profile dev`;
//! `ANCHOR_BENCH_SAMPLES` (default 200000), `ANCHOR_BENCH_BATCH` (500),
//! `ANCHOR_BENCH_AGENTS` (8, each sending its batches in order).

use std::{io::Write, time::Instant};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_testkit::TestDatabase;
use ed25519_dalek::SigningKey;
use futures_util::{StreamExt, stream};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::main]
async fn main() {
    let samples = env_usize("ANCHOR_BENCH_SAMPLES", 200_000);
    let per_batch = env_usize("ANCHOR_BENCH_BATCH", 500);
    let agents = env_usize("ANCHOR_BENCH_AGENTS", 8);
    let batches = samples / per_batch;
    let db = TestDatabase::new().await;
    let store = db.connect(4).await;
    let workspace = store
        .create_workspace(&WorkspaceSlug::parse("bench").expect("slug"), &WorkspaceName::parse("Bench").expect("name"))
        .await
        .expect("workspace");
    let now = time::OffsetDateTime::now_utc();
    let at = now.format(&time::format_description::well_known::Rfc3339).expect("format");

    // Baseline: COPY the same number of rows, as fast as PostgreSQL takes them.
    let mut conn = store.pool().acquire().await.expect("conn");
    let mut rows = String::with_capacity(samples * 80);
    for i in 0..samples {
        rows.push_str(&format!("agt_baseline\t{at}\tmetric.{}\t{}\t\\N\n", i % 40, i as f64 * 0.5));
    }
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY ws_bench.metric_samples (agent_id, at, name, value, labels) FROM STDIN")
        .await
        .expect("copy");
    copy.send(rows.as_bytes()).await.expect("send");
    let copied = copy.finish().await.expect("finish");
    let raw = copied as f64 / started.elapsed().as_secs_f64();
    drop(conn);

    // The gateway, and agents enrolled the way real ones are.
    let data_dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = anchor_gateway::Config {
        database_url: db.url().clone(),
        database_max_connections: 16,
        database_recycling: Default::default(),
        request_timeout: std::time::Duration::from_secs(30),
        body_limit_bytes: 4 * 1024 * 1024,
        data_dir: data_dir.path().to_path_buf(),
        dev_issuer: true,
        issuers: Vec::new(),
        public_url: format!("http://{addr}"),
        oidc: None,
        evidence: anchor_evidence::EvidenceSetup::new(None, data_dir.path(), None).expect("evidence"),
        webhook_allowlist: Default::default(),
        webhook_limits: Default::default(),
        access: Default::default(),
        // The limiter is not what is measured here.
        telemetry: anchor_telemetry::limits::Limits { batches_per_minute: 6000, ..Default::default() },
        mail_enabled: false,
    };
    let stop = CancellationToken::new();
    let server = tokio::spawn(anchor_gateway::run(config, listener, stop.clone()));
    let (token, digest) = anchor_telemetry::enrollment::generate();
    let _ = token;
    store
        .create_enrollment_token(&workspace, &digest, "bench", now + time::Duration::hours(1), agents as i32, false)
        .await
        .expect("token");
    let mut enrolled = Vec::new();
    for i in 0..agents {
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let public = anchor_crypto::multikey::public_multibase(&key.verifying_key());
        let (agent, _) =
            store.enroll_agent(&digest, &public, &format!("bench-{i}")).await.expect("enroll").expect("ok");
        enrolled.push((key, agent.id));
    }
    // Bodies prepared up front: the measurement is the server's.
    let bodies: Vec<Vec<Vec<u8>>> = (0..agents)
        .map(|a| {
            (0..batches.div_ceil(agents))
                .map(|sequence| {
                    let metrics: Vec<_> = (0..per_batch)
                        .map(|i| json!({"name": format!("metric.{}", i % 40), "value": (a * i) as f64, "at": at}))
                        .collect();
                    gzip(json!({"sequence": sequence, "metrics": metrics}).to_string().as_bytes())
                })
                .collect()
        })
        .collect();
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/telemetry/batches");
    let started = Instant::now();
    let sent: Vec<usize> = stream::iter(enrolled.iter().zip(&bodies))
        .map(|((key, id), bodies)| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let mut sent = 0;
                for body in bodies {
                    let token = anchor_telemetry::identity::sign(key, *id, std::time::Duration::from_secs(120));
                    let response = http
                        .post(&url)
                        .bearer_auth(token)
                        .header("content-type", "application/json")
                        .header("content-encoding", "gzip")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
                    sent += per_batch;
                }
                sent
            }
        })
        .buffer_unordered(agents)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let over_http: usize = sent.iter().sum();
    let rate = over_http as f64 / elapsed.as_secs_f64();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ws_bench.metric_samples WHERE agent_id <> 'agt_baseline'")
            .fetch_one(store.pool())
            .await
            .expect("count");
    assert_eq!(stored as usize, over_http, "every sample stored once");
    println!("telemetry ingest ({samples} samples; {per_batch} per batch; {agents} agents at once)");
    println!("  baseline, raw COPY into metric_samples: {raw:.0} samples/s");
    println!(
        "  over HTTP (gzip, signed agent token, validation, one unit of work per batch): {rate:.0} samples/s = {:.0}% of the baseline (target >= 40%: {})",
        rate / raw * 100.0,
        if rate / raw >= 0.4 { "met" } else { "NOT met" }
    );
    stop.cancel();
    server.await.expect("task").expect("gateway");

    worst_batches_memory(&db, &store, &workspace, env_usize("ANCHOR_BENCH_WORST_AGENTS", 20)).await;
    store.close().await;
    db.drop_now().await;
}

/// The worst batch the limits allow, as far as the gateway's memory goes:
/// just under 4 MiB once decompressed (and within the 1 MiB body limit
/// compressed), the most metrics (each with the most labels, every series
/// new), the most checks (long outputs) and events, the rest an inventory.
fn worst_batch(agent: usize) -> Vec<u8> {
    use anchor_telemetry::batch::{Labels, MAX_CHECKS, MAX_DECOMPRESSED, MAX_EVENTS, MAX_METRICS};
    let at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).expect("format");
    let metrics: Vec<_> = (0..MAX_METRICS)
        .map(|i| {
            let labels: serde_json::Map<String, serde_json::Value> =
                (0..Labels::MAX).map(|l| (format!("l{l}"), json!(format!("{agent}.{i}")))).collect();
            json!({"name": format!("metric.{}", i % 100), "value": i as f64, "at": at, "labels": labels})
        })
        .collect();
    let checks: Vec<_> = (0..MAX_CHECKS)
        .map(|i| json!({"name": format!("check {i}"), "status": "failing", "output": "x".repeat(1000), "at": at}))
        .collect();
    let events: Vec<_> =
        (0..MAX_EVENTS).map(|i| json!({"kind": "bench.event", "n": i, "text": "e".repeat(1000)})).collect();
    let mut batch = json!({"sequence": 0, "sent_at": at, "metrics": metrics, "checks": checks, "events": events});
    let room = MAX_DECOMPRESSED - batch.to_string().len() - 64;
    let facts: Vec<String> = (0..room / 1030).map(|_| "f".repeat(1024)).collect();
    batch["inventory"] = json!({"facts": facts});
    let json = batch.to_string();
    assert!(json.len() <= MAX_DECOMPRESSED && json.len() > MAX_DECOMPRESSED - 64 * 1024, "{}", json.len());
    let body = gzip(json.as_bytes());
    assert!(body.len() < 1024 * 1024, "within the default body limit: {}", body.len());
    body
}

/// A `/proc/<pid>/status` figure, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the gateway is alive");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field}"));
    kib / 1024.0
}

async fn worst_batches_memory(
    db: &TestDatabase,
    store: &anchor_store::Database,
    workspace: &anchor_store::Workspace,
    agents: usize,
) {
    use secrecy::ExposeSecret;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let mut gateway = std::process::Command::new(env!("CARGO_BIN_EXE_anchor-gateway"))
        .env("ANCHOR_DATABASE_URL", db.url().expose_secret())
        .env("ANCHOR_HTTP_ADDR", addr.to_string())
        .env("ANCHOR_METRICS_ADDR", "127.0.0.1:0")
        .env("ANCHOR_DATA_DIR", data_dir.path())
        .env("ANCHOR_LOG_FILTER", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start anchor-gateway");
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let mut ready = false;
    for _ in 0..600 {
        if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "anchor-gateway did not come up");
    let (_, digest) = anchor_telemetry::enrollment::generate();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    store.create_enrollment_token(workspace, &digest, "worst", expires, agents as i32, false).await.expect("token");
    let mut enrolled = Vec::new();
    for i in 0..agents {
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let public = anchor_crypto::multikey::public_multibase(&key.verifying_key());
        let (agent, _) =
            store.enroll_agent(&digest, &public, &format!("worst-{i}")).await.expect("enroll").expect("ok");
        enrolled.push((key, agent.id, worst_batch(i)));
    }
    let pid = gateway.id();
    let idle = status_mib(pid, "VmRSS:");
    let url = format!("{base}/api/v1/telemetry/batches");
    let started = Instant::now();
    let statuses: Vec<u16> = stream::iter(&enrolled)
        .map(|(key, id, body)| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let token = anchor_telemetry::identity::sign(key, *id, std::time::Duration::from_secs(120));
                let response = http
                    .post(&url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("send");
                response.status().as_u16()
            }
        })
        .buffer_unordered(agents)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let peak = status_mib(pid, "VmHWM:");
    let _ = gateway.kill();
    let _ = gateway.wait();
    let taken = statuses.iter().filter(|s| **s == 200).count();
    println!("hostile agents ({agents} at once, each the worst batch the limits allow: 4 MiB decompressed)");
    println!(
        "  anchor-gateway resident memory: {idle:.0} MiB before, peak {peak:.0} MiB (+{:.0} MiB); \
         {taken} batches taken, {} answered 503 to retry, in {:.1} s",
        peak - idle,
        statuses.iter().filter(|s| **s == 503).count(),
        elapsed.as_secs_f64()
    );
    assert!(statuses.iter().all(|s| [200, 503].contains(s)), "{statuses:?}");
    assert!(taken > 0, "no batch was taken");
}
