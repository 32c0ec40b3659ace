//! Teams: a team's members hold its roles in the workspaces it is granted
//! (or in all of them, present and future), on top of their own
//! memberships; taking someone out of a team, or a grant away, refuses
//! their very next request; only platform admins manage teams.

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::{TestApp, key, problem};

async fn send(app: &TestApp, method: &str, path: &str, who: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app
        .client
        .request(method.parse().expect("method"), app.url(path))
        .bearer_auth(app.token(who))
        .header("idempotency-key", key());
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("send")
}

async fn status(app: &TestApp, path: &str, who: &str) -> u16 {
    app.get_as(path, who).await.status().as_u16()
}

fn slugs(page: &Value) -> Vec<&str> {
    page["items"].as_array().expect("items").iter().map(|w| w["slug"].as_str().expect("slug")).collect()
}

#[tokio::test]
async fn a_team_grants_its_roles_where_it_is_granted_and_loses_them_at_once() {
    let app = TestApp::spawn().await;
    app.platform_admin("root").await;
    app.workspace("alpha", "Alpha Ltd").await;
    let beta = app.workspace("beta", "Beta GmbH").await;
    app.member(&beta, "tess", Role::Auditor).await;

    assert_eq!(status(&app, "/api/v1/workspaces/alpha/tickets", "tess").await, 403, "not a member of alpha yet");

    // Only platform admins manage teams.
    let denied = send(&app, "POST", "/api/v1/teams", "tess", Some(json!({"name": "Mine"}))).await;
    problem(denied, 403, "permission_denied").await;

    let created = send(&app, "POST", "/api/v1/teams", "root", Some(json!({"name": "Service desk"}))).await;
    assert_eq!(created.status(), 201);
    let team: Value = created.json().await.expect("json");
    let id = team["id"].as_str().expect("id").to_owned();
    let again = send(&app, "POST", "/api/v1/teams", "root", Some(json!({"name": "service DESK"}))).await;
    problem(again, 409, "name_taken").await;
    let added = send(&app, "PUT", &format!("/api/v1/teams/{id}/members/tess"), "root", None).await;
    assert_eq!(added.status(), 200);

    // Granted in every workspace: those there are now and those made later.
    let grants = json!({"grants": [{"workspace": null, "role": "technician"}]});
    let set = send(&app, "PUT", &format!("/api/v1/teams/{id}/grants"), "root", Some(grants)).await;
    assert_eq!(set.status(), 200);
    let team: Value = set.json().await.expect("json");
    assert_eq!(team["members"], json!([{"issuer": anchor_auth::dev_issuer::DEV_ISSUER, "subject": "tess"}]));
    assert_eq!(team["grants"], json!([{"workspace": null, "role": "technician"}]));
    assert_eq!(status(&app, "/api/v1/workspaces/alpha/tickets", "tess").await, 200);
    app.workspace("gamma", "Gamma Inc").await;
    assert_eq!(status(&app, "/api/v1/workspaces/gamma/tickets", "tess").await, 200, "a workspace made later");
    let mine = app.get_as("/api/v1/workspaces", "tess").await.json::<Value>().await.expect("json");
    assert_eq!(slugs(&mine), ["alpha", "beta", "gamma"]);

    // Roles add up: an auditor of beta in a team of technicians may write there.
    let rule = json!({"name": "CPU saturated", "kind": "metric", "metric": "cpu.usage_percent", "comparison": ">=",
                      "threshold": 95, "severity": "warning"});
    let written = send(&app, "POST", "/api/v1/workspaces/beta/alert-rules", "tess", Some(rule.clone())).await;
    assert_eq!(written.status(), 201, "technician through the team");
    // ... and nothing more than the roles grant.
    let queue = send(&app, "POST", "/api/v1/workspaces/alpha/queues", "tess", Some(json!({"name": "Q"}))).await;
    problem(queue, 403, "permission_denied").await;

    // Narrowed to alpha: gamma closes on the next request; beta keeps tess's own membership.
    let grants = json!({"grants": [{"workspace": "alpha", "role": "technician"}]});
    assert_eq!(send(&app, "PUT", &format!("/api/v1/teams/{id}/grants"), "root", Some(grants)).await.status(), 200);
    problem(app.get_as("/api/v1/workspaces/gamma/tickets", "tess").await, 403, "workspace_forbidden").await;
    assert_eq!(status(&app, "/api/v1/workspaces/beta/tickets", "tess").await, 200);
    let back_to_auditor = send(&app, "POST", "/api/v1/workspaces/beta/alert-rules", "tess", Some(rule)).await;
    problem(back_to_auditor, 403, "permission_denied").await;

    // Grants name real workspaces, staff roles, each workspace once.
    let bad = json!({"grants": [{"workspace": "nowhere", "role": "technician"}, {"workspace": "alpha", "role": "client_user"},
                                {"workspace": null, "role": "auditor"}, {"workspace": null, "role": "finance"}]});
    let refused = send(&app, "PUT", &format!("/api/v1/teams/{id}/grants"), "root", Some(bad)).await;
    let body = problem(refused, 422, "invalid_grant").await;
    let paths: Vec<&str> =
        body["errors"].as_array().expect("errors").iter().map(|e| e["path"].as_str().expect("p")).collect();
    assert_eq!(paths, ["/grants/0/workspace", "/grants/1/role", "/grants/3/workspace"]);

    // Out of the team: refused on the very next request.
    assert_eq!(status(&app, "/api/v1/workspaces/alpha/tickets", "tess").await, 200);
    let removed = send(&app, "DELETE", &format!("/api/v1/teams/{id}/members/tess"), "root", None).await;
    assert_eq!(removed.status(), 204);
    problem(app.get_as("/api/v1/workspaces/alpha/tickets", "tess").await, 403, "workspace_forbidden").await;
    let mine = app.get_as("/api/v1/workspaces", "tess").await.json::<Value>().await.expect("json");
    assert_eq!(slugs(&mine), ["beta"]);

    // Every change is in the access audit log, by whom.
    let audit = app.get_as("/api/v1/audit/access?subject=root", "root").await.json::<Value>().await.expect("json");
    let actions: Vec<&str> =
        audit["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["team.create", "team.member_add", "team.grants_set", "team.member_remove"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let deleted = send(&app, "DELETE", &format!("/api/v1/teams/{id}"), "root", None).await;
    assert_eq!(deleted.status(), 204);
    problem(app.get_as(&format!("/api/v1/teams/{id}"), "root").await, 404, "not_found").await;
    app.stop().await;
}
