//! `simulate`: many agents from one process, for load and scale tests. Each
//! simulated agent enrolls with its own device key and sends realistic
//! batches (the metric names and shapes of a real host, values on a random
//! walk) every interval, spread evenly over it. Prints the delivery
//! latency (p50, p99) and the rate at the end.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anchor_edge_protocol::{Batch, Check, Metric};
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
    let metric =
        |name: &str, value: f64, labels: Option<serde_json::Value>| Metric { name: name.into(), value, at, labels };
    let batch = Batch {
        sequence: agent.sequence,
        sent_at: Some(at),
        metrics: vec![
            metric("cpu.usage_percent", agent.cpu, None),
            metric("memory.used_percent", rng.random_range(30.0..80.0), None),
            metric("load.1m", rng.random_range(0.0..4.0), None),
            metric("disk.used_percent", agent.disk, Some(json!({"mount": "/"}))),
            metric("disk.free_bytes", (100.0 - agent.disk) * 1e9, Some(json!({"mount": "/"}))),
            metric("net.rx_bytes", agent.sequence as f64 * 1e6, Some(json!({"interface": "eth0"}))),
            metric("net.tx_bytes", agent.sequence as f64 * 4e5, Some(json!({"interface": "eth0"}))),
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

pub(crate) fn run(
    server: &str,
    token: &str,
    agents: usize,
    interval: Duration,
    duration: Duration,
    threads: usize,
) -> anyhow::Result<()> {
    let server = server.trim_end_matches('/');
    let http = crate::send::agent();
    let started = Instant::now();
    let mut enrolled = Vec::with_capacity(agents);
    for n in 0..agents {
        enrolled.push(Mutex::new(enroll(&http, server, token, n)?));
    }
    eprintln!("enrolled {agents} simulated agents in {:.1} s", started.elapsed().as_secs_f64());
    let enrolled = Arc::new(enrolled);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let url = format!("{server}/api/v1/telemetry/batches");
    let workers: Vec<_> = (0..threads.max(1))
        .map(|w| {
            let (enrolled, latencies, failures, stop, url) =
                (Arc::clone(&enrolled), Arc::clone(&latencies), Arc::clone(&failures), Arc::clone(&stop), url.clone());
            std::thread::spawn(move || {
                let http = crate::send::agent();
                let count = enrolled.len();
                // Agent i sends at began + i/count * interval + k * interval.
                let mut round = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    for i in (w..count).step_by(threads.max(1)) {
                        let due = began + interval * round + interval.mul_f64(i as f64 / count as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        if stop.load(Ordering::Relaxed) || began.elapsed() >= duration {
                            return;
                        }
                        let mut agent = enrolled[i].lock().expect("not poisoned");
                        let body = gzip(&serde_json::to_vec(&batch(&mut agent)).expect("json"));
                        let token = anchor_edge_protocol::sign_token(&agent.key, &agent.id, Duration::from_secs(120));
                        let sent = Instant::now();
                        let ok = http
                            .post(&url)
                            .header("authorization", &format!("Bearer {token}"))
                            .header("content-type", "application/json")
                            .header("content-encoding", "gzip")
                            .send(&body[..])
                            .is_ok_and(|r| r.status().as_u16() == 200);
                        if ok {
                            latencies.lock().expect("not poisoned").push(sent.elapsed());
                        } else {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    round += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    let mut latencies = latencies.lock().expect("not poisoned").clone();
    latencies.sort_unstable();
    let pick =
        |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default();
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "simulated {agents} agents every {interval:?} for {:.0} s: {} batches ({:.0}/s), {} failed; latency p50 {:.1} ms, p99 {:.1} ms",
        elapsed,
        latencies.len(),
        latencies.len() as f64 / elapsed,
        failures.load(Ordering::Relaxed),
        pick(0.5).as_secs_f64() * 1000.0,
        pick(0.99).as_secs_f64() * 1000.0
    );
    Ok(())
}
