//! The `anchor` binary as operators use it.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use anchor_testkit::TestDatabase;
use secrecy::ExposeSecret;
use sha2::Digest;

fn anchor() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_anchor"));
    for var in ["DATABASE_URL", "ANCHOR_DATABASE_URL", "ANCHOR_DATA_DIR", "ANCHOR_HTTP_ADDR", "ANCHOR_CONFIG"] {
        command.env_remove(var);
    }
    command
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A data directory the `postgres` OS user can enter (tempdirs are 0700).
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("anchor-cli-").tempdir_in("/var/tmp").expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Starts `anchor dev` and waits for the line that announces its URL.
fn start_dev(data: &Path) -> (Child, String) {
    let mut child = anchor()
        .args(["dev", "--http-addr", "127.0.0.1:0"])
        .env("ANCHOR_DATA_DIR", data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn anchor dev");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut transcript = String::new();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let status = child.wait().expect("wait");
            panic!("anchor dev exited ({status}) before printing its URL:\n{transcript}");
        };
        transcript.push_str(&line);
        transcript.push('\n');
        if let Some(url) = line.strip_prefix("Anchor is running at ") {
            let url = url.trim().to_owned();
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            assert!(transcript.contains("PostgreSQL: private cluster"), "{transcript}");
            return (child, url);
        }
    }
}

fn interrupt_and_wait(child: Child) {
    stop_with(child, nix::sys::signal::Signal::SIGINT);
}

