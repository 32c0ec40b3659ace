//! Decompression bombs: small bodies that expand far beyond the bound are
//! refused as too large, and refusing them does not allocate the expansion.
//! The process's peak resident memory (`VmHWM`, reset through
//! `/proc/self/clear_refs`) is read around each decode; this binary holds
//! this one test, so nothing else allocates meanwhile.

use std::io::Write;

use anchor_telemetry::batch::{BodyError, MAX_DECOMPRESSED, decode_body};

/// A `/proc/self/status` figure, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// What `decode` returns, and by how many MiB the peak resident memory rose
/// above the memory in use before.
fn peak_growth<T>(decode: impl FnOnce() -> T) -> (T, u64) {
    // "5" resets the peak (VmHWM) to the memory in use now (Linux >= 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak resident memory");
    let before = status_kib("VmRSS:");
    let out = decode();
    (out, status_kib("VmHWM:").saturating_sub(before) / 1024)
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A zstd frame header without a content size: the window is
/// 2^`window_log` bytes.
fn zstd_header(window_log: u8) -> Vec<u8> {
    // Frame header descriptor 0: a window descriptor follows, no content
    // size, no checksum, no dictionary; the window's exponent is log - 10.
    [&ZSTD_MAGIC[..], &[0x00, (window_log - 10) << 3]].concat()
}

/// A block header: `last`, the type (0 raw, 1 RLE, 2 compressed), the size.
fn block_header(last: bool, kind: u32, size: u32) -> [u8; 3] {
    let value = u32::from(last) | (kind << 1) | (size << 3);
    [value as u8, (value >> 8) as u8, (value >> 16) as u8]
}

/// A valid zstd frame of `blocks` RLE blocks of 128 KiB of spaces each, in
/// a window of 2^`window_log` bytes: 4 bytes a block.
fn zstd_rle_bomb(window_log: u8, blocks: usize) -> Vec<u8> {
    let mut frame = zstd_header(window_log);
    for i in 0..blocks {
        frame.extend(block_header(i + 1 == blocks, 1, 128 * 1024));
        frame.push(b' ');
    }
    frame
}

/// A zstd frame whose second block holds `n` sequences each copying
/// 131,074 bytes (the longest match there is): a block may regenerate at
/// most 128 KiB, so this one is malformed, yet a decoder that does not hold
/// blocks to that expands it to n x 128 KiB before anything checks it.
fn zstd_sequence_bomb(n: usize) -> Vec<u8> {
    let mut frame = zstd_header(20);
    // Eight bytes of history to copy from.
    frame.extend(block_header(false, 0, 8));
    frame.extend(b"        ");
    let mut block = vec![0x00]; // no literals
    match n {
        0..128 => block.push(n as u8),
        _ => block.extend([((n >> 8) + 128) as u8, n as u8]),
    }
    // Literal lengths, offsets and match lengths each one repeated code:
    // length 0, the repeated offset, match length code 52 (65,539 + 16 bits).
    block.extend([0x54, 0, 0, 52]);
    // Sixteen one-bits per sequence, then the end mark.
    block.extend(std::iter::repeat_n(0xFF, 2 * n));
    block.push(0x01);
    frame.extend(block_header(true, 2, block.len() as u32));
    frame.extend(block);
    frame
}

#[test]
fn bombs_are_refused_at_the_bound_without_allocating_their_expansion() {
    // gzip: 200 MiB of spaces in about 200 KB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..200 {
        gz.write_all(&[b' '; 1024 * 1024]).expect("gzip");
    }
    let gzip = gz.finish().expect("gzip");
    // zstd, in a 256 MiB window: 200 MiB in 6 KB, all of it held before a
    // decoder that keeps a full window gives out its first byte.
    let wide_window = zstd_rle_bomb(28, 1600);
    // zstd in a 1 MiB window: 200 MiB, streamed.
    let narrow_window = zstd_rle_bomb(20, 1600);
    // zstd, one malformed block of 200 MiB in 3 KB.
    let sequences = zstd_sequence_bomb(1600);
    for (name, encoding, body) in [
        ("gzip", "gzip", &gzip),
        ("zstd, wide window", "zstd", &wide_window),
        ("zstd, narrow window", "zstd", &narrow_window),
        ("zstd, oversized block", "zstd", &sequences),
    ] {
        assert!(body.len() < 300_000, "{name}: {} bytes", body.len());
        let (decoded, grew_mib) = peak_growth(|| decode_body(Some(encoding), body).map(|json| json.len()));
        match decoded {
            Err(BodyError::TooLarge(_)) => {}
            // A block over the format's bound is malformed: refused too.
            Err(BodyError::Invalid(e)) if name == "zstd, oversized block" => {
                assert!(e.message.contains("cannot decompress"), "{name}: {e}")
            }
            other => panic!("{name}: {other:?}"),
        }
        // The bound (4 MiB), a zstd window of at most 8 MiB, and slack.
        assert!(grew_mib < 24, "{name}: the peak memory rose by {grew_mib} MiB refusing it");
    }
    // Within the bound, the same frames decode.
    let (decoded, _) = peak_growth(|| decode_body(Some("zstd"), &zstd_rle_bomb(20, 4)).map(|json| json.len()));
    assert_eq!(decoded, Ok(4 * 128 * 1024));
    const { assert!(4 * 128 * 1024 < MAX_DECOMPRESSED) };
}
