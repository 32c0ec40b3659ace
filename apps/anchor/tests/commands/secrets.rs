//! Secrets the API hands out (webhook and inbound-source signing secrets,
//! enrollment tokens) exist at rest only sealed: a scan of every table of
//! the platform and workspace schemas finds none of them, and the replay of
//! an answer that carried one makes the authorization decision again.

use anchor_domain::Role;
use serde_json::{Value, json};

use crate::Platform;

/// POSTs `body` as `subject` with the idempotency key `key`.
async fn post_with_key(platform: &Platform, path: &str, subject: &str, key: &str, body: &Value) -> reqwest::Response {
    platform
        .client
        .post(platform.url(path))
        .bearer_auth(platform.token(subject))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// `field` of a 200/201 answer to a POST.
async fn handed_out(response: reqwest::Response, field: &str) -> String {
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("json");
    body[field].as_str().unwrap_or_else(|| panic!("{field} in {body}")).to_owned()
}

/// Every (schema.table) of the platform and of `workspace_schema` whose rows,
/// as text (bytea as hex, jsonb as JSON), contain `secret` in the clear.
async fn tables_holding(platform: &Platform, workspace_schema: &str, secret: &str) -> Vec<String> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables
          WHERE table_schema IN ('platform', $1) AND table_type = 'BASE TABLE' ORDER BY 1, 2",
    )
    .bind(workspace_schema)
    .fetch_all(platform.store.pool())
    .await
    .expect("tables");
    assert!(tables.len() > 20, "the scan sees the tables: {tables:?}");
    let hex = hex::encode(secret.as_bytes());
    let mut holding = Vec::new();
    for (schema, table) in tables {
        let sql = format!(
            "SELECT count(*) FROM \"{schema}\".\"{table}\" AS t
              WHERE strpos(t::text, $1) > 0 OR strpos(t::text, $2) > 0"
        );
        let found: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(secret)
            .bind(&hex)
            .fetch_one(platform.store.pool())
            .await
            .expect("scan");
        if found > 0 {
            holding.push(format!("{schema}.{table}"));
        }
    }
    holding
}

#[tokio::test]
async fn no_secret_the_api_hands_out_is_at_rest_and_a_replay_decides_again() {
    let platform = Platform::start().await;
    let acme = platform.workspace("acme", "mia", Role::MspAdmin).await;
    platform.member(&acme, "max", Role::MspAdmin).await;
    let hooks = "/api/v1/workspaces/acme/webhooks";
    let endpoint = json!({"url": "http://127.0.0.1:9/hook", "events": ["ticket.created"]});

    // Every kind of secret the API hands out, each once.
    let created = post_with_key(&platform, hooks, "max", "create-hook", &endpoint).await;
    if created.status() != 201 {
        panic!("{}: {}", created.status(), created.text().await.expect("text"));
    }
    let location = created.headers()["location"].to_str().expect("location").to_owned();
    let mut secrets = vec![handed_out(created, "secret").await];
    let id = location.rsplit('/').next().expect("id");
    let rotate = format!("{hooks}/{id}/rotate-secret");
    secrets.push(handed_out(post_with_key(&platform, &rotate, "max", "rotate-hook", &json!({})).await, "secret").await);
    let sources = "/api/v1/workspaces/acme/inbound-sources";
    let source = post_with_key(&platform, sources, "max", "create-source", &json!({"name": "billing"})).await;
    secrets.push(handed_out(source, "secret").await);
    let rotate = format!("{sources}/billing/rotate-secret");
    secrets
        .push(handed_out(post_with_key(&platform, &rotate, "max", "rotate-source", &json!({})).await, "secret").await);
    let tokens = "/api/v1/workspaces/acme/enrollment-tokens";
    let token = post_with_key(&platform, tokens, "max", "create-token", &json!({"label": "office"})).await;
    let token: Value = {
        assert_eq!(token.status(), 201);
        token.json().await.expect("json")
    };
    secrets.push(token["token"].as_str().expect("token").to_owned());
    let rotate = format!("{tokens}/{}/rotate", token["id"].as_str().expect("id"));
    secrets.push(handed_out(post_with_key(&platform, &rotate, "max", "rotate-token", &json!({})).await, "token").await);
    assert!(
        secrets[..4].iter().all(|s| s.starts_with("whsec_"))
            && secrets[4..].iter().all(|s| s.starts_with("anchor_enroll_"))
    );

    // The replay of the first answer: the same secret, still not cacheable.
    let again = post_with_key(&platform, hooks, "max", "create-hook", &endpoint).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(handed_out(again, "secret").await, secrets[0]);

    // At rest: nowhere in the clear (sealed copies and digests only).
    for secret in &secrets {
        let holding = tables_holding(&platform, acme.schema_name(), secret).await;
        assert!(holding.is_empty(), "{secret} at rest in {holding:?}");
    }

    // Max leaves the workspace: his kept answer is not his any more.
    let removed = platform
        .client
        .delete(platform.url("/api/v1/workspaces/acme/members/max"))
        .bearer_auth(platform.token("mia"))
        .header("idempotency-key", "remove-max")
        .send()
        .await
        .expect("remove");
    assert_eq!(removed.status(), 204);
    let refused = post_with_key(&platform, hooks, "max", "create-hook", &endpoint).await;
    assert_eq!(refused.status(), 403);
    let text = refused.text().await.expect("text");
    assert!(!text.contains(&secrets[0]) && text.contains("workspace_forbidden"), "{text}");

    platform.stop().await;
}
