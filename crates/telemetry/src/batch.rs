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
//! Bodies may be gzip or zstd compressed. Reading one is bounded in memory
//! and in work: the decompressed output is capped while it streams (a zstd
//! frame asking for a window over 8 MiB is refused from its header, and
//! libzstd holds every block to the format's 128 KiB), and every part of
//! the batch is a bounded type, refused while it is read
//! ([`anchor_edge_protocol::bounded`]). [`read`] is CPU work: callers run it
//! on a blocking thread, not on the async runtime.

use std::{borrow::Cow, io::Read};

pub use anchor_edge_protocol::limits::{
    MAX_CHECK_NAME, MAX_CHECK_OUTPUT, MAX_CHECKS, MAX_DECOMPRESSED, MAX_EVENTS, MAX_METRICS, MAX_ZSTD_WINDOW_LOG,
};
pub use anchor_edge_protocol::{BATCHES_DROPPED, Batch, Check, Event, Inventory, Labels, Metric};
use anchor_store::agents::{CheckResult, NewSample};
use time::OffsetDateTime;

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

/// Why a body could not be read as a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Larger than [`MAX_DECOMPRESSED`] once decompressed, or a zstd frame
    /// that asks for a window over 2^[`MAX_ZSTD_WINDOW_LOG`] bytes (413).
    #[error("{0}")]
    TooLarge(String),
    /// A `Content-Encoding` other than gzip and zstd (415).
    #[error("Content-Encoding {0} is not supported (gzip, zstd)")]
    UnsupportedEncoding(String),
    /// Not a valid batch; the field is named (422).
    #[error(transparent)]
    Invalid(#[from] BatchError),
}

fn too_large() -> BodyError {
    BodyError::TooLarge(format!("the batch is larger than {MAX_DECOMPRESSED} bytes once decompressed"))
}

/// Undoes `Content-Encoding` (none, gzip or zstd), stopping as soon as the
/// output passes [`MAX_DECOMPRESSED`] bytes: no more than that is ever
/// produced, and a zstd frame's window is bounded before anything is
/// decoded.
pub fn decode_body<'b>(encoding: Option<&str>, body: &'b [u8]) -> Result<Cow<'b, [u8]>, BodyError> {
    let cannot = |e: std::io::Error| BodyError::Invalid(error("", format!("cannot decompress: {e}")));
    match encoding.map(str::trim) {
        None | Some("") | Some("identity") if body.len() > MAX_DECOMPRESSED => Err(too_large()),
        None | Some("") | Some("identity") => Ok(Cow::Borrowed(body)),
        Some(gzip) if gzip.eq_ignore_ascii_case("gzip") => {
            read_capped(flate2::read::GzDecoder::new(body), body.len()).map_err(|e| e.map_or_else(too_large, cannot))
        }
        Some(zstd) if zstd.eq_ignore_ascii_case("zstd") => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(body).map_err(cannot)?;
            decoder.window_log_max(MAX_ZSTD_WINDOW_LOG).map_err(cannot)?;
            read_capped(decoder, body.len()).map_err(|e| match e {
                None => too_large(),
                // libzstd: the frame's window is over `window_log_max`.
                Some(e) if e.to_string().contains("too much memory") => BodyError::TooLarge(format!(
                    "the zstd frame needs a window larger than {} bytes",
                    1u64 << MAX_ZSTD_WINDOW_LOG
                )),
                Some(e) => cannot(e),
            })
        }
        Some(other) => Err(BodyError::UnsupportedEncoding(other.chars().take(40).collect())),
    }
}

/// Reads at most [`MAX_DECOMPRESSED`] bytes from `reader`; `Err(None)` when
/// there is more.
fn read_capped(reader: impl Read, compressed: usize) -> Result<Cow<'static, [u8]>, Option<std::io::Error>> {
    let mut out = Vec::with_capacity(compressed.saturating_mul(4).min(MAX_DECOMPRESSED + 1));
    reader.take(MAX_DECOMPRESSED as u64 + 1).read_to_end(&mut out).map_err(Some)?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(None);
    }
    Ok(Cow::Owned(out))
}

