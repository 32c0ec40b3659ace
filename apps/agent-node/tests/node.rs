//! The agent node against the AgentField mock: registration with schemas,
//! heartbeats, `/status`, a reasoner executed through the control plane,
//! the internal token, the shutdown notice, and the triage refined by a
//! language model (a stand-in OpenAI-compatible server).

use std::time::Duration;

use anchor_agentfield::{AgentFieldClient, ClientConfig, ExecuteRequest};
use anchor_commands::CommandSigner;
use anchor_testkit::TestDatabase;
use ed25519_dalek::SigningKey;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Setup {
    db: TestDatabase,
    mock: String,
    node: String,
    node_stop: CancellationToken,
    node_task: tokio::task::JoinHandle<anyhow::Result<()>>,
    mock_stop: CancellationToken,
}

/// The control plane's internal token, given to the node and to the mock.
const TOKEN: &str = "s3cret";

async fn start(llm: Option<anchor_agent_node::LlmConfig>) -> Setup {
    let db = TestDatabase::new().await;
    let mock_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mock = format!("http://{}", mock_listener.local_addr().expect("addr"));
    let mock_stop = CancellationToken::new();
    tokio::spawn(anchor_agentfield_mock::run(
        anchor_agentfield_mock::Config { node_token: Some(TOKEN.to_owned()), ..Default::default() },
        mock_listener,
        mock_stop.clone(),
    ));
    let node_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let node = format!("http://{}", node_listener.local_addr().expect("addr"));
    let config = anchor_agent_node::Config {
        database_url: db.url().clone(),
        database_max_connections: 2,
        database_recycling: Default::default(),
        agentfield: ClientConfig::new(&mock),
        node_id: "anchor".into(),
        base_url: node.clone(),
        heartbeat_interval: Duration::from_millis(200),
        verifier: CommandSigner::new(&SigningKey::from_bytes(&[3; 32])).verifier(),
        internal_token: SecretString::from(TOKEN.to_owned()),
        llm,
    };
    let node_stop = CancellationToken::new();
    let node_task = tokio::spawn(anchor_agent_node::run(config, node_listener, node_stop.clone()));
    Setup { db, mock, node, node_stop, node_task, mock_stop }
}

async fn capabilities(mock: &str) -> Value {
    let url = format!("{mock}/api/v1/discovery/capabilities");
    anchor_testkit::http_client().get(url).send().await.expect("get").json().await.expect("json")
}

