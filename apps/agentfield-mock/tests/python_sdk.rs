//! Fidelity: an agent built with the official AgentField Python SDK
//! registers with the mock, and its reasoner and skill are executed through
//! the mock's execute API. Python comes from `ANCHOR_PYTHON` (`.ci/run` makes
//! a venv with `agentfield` installed); without it the test fails with
//! instructions.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anchor_agentfield::{AgentFieldClient, ClientConfig, ExecuteRequest, ExecutionStatus};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const KEY: &str = "fidelity-key";

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    std::env::var("ANCHOR_PYTHON").unwrap_or_else(|_| "/var/tmp/anchor-pyvenv/bin/python".to_owned())
}

#[tokio::test]
async fn an_agent_built_with_the_python_sdk_runs_through_the_mock() {
    let python = python();
    let probe = Command::new(&python).args(["-c", "import agentfield"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "the fidelity test needs Python with the AgentField SDK: python3 -m venv /var/tmp/anchor-pyvenv && \
         /var/tmp/anchor-pyvenv/bin/pip install agentfield (or set ANCHOR_PYTHON); {python}: {probe:?}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mock = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let config = anchor_agentfield_mock::Config {
        api_key: Some(KEY.to_owned()),
        status_poll: Duration::from_millis(500),
        ..Default::default()
    };
    tokio::spawn(anchor_agentfield_mock::run(config, listener, shutdown.clone()));

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fidelity/sdk_agent.py");
    let _agent = Agent(
        Command::new(&python)
            .args([script, &port.to_string(), &mock, KEY])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python agent"),
    );

    // Registration (bounded wait: the SDK starts uvicorn, then registers).
    let http = anchor_testkit::http_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    let node = loop {
        let caps: Value = http
            .get(format!("{mock}/api/v1/discovery/capabilities"))
            .header("X-API-Key", KEY)
            .send()
            .await
            .expect("caps")
            .json()
            .await
            .expect("json");
        if let Some(node) =
            caps["agents"].as_array().and_then(|a| a.iter().find(|n| n["node_id"] == "py-fidelity")).cloned()
        {
            break node;
        }
        assert!(Instant::now() < deadline, "the Python agent never registered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reasoners: Vec<&str> =
        node["reasoners"].as_array().expect("reasoners").iter().filter_map(|r| r["id"].as_str()).collect();
    let skills: Vec<&str> =
        node["skills"].as_array().expect("skills").iter().filter_map(|s| s["id"].as_str()).collect();
    assert!(reasoners.contains(&"greet") && skills.contains(&"add"), "{node}");

    let mut cfg = ClientConfig::new(mock.clone());
    cfg.api_key = Some(KEY.to_owned().into());
    let client = AgentFieldClient::new(cfg).expect("client");

    let greet =
        ExecuteRequest { target: "py-fidelity.greet".into(), input: json!({"name": "Anchor"}), ..Default::default() };
    let done = client.execute(&greet).await.expect("sync execute through the mock");
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.result["greeting"], "hello Anchor", "{}", done.result);

    let add =
        ExecuteRequest { target: "py-fidelity.add".into(), input: json!({"a": 2, "b": 40}), ..Default::default() };
    let accepted = client.execute_async(&add).await.expect("async execute");
    let deadline = Instant::now() + Duration::from_secs(30);
    let finished = loop {
        let execution = client.execution(&accepted.execution_id).await.expect("status");
        if execution.status.is_terminal() {
            break execution;
        }
        assert!(Instant::now() < deadline, "the skill never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished.status, ExecutionStatus::Succeeded, "{finished:?}");
    assert_eq!(finished.result.expect("result")["sum"], 42);
    shutdown.cancel();
}
