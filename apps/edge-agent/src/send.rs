//! Delivery: the spool, oldest first, each batch signed with a fresh agent
//! token. 200 acknowledges the batch (it leaves the spool); 422 means the
//! server will never take it and 413 that it is too large: a batch of
//! several items is split in two and both halves are spooled, a single item
//! is dropped. Every drop is counted and reported (see the spool). Anything
//! else stops this round and is retried with exponential backoff and jitter,
//! waiting at least the server's `Retry-After` (429: the agent sends too
//! often; 503: the server is busy). An acknowledgement that says part of the
//! batch was not stored (`refused`: new series beyond the agent's limit) is
//! logged.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use ed25519_dalek::SigningKey;

use crate::{
    spool::{DropReason, Spool},
    state::Identity,
};

/// Why a delivery round stopped.
#[derive(Debug)]
pub(crate) struct Undelivered {
    pub(crate) reason: String,
    /// How long the server asked the agent to wait (`Retry-After`).
    pub(crate) retry_after: Option<Duration>,
}

impl From<String> for Undelivered {
    fn from(reason: String) -> Self {
        Self { reason, retry_after: None }
    }
}

impl std::fmt::Display for Undelivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The longest `Retry-After` the agent honours.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The HTTP client: blocking, no redirects, bounded waits.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("anchor-edge-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

pub(crate) struct Sender {
    url: String,
    agent_id: String,
    key: SigningKey,
    http: ureq::Agent,
    status: std::path::PathBuf,
    state_dir: std::path::PathBuf,
    /// Batches larger than this are split before sending.
    largest_body: usize,
}

/// The gateway's default body limit. A server refusing a large body may
/// answer 413 and close before reading it, and a client still writing the
/// body then sees a broken connection rather than the 413; so batches over
/// the limit a server most likely has are split before they are sent.
const LARGEST_BODY: usize = 1024 * 1024;

impl Sender {
    pub(crate) fn new(identity: &Identity, state_dir: &std::path::Path) -> Self {
        Self {
            url: format!("{}/api/v1/telemetry/batches", identity.server),
            agent_id: identity.agent_id.clone(),
            key: identity.key.clone().expect("loaded with its key"),
            http: agent(),
            status: state_dir.join("status.json"),
            state_dir: state_dir.to_path_buf(),
            largest_body: LARGEST_BODY,
        }
    }

    /// Sends until the spool is empty, something fails, or `stop`.
    pub(crate) fn deliver(&self, spool: &mut Spool, stop: &Arc<AtomicBool>) -> Result<(), Undelivered> {
        while !stop.load(Ordering::Relaxed) {
            let Some((sequence, body)) = spool.oldest().map_err(|e| e.to_string())? else { return Ok(()) };
            if body.len() > self.largest_body {
                // A single item goes as it is: only the server knows its limit.
                let halves = spool.split(sequence, || crate::state::next_sequence(&self.state_dir));
                if let Some((first, second)) = halves.map_err(|e| e.to_string())? {
                    crate::warn(&format!(
                        "batch {sequence} is {} bytes, over {}; split into batches {first} and {second}",
                        body.len(),
                        self.largest_body
                    ));
                    continue;
                }
            }
            let token = anchor_edge_protocol::sign_token(&self.key, &self.agent_id, Duration::from_secs(120));
            let response = self
                .http
                .post(&self.url)
                .header("authorization", &format!("Bearer {token}"))
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .send(&body[..]);
            let mut response = match response {
                Ok(response) => response,
                Err(e) => return Err(format!("cannot reach the server: {e}").into()),
            };
            match response.status().as_u16() {
                200 => {
                    let answer = response.body_mut().read_to_string().unwrap_or_default();
                    let ack: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
                    if ack["refused"].is_object() {
                        crate::warn(&format!("the server did not store part of batch {sequence}: {}", ack["refused"]));
                    }
                    spool.acknowledge(sequence).map_err(|e| e.to_string())?;
                    let at = time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                    let status = serde_json::json!({"acknowledged_sequence": sequence, "acknowledged_at": at});
                    let _ = crate::state::write_atomic(&self.status, status.to_string().as_bytes(), 0o600);
                }
                422 => {
                    let detail = response.body_mut().read_to_string().unwrap_or_default();
                    let why = format!("the server refused it for good: {detail}");
                    spool.drop_batch(sequence, DropReason::Invalid, &why).map_err(|e| e.to_string())?;
                }
                413 => {
                    let halves = spool
                        .split(sequence, || crate::state::next_sequence(&self.state_dir))
                        .map_err(|e| e.to_string())?;
                    match halves {
                        Some((first, second)) => crate::warn(&format!(
                            "the server found batch {sequence} too large; split into batches {first} and {second}"
                        )),
                        None => spool
                            .drop_batch(
                                sequence,
                                DropReason::TooLarge,
                                "the server finds even this single item too large",
                            )
                            .map_err(|e| e.to_string())?,
                    }
                }
                401 => return Err("the server does not accept this agent's identity (revoked?)".to_owned().into()),
                status @ (429 | 503) => {
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s).min(LONGEST_RETRY_AFTER));
                    return Err(Undelivered { reason: format!("the server answered {status}"), retry_after });
                }
                status => return Err(format!("the server answered {status}").into()),
            }
        }
        Ok(())
    }
}

