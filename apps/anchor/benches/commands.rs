//! Commands end to end through the AgentField mock: latency (p50/p99) and
//! throughput of `POST .../tickets` until the execution has succeeded,
//! against a baseline measured in the same run on the same processes: a bare
//! AgentField round trip (sync execute of the agent node's `ticket_triage`
//! reasoner through the mock, no database). The ratios say what the
//! durable path (idempotency key, execution row, signed envelope, outbox,
//! hand-off, skill transaction, signed webhook, receipt, completion
//! events) costs on top of calling AgentField at all.
//!
//! `cargo bench -p anchor --bench commands --profile dev`;
//! `ANCHOR_BENCH_COMMANDS` (default 300) and `ANCHOR_BENCH_CONCURRENCY` (16).

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/commands/platform.rs"]
mod platform;

use std::time::{Duration, Instant};

use anchor_agentfield::{AgentFieldClient, ClientConfig, ExecuteRequest};
use anchor_domain::Role;
use futures_util::{StreamExt, stream};
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn p(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `n` calls of `call`, `concurrency` at a time; each returns its latency.
async fn measure<F, Fut>(n: usize, concurrency: usize, call: F) -> Run
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Duration>,
{
    let started = Instant::now();
    let mut latencies: Vec<Duration> = stream::iter(0..n).map(&call).buffer_unordered(concurrency).collect().await;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Run { latencies, elapsed }
}

#[tokio::main]
async fn main() {
    anchor_observability::init_logging(anchor_config::LogFormat::Text, "warn");
    let n = env_usize("ANCHOR_BENCH_COMMANDS", 300);
    let concurrency = env_usize("ANCHOR_BENCH_CONCURRENCY", 16);
    let platform = platform::Platform::start().await;
    platform.workspace("bench", "tess", Role::Technician).await;
    let agentfield =
        AgentFieldClient::new(ClientConfig::new(format!("http://{}", platform.agentfield_addr))).expect("client");

    let baseline = |i: usize| {
        let agentfield = agentfield.clone();
        async move {
            let request = ExecuteRequest {
                target: "anchor.ticket_triage".into(),
                input: json!({"title": format!("Printer {i} offline"), "description": "since this morning"}),
                ..ExecuteRequest::default()
            };
            let started = Instant::now();
            agentfield.execute(&request).await.expect("baseline execute");
            started.elapsed()
        }
    };
    let command = |i: usize| {
        let platform = &platform;
        async move {
            let body = json!({"title": format!("Printer {i} offline"), "priority": "p3"});
            let started = Instant::now();
            let response = platform.post("/api/v1/workspaces/bench/tickets", "tess", &body, Some(30)).await;
            assert_eq!(response.status(), 200, "finished within Prefer: wait");
            let execution: serde_json::Value = response.json().await.expect("json");
            assert_eq!(execution["status"], "succeeded", "{execution}");
            started.elapsed()
        }
    };

    // Warm both paths (connections, caches, the JIT of nothing).
    measure(20, 4, baseline).await;
    measure(20, 4, command).await;

    // Transactions the database ran (explicit ones and single statements
    // alike), read from its statistics around the commands run one at a time
    // (background work of the run, such as evidence, included).
    let transactions = || async {
        // The statistics are flushed about once a second.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        sqlx::query_scalar::<_, i64>(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(platform.store.pool())
        .await
        .expect("statistics")
    };
    let base_seq = measure(n, 1, baseline).await;
    let before = transactions().await;
    let cmd_seq = measure(n, 1, command).await;
    let after = transactions().await;
    let base_par = measure(n, concurrency, baseline).await;
    let cmd_par = measure(n, concurrency, command).await;

    println!("commands end to end through the AgentField mock ({n} commands each)");
    println!(
        "  baseline, AgentField round trip (sync execute of a reasoner), one at a time: p50 {:.1} ms, p99 {:.1} ms",
        ms(base_seq.p(0.5)),
        ms(base_seq.p(0.99))
    );
    println!(
        "  ticket.create, 202 -> succeeded (Prefer: wait), one at a time:            p50 {:.1} ms, p99 {:.1} ms",
        ms(cmd_seq.p(0.5)),
        ms(cmd_seq.p(0.99))
    );
    println!(
        "  database transactions per command (including its background work): {:.1}",
        (after - before) as f64 / n as f64
    );
    println!(
        "  latency ratio (command / baseline): p50 {:.1}x, p99 {:.1}x",
        cmd_seq.p(0.5).as_secs_f64() / base_seq.p(0.5).as_secs_f64(),
        cmd_seq.p(0.99).as_secs_f64() / base_seq.p(0.99).as_secs_f64()
    );
    println!(
        "  throughput with {concurrency} clients: commands {:.0}/s (p50 {:.1} ms, p99 {:.1} ms), baseline {:.0}/s; ratio {:.2}",
        cmd_par.rate(),
        ms(cmd_par.p(0.5)),
        ms(cmd_par.p(0.99)),
        base_par.rate(),
        cmd_par.rate() / base_par.rate()
    );
    let (succeeded, other): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status <> 'succeeded')
           FROM ws_bench.executions",
    )
    .fetch_one(platform.store.pool())
    .await
    .expect("count");
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_bench.tickets")
        .fetch_one(platform.store.pool())
        .await
        .expect("count");
    println!("  check: {succeeded} executions succeeded, {other} did not; {tickets} tickets (one per command)");
    assert_eq!((other, tickets), (0, succeeded));
    platform.stop().await;
}
