//! The ticket pages at the scale to design for (web.md: p95 server time
//! <= 150 ms for a list at 10k tickets, a constant number of queries per
//! page): a workspace of `ANCHOR_BENCH_TICKETS` tickets (default 10,000; a
//! tenth open), three comments and a history entry each, seeded in SQL.
//! Then, through the real router in process (authentication, tenancy,
//! handler, JSON; no socket), `ANCHOR_BENCH_REQUESTS` requests each
//! (default 200) of:
//!
//! - the list (first page, 50 rows, newest first);
//! - a filtered list (open tickets of one priority assigned to the caller,
//!   soonest SLA deadline first);
//! - a search (`printer offline`) and a search of a word only comments hold;
//! - a ticket's detail (a random ticket, with comments, history and clocks);
//! - the asset list at `ANCHOR_BENCH_ASSETS` assets (default 5,000; issue
//!   15's target is p95 <= 150 ms), first page and filtered by type and
//!   words, each row with its agent's state, open alerts, failing checks
//!   and open tickets (two in five assets have an agent, one in fifty an
//!   open alert, every open ticket names an asset);
//!
//! and, beside each, the bare SQL the handler sends (the same statements on
//! a pooled connection: no HTTP, authentication, transaction or JSON),
//! measured in the same run. It prints p50/p95 of each, the ratio of the
//! p95s, whether p95 <= 150 ms, and the SQL statements each request sent
//! (counted from sqlx's statement log: the same on the first page and
//! on a later one means no N+1). It asserts no timing.
//!
//! `cargo bench -p anchor-gateway --bench tickets --profile dev` (the time
//! is PostgreSQL's; the release profile only shortens the JSON part).

mod common;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anchor_auth::{DevIssuer, dev_issuer::DEV_ISSUER};
use anchor_domain::{Role, WorkspaceName, WorkspaceSlug};
use anchor_store::access::{AuditContext, SubjectRef};
use anchor_testkit::TestDatabase;
use axum::{Router, body::Body, http::Request};
use common::figures;
use http_body_util::BodyExt;
use rand::Rng;
use secrecy::ExposeSecret;
use sqlx::{Connection, PgConnection};
use tower::ServiceExt;
use tracing_subscriber::{Layer, layer::SubscriberExt};

const TARGET: Duration = Duration::from_millis(150);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// SQL statements sent, as sqlx logs them (target `sqlx::query`).
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

struct StatementCount;

impl<S: tracing::Subscriber> Layer<S> for StatementCount {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut sql = Summary(String::new());
        event.record(&mut sql);
        // The pool's own bookkeeping (a connection's use count, now and
        // then on checkout) belongs to the connection, not to the page.
        if !sql.0.contains("anchor.pool_uses") {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
            if std::env::var_os("ANCHOR_BENCH_SHOW_SQL").is_some() {
                eprintln!("  sql: {}", sql.0);
            }
        }
    }
}

/// The `summary` of a sqlx statement event (its first words).
struct Summary(String);

impl tracing::field::Visit for Summary {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.0 = format!("{value:?}");
        }
    }
}

