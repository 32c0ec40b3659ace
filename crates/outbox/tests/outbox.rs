//! The outbox against the real PostgreSQL server.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anchor_domain::{WorkspaceName, WorkspaceSlug};
use anchor_outbox::{
    Dispatcher, DispatcherConfig, HandlerError, Handlers, OutboxStats, enqueue_platform, replay_failed,
};
use anchor_store::{Database, Workspace};
use anchor_testkit::TestDatabase;
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn workspace(db: &Database, slug: &str) -> Workspace {
    db.create_workspace(&WorkspaceSlug::parse(slug).expect("slug"), &WorkspaceName::parse(slug).expect("name"))
        .await
        .expect("create")
}

async fn enqueue_many(db: &Database, ws: &Workspace, topic: &str, n: usize) {
    let mut tx = db.begin_workspace(ws).await.expect("begin");
    for i in 0..n {
        tx.enqueue(topic, &json!({"n": i})).await.expect("enqueue");
    }
    tx.commit().await.expect("commit");
}

fn config(worker: &str) -> DispatcherConfig {
    DispatcherConfig {
        worker_id: worker.to_owned(),
        batch_size: 50,
        per_workspace: 50,
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_millis(200),
        concurrency: 8,
        shutdown_grace: Duration::from_secs(2),
    }
}