/// Decodes and parses a body: CPU work bounded by the limits, for a
/// blocking thread.
pub fn read(encoding: Option<&str>, body: &[u8]) -> Result<Batch, BodyError> {
    let json = decode_body(encoding, body)?;
    Ok(parse(&json)?)
}

/// A machine's clock this far off is corrected for (below it, the
/// machine's own times are kept as they are).
pub const CLOCK_SKEW_TOLERANCE: time::Duration = time::Duration::seconds(60);

/// Parses and checks a batch; the error names the first bad field. A batch
/// whose `sent_at` shows the machine's clock off by more than
/// [`CLOCK_SKEW_TOLERANCE`] has its times moved onto the server's clock, so a
/// machine with a wrong clock still reports (rather than losing every batch).
pub fn parse(json: &[u8]) -> Result<Batch, BatchError> {
    // Read at full speed; only a refused batch is read again, to name the
    // field (the bounds hold either way).
    let mut batch: Batch = serde_json::from_slice(json).map_err(|_| refusal(json))?;
    correct_clock(&mut batch, OffsetDateTime::now_utc())?;
    validate(&batch)?;
    Ok(batch)
}

/// Why `json` is not a batch, with the path of the first bad field.
fn refusal(json: &[u8]) -> BatchError {
    let mut de = serde_json::Deserializer::from_slice(json);
    match serde_path_to_error::deserialize::<_, Batch>(&mut de) {
        Err(e) => error(pointer(e.path()), format!("not a telemetry batch: {}", e.inner())),
        Ok(_) => match de.end() {
            Err(e) => error("", format!("not a telemetry batch: {e}")),
            Ok(()) => error("", "not a telemetry batch"),
        },
    }
}

/// serde's path to a member as a JSON Pointer (RFC 6901).
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", key.replace('~', "~0").replace('/', "~1"))),
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => break,
        }
    }
    out
}

/// Moves the batch's times by the machine's skew. Both ends come from the
/// machine, so the sum can leave the calendar (a `sent_at` in year 0 and
/// a sample in 9999): such a time is refused like any implausible one,
/// naming its field, never computed with overflowing arithmetic.
fn correct_clock(batch: &mut Batch, now: OffsetDateTime) -> Result<(), BatchError> {
    let Some(sent_at) = batch.sent_at else { return Ok(()) };
    // Dates span ±9999 years: their difference fits a `Duration`.
    let skew = now - sent_at;
    if skew.abs() <= CLOCK_SKEW_TOLERANCE {
        return Ok(());
    }
    let moved =
        |at: OffsetDateTime, field: String| at.checked_add(skew).ok_or_else(|| error(field, "not a plausible time"));
    for (i, m) in batch.metrics.iter_mut().enumerate() {
        m.at = moved(m.at, format!("/metrics/{i}/at"))?;
    }
    for (i, c) in batch.checks.iter_mut().enumerate() {
        c.at = moved(c.at, format!("/checks/{i}/at"))?;
    }
    batch.sent_at = Some(now);
    Ok(())
}

