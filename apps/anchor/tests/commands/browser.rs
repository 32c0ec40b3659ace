//! Pages in a real browser: Debian's Chromium driven by playwright-core
//! (`apps/web/tests/ui/pages.mjs`), every page checked with axe-core (WCAG
//! 2.2 A/AA) and for CSP violations, and screenshotted at desktop and phone
//! width (in `$ANCHOR_UI_SHOTS`, default `/tmp/anchor-ui`). `.ci/run`
//! installs the npm packages. Shared with the edge agent's tests, which
//! include this file.

use std::{path::Path, process::Command};

use anchor_auth::dev_issuer::DEV_ISSUER;
use serde_json::{Value, json};

use crate::Platform;

const UI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/tests/ui");

/// A browser session of `subject`: (cookie value, CSRF token).
pub(crate) async fn session(platform: &Platform, subject: &str) -> (String, String) {
    let (token, csrf) = (format!("ui-{subject}-{:016x}", rand::random::<u64>()), format!("csrf-{subject}-ui"));
    let ttl = std::time::Duration::from_secs(600);
    platform.store.create_session(&token, DEV_ISSUER, subject, &csrf, ttl).await.expect("session");
    (token, csrf)
}

/// Walks `visits` in Chromium as the holder of `cookie`; returns the report.
/// (The browser runs beside the test's own runtime, which serves the pages.)
pub(crate) async fn walk(base: &str, cookie: &str, visits: Value) -> Value {
    walk_as(base, json!([{"name": "anchor_session", "value": cookie}]), visits).await
}

/// Walks `visits` in Chromium with `cookies` (`[{"name", "value"}]`) set;
/// returns the report. Within one width, what a visit sets (a cookie) holds
/// for the next.
pub(crate) async fn walk_as(base: &str, cookies: Value, visits: Value) -> Value {
    assert!(
        Path::new(UI).join("node_modules/playwright-core").exists(),
        "the UI test needs its npm packages: npm ci --prefix apps/web/tests/ui (.ci/run does)"
    );
    let out = std::env::var("ANCHOR_UI_SHOTS").unwrap_or_else(|_| "/tmp/anchor-ui".to_owned());
    std::fs::create_dir_all(&out).expect("screenshot dir");
    let spec = json!({"base": base, "cookies": cookies, "out": out, "visits": visits});
    let file = tempfile::NamedTempFile::new().expect("spec");
    std::fs::write(file.path(), spec.to_string()).expect("write spec");
    let path = file.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(format!("{UI}/pages.mjs")).arg(path).output().expect("node")
    })
    .await
    .expect("the browser ran");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the pages have problems:\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&report).expect("a JSON report")
}