async fn wait_until<F: AsyncFn() -> bool>(what: &str, limit: Duration, check: F) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn events_commit_with_their_transaction_and_carry_their_workspace() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    let alpha = workspace(&db, "alpha").await;

    let mut tx = db.begin_workspace(&alpha).await.expect("begin");
    tx.enqueue("ticket.created", &json!({"ticket": 1})).await.expect("enqueue");
    tx.rollback().await.expect("rollback");
    assert_eq!(OutboxStats::read(&db).await.expect("stats").pending, 0, "rolled back with its transaction");

    let mut tx = db.begin_workspace(&alpha).await.expect("begin");
    let id = tx.enqueue("ticket.created", &json!({"ticket": 2})).await.expect("enqueue");
    // The unit of work cannot write the table directly, nor pick another workspace.
    sqlx::query("SAVEPOINT s").execute(tx.conn()).await.expect("savepoint");
    let direct =
        sqlx::query("INSERT INTO platform.outbox_events (topic, payload) VALUES ('x', '{}')").execute(tx.conn()).await;
    assert_eq!(direct.expect_err("refused").as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"));
    sqlx::query("ROLLBACK TO SAVEPOINT s").execute(tx.conn()).await.expect("rollback to savepoint");
    tx.commit().await.expect("commit");
    let owner: Option<i64> = sqlx::query_scalar("SELECT workspace_id FROM platform.outbox_events WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .expect("row");
    assert_eq!(owner, Some(alpha.id()));

    // Outside a workspace unit of work the function refuses.
    let outside = sqlx::query("SELECT platform.enqueue('x', '{}')").execute(db.pool()).await;
    assert!(outside.is_err());
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn retries_back_off_then_fail_into_replayable_dead_letters() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    let mut conn = db.pool().acquire().await.expect("conn");
    let id = enqueue_platform(&mut conn, "webhook.deliver", &json!({})).await.expect("enqueue");
    drop(conn);
    sqlx::query("UPDATE platform.outbox_events SET max_attempts = 3").execute(db.pool()).await.expect("budget");

    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new().on("webhook.deliver", {
        let (fail, calls) = (Arc::clone(&fail), Arc::clone(&calls));
        move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            let fail = fail.load(Ordering::SeqCst);
            async move { if fail { Err(HandlerError::retry("receiver down")) } else { Ok(()) } }
        }
    });
    let dispatcher = Dispatcher::new(db.clone(), handlers, config("w1"));
    let never = CancellationToken::new();
    for attempt in 1..=3 {
        assert_eq!(dispatcher.run_batch(&never).await.expect("batch"), 1, "attempt {attempt}");
        let (state, wait): (String, f64) = sqlx::query_as(
            "SELECT state, extract(epoch FROM available_at - now())::float8 FROM platform.outbox_events WHERE id = $1",
        )
        .bind(id)
        .fetch_one(db.pool())
        .await
        .expect("row");
        if attempt < 3 {
            assert_eq!(state, "pending");
            let full = f64::from(1 << (attempt - 1));
            assert!(wait > full / 2.0 - 0.5 && wait <= full + 0.1, "attempt {attempt}: backoff {wait}");
            sqlx::query("UPDATE platform.outbox_events SET available_at = now()")
                .execute(db.pool())
                .await
                .expect("skip wait");
        } else {
            assert_eq!(state, "failed", "max attempts reached");
        }
    }
    assert_eq!(dispatcher.run_batch(&never).await.expect("batch"), 0, "dead letters are not retried by themselves");
    fail.store(false, Ordering::SeqCst);
    assert_eq!(replay_failed(&db, None).await.expect("replay"), 1);
    assert_eq!(dispatcher.run_batch(&never).await.expect("batch"), 1);
    dispatcher.flush().await.expect("flush");
    assert_eq!(OutboxStats::read(&db).await.expect("stats").delivered, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    db.close().await;
    test_db.drop_now().await;
}

/// Handlers of `event.publish` that record the workspace of every event
/// they deliver.
fn recording_workspaces() -> (Handlers, Arc<std::sync::Mutex<Vec<Option<i64>>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handlers = Handlers::new().on("event.publish", {
        let seen = Arc::clone(&seen);
        move |e| {
            seen.lock().expect("lock").push(e.workspace_id);
            async { Ok(()) }
        }
    });
    (handlers, seen)
}

/// Handlers of `event.publish` that count the events they deliver.
fn counting() -> (Handlers, Arc<AtomicUsize>) {
    let delivered = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new().on("event.publish", {
        let delivered = Arc::clone(&delivered);
        move |_| {
            delivered.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        }
    });
    (handlers, delivered)
}

#[tokio::test]
async fn a_noisy_workspace_does_not_starve_a_quiet_one() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    let (noisy, quiet) = (workspace(&db, "noisy").await, workspace(&db, "quiet").await);
    enqueue_many(&db, &noisy, "event.publish", 300).await;
    enqueue_many(&db, &quiet, "event.publish", 3).await;
    let (handlers, seen) = recording_workspaces();
    let mut cfg = config("fair");
    cfg.batch_size = 20;
    cfg.per_workspace = 10;
    let dispatcher = Dispatcher::new(db.clone(), handlers, cfg);
    dispatcher.run_batch(&CancellationToken::new()).await.expect("batch");
    let first: Vec<Option<i64>> = seen.lock().expect("lock").clone();
    assert_eq!(first.len(), 13, "10 of the noisy workspace, all 3 of the quiet one");
    assert_eq!(first.iter().filter(|w| **w == Some(quiet.id())).count(), 3);
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn workspaces_waiting_for_retries_never_crowd_out_ready_work() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    // More workspaces than a batch holds, each with only an event that waits
    // an hour for its retry; then one with work ready now.
    for n in 0..6 {
        let ws = workspace(&db, &format!("waiting-{n}")).await;
        enqueue_many(&db, &ws, "event.publish", 1).await;
    }
    sqlx::query("UPDATE platform.outbox_events SET available_at = now() + interval '1 hour'")
        .execute(db.pool())
        .await
        .expect("delay");
    let ready = workspace(&db, "ready").await;
    enqueue_many(&db, &ready, "event.publish", 2).await;
    let (handlers, seen) = recording_workspaces();
    let mut cfg = config("patient");
    cfg.batch_size = 4;
    cfg.per_workspace = 4;
    let dispatcher = Dispatcher::new(db.clone(), handlers, cfg);
    assert_eq!(dispatcher.run_batch(&CancellationToken::new()).await.expect("batch"), 2);
    assert_eq!(*seen.lock().expect("lock"), [Some(ready.id()), Some(ready.id())]);
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn expired_leases_return_events_and_notifications_wake_workers() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(6).await;
    let ws = workspace(&db, "acme").await;
    enqueue_many(&db, &ws, "event.publish", 5).await;
    // A worker that claimed and died: its lease has run out.
    sqlx::query("UPDATE platform.outbox_events SET state = 'processing', attempts = 1, locked_by = 'dead', locked_until = now() - interval '1 second'")
        .execute(db.pool())
        .await
        .expect("simulate");
    let (handlers, delivered) = counting();
    let mut cfg = config("live");
    cfg.poll_interval = Duration::from_secs(3600); // only a notification can wake it
    let dispatcher = Dispatcher::new(db.clone(), handlers, cfg);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (dispatcher, shutdown) = (dispatcher.clone(), shutdown.clone());
        async move { dispatcher.run(shutdown).await }
    });
    wait_until("the events taken over", Duration::from_secs(10), async || delivered.load(Ordering::SeqCst) == 5).await;
    // Idle now; a new event wakes it through NOTIFY.
    tokio::time::sleep(Duration::from_millis(300)).await;
    enqueue_many(&db, &ws, "event.publish", 1).await;
    wait_until("the notified event", Duration::from_secs(10), async || delivered.load(Ordering::SeqCst) == 6).await;
    shutdown.cancel();
    running.await.expect("join").expect("dispatcher ran cleanly");
    let stats = OutboxStats::read(&db).await.expect("stats");
    assert_eq!((stats.delivered, stats.processing, stats.pending), (6, 0, 0));
    let taken_over: i64 =
        sqlx::query_scalar("SELECT count(*) FROM platform.outbox_events WHERE attempts = 2 AND locked_by IS NULL")
            .fetch_one(db.pool())
            .await
            .expect("count");
    assert_eq!(taken_over, 5, "taking over an expired lease counts as the next attempt");
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn a_lease_that_runs_out_on_the_last_attempt_dead_letters_the_event() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(4).await;
    let ws = workspace(&db, "acme").await;
    enqueue_many(&db, &ws, "event.publish", 3).await;
    // Two events killed their worker on every attempt; the third has attempts left.
    sqlx::query(
        "UPDATE platform.outbox_events
            SET state = 'processing', locked_by = 'dead', locked_until = now() - interval '1 second',
                attempts = CASE WHEN id = (SELECT max(id) FROM platform.outbox_events) THEN 1 ELSE max_attempts END",
    )
    .execute(db.pool())
    .await
    .expect("simulate");
    // A live lease is left alone.
    enqueue_many(&db, &ws, "event.publish", 1).await;
    sqlx::query(
        "UPDATE platform.outbox_events SET state = 'processing', attempts = 1, locked_by = 'alive',
                locked_until = now() + interval '1 hour'
          WHERE id = (SELECT max(id) FROM platform.outbox_events)",
    )
    .execute(db.pool())
    .await
    .expect("live lease");
    let (handlers, delivered) = counting();
    let dispatcher = Dispatcher::new(db.clone(), handlers, config("next"));
    assert_eq!(
        dispatcher.run_batch(&CancellationToken::new()).await.expect("batch"),
        1,
        "only the event with attempts left"
    );
    dispatcher.flush().await.expect("flush");
    assert_eq!(delivered.load(Ordering::SeqCst), 1);
    let stats = OutboxStats::read(&db).await.expect("stats");
    assert_eq!((stats.delivered, stats.failed, stats.processing, stats.pending), (1, 2, 1, 0));
    assert_eq!(replay_failed(&db, None).await.expect("replay"), 2, "dead letters are replayable");
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn shutdown_releases_what_a_worker_holds() {
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(6).await;
    let ws = workspace(&db, "acme").await;
    enqueue_many(&db, &ws, "slow.work", 4).await;
    let handlers = Handlers::new().on("slow.work", |_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(())
    });
    let mut cfg = config("leaving");
    cfg.shutdown_grace = Duration::from_millis(200);
    let dispatcher = Dispatcher::new(db.clone(), handlers, cfg);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (dispatcher, shutdown) = (dispatcher.clone(), shutdown.clone());
        async move { dispatcher.run(shutdown).await }
    });
    wait_until("the claim", Duration::from_secs(10), async || {
        OutboxStats::read(&db).await.expect("stats").processing == 4
    })
    .await;
    shutdown.cancel();
    running.await.expect("join").expect("clean stop");
    let stats = OutboxStats::read(&db).await.expect("stats");
    assert_eq!((stats.pending, stats.processing), (4, 0), "released for another worker at once, not after the lease");
    db.close().await;
    test_db.drop_now().await;
}

