//! The ticket list's search, filters, sorts and keyset paging, and saved
//! views: tickets are arranged in SQL (the commands that open them run
//! through AgentField, which these tests do not need).

use anchor_auth::dev_issuer::DEV_ISSUER;
use anchor_domain::{Role, TicketId};
use serde_json::{Value, json};

use crate::{TestApp, key, problem};

/// A ticket to arrange.
struct Seed<'a> {
    title: &'a str,
    description: &'a str,
    status: &'a str,
    priority: &'a str,
    assignee: Option<&'a str>,
    /// Minutes ago it was created and last changed.
    created: i64,
    updated: i64,
    /// Minutes from now of its SLA deadline.
    due: Option<i64>,
}

impl Default for Seed<'_> {
    fn default() -> Self {
        Self {
            title: "Printer offline",
            description: "",
            status: "new",
            priority: "p3",
            assignee: None,
            created: 60,
            updated: 30,
            due: None,
        }
    }
}

async fn execution(app: &TestApp, schema: &str) -> String {
    let id = anchor_domain::ExecutionId::new().to_string();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.executions (id, command, input, actor_issuer, actor_subject, envelope, status, completed_at)
         VALUES ($1, 'ticket.create', '{{}}', $2, 'seed', '', 'succeeded', now())"
    )))
    .bind(&id)
    .bind(DEV_ISSUER)
    .execute(app.store.pool())
    .await
    .expect("execution");
    id
}

async fn seed(app: &TestApp, schema: &str, ticket: Seed<'_>) -> TicketId {
    let id = TicketId::new();
    let execution = execution(app, schema).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.tickets (id, title, description, status, priority, created_by_issuer, created_by,
                                        execution_id, assignee_issuer, assignee, created_at, updated_at, sla_due_at,
                                        sla_state)
         VALUES ($1, $2, $3, $4, $5, $6, 'seed', $7, CASE WHEN $8::text IS NOT NULL THEN $6 END, $8,
                 now() - make_interval(mins => $9), now() - make_interval(mins => $10),
                 now() + make_interval(mins => $11), CASE WHEN $11 IS NULL THEN 'none' ELSE 'running' END)"
    )))
    .bind(id)
    .bind(ticket.title)
    .bind(ticket.description)
    .bind(ticket.status)
    .bind(ticket.priority)
    .bind(DEV_ISSUER)
    .bind(&execution)
    .bind(ticket.assignee)
    .bind(ticket.created as i32)
    .bind(ticket.updated as i32)
    .bind(ticket.due.map(|d| d as i32))
    .execute(app.store.pool())
    .await
    .expect("ticket");
    id
}

async fn comment(app: &TestApp, schema: &str, ticket: TicketId, body: &str, visibility: &str) {
    let execution = execution(app, schema).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.ticket_comments (id, ticket_id, body, visibility, author_issuer, author, execution_id)
         VALUES ($1, $2, $3, $4, $5, 'tess', $6)"
    )))
    .bind(anchor_domain::CommentId::new())
    .bind(ticket)
    .bind(body)
    .bind(visibility)
    .bind(DEV_ISSUER)
    .bind(&execution)
    .execute(app.store.pool())
    .await
    .expect("comment");
}

/// `tess` is a technician of `acme`, `mia` manages it, `tom` is another technician.
async fn app() -> TestApp {
    let app = TestApp::spawn().await;
    let acme = app.workspace("acme", "Acme").await;
    app.member(&acme, "tess", Role::Technician).await;
    app.member(&acme, "tom", Role::Technician).await;
    app.member(&acme, "mia", Role::MspAdmin).await;
    app
}