/// The seed: tickets `tkt_000…<hex i>` for i in 1..=n, every tenth open.
fn seed_sql(n: usize) -> String {
    format!(
        "SET search_path TO ws_bench;
INSERT INTO executions (id, command, input, actor_issuer, actor_subject, envelope, status, completed_at)
SELECT 'exe_' || lpad(to_hex(i), 26, '0'), 'ticket.create', '{{}}', '{DEV_ISSUER}', 'seed', '', 'succeeded', now()
  FROM generate_series(1, {n} * 4) i;
INSERT INTO tickets (id, title, description, priority, status, created_by_issuer, created_by, execution_id,
                     created_at, updated_at, assignee_issuer, assignee, sla_state, sla_due_at, tags)
SELECT 'tkt_' || lpad(to_hex(i), 26, '0'),
       (ARRAY['Printer', 'Laptop', 'VPN', 'Mailbox', 'Backup', 'Firewall', 'Outlook', 'Server', 'Wi-Fi',
              'Scanner'])[1 + i % 10]
         || ' ' || (ARRAY['not working', 'slow', 'offline', 'error 0x80070005', 'keeps crashing', 'needs replacing',
                          'cannot connect', 'password reset'])[1 + (i / 10) % 8] || ' at site ' || i % 37,
       repeat('The user reports it started after the last update and affects their whole team. ', 1 + i % 4)
         || 'Host ws-' || i || '.',
       'p' || (1 + i % 4),
       CASE WHEN i % 10 = 0 THEN (ARRAY['new', 'triaged', 'in_progress', 'waiting_on_client'])[1 + (i / 10) % 4]
            WHEN i % 3 = 0 THEN 'closed' ELSE 'resolved' END,
       '{DEV_ISSUER}', 'seed', 'exe_' || lpad(to_hex(i), 26, '0'),
       now() - ({n} + 1 - i) * interval '47 minutes',
       now() - ({n} + 1 - i) * interval '47 minutes' + (i % 100) * interval '1 minute',
       CASE WHEN i % 7 <> 0 THEN '{DEV_ISSUER}' END,
       CASE WHEN i % 7 <> 0 THEN (ARRAY['tess', 'tom', 'tina', 'theo', 'tara'])[1 + i % 5] END,
       CASE WHEN i % 10 = 0 THEN 'running' ELSE 'met' END,
       CASE WHEN i % 10 = 0 THEN now() + (i % 500) * interval '7 minutes' END,
       CASE WHEN i % 11 = 0 THEN ARRAY['vip'] ELSE '{{}}' END
  FROM generate_series(1, {n}) i;
INSERT INTO ticket_comments (id, ticket_id, body, visibility, author_issuer, author, execution_id, created_at)
SELECT 'cmt_' || lpad(to_hex(c), 26, '0'), 'tkt_' || lpad(to_hex(1 + (c - 1) % {n}), 26, '0'),
       CASE WHEN c % 97 = 0 THEN 'Swapped the toner cartridge; the queue is printing again.'
            ELSE 'Called the user back, checked the event log and the driver version; waiting for their reply.' END,
       CASE WHEN c % 2 = 0 THEN 'internal' ELSE 'public' END, '{DEV_ISSUER}', 'tess',
       'exe_' || lpad(to_hex({n} + c), 26, '0'), now()
  FROM generate_series(1, {n} * 3) c;
INSERT INTO ticket_history (ticket_id, change, to_status, actor_issuer, actor, execution_id, at)
SELECT 'tkt_' || lpad(to_hex(i), 26, '0'), 'created', 'new', '{DEV_ISSUER}', 'seed',
       'exe_' || lpad(to_hex(i), 26, '0'), now()
  FROM generate_series(1, {n}) i;
ANALYZE tickets, ticket_comments, ticket_history, executions;"
    )
}

/// The CMDB seed: assets `ast_000…<hex i>` for i in 1..=n by name
/// (`host-00001` …), two in five with an agent (and a check series, one in
/// ten of those failing), one in fifty with an open alert; every open
/// ticket names one.
fn seed_assets_sql(n: usize) -> String {
    format!(
        "INSERT INTO platform.agents (id, workspace_id, public_key, hostname, last_seen_at)
SELECT 'agt_' || lpad(to_hex(i), 26, '0'), (SELECT id FROM platform.workspaces WHERE slug = 'bench'),
       'z6Mkbench' || i, 'host-' || lpad(i::text, 5, '0'), now() - (i % 600) * interval '1 second'
  FROM generate_series(1, {n}) i WHERE i % 5 < 2;
SET search_path TO ws_bench;
INSERT INTO assets (id, agent_id, hostname, os, name, type_key, status, attributes, tags)
SELECT 'ast_' || lpad(to_hex(i), 26, '0'),
       CASE WHEN i % 5 < 2 THEN 'agt_' || lpad(to_hex(i), 26, '0') END,
       'host-' || lpad(i::text, 5, '0'), CASE WHEN i % 5 < 2 THEN 'Debian GNU/Linux 13' ELSE '' END,
       (ARRAY['host', 'laptop', 'printer', 'switch', 'vm'])[1 + i % 5] || '-' || lpad(i::text, 5, '0'),
       (ARRAY['server', 'workstation', 'printer', 'network_device', 'virtual_machine'])[1 + i % 5],
       CASE WHEN i % 40 = 0 THEN 'retired' WHEN i % 33 = 0 THEN 'in_repair' ELSE 'active' END,
       '{{}}', CASE WHEN i % 9 = 0 THEN ARRAY['core'] ELSE '{{}}' END
  FROM generate_series(1, {n}) i;
INSERT INTO telemetry_series (agent_id, kind, name)
SELECT 'agt_' || lpad(to_hex(i), 26, '0'), 'check', 'service ssh' FROM generate_series(1, {n}) i WHERE i % 5 < 2;
INSERT INTO check_results (agent_id, at, name, status)
SELECT 'agt_' || lpad(to_hex(i), 26, '0'), now() - k * interval '1 minute', 'service ssh',
       CASE WHEN i % 10 = 0 AND k = 0 THEN 'failing' ELSE 'passing' END
  FROM generate_series(1, {n}) i, generate_series(0, 9) k WHERE i % 5 < 2;
INSERT INTO alerts (id, rule_id, agent_id, asset_id, subject, severity, state, summary)
SELECT 'alr_' || lpad(to_hex(i), 26, '0'), 'rul_00000000000000000000000001', 'agt_' || lpad(to_hex(i), 26, '0'),
       'ast_' || lpad(to_hex(i), 26, '0'), '/', 'critical', 'open', 'Disk almost full on host-' || i
  FROM generate_series(1, {n}) i WHERE i % 50 = 0 AND i % 5 < 2;
UPDATE tickets SET asset_id = 'ast_' || lpad(to_hex(1 + abs(hashtext(id)) % {n}), 26, '0')
 WHERE status NOT IN ('resolved', 'closed');
ANALYZE assets, alerts, telemetry_series, check_results, tickets;"
    )
}