fn validate(batch: &Batch) -> Result<(), BatchError> {
    if batch.sequence < 0 {
        return Err(error("/sequence", "must not be negative"));
    }
    let now = OffsetDateTime::now_utc();
    let plausible = |at: OffsetDateTime| (now - at).whole_days() < 30 && (at - now).whole_minutes() < 10;
    for (i, m) in batch.metrics.iter().enumerate() {
        if !anchor_edge_protocol::valid_name(&m.name) {
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
    }
    for (i, c) in batch.checks.iter().enumerate() {
        if c.name.is_empty() {
            return Err(error(format!("/checks/{i}/name"), format!("1-{MAX_CHECK_NAME} bytes")));
        }
        if !["passing", "warning", "failing"].contains(&c.status.as_str()) {
            return Err(error(format!("/checks/{i}/status"), "passing, warning or failing"));
        }
        if !plausible(c.at) {
            return Err(error(format!("/checks/{i}/at"), "must be within the last 30 days and not in the future"));
        }
    }
    // Drop reports are summed when an agent is shown: their count is a number.
    for (i, e) in batch.events.iter().enumerate().filter(|(_, e)| e.kind() == BATCHES_DROPPED) {
        if e.to_value()["count"].as_u64().is_none_or(|n| n > anchor_edge_protocol::MAX_DROPPED_COUNT) {
            return Err(error(
                format!("/events/{i}/count"),
                format!("a whole number of at most {}", anchor_edge_protocol::MAX_DROPPED_COUNT),
            ));
        }
    }
    Ok(())
}

/// The labels of a metric as a JSON object's text (`None` without labels).
pub fn labels_json(metric: &Metric) -> Option<&str> {
    metric.labels.as_ref().filter(|l| !l.is_empty()).map(Labels::json)
}

pub fn samples(metrics: &[Metric]) -> Vec<NewSample<'_>> {
    metrics.iter().map(|m| NewSample { at: m.at, name: &m.name, value: m.value, labels: labels_json(m) }).collect()
}

