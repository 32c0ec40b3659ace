//! The agent node acts only on commands the gateway signed, exactly as
//! signed, once, and with the actor's permissions at the time it acts.

use std::time::Duration;

use anchor_agentfield::{AgentFieldClient, ClientConfig, ExecuteRequest};
use anchor_commands::{Command, CommandInput, CommandSigner, accept, tickets::TicketCreate};
use anchor_domain::{Priority, Role, TicketTitle};
use anchor_store::{Workspace, executions::Actor};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::Platform;

fn actor(subject: &str) -> Actor {
    Actor { issuer: anchor_auth::dev_issuer::DEV_ISSUER.into(), subject: subject.into() }
}

fn create(title: &str) -> Command {
    Command::new(TicketCreate {
        title: TicketTitle::parse(title).expect("title"),
        description: None,
        priority: Priority::P2,
        asset_id: None,
        alert_id: None,
        contact_id: None,
        site_id: None,
        queue_id: None,
    })
}

/// A command accepted the way the gateway accepts it (the worker may hand
/// it off too; the skill's answer is the same either way).
async fn accepted(platform: &Platform, workspace: &Workspace, subject: &str, title: &str) -> CommandInput {
    let signer = CommandSigner::load_or_create(platform.data_dir.path()).expect("signer");
    let execution =
        accept(&platform.store, &signer, workspace, &actor(subject), None, &create(title)).await.expect("accept");
    CommandInput {
        execution_id: execution.id,
        workspace: workspace.slug().to_string(),
        actor: execution.actor,
        command: execution.command,
        args: execution.input,
        envelope: execution.envelope,
    }
}

async fn call_skill(platform: &Platform, input: &CommandInput) -> (u16, Value) {
    let url = format!("http://{}/skills/ticket_create", platform.node_addr);
    let response =
        platform.client.post(url).bearer_auth(crate::platform::NODE_TOKEN).json(input).send().await.expect("call node");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn tickets_titled(platform: &Platform, schema: &str, title: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {schema}.tickets WHERE title = $1")))
        .bind(title)
        .fetch_one(platform.store.pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn forged_or_altered_commands_achieve_nothing() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "tess", Role::Technician).await;
    let globex = platform.workspace("globex", "tess", Role::Technician).await;
    let genuine = accepted(&platform, &acme, "tess", "Genuine").await;

    let forger = CommandSigner::new(&SigningKey::from_bytes(&[9; 32]));
    let mut forged_signature = genuine.clone();
    forged_signature.args = json!({"title": "Forged", "priority": "p1"});
    forged_signature.envelope = forger
        .sign(genuine.execution_id, "acme", &genuine.actor, "ticket.create", &forged_signature.args)
        .expect("sign");
    let mut altered_args = genuine.clone();
    altered_args.args = json!({"title": "Altered", "priority": "p1"});
    let mut other_workspace = genuine.clone();
    other_workspace.workspace = "globex".into();
    let mut other_actor = genuine.clone();
    other_actor.actor = actor("mallory");
    let mut no_envelope = genuine.clone();
    no_envelope.envelope = String::new();

    for (case, input, code) in [
        ("signed by another key", &forged_signature, "command_envelope_invalid"),
        ("arguments altered", &altered_args, "command_envelope_mismatch"),
        ("replayed into another workspace", &other_workspace, "command_envelope_mismatch"),
        ("another actor", &other_actor, "command_envelope_mismatch"),
        ("no envelope", &no_envelope, "command_envelope_missing"),
    ] {
        let (status, body) = call_skill(&platform, input).await;
        assert_eq!((status, body["code"].as_str()), (403, Some(code)), "{case}: {body}");
    }
    for (schema, title) in [("ws_acme", "Forged"), ("ws_acme", "Altered"), ("ws_globex", "Genuine")] {
        assert_eq!(tickets_titled(&platform, schema, title).await, 0, "{title} in {schema}");
    }
    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_globex.command_effects")
        .fetch_one(platform.store.pool())
        .await
        .expect("count");
    assert_eq!(effects, 0, "a refused envelope leaves no trace in the workspace");
    drop(globex);

    // Through AgentField too: a control plane that alters the input gets a
    // failed execution and no effect.
    let client =
        AgentFieldClient::new(ClientConfig::new(format!("http://{}", platform.agentfield_addr))).expect("client");
    let request = ExecuteRequest {
        target: "anchor.ticket_create".into(),
        input: serde_json::to_value(&altered_args).expect("json"),
        ..ExecuteRequest::default()
    };
    let err = client.execute(&request).await.expect_err("the node refuses");
    assert!(err.to_string().contains("403"), "{err}");
    assert_eq!(tickets_titled(&platform, "ws_acme", "Altered").await, 0);

    // The genuine command works, once, however often it is delivered.
    let (status, first) = call_skill(&platform, &genuine).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = call_skill(&platform, &genuine).await;
    assert_eq!((status, &again), (200, &first), "a redelivery gets the first answer");
    // (The worker may also have handed it off through AgentField meanwhile.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tickets_titled(&platform, "ws_acme", "Genuine").await, 1);
    platform.stop().await;
}

#[tokio::test]
async fn skills_act_with_the_actors_permissions_when_they_run() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "tess", Role::Technician).await;
    platform.member(&acme, "olga", Role::Technician).await;
    // Accepted while olga was a technician (accept() is the gateway's step
    // after its own permission check); she is demoted before it runs.
    platform.member(&acme, "olga", Role::ClientUser).await;
    let input = accepted(&platform, &acme, "olga", "Olga's ticket").await;
    let (status, body) = call_skill(&platform, &input).await;
    // The worker may have handed it off first: either way the refusal stands.
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert!(body["message"].as_str().expect("message").contains("tickets.write"), "{body}");
    assert_eq!(tickets_titled(&platform, "ws_acme", "Olga's ticket").await, 0);
    let location = format!("/api/v1/workspaces/acme/executions/{}", input.execution_id);
    let execution = platform.finished(&location, "tess", Duration::from_secs(30)).await;
    assert_eq!(execution["status"], "failed");
    assert_eq!(execution["error"]["code"], "forbidden", "{execution}");
    platform.stop().await;
}
