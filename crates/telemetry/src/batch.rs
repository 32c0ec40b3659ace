//! The telemetry batch an agent sends:
//!
//! ```json
//! {"sequence": 42, "sent_at": "2026-11-24T08:00:00Z",
//!  "metrics": [{"name": "disk.used_percent", "value": 91.5, "at": "...", "labels": {"mount": "/"}}],
//!  "checks": [{"name": "service nginx", "status": "failing", "output": "inactive", "at": "..."}],
//!  "inventory": {"os": "Debian 13", "packages": 812},
//!  "events": [{"kind": "agent.started", "at": "..."}]}
//! ```
//!
//! Bodies may be gzip or zstd compressed; the decompressed size is bounded.

use std::io::Read;

use anchor_store::agents::{CheckResult, Sample};
use time::OffsetDateTime;

/// Largest decompressed batch.
pub const MAX_DECOMPRESSED: usize = 16 * 1024 * 1024;
pub const MAX_METRICS: usize = 50_000;
pub const MAX_CHECKS: usize = 5_000;
pub const MAX_EVENTS: usize = 1_000;

pub use anchor_edge_protocol::{BATCHES_DROPPED, Batch, Check, Metric};

/// Why a batch was refused: a JSON Pointer and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct BatchError {
    pub pointer: String,
    pub message: String,
}

fn error(pointer: impl Into<String>, message: impl Into<String>) -> BatchError {
    BatchError { pointer: pointer.into(), message: message.into() }
}

/// Undoes `Content-Encoding` (none, gzip or zstd), refusing more than
/// [`MAX_DECOMPRESSED`] bytes.
pub fn decode_body(encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, BatchError> {
    let reader: Box<dyn Read + '_> = match encoding.map(str::trim) {
        None | Some("") | Some("identity") => return Ok(body.to_vec()),
        Some("gzip") => Box::new(flate2::read::GzDecoder::new(body)),
        Some("zstd") => {
            Box::new(ruzstd::decoding::StreamingDecoder::new(body).map_err(|e| error("", format!("not zstd: {e}")))?)
        }
        Some(other) => return Err(error("", format!("Content-Encoding {other} is not supported (gzip, zstd)"))),
    };
    let mut out = Vec::new();
    let read = reader.take(MAX_DECOMPRESSED as u64 + 1).read_to_end(&mut out);
    read.map_err(|e| error("", format!("cannot decompress: {e}")))?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(error("", format!("the batch is larger than {MAX_DECOMPRESSED} bytes once decompressed")));
    }
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    (1..=120).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// A machine's clock this far off is corrected for (below it, the
/// machine's own times are kept as they are).
pub const CLOCK_SKEW_TOLERANCE: time::Duration = time::Duration::seconds(60);

/// Parses and checks a batch; the error names the first bad field. A batch
/// whose `sent_at` shows the machine's clock off by more than
/// [`CLOCK_SKEW_TOLERANCE`] has its times moved onto the server's clock, so a
/// machine with a wrong clock still reports (rather than losing every batch).
pub fn parse(json: &[u8]) -> Result<Batch, BatchError> {
    let mut batch: Batch =
        serde_json::from_slice(json).map_err(|e| error("", format!("not a telemetry batch: {e}")))?;
    correct_clock(&mut batch, OffsetDateTime::now_utc());
    validate(&batch)?;
    Ok(batch)
}

fn correct_clock(batch: &mut Batch, now: OffsetDateTime) {
    let Some(sent_at) = batch.sent_at else { return };
    let skew = now - sent_at;
    if skew.abs() <= CLOCK_SKEW_TOLERANCE {
        return;
    }
    for m in &mut batch.metrics {
        m.at += skew;
    }
    for c in &mut batch.checks {
        c.at += skew;
    }
    batch.sent_at = Some(now);
}

fn validate(batch: &Batch) -> Result<(), BatchError> {
    if batch.sequence < 0 {
        return Err(error("/sequence", "must not be negative"));
    }
    if batch.metrics.len() > MAX_METRICS || batch.checks.len() > MAX_CHECKS || batch.events.len() > MAX_EVENTS {
        return Err(error("", format!("at most {MAX_METRICS} metrics, {MAX_CHECKS} checks and {MAX_EVENTS} events")));
    }
    let now = OffsetDateTime::now_utc();
    let plausible = |at: OffsetDateTime| (now - at).whole_days() < 30 && (at - now).whole_minutes() < 10;
    for (i, m) in batch.metrics.iter().enumerate() {
        if !valid_name(&m.name) {
            return Err(error(
                format!("/metrics/{i}/name"),
                "1-120 of a-z, 0-9, '.', '_' and '-', starting with a letter",
            ));
        }
        if !m.value.is_finite() {
            return Err(error(format!("/metrics/{i}/value"), "must be a finite number"));
        }
        if !plausible(m.at) {
            return Err(error(format!("/metrics/{i}/at"), "must be within the last 30 days and not in the future"));
        }
        if m.labels.as_ref().is_some_and(|l| !l.is_object()) {
            return Err(error(format!("/metrics/{i}/labels"), "must be an object"));
        }
    }
    for (i, c) in batch.checks.iter().enumerate() {
        if c.name.is_empty() || c.name.len() > 200 {
            return Err(error(format!("/checks/{i}/name"), "1-200 characters"));
        }
        if !["passing", "warning", "failing"].contains(&c.status.as_str()) {
            return Err(error(format!("/checks/{i}/status"), "passing, warning or failing"));
        }
        if !plausible(c.at) {
            return Err(error(format!("/checks/{i}/at"), "must be within the last 30 days and not in the future"));
        }
    }
    if batch.inventory.as_ref().is_some_and(|i| !i.is_object()) {
        return Err(error("/inventory", "must be an object"));
    }
    Ok(())
}