pub fn check_results(checks: &[Check]) -> Vec<CheckResult<'_>> {
    checks.iter().map(|c| CheckResult { at: c.at, name: &c.name, status: &c.status, output: &c.output }).collect()
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
        let metric = |labels: serde_json::Value| json!({"name": "cpu", "value": 1.0, "at": at, "labels": labels});
        let deep = (0..7).fold(json!(1), |v, _| json!([v]));
        for (batch, pointer) in [
            (json!({"sequence": -1}), "/sequence"),
            (json!({"sequence": 1, "metrics": [{"name": "Cpu", "value": 1.0, "at": at}]}), "/metrics/0/name"),
            (
                json!({"sequence": 1, "metrics": [{"name": "cpu", "value": 1.0, "at": "2001-01-01T00:00:00Z"}]}),
                "/metrics/0/at",
            ),
            (json!({"sequence": 1, "checks": [{"name": "x", "status": "red", "at": at}]}), "/checks/0/status"),
            (json!({"sequence": 1, "inventory": []}), "/inventory"),
            // Deep, long and numerous values are refused where they are.
            (json!({"sequence": 1, "inventory": {"a": deep}}), "/inventory"),
            (json!({"sequence": 1, "inventory": {"a": "x".repeat(1025)}}), "/inventory"),
            (json!({"sequence": 1, "events": [{"kind": "x", "data": [[[[1]]]]}]}), "/events/0"),
            (json!({"sequence": 1, "events": [{"at": at}]}), "/events/0"),
            (json!({"sequence": 1, "metrics": [metric(json!({"mount": "x".repeat(257)}))]}), "/metrics/0/labels/mount"),
            (json!({"sequence": 1, "metrics": [metric(json!({"mount": {"nested": "/"}}))]}), "/metrics/0/labels/mount"),
            (
                json!({"sequence": 1, "checks": [{"name": "x", "status": "failing", "output": "y".repeat(4097), "at": at}]}),
                "/checks/0/output",
            ),
            (
                json!({"sequence": 1, "checks": [{"name": "x".repeat(201), "status": "failing", "at": at}]}),
                "/checks/0/name",
            ),
            (json!({"sequence": 1, "metrics": vec![metric(json!({})); MAX_METRICS + 1]}), "/metrics"),
            (json!({"sequence": 1, "events": vec![json!({"kind": "x"}); MAX_EVENTS + 1]}), "/events"),
            (json!({"sequence": 1, "events": [{"kind": BATCHES_DROPPED, "count": "many"}]}), "/events/0/count"),
        ] {
            let err = parse(batch.to_string().as_bytes()).expect_err("refused");
            assert_eq!(err.pointer, pointer, "{err}");
        }
        let ok = json!({"sequence": 7, "metrics": [{"name": "disk.used_percent", "value": 91.5, "at": at, "labels": {"mount": "/"}}],
                        "inventory": {"os": "Debian"}, "events": [{"kind": "agent.started", "at": at}]});
        let batch = parse(ok.to_string().as_bytes()).expect("valid");
        let labels: Vec<_> = batch.metrics.iter().map(labels_json).collect();
        assert_eq!(labels, [Some(r#"{"mount":"/"}"#)]);
        assert_eq!(samples(&batch.metrics).len(), 1);
        assert_eq!(batch.events[0].kind(), "agent.started");
        assert_eq!(batch.inventory.expect("inventory").json(), r#"{"os":"Debian"}"#);
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
    fn a_skew_from_the_ends_of_the_calendar_is_refused_without_overflow() {
        // The sum of the skew (now - year 0) and a sample in year 9999
        // is past what a date can hold: the correction must refuse it, not
        // panic (`+=` on `OffsetDateTime` panics on overflow).
        let batch = json!({"sequence": 1, "sent_at": "0000-01-01T00:00:00Z",
                           "metrics": [{"name": "cpu.used_percent", "value": 5.0, "at": "9999-12-31T23:59:59Z"}]});
        let parsed = std::panic::catch_unwind(|| parse(batch.to_string().as_bytes()));
        let err = parsed.expect("no panic").expect_err("refused");
        assert_eq!(err.pointer, "/metrics/0/at", "{err}");
        let batch = json!({"sequence": 1, "sent_at": "9999-12-31T23:59:59Z",
                           "checks": [{"name": "disk", "status": "passing", "at": "0000-01-01T00:00:00Z"}]});
        let err = parse(batch.to_string().as_bytes()).expect_err("refused");
        assert_eq!(err.pointer, "/checks/0/at", "{err}");
    }

    #[test]
    fn gzip_and_zstd_bodies_are_decoded_within_the_bound() {
        let body = br#"{"sequence": 1}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body).expect("gzip");
        assert_eq!(&*decode_body(Some("gzip"), &gz.finish().expect("gzip")).expect("decoded"), &body[..]);
        let zstd = ruzstd::encoding::compress_to_vec(&body[..], ruzstd::encoding::CompressionLevel::Fastest);
        assert_eq!(&*decode_body(Some("zstd"), &zstd).expect("decoded"), &body[..]);
        assert_eq!(read(Some("zstd"), &zstd).expect("a batch").sequence, 1);
        assert_eq!(decode_body(Some("br"), body), Err(BodyError::UnsupportedEncoding("br".into())));
        assert!(matches!(decode_body(Some("gzip"), b"not gzip"), Err(BodyError::Invalid(_))));
        assert!(matches!(decode_body(Some("zstd"), b"not zstd"), Err(BodyError::Invalid(_))));
        // A small body that inflates past the bound is refused as too large.
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        bomb.write_all(&vec![b' '; MAX_DECOMPRESSED + 10]).expect("gzip");
        let bomb = bomb.finish().expect("gzip");
        assert!(bomb.len() < 100_000);
        assert!(matches!(decode_body(Some("gzip"), &bomb), Err(BodyError::TooLarge(_))));
        let bomb = ruzstd::encoding::compress_to_vec(
            &vec![b' '; MAX_DECOMPRESSED + 10][..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert!(bomb.len() < 100_000);
        assert!(matches!(decode_body(Some("zstd"), &bomb), Err(BodyError::TooLarge(_))));
        assert!(matches!(decode_body(None, &vec![b' '; MAX_DECOMPRESSED + 1]), Err(BodyError::TooLarge(_))));
    }
}