/// Sends `signal` (Ctrl-C is SIGINT; supervisors send SIGTERM) and waits for a clean exit.
fn stop_with(mut child: Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).expect("signal");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "anchor dev exits cleanly on Ctrl-C: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "anchor dev did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a PostgreSQL server runs on this data directory.
fn postgres_running(data: &Path) -> bool {
    let pid_file = data.join("postgres/data/postmaster.pid");
    let Ok(contents) = std::fs::read_to_string(pid_file) else { return false };
    let pid: i32 = contents.lines().next().and_then(|l| l.trim().parse().ok()).expect("pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

async fn get(url: &str) -> reqwest::StatusCode {
    anchor_testkit::http_client().get(url).send().await.expect("request").status()
}

#[tokio::test]
async fn dev_runs_the_platform_on_a_private_cluster_and_stops_it() {
    let data = data_dir();

    let (dev, url) = start_dev(data.path());
    assert_eq!(get(&format!("{url}/readyz")).await, 200);
    assert!(postgres_running(data.path()));
    // The cluster's directory is ours; its data directory is the server's alone.
    let me = nix::unistd::Uid::effective();
    let server = match me.is_root() {
        true => nix::unistd::User::from_name("postgres").expect("users").expect("a postgres user").uid,
        false => me,
    };
    assert_owned(&data.path().join("postgres"), me.as_raw(), if me.is_root() { 0o711 } else { 0o700 });
    assert_owned(&data.path().join("postgres/data"), server.as_raw(), 0o700);

    // Beside a running `anchor dev`, with no setup: the same data directory.
    let out = anchor()
        .args(["workspace", "create", "acme", "--name", "Acme Corp"])
        .env("ANCHOR_DATA_DIR", data.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(postgres_running(data.path()), "the CLI leaves the cluster it did not start running");

    interrupt_and_wait(dev);
    assert!(!postgres_running(data.path()), "Ctrl-C stops the private cluster");

    // A second start reuses the data.
    let (dev, url) = start_dev(data.path());
    assert_eq!(get(&format!("{url}/readyz")).await, 200);
    let out = anchor().args(["workspace", "list"]).env("ANCHOR_DATA_DIR", data.path()).output().expect("run");
    assert!(stdout(&out).contains("acme") && stdout(&out).contains("Acme Corp"), "{}", stdout(&out));
    interrupt_and_wait(dev);
    assert!(!postgres_running(data.path()));

    // A command that had to start the cluster stops it again.
    let out = anchor().args(["workspace", "list"]).env("ANCHOR_DATA_DIR", data.path()).output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!postgres_running(data.path()));
}

#[tokio::test]
async fn workspace_commands_against_a_configured_database() {
    let db = TestDatabase::empty().await;
    let run = |args: &[&str]| anchor().args(args).env("DATABASE_URL", db.url().expose_secret()).output().expect("run");

    let out = run(&["workspace", "create", "acme", "--name", "Acme Corp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "created workspace acme (Acme Corp) with schema ws_acme");

    let out = run(&["workspace", "list"]);
    let listing = stdout(&out);
    assert!(listing.lines().any(|l| l.starts_with("acme") && l.contains("Acme Corp")), "{listing}");

    let out = run(&["workspace", "create", "acme", "--name", "Acme Corp"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: workspace \"acme\" already exists\n", "one line, no stack trace");

    let out = run(&["workspace", "create", "Bad_Slug"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("Bad_Slug") && err.contains("lowercase letters a-z, digits and hyphens"), "{err}");

    let out = run(&["workspace", "create", "admin"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("reserved"), "{}", stderr(&out));

    let out = run(&["workspace", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list[0]["slug"], "acme");
    db.drop_now().await;
}

#[tokio::test]
async fn a_configured_installation_trusts_the_dev_issuer_only_when_told() {
    let db = TestDatabase::empty().await;
    let data = data_dir();
    let url = db.url().expose_secret().to_owned();
    let run = |args: &[&str], dev: Option<&str>| {
        let mut command = anchor();
        command.args(args).env("DATABASE_URL", &url).env("ANCHOR_DATA_DIR", data.path());
        if let Some(dev) = dev {
            command.env("ANCHOR_DEV_ISSUER", dev);
        }
        command.output().expect("run")
    };
    assert!(run(&["workspace", "create", "acme"], None).status.success());

    // Production (a database of its own, nothing said): no dev tokens, and a
    // member is never bound to an issuer nobody trusts.
    let out = run(&["token", "issue", "--sub", "root"], None);
    assert!(!out.status.success() && stderr(&out).contains("does not trust the dev issuer"), "{}", stderr(&out));
    let out = run(&["member", "set", "acme", "alice", "technician"], None);
    assert!(!out.status.success() && stderr(&out).contains("trusts no token issuer"), "{}", stderr(&out));
    let out = run(&["member", "set", "acme", "alice", "technician", "--issuer", "urn:anchor:dev-issuer"], None);
    assert!(!out.status.success() && stderr(&out).contains("does not trust the issuer"), "{}", stderr(&out));
    let out = run(&["member", "set", "acme", "alice", "technician", "--local"], None);
    assert!(out.status.success(), "{}", stderr(&out));

    // Turned on: the dev issuer is the one trusted issuer, and the default.
    let out = run(&["member", "set", "acme", "bob", "technician"], Some("true"));
    assert!(out.status.success() && stdout(&out).contains("(urn:anchor:dev-issuer)"), "{}", stderr(&out));
    assert!(run(&["token", "issue", "--sub", "bob"], Some("true")).status.success());
    db.drop_now().await;
}

#[tokio::test]
async fn two_migrate_processes_at_once_both_succeed() {
    let db = TestDatabase::empty().await;
    let url = db.url().expose_secret().to_owned();
    for slug in ["one", "two", "three"] {
        let out = anchor().args(["workspace", "create", slug]).env("DATABASE_URL", &url).output().expect("run");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let spawn = || {
        anchor()
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("platform schema: 0 migration(s) applied; workspaces: 0 behind"),
            "{}",
            stderr(&out)
        );
    }
    db.drop_now().await;
}

#[test]
fn bad_settings_are_named() {
    let out = anchor().args(["dev"]).env("ANCHOR_HTTP_ADDR", "localhost-ish").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("http_addr") && err.contains("ANCHOR_HTTP_ADDR"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = anchor().args(["migrate"]).env("DATABASE_URL", "mysql://root:pw@localhost/x").output().expect("run");
    assert!(stderr(&out).contains("database_url") && !stderr(&out).contains("pw@"), "{}", stderr(&out));

    let data = data_dir();
    let out = anchor()
        .args(["workspace", "list"])
        .env("ANCHOR_DATA_DIR", data.path())
        .env("ANCHOR_POSTGRES_BIN_DIR", "/nonexistent/bin")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ANCHOR_POSTGRES_BIN_DIR"), "{}", stderr(&out));
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["dev", "--help"],
        &["migrate", "--help"],
        &["workspace", "--help"],
        &["workspace", "create", "--help"],
        &["workspace", "list", "--help"],
    ] {
        let out = anchor().args(args).output().expect("run");
        assert!(out.status.success() && stdout(&out).contains("Usage:"), "{args:?}");
    }
}

#[tokio::test]
async fn tokens_from_the_cli_open_the_api_of_a_running_dev() {
    let data = data_dir();
    let (dev, url) = start_dev(data.path());
    let run = |args: &[&str]| anchor().args(args).env("ANCHOR_DATA_DIR", data.path()).output().expect("run");

    let out = run(&["token", "issue", "--sub", "root", "--platform-admin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let root = stdout(&out).trim().to_owned();
    assert_eq!(root.split('.').count(), 3, "a JWT on stdout, nothing else: {root}");

    let client = anchor_testkit::http_client();
    let created = client
        .post(format!("{url}/api/v1/workspaces"))
        .bearer_auth(&root)
        .header("idempotency-key", "cli-test-create-acme")
        .json(&serde_json::json!({"slug": "acme", "name": "Acme Corp"}))
        .send()
        .await
        .expect("send");
    assert_eq!(created.status(), 201);

    let out = run(&["member", "set", "acme", "alice", "technician"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("added alice"), "{}", stdout(&out));
    let alice = stdout(&run(&["token", "issue", "--sub", "alice", "--ttl", "5m"])).trim().to_owned();
    let seen: serde_json::Value = client
        .get(format!("{url}/api/v1/workspaces/acme"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(seen["role"], "technician");

    let out = run(&["member", "set", "acme", "alice", "platform_admin"]);
    assert!(!out.status.success() && stderr(&out).contains("unknown role"), "{}", stderr(&out));
    let out = run(&["token", "issue", "--sub", "alice", "--ttl", "2h"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("15 minutes"), "{}", stderr(&out));
    stop_with(dev, nix::sys::signal::Signal::SIGTERM);
    assert!(!postgres_running(data.path()), "SIGTERM stops the private cluster too");
}

/// Every `anchor-pg-*` entry of the directories a cluster outside the data
/// directory may be put in.
fn outside_clusters() -> std::collections::BTreeSet<PathBuf> {
    let mut found = std::collections::BTreeSet::new();
    for dir in [std::env::temp_dir(), PathBuf::from("/tmp"), PathBuf::from("/var/tmp")] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with("anchor-pg-") {
                found.insert(entry.path());
            }
        }
    }
    found
}

/// Removes what a test planted outside its temporary directories, even when it fails.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `path` is owned by `uid` with exactly `mode`.
fn assert_owned(path: &Path, uid: u32, mode: u32) {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(meta.is_dir(), "{} is a directory", path.display());
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (uid, mode), "owner and mode of {}", path.display());
}

#[tokio::test]
async fn a_data_dir_the_postgres_user_cannot_reach_runs_a_private_copy_that_nobody_can_hijack() {
    // As root, a data directory below a 0700 directory (a checkout under
    // /root, say): the cluster runs from a copy in a fresh directory of its
    // own, which stopping folds back into the data directory and removes.
    if !nix::unistd::Uid::effective().is_root() {
        return; // only root hands the cluster to the `postgres` user
    }
    let postgres = nix::unistd::User::from_name("postgres").expect("users").expect("a postgres user");
    let nobody = nix::unistd::User::from_name("nobody").expect("users").expect("a nobody user");
    let private = tempfile::Builder::new().prefix("anchor-private-").tempdir_in("/var/tmp").expect("tempdir");
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let data = private.path().join("state");
    std::fs::create_dir(&data).expect("mkdir");
    let precious = private.path().join("precious");
    std::fs::write(&precious, "root's file\n").expect("write");

    // Another local user prepares the place an older anchor chose,
    // `anchor-pg-<hash of the data directory>` in the temporary directory,
    // with `initdb.pw` a symlink to a file of root's; and the data directory
    // records it, as that older anchor did.
    let digest = sha2::Sha256::digest(data.canonicalize().expect("canonical").as_os_str().as_encoded_bytes());
    let trap = std::env::temp_dir().join(format!("anchor-pg-{}", hex::encode(&digest[..8])));
    let _trap_guard = RemoveOnDrop(trap.clone());
    std::fs::create_dir(&trap).expect("the predictable place is free");
    std::fs::set_permissions(&trap, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::os::unix::fs::symlink(&precious, trap.join("initdb.pw")).expect("symlink");
    std::os::unix::fs::lchown(trap.join("initdb.pw"), Some(nobody.uid.as_raw()), None).expect("chown");
    std::os::unix::fs::chown(&trap, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw())).expect("chown");
    std::fs::write(data.join("postgres.location"), format!("{}\n", trap.display())).expect("write");
    let before = outside_clusters();

    let (dev, url) = start_dev(&data);
    assert_eq!(get(&format!("{url}/readyz")).await, 200);
    let location = std::fs::read_to_string(data.join("postgres.location")).expect("the copy is recorded");
    let cluster = PathBuf::from(location.lines().next().expect("path"));
    assert_ne!(cluster, trap, "a place someone else made is never used");
    assert!(cluster.file_name().expect("name").to_string_lossy().starts_with("anchor-pg-"), "{}", cluster.display());
    assert!(!before.contains(&cluster), "a fresh directory: {}", cluster.display());
    assert_owned(&cluster, 0, 0o711);
    assert_owned(&cluster.join("data"), postgres.uid.as_raw(), 0o700);
    assert!(cluster.join("data/PG_VERSION").is_file());

    // Beside the running `anchor dev`, the CLI finds the copy.
    let cli = |args: &[&str]| anchor().args(args).env("ANCHOR_DATA_DIR", &data).output().expect("run");
    let out = cli(&["workspace", "create", "acme", "--name", "Acme Corp"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Ctrl-C: the copy is folded back into the data directory and removed.
    interrupt_and_wait(dev);
    let leftovers = |when: &str| {
        assert!(!data.join("postgres.location").exists(), "{when}: no copy is recorded");
        assert_eq!(outside_clusters(), before, "{when}: nothing is left in the temporary directory");
    };
    leftovers("Ctrl-C");
    assert!(!cluster.exists(), "{}", cluster.display());
    assert_owned(&data.join("postgres/data"), postgres.uid.as_raw(), 0o700);
    assert!(data.join("postgres/data/PG_VERSION").is_file());

    // The next run reuses the data, from a new copy; SIGTERM folds it back too.
    let (dev, url) = start_dev(&data);
    assert_eq!(get(&format!("{url}/readyz")).await, 200);
    let again = std::fs::read_to_string(data.join("postgres.location")).expect("recorded");
    assert_ne!(PathBuf::from(again.lines().next().expect("path")), cluster, "a new name at each start");
    let out = cli(&["workspace", "list"]);
    assert!(stdout(&out).contains("acme") && stdout(&out).contains("Acme Corp"), "{}", stdout(&out));
    stop_with(dev, nix::sys::signal::Signal::SIGTERM);
    leftovers("SIGTERM");

    // A command that has to start the cluster itself leaves nothing either.
    let out = cli(&["workspace", "list"]);
    assert!(out.status.success() && stdout(&out).contains("acme"), "{}", stderr(&out));
    leftovers("a CLI command");

    // The trap was never used: root's file is intact, the other user's
    // directory and symlink are as they were.
    assert_eq!(std::fs::read_to_string(&precious).expect("read"), "root's file\n");
    assert_owned(&trap, nobody.uid.as_raw(), 0o777);
    assert_eq!(std::fs::read_link(trap.join("initdb.pw")).expect("still a symlink"), precious);
}

/// The README's walk-through, with the real `curl`: a token from the CLI, a
/// workspace, a ticket opened as a command, its execution followed to
/// `succeeded`, the ticket read back.
#[tokio::test]
async fn a_ticket_created_with_curl_against_anchor_dev() {
    let data = data_dir();
    let (dev, url) = start_dev(data.path());
    let token = |args: &[&str]| {
        let out =
            anchor().args(["token", "issue"]).args(args).env("ANCHOR_DATA_DIR", data.path()).output().expect("run");
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    let admin = token(&["--sub", "you", "--platform-admin"]);
    let curl = |args: &[&str], token: &str| -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "-H", &format!("Authorization: Bearer {token}")])
            .args(args)
            .output()
            .expect("curl");
        assert!(out.status.success(), "curl {args:?}: {}{}", stdout(&out), stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
    };
    let post = |path: &str, body: &str, key: &str, token: &str| {
        curl(
            &[
                "-H",
                "Content-Type: application/json",
                "-H",
                &format!("Idempotency-Key: {key}"),
                "-d",
                body,
                &format!("{url}{path}"),
            ],
            token,
        )
    };
    post("/api/v1/workspaces", r#"{"slug":"acme","name":"Acme Corp","admin":{"subject":"you"}}"#, "ws-1", &admin);
    let you = token(&["--sub", "you"]);
    let accepted =
        post("/api/v1/workspaces/acme/tickets", r#"{"title":"Printer offline","priority":"p3"}"#, "tkt-1", &you);
    assert_eq!(accepted["status"], "queued", "{accepted}");
    let execution_url =
        format!("{url}/api/v1/workspaces/acme/executions/{}", accepted["execution_id"].as_str().expect("id"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let execution = loop {
        let execution = curl(&[&execution_url], &you);
        if execution["status"] != "queued" && execution["status"] != "running" {
            break execution;
        }
        assert!(Instant::now() < deadline, "still {execution}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(execution["status"], "succeeded", "{execution}");
    let ticket_id = execution["result"]["ticket_id"].as_str().expect("ticket id");
    let ticket = curl(&[&format!("{url}/api/v1/workspaces/acme/tickets/{ticket_id}")], &you);
    assert_eq!((ticket["title"].as_str(), ticket["status"].as_str()), (Some("Printer offline"), Some("new")));

    // Its credential, verified by `anchor evidence verify` and by an
    // independent implementation, from the document and its did:key alone.
    let evidence_url = format!("{execution_url}/evidence");
    let deadline = Instant::now() + Duration::from_secs(30);
    let credential = loop {
        let out = Command::new("curl")
            .args(["-sS", "-f", "-H", &format!("Authorization: Bearer {you}"), &evidence_url])
            .output()
            .expect("curl");
        if out.status.success() {
            break out.stdout;
        }
        assert!(Instant::now() < deadline, "no credential: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(100));
    };
    let file = data.path().join("credential.json");
    std::fs::write(&file, &credential).expect("write");
    let out = anchor().args(["evidence", "verify"]).arg(&file).output().expect("run");
    assert!(
        out.status.success() && stdout(&out).starts_with("valid: issued by did:key:z6Mk"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let python = std::env::var("ANCHOR_PYTHON").unwrap_or_else(|_| "/var/tmp/anchor-pyvenv/bin/python".to_owned());
    let verifier = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verifiers/eddsa_jcs_2022.py");
    let independent =
        Command::new(&python).arg(verifier).arg(&file).output().unwrap_or_else(|e| {
            panic!("{python} (a venv with rfc8785, base58 and cryptography; .ci/run makes it): {e}")
        });
    assert!(independent.status.success(), "{}{}", stdout(&independent), stderr(&independent));
    assert!(stdout(&independent).starts_with("verified"), "{}", stdout(&independent));
    let out = anchor().args(["evidence", "verify", &evidence_url]).env("ANCHOR_TOKEN", &you).output().expect("run");
    assert!(out.status.success(), "by URL: {}", stderr(&out));
    assert!(stdout(&out).contains("the signer is an issuer key published by"), "{}", stdout(&out));

    // A credential re-signed by some other did:key is valid on its own, and
    // refused once compared with the installation's published keys.
    let keys_url = format!("{url}/api/v1/evidence/keys");
    let mut forged: serde_json::Value = serde_json::from_slice(&credential).expect("json");
    let created = forged["proof"]["created"].as_str().expect("created").to_owned();
    forged.as_object_mut().expect("object").remove("proof");
    let forger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    forged["issuer"] = anchor_crypto::multikey::did_key(&forger.verifying_key()).into();
    let forged = anchor_crypto::data_integrity::sign(&forged, &forger, &created).expect("sign");
    let forged_file = data.path().join("forged.json");
    std::fs::write(&forged_file, serde_json::to_vec(&forged).expect("json")).expect("write");
    let out = anchor().args(["evidence", "verify"]).arg(&forged_file).output().expect("run");
    assert!(out.status.success() && stdout(&out).contains("not compared with published keys"), "{}", stdout(&out));
    let out = anchor().args(["evidence", "verify", "--keys", &keys_url]).arg(&forged_file).output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("not an issuer key published by"), "{}", stderr(&out));
    let out = anchor().args(["evidence", "verify", "--keys", &keys_url]).arg(&file).output().expect("run");
    assert!(out.status.success(), "the genuine one: {}", stderr(&out));

    // One byte changed: both refuse it.
    let tampered = String::from_utf8(credential).expect("utf-8").replacen("ticket.create", "ticket.cReate", 1);
    std::fs::write(&file, tampered).expect("write");
    let out = anchor().args(["evidence", "verify"]).arg(&file).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid: proof: the signature does not verify"), "{}", stderr(&out));
    let independent = Command::new(&python).arg(verifier).arg(&file).output().expect("python");
    assert_eq!(independent.status.code(), Some(1), "{}", stdout(&independent));

    let out = anchor()
        .args(["evidence", "verify-chain", "--workspace", "acme"])
        .env("ANCHOR_DATA_DIR", data.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "chain of acme is valid: 1 credential");

    // Its stored document removed: the chain check fails and names it.
    let stored: Vec<_> = std::fs::read_dir(data.path().join("evidence").join("acme")).expect("evidence dir").collect();
    assert_eq!(stored.len(), 1);
    std::fs::remove_file(stored[0].as_ref().expect("entry").path()).expect("remove");
    let out = anchor()
        .args(["evidence", "verify-chain", "--workspace", "acme"])
        .env("ANCHOR_DATA_DIR", data.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("chain of acme is broken at #1"), "{}", stderr(&out));
    assert!(stderr(&out).contains("missing from the evidence store"), "{}", stderr(&out));
    interrupt_and_wait(dev);
}

#[test]
fn webhook_verify_checks_a_standard_webhooks_signature() {
    use std::io::Write;
    let secret = anchor_webhooks::signature::Secret::generate();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let body = br#"{"type":"ticket.created"}"#;
    let verify = |signature: &str, timestamp: i64, body: &[u8]| {
        let mut child = anchor()
            .args(["webhook", "verify", "--secret", &secret.expose(), "--id", "msg_1"])
            .args(["--timestamp", &timestamp.to_string(), "--signature", signature])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child.stdin.take().expect("stdin").write_all(body).expect("write");
        child.wait_with_output().expect("wait")
    };
    let good = secret.sign("msg_1", now, body);
    let out = verify(&good, now, body);
    assert!(out.status.success() && stdout(&out).contains("valid"), "{}", stderr(&out));
    let out = verify(&good, now, b"{}");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no signature matches"), "{}", stderr(&out));
    let old = secret.sign("msg_1", now - 600, body);
    let out = verify(&old, now - 600, body);
    assert!(stderr(&out).contains("five minutes"), "{}", stderr(&out));
}