/// Exponential backoff from one second up to `cap`, each wait drawn between
/// half and all of its ceiling ("equal jitter"): agents cut off together
/// spread their retries, and none retries sooner than half the ceiling.
pub(crate) struct Backoff {
    attempt: u32,
    cap: Duration,
}

impl Backoff {
    pub(crate) fn new(cap: Duration) -> Self {
        Self { attempt: 0, cap: cap.max(Duration::from_secs(1)) }
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    pub(crate) fn next(&mut self) -> Duration {
        use rand::Rng;
        let ceiling = Duration::from_secs(1u64 << self.attempt.min(16)).min(self.cap);
        self.attempt += 1;
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{BufRead, BufReader, Read, Write},
        net::TcpListener,
        sync::{Mutex, atomic::AtomicUsize},
    };

    use anchor_edge_protocol::{Batch, Check, Event, Inventory, Labels, Metric};
    use serde_json::json;

    use super::*;

    #[test]
    fn backoff_waits_between_half_and_all_of_a_doubling_capped_ceiling() {
        let mut backoff = Backoff::new(Duration::from_secs(8));
        for ceiling in [1, 2, 4, 8, 8, 8] {
            let wait = backoff.next();
            let ceiling = Duration::from_secs(ceiling);
            assert!(wait >= ceiling / 2 && wait <= ceiling, "{wait:?} for a ceiling of {ceiling:?}");
        }
        backoff.reset();
        assert!(backoff.next() <= Duration::from_secs(1));
    }

    /// A server that answers like the gateway: 413 from the headers alone
    /// when the body is over `limit` (closing without reading it), 422 for a
    /// batch with a metric named `bad`, otherwise 200; it keeps what it took.
    fn server(limit: usize) -> (String, Arc<Mutex<Vec<Batch>>>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&taken);
        let largest = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&largest);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut stream = stream;
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("length");
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if line != "\r\n" {
                        break;
                    }
                    seen.fetch_max(length, Ordering::SeqCst);
                    if length > limit {
                        let _ = stream.write_all(
                            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        break;
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).expect("body");
                    let mut json = Vec::new();
                    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut json).expect("gzip");
                    let batch: Batch = serde_json::from_slice(&json).expect("batch");
                    let answer = if batch.metrics.iter().any(|m| m.name == "bad") {
                        "HTTP/1.1 422 Unprocessable Entity\r\ncontent-length: 2\r\n\r\n{}".to_owned()
                    } else {
                        store.lock().expect("lock").push(batch);
                        let body = json!({"batch_id": "tb_x", "duplicate": false}).to_string();
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len())
                    };
                    stream.write_all(answer.as_bytes()).expect("answer");
                }
            }
        });
        (url, taken, largest)
    }

    fn batch(sequence: i64, metrics: Vec<(&str, Labels)>) -> Batch {
        let at = time::OffsetDateTime::now_utc();
        let metrics = metrics
            .into_iter()
            .enumerate()
            .map(|(i, (name, labels))| Metric { name: name.into(), value: i as f64 * 1.37, at, labels: Some(labels) })
            .collect();
        Batch { sequence, sent_at: Some(at), metrics, checks: vec![], inventory: None, events: vec![] }
    }

    /// Letters that do not compress.
    fn noise(n: usize) -> String {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..n).map(|_| char::from(rng.random_range(b'a'..=b'z'))).collect()
    }

    fn identity(server: String) -> Identity {
        Identity {
            server,
            agent_id: "agt_test".into(),
            workspace: "acme".into(),
            key: Some(SigningKey::from_bytes(&[7; 32])),
        }
    }

    #[test]
    fn batches_over_the_largest_body_are_split_before_sending_and_single_items_go_as_they_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("sequence"), "10").expect("sequence");
        let (url, taken, largest) = server(usize::MAX);
        let mut sender = Sender::new(&identity(url), dir.path());
        sender.largest_body = 2000;
        let mut spool =
            Spool::open(&dir.path().join("spool"), &dir.path().join("dropped.json"), u64::MAX).expect("spool");
        let labels = |i: usize| Labels::from([("mount", format!("/srv/{}", i.pow(7)))]);
        spool.push(0, batch(0, (0..300).map(|i| ("disk.used_percent", labels(i))).collect())).expect("push");
        // One check whose output (4 KiB) does not compress.
        let at = time::OffsetDateTime::now_utc();
        let check = Check { name: "noisy".into(), status: "failing".into(), output: noise(4096), at };
        spool.push(1, Batch { checks: vec![check], ..batch(1, vec![]) }).expect("push");
        sender.deliver(&mut spool, &Arc::new(AtomicBool::new(false))).expect("delivered");
        let taken = taken.lock().expect("lock");
        assert_eq!(taken.iter().filter(|b| b.sequence != 1).map(|b| b.metrics.len()).sum::<usize>(), 300);
        assert!(taken.iter().filter(|b| b.sequence != 1).count() >= 2, "split");
        assert!(taken.iter().any(|b| b.sequence == 1), "a single item is sent as it is");
        assert!(largest.load(Ordering::SeqCst) > 2000, "the single item was larger");
        assert_eq!(spool.dropped().count(), 0);
    }

    #[test]
    fn too_large_batches_are_split_and_refused_ones_are_dropped_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("sequence"), "10").expect("sequence");
        // 40 metrics whose labels do not compress: about 40 x 200 bytes.
        let big = batch(0, (0..40).map(|_| ("disk.used_percent", Labels::from([("mount", noise(250))]))).collect());
        let limit = {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&serde_json::to_vec(&big).expect("json")).expect("gzip");
            gz.finish().expect("gzip").len() * 2 / 3
        };
        let (url, taken, _) = server(limit);
        let sender = Sender::new(&identity(url), dir.path());
        let mut spool =
            Spool::open(&dir.path().join("spool"), &dir.path().join("dropped.json"), u64::MAX).expect("spool");
        spool.push(0, big).expect("push");
        spool.push(1, batch(1, vec![("bad", Labels::default())])).expect("push");
        // An inventory alone, larger than the limit: strings that do not compress.
        let facts: serde_json::Map<String, serde_json::Value> =
            (0..limit * 2 / 1000 + 1).map(|i| (format!("fact{i}"), noise(1000).into())).collect();
        let inventory = Inventory::new(&facts.into()).expect("within bounds");
        spool.push(2, Batch { inventory: Some(inventory), ..batch(2, vec![]) }).expect("push");
        let stop = Arc::new(AtomicBool::new(false));
        sender.deliver(&mut spool, &stop).expect("delivered");
        assert_eq!(spool.len(), 0);
        assert_eq!(spool.dropped().count(), 2, "1 refused, 2 too large alone");

        spool.push(3, batch(3, vec![("load.1m", Labels::default())])).expect("push");
        sender.deliver(&mut spool, &stop).expect("delivered");
        assert_eq!(spool.dropped().count(), 0, "the report was acknowledged");
        let taken = taken.lock().expect("lock");
        let metrics: usize = taken.iter().filter(|b| b.sequence >= 10).map(|b| b.metrics.len()).sum();
        assert_eq!(metrics, 40, "every metric of the split batch arrived, under new numbers");
        assert!(taken.iter().all(|b| ![0, 1, 2].contains(&b.sequence)));
        let reports: Vec<serde_json::Value> = taken
            .iter()
            .flat_map(|b| &b.events)
            .filter(|e| e.kind() == crate::spool::DROP_REPORT)
            .map(Event::to_value)
            .collect();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0]["count"], 2);
        assert_eq!(reports[0]["reasons"], json!({"spool_full": 0, "invalid": 1, "too_large": 1}));
        assert_eq!(reports[0]["sequences"], json!([1, 2]));
    }
}