/// Not a test of its own: the worker process that the crash test starts and
/// kills. It runs only when the crash test asks for it.
#[tokio::test]
#[ignore = "helper process for worker_killed_mid_batch_loses_nothing_and_repeats_no_effect"]
async fn crash_test_worker_process() {
    let url = std::env::var("ANCHOR_CRASH_TEST_DB").expect("started by the crash test");
    let db = Database::connect(&url.into(), 6).await.expect("connect");
    let shutdown = CancellationToken::new();
    Dispatcher::new(db.clone(), effect_handlers(db), config(&format!("child-{}", std::process::id())))
        .run(shutdown)
        .await
        .expect("run");
}

/// The effect: one row per event id (an idempotent consumer), and a count of
/// every delivery attempt that reached it.
fn effect_handlers(db: Database) -> Handlers {
    Handlers::new().on("crash.effect", move |event| {
        let db = db.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let mut tx = db.pool().begin().await.map_err(|e| HandlerError::retry(e.to_string()))?;
            sqlx::query("INSERT INTO crash_test.effects (event_id) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(event.id)
                .execute(&mut *tx)
                .await
                .map_err(|e| HandlerError::retry(e.to_string()))?;
            sqlx::query("UPDATE crash_test.deliveries SET n = n + 1")
                .execute(&mut *tx)
                .await
                .map_err(|e| HandlerError::retry(e.to_string()))?;
            tx.commit().await.map_err(|e| HandlerError::retry(e.to_string()))
        }
    })
}