async fn registered(mock: &str, status: &str) -> Value {
    for _ in 0..200 {
        let agents = capabilities(mock).await;
        if let Some(node) = agents["agents"].as_array().and_then(|a| a.iter().find(|n| n["node_id"] == "anchor"))
            && node["status"] == status
        {
            return node.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the node never became {status}: {}", capabilities(mock).await);
}

#[tokio::test]
async fn the_node_registers_its_functions_heartbeats_and_serves_them() {
    let setup = start(None).await;
    // The first heartbeat moves it from `starting` to `ready`.
    let node = registered(&setup.mock, "ready").await;
    let skills: Vec<&str> =
        node["skills"].as_array().expect("skills").iter().map(|s| s["id"].as_str().expect("id")).collect();
    assert_eq!(
        skills[..5],
        ["ticket_create", "ticket_transition", "ticket_comment", "ticket_resolve", "ticket_reopen"]
    );
    let commands: Vec<&str> = anchor_commands::registry::COMMANDS.iter().map(|spec| spec.skill).collect();
    assert_eq!(skills, commands, "one skill per command of the registry");
    for skill in node["skills"].as_array().expect("skills") {
        assert_eq!(skill["input_schema"]["type"], "object", "{skill}");
        assert!(skill["input_schema"]["required"].as_array().expect("required").contains(&json!("envelope")));
    }
    assert_eq!(node["reasoners"][0]["id"], "ticket_triage");
    assert_eq!(node["reasoners"][1]["id"], "triage_alert");
    assert_eq!(node["reasoners"][0]["output_schema"]["required"], json!(["priority", "category", "reasons"]));

    let status: Value = anchor_testkit::http_client()
        .get(format!("{}/status", setup.node))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!((status["status"].as_str(), status["node_id"].as_str()), (Some("running"), Some("anchor")));

    // The reasoner, executed through the control plane.
    let client = AgentFieldClient::new(ClientConfig::new(&setup.mock)).expect("client");
    let request = ExecuteRequest {
        target: "anchor.ticket_triage".into(),
        input: json!({"title": "Ransomware note on the file server", "description": "urgent"}),
        ..ExecuteRequest::default()
    };
    let done = client.execute(&request).await.expect("execute");
    assert_eq!(done.result["priority"], "p1");
    assert_eq!(done.result["category"], "security");
    assert!(done.result["reasons"][0].as_str().expect("reason").contains("ransomware"));

    // A skill without a valid envelope is refused, whoever calls.
    let refused = client
        .execute(&ExecuteRequest {
            target: "anchor.ticket_create".into(),
            input: json!({"title": "x"}),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("400"), "{refused}");

    // Going away is announced.
    setup.node_stop.cancel();
    setup.node_task.await.expect("task").expect("node stopped cleanly");
    registered(&setup.mock, "offline").await;
    setup.mock_stop.cancel();
    setup.db.drop_now().await;
}

#[tokio::test]
async fn only_the_control_plane_calls_reasoners_and_skills() {
    let setup = start(None).await;
    registered(&setup.mock, "ready").await;
    let http = anchor_testkit::http_client();
    let url = format!("{}/reasoners/ticket_triage", setup.node);
    let body = json!({"title": "Printer jam"});
    let anonymous = http.post(&url).json(&body).send().await.expect("post");
    assert_eq!(anonymous.status(), 401);
    let wrong = http.post(&url).bearer_auth("nope").json(&body).send().await.expect("post");
    assert_eq!(wrong.status(), 401);
    let right = http.post(&url).bearer_auth(TOKEN).json(&body).send().await.expect("post");
    assert_eq!(right.status(), 200);
    let status = http.get(format!("{}/status", setup.node)).send().await.expect("status");
    assert_eq!(status.status(), 200, "the control plane's status poll needs no token");
    setup.node_stop.cancel();
    setup.node_task.await.expect("task").expect("node stopped cleanly");
    setup.mock_stop.cancel();
    setup.db.drop_now().await;
}

#[tokio::test]
async fn a_configured_language_model_refines_the_ticket_triage() {
    use axum::{Json, Router, routing::post};
    let model = Router::new().route(
        "/v1/chat/completions",
        post(|Json(_): Json<Value>| async {
            let content = r#"{"priority": "p1", "category": "outage", "reason": "The whole office is affected."}"#;
            Json(json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}))
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, model).await });
    let llm = anchor_agent_node::LlmConfig {
        base_url,
        model: "triage-model".into(),
        api_key: None,
        timeout: Duration::from_secs(5),
    };
    let setup = start(Some(llm)).await;
    registered(&setup.mock, "ready").await;
    let client = AgentFieldClient::new(ClientConfig::new(&setup.mock)).expect("client");
    let done = client
        .execute(&ExecuteRequest {
            target: "anchor.ticket_triage".into(),
            input: json!({"title": "Printer offline", "description": "nobody on the floor can print or scan"}),
            ..ExecuteRequest::default()
        })
        .await
        .expect("execute");
    assert_eq!((done.result["priority"].as_str(), done.result["category"].as_str()), (Some("p1"), Some("outage")));
    assert_eq!(done.result["refined_by"], "triage-model");
    assert!(done.result["reasons"][0].as_str().expect("rule").contains("printer"), "{}", done.result);
    setup.node_stop.cancel();
    setup.node_task.await.expect("task").expect("node stopped cleanly");
    setup.mock_stop.cancel();
    setup.db.drop_now().await;
}

#[test]
fn a_node_without_the_internal_token_does_not_start() {
    // Production settings (a database of its own) name no token: refused.
    let settings = anchor_config::Settings::load(None, &anchor_config::Overrides::default()).expect("settings");
    assert!(settings.agent_node_token.is_none());
    let refused = anchor_agent_node::Config::from_settings(
        &settings,
        SecretString::from("postgres://db/anchor".to_owned()),
        "127.0.0.1:1".parse().expect("addr"),
        "http://agentfield",
    )
    .expect_err("no token, no node");
    assert!(refused.to_string().contains("agent_node_token"), "{refused}");
}
