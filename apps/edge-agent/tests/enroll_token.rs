//! Where `enroll` takes its token from: a file, standard input or the
//! environment, so that it need not appear on a command line (which every
//! local user can read). The server is a stand-in that records what it was
//! sent and accepts it.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::Path,
    process::{Command, Output, Stdio},
    thread::JoinHandle,
};

use serde_json::Value;

const TOKEN: &str = "anchor_enroll_from_a_safe_place";

fn agent(state: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_anchor-edge-agent"));
    command.arg("--state-dir").arg(state).env_remove("ANCHOR_ENROLL_TOKEN");
    command
}

/// Accepts one enrollment and answers 201; the request body it got.
fn enrollment_server() -> (String, JoinHandle<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = std::thread::spawn(move || {
        let (socket, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(socket.try_clone().expect("clone"));
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let answer = r#"{"agent_id":"agt_from_the_stand_in","workspace":"acme"}"#;
        let mut socket = socket;
        write!(
            socket,
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .expect("answer");
        serde_json::from_slice(&body).expect("json")
    });
    (url, server)
}

fn enrolled(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("enrolled as agt_from_the_stand_in"), "{stdout}");
}

#[test]
fn the_token_is_read_from_a_file() {
    let state = tempfile::tempdir().expect("tempdir");
    let file = state.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).expect("write");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let (server, sent) = enrollment_server();
    let out = agent(&state.path().join("agent"))
        .args(["enroll", "--server", &server, "--token-file"])
        .arg(&file)
        .output()
        .expect("enroll");
    enrolled(&out);
    assert_eq!(sent.join().expect("server")["token"], TOKEN);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("other users"), "a private file draws no warning");
}

#[test]
fn the_token_is_read_from_the_environment() {
    let state = tempfile::tempdir().expect("tempdir");
    let (server, sent) = enrollment_server();
    let out = agent(state.path())
        .args(["enroll", "--server", &server])
        .env("ANCHOR_ENROLL_TOKEN", TOKEN)
        .output()
        .expect("enroll");
    enrolled(&out);
    assert_eq!(sent.join().expect("server")["token"], TOKEN);
}

#[test]
fn the_token_is_read_from_standard_input() {
    let state = tempfile::tempdir().expect("tempdir");
    let (server, sent) = enrollment_server();
    let mut child = agent(state.path())
        .args(["enroll", "--server", &server, "--token-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("enroll");
    child.stdin.take().expect("stdin").write_all(format!("  {TOKEN}\n").as_bytes()).expect("write");
    enrolled(&child.wait_with_output().expect("wait"));
    assert_eq!(sent.join().expect("server")["token"], TOKEN);
}

#[test]
fn without_a_token_enroll_says_where_one_may_come_from() {
    let state = tempfile::tempdir().expect("tempdir");
    let out = agent(state.path()).args(["enroll", "--server", "http://127.0.0.1:9"]).output().expect("enroll");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--token-file") && stderr.contains("ANCHOR_ENROLL_TOKEN"), "{stderr}");
    let help = agent(state.path()).args(["enroll", "--help"]).output().expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--token-file") && help.contains("Discouraged"), "{help}");
}