async fn list(app: &TestApp, who: &str, query: &str) -> Value {
    let response = app.get_as(&format!("/api/v1/workspaces/acme/tickets?{query}"), who).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.expect("json")
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|t| t["id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn search_finds_tickets_by_title_description_and_comments() {
    let app = app().await;
    let by_title = seed(&app, "ws_acme", Seed { title: "Outlook keeps crashing", ..Default::default() }).await;
    let by_description = seed(
        &app,
        "ws_acme",
        Seed { title: "Slow laptop", description: "The fans are loud and the battery swells", ..Default::default() },
    )
    .await;
    let by_comment = seed(&app, "ws_acme", Seed { title: "Scanner", ..Default::default() }).await;
    comment(&app, "ws_acme", by_comment, "Replaced the toner cartridge", "public").await;
    let by_note = seed(&app, "ws_acme", Seed { title: "VPN drops", ..Default::default() }).await;
    comment(&app, "ws_acme", by_note, "Internal: the firewall licence expired", "internal").await;
    seed(&app, "ws_acme", Seed { title: "Unrelated", ..Default::default() }).await;

    assert_eq!(ids(&list(&app, "tess", "q=outlook").await), [by_title.to_string()]);
    // English stemming: "crash" finds "crashing", "batteries" finds "battery".
    assert_eq!(ids(&list(&app, "tess", "q=crash").await), [by_title.to_string()]);
    assert_eq!(ids(&list(&app, "tess", "q=batteries").await), [by_description.to_string()]);
    assert_eq!(ids(&list(&app, "tess", "q=toner%20cartridge").await), [by_comment.to_string()]);
    // Internal notes are searchable by staff.
    assert_eq!(ids(&list(&app, "tess", "q=licence").await), [by_note.to_string()]);
    // Web-search syntax: a phrase, `or`, and exclusion.
    assert_eq!(ids(&list(&app, "tess", "q=%22toner%20cartridge%22").await), [by_comment.to_string()]);
    let either = ids(&list(&app, "tess", "q=outlook%20or%20licence").await);
    assert_eq!(either.len(), 2);
    assert!(ids(&list(&app, "tess", "q=outlook%20-crashing").await).is_empty());
    // A later comment is found as soon as it is written.
    comment(&app, "ws_acme", by_title, "Rebuilt the mail profile", "public").await;
    assert_eq!(ids(&list(&app, "tess", "q=profile").await), [by_title.to_string()]);
    // Search combines with the other filters.
    assert!(ids(&list(&app, "tess", "q=outlook&status=closed").await).is_empty());
    // A search of no words (only stop words or signs) finds nothing.
    assert!(ids(&list(&app, "tess", "q=%20the%20%2B").await).is_empty());
    app.stop().await;
}

fn at(value: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(value.as_str().expect("a time"), &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
}

/// Pages through `query` three at a time: the concatenation is the whole list, once.
async fn paged(app: &TestApp, query: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            None => list(app, "tess", &format!("{query}&limit=3")).await,
            Some(c) => list(app, "tess", &format!("{query}&limit=3&cursor={c}")).await,
        };
        all.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
        assert!(all.len() < 100, "paging does not end");
    }
}

