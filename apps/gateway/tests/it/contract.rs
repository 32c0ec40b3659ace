//! The served OpenAPI document tells the truth: Schemathesis (PyPI) runs
//! every one of its checks against the running gateway, as an MSP admin of
//! one workspace (`{ws}` pinned to it), and finds no failure. Its settings
//! and hooks are in `tests/contract/`; `.ci/run` installs it beside the
//! other Python tools (`ANCHOR_PYTHON`).

use std::{path::Path, process::Command};

use anchor_domain::Role;

use crate::TestApp;

#[tokio::test]
async fn schemathesis_finds_nothing_the_document_does_not_say() {
    let python = std::env::var("ANCHOR_PYTHON").unwrap_or_else(|_| "/var/tmp/anchor-pyvenv/bin/python".to_owned());
    let st = Path::new(&python).with_file_name("st");
    assert!(
        st.exists(),
        "{} is needed: pip install schemathesis into {python}'s environment (.ci/run does)",
        st.display()
    );
    let app = TestApp::spawn().await;
    let acme = app.workspace("acme", "Acme Corp").await;
    app.member(&acme, "contract", Role::MspAdmin).await;
    let contract = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract");
    let scratch = tempfile::tempdir().expect("tempdir");
    let url = app.url("/api/v1/openapi.json");
    let token = app.token("contract");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .current_dir(scratch.path())
            .env("ANCHOR_CONTRACT_TOKEN", token)
            .env("SCHEMATHESIS_HOOKS", "hooks")
            .env("PYTHONPATH", contract)
            .args(["--config-file", &format!("{contract}/schemathesis.toml"), "run", &url])
            // One worker: Hypothesis describes its strategies with `ast`,
            // and two threads parsing at once trip CPython 3.11's "AST
            // constructor recursion depth mismatch", reported as a flaky
            // runtime error of whichever operation was being generated.
            .args(["--checks", "all", "--max-examples", "20", "--workers", "1", "--no-color"])
            .args(["--generation-database", "none", "--request-timeout", "20"])
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("schemathesis ran");
    let report = String::from_utf8_lossy(&output.stdout);
    let summary = report.find("SUMMARY").map_or(&report[..], |at| &report[at..]);
    eprintln!("schemathesis: {summary}");
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("Tested: "), "schemathesis tested nothing:\n{report}");
    app.stop().await;
}