pub fn samples(batch: &Batch) -> Vec<Sample> {
    batch
        .metrics
        .iter()
        .map(|m| Sample { at: m.at, name: m.name.clone(), value: m.value, labels: m.labels.clone() })
        .collect()
}

pub fn check_results(batch: &Batch) -> Vec<CheckResult> {
    batch
        .checks
        .iter()
        .map(|c| CheckResult {
            at: c.at,
            name: c.name.clone(),
            status: c.status.clone(),
            output: c.output.chars().take(4000).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use super::*;

    fn now() -> String {
        OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).expect("format")
    }

    #[test]
    fn bad_batches_name_the_field() {
        let at = now();
        for (batch, pointer) in [
            (json!({"sequence": -1}), "/sequence"),
            (json!({"sequence": 1, "metrics": [{"name": "Cpu", "value": 1.0, "at": at}]}), "/metrics/0/name"),
            (
                json!({"sequence": 1, "metrics": [{"name": "cpu", "value": 1.0, "at": "2001-01-01T00:00:00Z"}]}),
                "/metrics/0/at",
            ),
            (json!({"sequence": 1, "checks": [{"name": "x", "status": "red", "at": at}]}), "/checks/0/status"),
            (json!({"sequence": 1, "inventory": []}), "/inventory"),
        ] {
            let err = parse(batch.to_string().as_bytes()).expect_err("refused");
            assert_eq!(err.pointer, pointer, "{batch}: {err}");
        }
        let ok = json!({"sequence": 7, "metrics": [{"name": "disk.used_percent", "value": 91.5, "at": at, "labels": {"mount": "/"}}]});
        assert_eq!(parse(ok.to_string().as_bytes()).map(|b| samples(&b).len()).expect("valid"), 1);
    }

    #[test]
    fn a_machine_with_a_wrong_clock_still_reports_on_the_servers_clock() {
        let server = OffsetDateTime::now_utc();
        let machine = server + time::Duration::hours(3); // three hours fast
        let fmt = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).expect("format");
        let sampled = machine - time::Duration::seconds(20);
        let batch = json!({"sequence": 1, "sent_at": fmt(machine),
                           "metrics": [{"name": "cpu.used_percent", "value": 5.0, "at": fmt(sampled)}],
                           "checks": [{"name": "disk", "status": "passing", "at": fmt(sampled)}]});
        let parsed = parse(batch.to_string().as_bytes()).expect("accepted, corrected");
        let at = parsed.metrics[0].at;
        assert!((at - (server - time::Duration::seconds(20))).abs() < time::Duration::seconds(5), "{at}");
        assert_eq!(parsed.checks[0].at, at);
        // Without sent_at there is nothing to correct by: a time in the
        // future is refused, naming the field.
        let unsent =
            json!({"sequence": 1, "metrics": [{"name": "cpu.used_percent", "value": 5.0, "at": fmt(machine)}]});
        assert_eq!(parse(unsent.to_string().as_bytes()).expect_err("refused").pointer, "/metrics/0/at");
        // A small difference is the machine's own business.
        let close = server + time::Duration::seconds(30);
        let batch = json!({"sequence": 1, "sent_at": fmt(close),
                           "metrics": [{"name": "cpu.used_percent", "value": 5.0, "at": fmt(close)}]});
        assert_eq!(parse(batch.to_string().as_bytes()).expect("ok").metrics[0].at, close);
    }

    #[test]
    fn gzip_and_zstd_bodies_are_decoded_within_the_bound() {
        let body = br#"{"sequence": 1}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body).expect("gzip");
        assert_eq!(decode_body(Some("gzip"), &gz.finish().expect("gzip")).expect("decoded"), body);
        let zstd = ruzstd::encoding::compress_to_vec(&body[..], ruzstd::encoding::CompressionLevel::Fastest);
        assert_eq!(decode_body(Some("zstd"), &zstd).expect("decoded"), body);
        assert!(decode_body(Some("br"), body).is_err());
        // A small body that inflates past the bound is refused.
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        bomb.write_all(&vec![b' '; MAX_DECOMPRESSED + 10]).expect("gzip");
        let bomb = bomb.finish().expect("gzip");
        assert!(bomb.len() < 100_000);
        assert!(decode_body(Some("gzip"), &bomb).expect_err("bounded").message.contains("larger"));
    }
}