#[tokio::test]
async fn every_sort_pages_without_duplicates_or_gaps() {
    let app = app().await;
    // Ties on every sort key, deadlines and none.
    for i in 0..14_i64 {
        seed(
            &app,
            "ws_acme",
            Seed {
                priority: ["p1", "p2", "p3", "p4"][(i % 4) as usize],
                updated: 10 * (i % 5),
                due: if i % 3 == 0 { None } else { Some(30 * (i % 4)) },
                ..Default::default()
            },
        )
        .await;
    }
    for sort in ["newest", "updated", "sla_due", "priority"] {
        let whole = list(&app, "tess", &format!("sort={sort}&limit=500")).await;
        let paged = paged(&app, &format!("sort={sort}")).await;
        assert_eq!(paged, ids(&whole), "sort={sort}");
        let items = whole["items"].as_array().expect("items");
        assert_eq!(items.len(), 14);
        for pair in items.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            match sort {
                "newest" => assert!(a["id"].as_str() > b["id"].as_str()),
                "updated" => assert!(at(&a["updated_at"]) >= at(&b["updated_at"])),
                "sla_due" => match (
                    a["sla_due_at"].as_str().map(|_| at(&a["sla_due_at"])),
                    b["sla_due_at"].as_str().map(|_| at(&b["sla_due_at"])),
                ) {
                    (Some(x), Some(y)) => assert!(x <= y),
                    (None, Some(_)) => panic!("a ticket without a deadline before one with"),
                    _ => {}
                },
                _ => assert!(a["priority"].as_str() <= b["priority"].as_str()),
            }
        }
    }
    // Filters page the same way.
    assert_eq!(paged(&app, "priority=p2&sort=updated").await.len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn filters_narrow_the_list() {
    let app = app().await;
    let mine = seed(&app, "ws_acme", Seed { assignee: Some("tess"), priority: "p1", ..Default::default() }).await;
    let toms = seed(&app, "ws_acme", Seed { assignee: Some("tom"), priority: "p1", ..Default::default() }).await;
    let old = seed(&app, "ws_acme", Seed { created: 60 * 24 * 10, updated: 60 * 24 * 9, ..Default::default() }).await;
    let closed = seed(&app, "ws_acme", Seed { status: "closed", ..Default::default() }).await;

    assert_eq!(ids(&list(&app, "tess", "assignee=me").await), [mine.to_string()]);
    assert_eq!(ids(&list(&app, "tom", "assignee=me").await), [toms.to_string()]);
    assert_eq!(ids(&list(&app, "tess", "assignee=tom&priority=p1").await), [toms.to_string()]);
    let unassigned = ids(&list(&app, "tess", "assignee=none&sort=newest").await);
    assert_eq!(unassigned.len(), 2);
    assert!(unassigned.contains(&old.to_string()) && unassigned.contains(&closed.to_string()));
    assert_eq!(ids(&list(&app, "tess", "status=closed").await), [closed.to_string()]);

    let day_ago = (time::OffsetDateTime::now_utc() - time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
        .replace('+', "%2B");
    assert_eq!(ids(&list(&app, "tess", &format!("created_before={day_ago}")).await), [old.to_string()]);
    assert_eq!(ids(&list(&app, "tess", &format!("updated_before={day_ago}")).await), [old.to_string()]);
    assert_eq!(list(&app, "tess", &format!("created_after={day_ago}")).await["items"].as_array().unwrap().len(), 3);
    assert_eq!(list(&app, "tess", &format!("updated_after={day_ago}")).await["items"].as_array().unwrap().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_them() {
    let app = app().await;
    seed(&app, "ws_acme", Seed::default()).await;
    seed(&app, "ws_acme", Seed::default()).await;
    for (query, pointer) in [
        ("sort=oldest", "/sort"),
        ("created_after=yesterday", "/created_after"),
        ("created_before=2026-13-01T00:00:00Z", "/created_before"),
        ("updated_after=1", "/updated_after"),
        ("updated_before=", "/updated_before"),
        ("q=", "/q"),
        ("q=%20%0C", "/q"),
        ("assignee=", "/assignee"),
    ] {
        let response = app.get_as(&format!("/api/v1/workspaces/acme/tickets?{query}"), "tess").await;
        let body = problem(response, 422, "invalid_query").await;
        assert_eq!(body["errors"][0]["path"], pointer, "{query}: {body}");
    }
    // A cursor of one order names no place in another.
    let page = list(&app, "tess", "sort=updated&limit=1").await;
    let cursor = page["next_cursor"].as_str().expect("more").to_owned();
    let response = app.get_as(&format!("/api/v1/workspaces/acme/tickets?sort=priority&cursor={cursor}"), "tess").await;
    problem(response, 404, "cursor_not_found").await;
    let response = app.get_as(&format!("/api/v1/workspaces/acme/tickets?cursor={cursor}"), "tess").await;
    problem(response, 404, "cursor_not_found").await;
    app.stop().await;
}

async fn send(app: &TestApp, who: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request =
        app.client.request(method, app.url(path)).bearer_auth(app.token(who)).header("idempotency-key", key());
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

const VIEWS: &str = "/api/v1/workspaces/acme/ticket-views";

async fn create_view(app: &TestApp, who: &str, body: Value) -> Value {
    let response = send(app, who, reqwest::Method::POST, VIEWS, Some(body)).await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

#[tokio::test]
async fn saved_views_have_counts_and_owners() {
    let app = app().await;
    for _ in 0..3 {
        seed(&app, "ws_acme", Seed { assignee: Some("tess"), priority: "p1", ..Default::default() }).await;
    }
    seed(&app, "ws_acme", Seed { assignee: Some("tom"), ..Default::default() }).await;

    let mine =
        create_view(&app, "tess", json!({"name": "My P1s", "query": "assignee=me&priority=p1&sort=sla_due"})).await;
    assert_eq!((mine["count"].as_i64(), mine["count_label"].as_str()), (Some(3), Some("3")));
    assert_eq!(mine["shared"], false);
    assert_eq!(mine["owner"]["subject"], "tess");
    let shared =
        create_view(&app, "tess", json!({"name": "Mine, for whoever reads", "query": "?assignee=me", "shared": true}))
            .await;
    assert_eq!(shared["query"], "assignee=me");

    // Each reader sees their own and the shared ones, counted for them.
    let tess: Value = app.get_as(VIEWS, "tess").await.json().await.expect("json");
    assert_eq!(tess["items"].as_array().unwrap().len(), 2);
    let tom: Value = app.get_as(VIEWS, "tom").await.json().await.expect("json");
    assert_eq!(tom["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (tom["items"][0]["name"].as_str(), tom["items"][0]["count"].as_i64()),
        (Some("Mine, for whoever reads"), Some(1))
    );

    // Another's personal view does not exist for tom; the shared one he may read but not change.
    let personal = format!("{VIEWS}/{}", mine["id"].as_str().unwrap());
    let shared_path = format!("{VIEWS}/{}", shared["id"].as_str().unwrap());
    problem(app.get_as(&personal, "tom").await, 404, "not_found").await;
    problem(send(&app, "tom", reqwest::Method::DELETE, &personal, None).await, 404, "not_found").await;
    assert_eq!(app.get_as(&shared_path, "tom").await.status(), 200);
    let edit = json!({"name": "Renamed", "query": "status=new", "shared": true});
    problem(send(&app, "tom", reqwest::Method::PUT, &shared_path, Some(edit.clone())).await, 403, "not_view_owner")
        .await;
    // Whoever manages the settings changes a shared view, not a personal one.
    let response = send(&app, "mia", reqwest::Method::PUT, &shared_path, Some(edit)).await;
    assert_eq!(response.status(), 200);
    let renamed: Value = response.json().await.expect("json");
    assert_eq!((renamed["name"].as_str(), renamed["count"].as_i64()), (Some("Renamed"), Some(4)));
    problem(app.get_as(&personal, "mia").await, 404, "not_found").await;

    // The owner edits and deletes; each write is recorded.
    let response = send(
        &app,
        "tess",
        reqwest::Method::PUT,
        &personal,
        Some(json!({"name": "My P1s", "query": "assignee=me&priority=p2"})),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["count"], 0);
    assert_eq!(send(&app, "tess", reqwest::Method::DELETE, &personal, None).await.status(), 204);
    problem(app.get_as(&personal, "tess").await, 404, "not_found").await;
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM ws_acme.changes WHERE action LIKE 'ticket_view.%' ORDER BY created_at, action",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("changes");
    assert_eq!(actions.len(), 5, "{actions:?}");

    // A query the list would refuse is refused, naming the field.
    for query in ["sort=oldest", "cursor=abc", "limit=5", "colour=red", "created_after=soon"] {
        let response =
            send(&app, "tess", reqwest::Method::POST, VIEWS, Some(json!({"name": "Bad", "query": query}))).await;
        let body = problem(response, 422, "invalid_ticket_view").await;
        assert_eq!(body["errors"][0]["path"], "/query", "{query}");
    }
    let response = send(&app, "tess", reqwest::Method::POST, VIEWS, Some(json!({"name": " ", "query": ""}))).await;
    assert_eq!(problem(response, 422, "invalid_ticket_view").await["errors"][0]["path"], "/name");
    app.stop().await;
}

#[tokio::test]
async fn counts_stop_at_ten_thousand() {
    let app = app().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ws_acme.executions (id, command, input, actor_issuer, actor_subject, envelope, status, completed_at)
         SELECT 'exe_' || lpad(to_hex(i), 26, '0'), 'ticket.create', '{{}}', '{DEV_ISSUER}', 'seed', '', 'succeeded', now()
           FROM generate_series(1, 10001) i;
         INSERT INTO ws_acme.tickets (id, title, priority, created_by_issuer, created_by, execution_id)
         SELECT 'tkt_' || lpad(to_hex(i), 26, '0'), 'Seeded', 'p4', '{DEV_ISSUER}', 'seed', 'exe_' || lpad(to_hex(i), 26, '0')
           FROM generate_series(1, 10001) i;"
    )))
    .execute(app.store.pool())
    .await
    .expect("seed");
    let all = create_view(&app, "tess", json!({"name": "Everything", "query": ""})).await;
    assert_eq!((all["count"].as_i64(), all["count_label"].as_str()), (Some(10_000), Some("10000+")));
    let some = create_view(&app, "tess", json!({"name": "P1", "query": "priority=p1"})).await;
    assert_eq!((some["count"].as_i64(), some["count_label"].as_str()), (Some(0), Some("0")));
    app.stop().await;
}

#[tokio::test]
async fn a_technician_of_one_workspace_finds_nothing_of_another() {
    let app = app().await;
    let globex = app.workspace("globex", "Globex").await;
    app.member(&globex, "gina", Role::Technician).await;
    let theirs = seed(&app, "ws_globex", Seed { title: "Globex secret merger printer", ..Default::default() }).await;
    comment(&app, "ws_globex", theirs, "confidential acquisition notes", "internal").await;
    seed(&app, "ws_acme", Seed { title: "Acme printer", ..Default::default() }).await;

    // Acme's staff search their own workspace only.
    assert!(ids(&list(&app, "tess", "q=merger").await).is_empty());
    assert!(ids(&list(&app, "tess", "q=acquisition").await).is_empty());
    assert_eq!(list(&app, "tess", "q=printer").await["items"].as_array().unwrap().len(), 1);
    problem(app.get_as(&format!("/api/v1/workspaces/acme/tickets/{theirs}"), "tess").await, 404, "not_found").await;
    // And cannot reach the other workspace at all.
    let response = app.get_as("/api/v1/workspaces/globex/tickets?q=merger", "tess").await;
    assert_eq!(response.status(), 403);
    let response = app.get_as("/api/v1/workspaces/globex/ticket-views", "tess").await;
    assert_eq!(response.status(), 403);
    // Views are per workspace: a shared view of globex is not listed in acme.
    let response = send(
        &app,
        "gina",
        reqwest::Method::POST,
        "/api/v1/workspaces/globex/ticket-views",
        Some(json!({"name": "Secrets", "query": "q=merger", "shared": true})),
    )
    .await;
    assert_eq!(response.status(), 201);
    let view: Value = response.json().await.expect("json");
    assert_eq!(view["count"], 1);
    let acme: Value = app.get_as(VIEWS, "tess").await.json().await.expect("json");
    assert!(acme["items"].as_array().unwrap().is_empty());
    problem(app.get_as(&format!("{VIEWS}/{}", view["id"].as_str().unwrap()), "tess").await, 404, "not_found").await;
    app.stop().await;
}
