//! `simulate`: many agents from one process, for load and scale tests. Each
//! simulated agent enrolls with its own device key and sends realistic
//! batches (the metric names and shapes of a real host, values on a random
//! walk) every interval, spread evenly over it. Latency is timed from each
//! batch's scheduled send time, so a sender falling behind shows as latency
//! rather than hiding in a queue; at the end it prints p50, p99 and max,
//! the batches/s achieved against the rate intended, errors, and how far
//! behind schedule the senders fell.

use std::{
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use anchor_edge_protocol::{Batch, Check, Labels, Metric};
use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use rand::Rng;
use serde_json::json;

struct SimAgent {
    id: String,
    key: SigningKey,
    sequence: i64,
    disk: f64,
    cpu: f64,
}

fn enroll(http: &ureq::Agent, server: &str, token: &str, n: usize) -> anyhow::Result<SimAgent> {
    let key = SigningKey::from_bytes(&rand::rng().random::<[u8; 32]>());
    let public =
        format!("z{}", bs58::encode([&[0xed, 0x01][..], key.verifying_key().as_bytes()].concat()).into_string());
    let body = json!({"token": token, "public_key": public,
                      "facts": {"hostname": format!("sim-{n:05}"), "os": "Simulated Linux", "simulated": true}});
    let mut response = http
        .post(&format!("{server}/api/v1/agents/enroll"))
        .header("content-type", "application/json")
        .send(body.to_string())
        .context("enroll a simulated agent")?;
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if response.status().as_u16() != 201 {
        bail!("enrollment refused ({}): {text}", response.status());
    }
    let answer: serde_json::Value = serde_json::from_str(&text)?;
    let mut rng = rand::rng();
    Ok(SimAgent {
        id: answer["agent_id"].as_str().context("agent_id")?.to_owned(),
        key,
        sequence: 0,
        disk: rng.random_range(20.0..70.0),
        cpu: rng.random_range(1.0..30.0),
    })
}

fn batch(agent: &mut SimAgent) -> Batch {
    let mut rng = rand::rng();
    let at = time::OffsetDateTime::now_utc();
    agent.disk = (agent.disk + rng.random_range(-0.2..0.3)).clamp(1.0, 99.0);
    agent.cpu = (agent.cpu + rng.random_range(-5.0..5.0)).clamp(0.0, 100.0);
    let metric = |name: &str, value: f64, labels: Option<Labels>| Metric { name: name.into(), value, at, labels };
    let root = || Some(Labels::from([("mount", "/")]));
    let eth0 = || Some(Labels::from([("interface", "eth0")]));
    let batch = Batch {
        sequence: agent.sequence,
        sent_at: Some(at),
        metrics: vec![
            metric("cpu.usage_percent", agent.cpu, None),
            metric("memory.used_percent", rng.random_range(30.0..80.0), None),
            metric("load.1m", rng.random_range(0.0..4.0), None),
            metric("disk.used_percent", agent.disk, root()),
            metric("disk.free_bytes", (100.0 - agent.disk) * 1e9, root()),
            metric("net.rx_bytes", agent.sequence as f64 * 1e6, eth0()),
            metric("net.tx_bytes", agent.sequence as f64 * 4e5, eth0()),
            metric("uptime.seconds", agent.sequence as f64 * 30.0, None),
            metric("processes.count", rng.random_range(120.0..240.0), None),
        ],
        checks: vec![Check { name: "disk free /".into(), status: "passing".into(), output: "ok".into(), at }],
        inventory: None,
        events: vec![],
    };
    agent.sequence += 1;
    batch
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// What one sending thread saw.
#[derive(Default)]
struct Tally {
    /// From each batch's scheduled send time to its acknowledgement.
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    /// How late a batch went out, at worst and for the thread's last one.
    worst_lag: Duration,
    last_lag: Duration,
    /// Scheduled within the run but not sent: the thread was too far behind.
    unsent: usize,
}

/// Enrolls `agents` simulated agents from `threads` threads at once.
fn enroll_all(server: &str, token: &str, agents: usize, threads: usize) -> anyhow::Result<Vec<Mutex<SimAgent>>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let enrolled: Mutex<Vec<(usize, SimAgent)>> = Mutex::new(Vec::with_capacity(agents));
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, agents.max(1)) {
            scope.spawn(|| {
                let http = crate::send::agent();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= agents || failed.lock().expect("not poisoned").is_some() {
                        return;
                    }
                    match enroll(&http, server, token, n) {
                        Ok(agent) => enrolled.lock().expect("not poisoned").push((n, agent)),
                        Err(e) => {
                            failed.lock().expect("not poisoned").get_or_insert(e.context(format!("agent {n}")));
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().expect("not poisoned") {
        return Err(e);
    }
    let mut enrolled = enrolled.into_inner().expect("not poisoned");
    enrolled.sort_unstable_by_key(|(n, _)| *n);
    Ok(enrolled.into_iter().map(|(_, agent)| Mutex::new(agent)).collect())
}

pub(crate) fn run(
    server: &str,
    token: &str,
    agents: usize,
    interval: Duration,
    duration: Duration,
    threads: usize,
) -> anyhow::Result<()> {
    let server = server.trim_end_matches('/');
    let threads = threads.max(1);
    let started = Instant::now();
    // Enrolling is one request each; a few threads keep the server busy
    // without making enrollment the load test.
    let enrolled = Arc::new(enroll_all(server, token, agents, threads.min(8))?);
    eprintln!("enrolled {agents} simulated agents in {:.1} s", started.elapsed().as_secs_f64());
    let began = Instant::now();
    let end = began + duration;
    let url = format!("{server}/api/v1/telemetry/batches");
    let workers: Vec<_> = (0..threads)
        .map(|w| {
            let (enrolled, url) = (Arc::clone(&enrolled), url.clone());
            std::thread::spawn(move || {
                let http = crate::send::agent();
                let count = enrolled.len();
                let mut tally = Tally::default();
                // Agent i is due at began + i/count * interval + k * interval.
                let mut round = 0u32;
                'rounds: loop {
                    for i in (w..count).step_by(threads) {
                        let due = began + interval * round + interval.mul_f64(i as f64 / count as f64);
                        if due >= end {
                            break 'rounds;
                        }
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let now = Instant::now();
                        // More than an interval behind when the run is over:
                        // what is left counts as not sent.
                        if now >= end + interval {
                            tally.unsent += 1;
                            continue;
                        }
                        let lag = now - due;
                        tally.worst_lag = tally.worst_lag.max(lag);
                        tally.last_lag = lag;
                        let mut agent = enrolled[i].lock().expect("not poisoned");
                        let body = gzip(&serde_json::to_vec(&batch(&mut agent)).expect("json"));
                        let token = anchor_edge_protocol::sign_token(&agent.key, &agent.id, Duration::from_secs(120));
                        let answer = http
                            .post(&url)
                            .header("authorization", &format!("Bearer {token}"))
                            .header("content-type", "application/json")
                            .header("content-encoding", "gzip")
                            .send(&body[..]);
                        match answer.map(|r| r.status().as_u16()) {
                            Ok(200) => tally.latencies.push(due.elapsed()),
                            failed => {
                                tally.errors += 1;
                                tally.first_error.get_or_insert_with(|| match failed {
                                    Ok(status) => format!("the server answered {status}"),
                                    Err(e) => e.to_string(),
                                });
                            }
                        }
                    }
                    round += 1;
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.join().map_err(|_| anyhow::anyhow!("a sending thread panicked"))?;
        total.latencies.extend(tally.latencies);
        total.errors += tally.errors;
        total.unsent += tally.unsent;
        total.worst_lag = total.worst_lag.max(tally.worst_lag);
        total.last_lag = total.last_lag.max(tally.last_lag);
        total.first_error = total.first_error.or(tally.first_error);
    }
    let elapsed = began.elapsed().as_secs_f64();
    let mut latencies = total.latencies;
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick =
        |p: f64| ms(latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default());
    let delivered = latencies.len();
    let attempted = delivered + total.errors;
    println!(
        "simulated {agents} agents every {interval:?} for {:.0} s: {delivered} batches delivered, {} errors, {} not sent; \
         {:.1} batches/s achieved of {:.1} intended; latency from the scheduled send time p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms; behind schedule at worst {:.1} ms, at the end {:.1} ms",
        duration.as_secs_f64(),
        total.errors,
        total.unsent,
        attempted as f64 / elapsed,
        agents as f64 / interval.as_secs_f64(),
        pick(0.5),
        pick(0.99),
        latencies.last().copied().map(ms).unwrap_or_default(),
        ms(total.worst_lag),
        ms(total.last_lag),
    );
    if let Some(error) = total.first_error {
        println!("first error: {error}");
    }
    Ok(())
}