#[tokio::test]
async fn worker_killed_mid_batch_loses_nothing_and_repeats_no_effect() {
    const EVENTS: i64 = 1000;
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(6).await;
    sqlx::raw_sql(
        "CREATE SCHEMA crash_test;
         CREATE TABLE crash_test.effects (event_id bigint PRIMARY KEY);
         CREATE TABLE crash_test.deliveries (n bigint NOT NULL); INSERT INTO crash_test.deliveries VALUES (0);",
    )
    .execute(db.pool())
    .await
    .expect("effects table");
    let ws = workspace(&db, "acme").await;
    enqueue_many(&db, &ws, "crash.effect", EVENTS as usize).await;

    use secrecy::ExposeSecret;
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--ignored", "--exact", "crash_test_worker_process", "--nocapture"])
        .env("ANCHOR_CRASH_TEST_DB", test_db.url().expose_secret())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn worker");
    let effects = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM crash_test.effects").fetch_one(db.pool()).await.expect("count")
    };
    wait_until("the worker to be mid-way", Duration::from_secs(60), async || effects().await >= EVENTS / 4).await;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill -9");
    child.wait().expect("reap");
    let at_kill = OutboxStats::read(&db).await.expect("stats");
    assert!(at_kill.delivered < EVENTS, "killed before the end");
    assert!(at_kill.processing > 0, "killed in the middle of a batch: {at_kill:?}");

    // A new worker finishes; the dead one's claims come back when their lease ends.
    sqlx::query("UPDATE platform.outbox_events SET locked_until = now() WHERE state = 'processing'")
        .execute(db.pool())
        .await
        .expect("let the dead worker's leases run out now");
    let survivor = Dispatcher::new(db.clone(), effect_handlers(db.clone()), config("survivor"));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (survivor, shutdown) = (survivor.clone(), shutdown.clone());
        async move { survivor.run(shutdown).await }
    });
    wait_until("every event delivered", Duration::from_secs(120), async || {
        OutboxStats::read(&db).await.expect("stats").delivered == EVENTS
    })
    .await;
    shutdown.cancel();
    running.await.expect("join").expect("clean");

    let deliveries: i64 =
        sqlx::query_scalar("SELECT n FROM crash_test.deliveries").fetch_one(db.pool()).await.expect("n");
    let stats = OutboxStats::read(&db).await.expect("stats");
    eprintln!(
        "crash test: {EVENTS} events; killed after {} delivered ({} in flight); delivered {} of {EVENTS}, \
         {} distinct effects, {deliveries} handler deliveries (redeliveries are absorbed by the idempotent consumer)",
        at_kill.delivered,
        at_kill.processing,
        stats.delivered,
        effects().await
    );
    assert_eq!(stats.delivered, EVENTS, "every event delivered");
    assert_eq!(effects().await, EVENTS, "every effect exactly once");
    assert!(deliveries >= EVENTS);
    db.close().await;
    test_db.drop_now().await;
}

#[tokio::test]
async fn a_recurring_job_runs_once_per_occurrence_across_replicas() {
    use anchor_outbox::{RecurringJob, register_jobs, run_due_jobs};
    let test_db = TestDatabase::new().await;
    let db = test_db.connect(6).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let job = RecurringJob::new("test.count", Duration::from_secs(3600), {
        let runs = Arc::clone(&runs);
        move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok("counted".to_owned()) }
        }
    });
    let jobs = vec![job];
    register_jobs(&db, &jobs).await.expect("register");
    // Four replicas tick at the same moment: one of them runs it.
    let passes = futures_util::future::join_all((0..4).map(|_| run_due_jobs(&db, &jobs))).await;
    let ran: usize = passes.into_iter().map(|p| p.expect("pass").len()).sum();
    assert_eq!((ran, runs.load(Ordering::SeqCst)), (1, 1));
    // Not due again until its interval has passed.
    assert!(run_due_jobs(&db, &jobs).await.expect("pass").is_empty());
    sqlx::query("UPDATE platform.recurring_jobs SET next_run_at = now()").execute(db.pool()).await.expect("make due");
    assert_eq!(run_due_jobs(&db, &jobs).await.expect("pass"), ["test.count"]);
    db.close().await;
    test_db.drop_now().await;
}
