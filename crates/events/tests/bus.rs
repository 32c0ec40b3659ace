//! Domain events through the outbox: in process, and on the real NATS server.

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_events::{EventBus, PUBLISH_TOPIC, PublishRequest, StreamSettings, publish_handler};
use anchor_outbox::{Dispatcher, DispatcherConfig, Handlers, OutboxStats};
use anchor_store::{Database, Workspace};
use anchor_testkit::TestDatabase;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn nats_url() -> String {
    std::env::var("ANCHOR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn workspace(db: &Database) -> Workspace {
    db.create_workspace(&WorkspaceSlug::parse("acme").expect("slug"), &WorkspaceName::parse("Acme").expect("name"))
        .await
        .expect("create")
}

async fn enqueue_events(db: &Database, ws: &Workspace, kinds: &[&str]) {
    let mut tx = db.begin_workspace(ws).await.expect("begin");
    for (i, kind) in kinds.iter().enumerate() {
        let request = PublishRequest::new(kind, Some(ws.slug().as_str()), json!({"ticket_id": format!("tkt_{i}")}));
        tx.enqueue(PUBLISH_TOPIC, &serde_json::to_value(request).expect("json")).await.expect("enqueue");
    }
    tx.commit().await.expect("commit");
}

fn dispatcher(db: &Database, bus: EventBus) -> Dispatcher {
    let handlers = Handlers::new().on(PUBLISH_TOPIC, publish_handler(bus));
    Dispatcher::new(db.clone(), handlers, DispatcherConfig { worker_id: "events-test".into(), ..Default::default() })
}

#[tokio::test]
async fn events_reach_in_process_subscribers() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    let ws = workspace(&db).await;
    let bus = EventBus::in_process();
    let mut events = bus.subscribe().expect("in-process bus");
    enqueue_events(&db, &ws, &["ticket.created", "ticket.updated"]).await;
    let d = dispatcher(&db, bus);
    assert_eq!(d.run_batch(&CancellationToken::new()).await.expect("batch"), 2);
    d.flush().await.expect("flush");
    let first = events.recv().await.expect("event");
    let second = events.recv().await.expect("event");
    let mut kinds = [first.kind.clone(), second.kind.clone()];
    kinds.sort();
    assert_eq!(kinds, ["ticket.created", "ticket.updated"]);
    assert_eq!(first.workspace.as_deref(), Some("acme"));
    assert!(first.id.starts_with("evt_"));
    assert_eq!(OutboxStats::read(&db).await.expect("stats").delivered, 2);
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn events_reach_jetstream_once_per_outbox_event() {
    let url = nats_url();
    let client = match async_nats::connect(&url).await {
        Ok(client) => client,
        Err(e) => panic!(
            "this test needs NATS with JetStream at {url} (ANCHOR_TEST_NATS_URL): {e}. Start it with: \
             start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js"
        ),
    };
    // A stream of the test's own, so runs never see each other's messages.
    let tag: u32 = rand::random();
    let settings = StreamSettings {
        name: format!("ANCHOR_TEST_{tag:08x}"),
        subject_prefix: format!("anchortest{tag:08x}.events"),
        ..Default::default()
    };
    let bus = EventBus::nats(&url, settings.clone()).await.expect("bus");

    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    let ws = workspace(&db).await;
    enqueue_events(&db, &ws, &["ticket.created", "ticket.updated", "execution.succeeded"]).await;
    let d = dispatcher(&db, bus.clone());
    assert_eq!(d.run_batch(&CancellationToken::new()).await.expect("batch"), 3);
    d.flush().await.expect("flush");

    // The outbox redelivers one of them (as after a crash): stored once.
    let outbox_id: i64 =
        sqlx::query_scalar("SELECT min(id) FROM platform.outbox_events").fetch_one(db.pool()).await.expect("id");
    sqlx::query("UPDATE platform.outbox_events SET state = 'pending' WHERE id = $1")
        .bind(outbox_id)
        .execute(db.pool())
        .await
        .expect("redeliver");
    assert_eq!(d.run_batch(&CancellationToken::new()).await.expect("batch"), 1);
    d.flush().await.expect("flush");

    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(&settings.name).await.expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.state.messages, 3, "four publications, three events: Nats-Msg-Id deduplicated the redelivery");
    let first = stream.get_raw_message(1).await.expect("message 1");
    assert!(first.subject.as_str().starts_with(&format!("{}.acme.", settings.subject_prefix)), "{}", first.subject);
    let event: serde_json::Value = serde_json::from_slice(&first.payload).expect("json");
    assert!(event["id"].as_str().is_some_and(|id| id.starts_with("evt_")));
    assert_eq!(event["workspace"], "acme");
    js.delete_stream(&settings.name).await.expect("clean up");
    db.close().await;
    test_db.drop_now().await;
}