const ASSET_COLUMNS: &str = "id, agent_id, type_key, name, status, site_id, serial, hostname, os, purchased_on, \
    warranty_until, attributes, tags, facts, retired_at, created_at, updated_at";

const COLUMNS: &str = "id, title, description, priority, status, created_by_issuer, created_by, execution_id, asset_id,
    alert_id, contact_id, site_id, queue_id, assignee_issuer, assignee, tags, merged_into, sla_policy_id, sla_state,
    sla_due_at, created_at, updated_at";

/// One case: a request, and the bare statements it stands for.
struct Case {
    name: &'static str,
    path: String,
    bare: Vec<String>,
}

async fn request(app: &Router, path: &str, token: &str) -> (Duration, u64, axum::body::Bytes) {
    let request = Request::get(path).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let before = STATEMENTS.load(Ordering::Relaxed);
    let started = Instant::now();
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    let elapsed = started.elapsed();
    assert!(status.is_success(), "{path}: {status} {}", String::from_utf8_lossy(&body));
    (elapsed, STATEMENTS.load(Ordering::Relaxed) - before, body)
}

#[tokio::main]
async fn main() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(StatementCount)).expect("subscriber");
    let tickets = env_usize("ANCHOR_BENCH_TICKETS", 10_000);
    let requests = env_usize("ANCHOR_BENCH_REQUESTS", 200);
    let db = TestDatabase::new().await;
    let store = db.connect(8).await;
    let workspace = store
        .create_workspace(&WorkspaceSlug::parse("bench").expect("slug"), &WorkspaceName::parse("Bench").expect("name"))
        .await
        .expect("workspace");
    store
        .set_member(
            &workspace,
            SubjectRef { issuer: DEV_ISSUER, subject: "tess" },
            Role::Technician,
            &AuditContext::default(),
        )
        .await
        .expect("member");

    let mut admin = PgConnection::connect(db.url().expose_secret()).await.expect("connect");
    let started = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(seed_sql(tickets))).execute(&mut admin).await.expect("seed");
    let open: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ws_bench.tickets WHERE status NOT IN ('resolved', 'closed')")
            .fetch_one(&mut admin)
            .await
            .expect("count");
    println!(
        "seeded {tickets} tickets ({open} open), {} comments, in {:.1} s",
        tickets * 3,
        started.elapsed().as_secs_f64()
    );
    let assets = env_usize("ANCHOR_BENCH_ASSETS", 5_000);
    let started = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(seed_assets_sql(assets))).execute(&mut admin).await.expect("seed assets");
    println!("seeded {assets} assets in {:.1} s", started.elapsed().as_secs_f64());
    sqlx::raw_sql("SET search_path TO ws_bench").execute(&mut admin).await.expect("search path");

    let data_dir = tempfile::tempdir().expect("tempdir");
    let dev = DevIssuer::load_or_create(data_dir.path()).expect("dev issuer");
    let app = common::app(&db, &store, data_dir.path());
    let token = dev.issue("tess", Duration::from_secs(14 * 60)).expect("token");

    let base = "/api/v1/workspaces/bench/tickets";
    let list_sql = |condition: &str, order: &str| {
        format!("SELECT {COLUMNS} FROM tickets WHERE true{condition} ORDER BY {order} LIMIT 51")
    };
    let detail_sql = |id: &str| {
        vec![
            format!("SELECT {COLUMNS} FROM tickets WHERE id = '{id}'"),
            format!("SELECT * FROM ticket_comments WHERE ticket_id = '{id}' ORDER BY id"),
            format!("SELECT * FROM ticket_history WHERE ticket_id = '{id}' ORDER BY id"),
            format!("SELECT * FROM ticket_links WHERE ticket_id = '{id}' OR related_id = '{id}'"),
            format!("SELECT id FROM tickets WHERE merged_into = '{id}' ORDER BY id"),
            format!("SELECT * FROM ticket_sla WHERE ticket_id = '{id}'"),
            format!("SELECT * FROM ticket_clock_events WHERE ticket_id = '{id}' ORDER BY id"),
        ]
    };
    let mut cases = vec![
        Case { name: "list", path: base.to_owned(), bare: vec![list_sql("", "id DESC")] },
        Case {
            name: "filtered list",
            path: format!("{base}?status=new&priority=p3&assignee=me&sort=sla_due"),
            bare: vec![list_sql(
                &format!(
                    " AND status = 'new' AND priority = 'p3' AND assignee = 'tess' AND assignee_issuer = '{DEV_ISSUER}'"
                ),
                "sla_due_at ASC NULLS LAST, id ASC",
            )],
        },
        Case {
            name: "search",
            path: format!("{base}?q=printer%20offline"),
            bare: vec![list_sql(" AND search @@ websearch_to_tsquery('english', 'printer offline')", "id DESC")],
        },
        Case {
            name: "search (comments)",
            path: format!("{base}?q=toner&sort=updated"),
            bare: vec![list_sql(" AND search @@ websearch_to_tsquery('english', 'toner')", "updated_at DESC, id DESC")],
        },
    ];
    let asset_sql = |condition: &str| {
        format!(
            "SELECT {ASSET_COLUMNS} FROM assets WHERE status IN ('planned', 'active', 'in_repair'){condition}
              ORDER BY lower(name), id LIMIT 51"
        )
    };
    cases.push(Case {
        name: "asset list",
        path: "/api/v1/workspaces/bench/assets".to_owned(),
        bare: vec![asset_sql("")],
    });
    cases.push(Case {
        name: "asset list, filtered",
        path: "/api/v1/workspaces/bench/assets?type=server&q=host-01&has_agent=true".to_owned(),
        bare: vec![asset_sql(
            " AND type_key = 'server' AND search @@ to_tsquery('simple', 'host-01:*') AND agent_id IS NOT NULL",
        )],
    });
    // A later page of the list: the same statements as the first.
    let (_, _, first) = request(&app, base, &token).await;
    let first: serde_json::Value = serde_json::from_slice(&first).expect("json");
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    let after = first["items"][49]["id"].as_str().expect("id").to_owned();
    cases.push(Case {
        name: "list, page 2",
        path: format!("{base}?cursor={cursor}"),
        bare: vec![list_sql(&format!(" AND id < '{after}'"), "id DESC")],
    });

    println!(
        "\n{} requests each; p95 target {} ms (server time in process; bare: the same SQL alone)",
        requests,
        TARGET.as_millis()
    );
    println!(
        "{:<20} {:>9} {:>9} {:>10} {:>10} {:>7} {:>11} {:>6}",
        "case", "p50 ms", "p95 ms", "bare p50", "bare p95", "ratio", "statements", "<=150"
    );
    let mut rng = rand::rng();
    let detail_case = Case { name: "ticket detail", path: String::new(), bare: Vec::new() };
    for case in cases.iter().chain(std::iter::once(&detail_case)) {
        let (mut times, mut bare_times, mut counts) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..requests {
            let (path, bare) = if case.name == "ticket detail" {
                let id = format!("tkt_{:0>26x}", rng.random_range(1..=tickets));
                (format!("{base}/{id}"), detail_sql(&id))
            } else {
                (case.path.clone(), case.bare.clone())
            };
            let (took, statements, _) = request(&app, &path, &token).await;
            times.push(took);
            counts.push(statements);
            let started = Instant::now();
            for sql in &bare {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_all(&mut admin).await.expect("bare");
            }
            bare_times.push(started.elapsed());
        }
        let (served, bare) = (figures(times), figures(bare_times));
        let (least, most) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
        let statements = if least == most { format!("{least}") } else { format!("{least}-{most}") };
        println!(
            "{:<20} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>6.1}x {:>11} {:>6}",
            case.name,
            served.p50.as_secs_f64() * 1e3,
            served.p95.as_secs_f64() * 1e3,
            bare.p50.as_secs_f64() * 1e3,
            bare.p95.as_secs_f64() * 1e3,
            served.p95.as_secs_f64() / bare.p95.as_secs_f64().max(1e-9),
            statements,
            if served.p95 <= TARGET { "yes" } else { "NO" },
        );
    }
    println!(
        "\nstatements: the SQL statements a request sent (authentication, membership, the page's reads), counted \
         from sqlx's statement log; the pool's use-count bookkeeping on some checkouts is left out"
    );
    drop(admin);
    store.close().await;
    db.drop_now().await;
}
