//! The web app's edges: sessions of accounts disabled since they signed in,
//! and OIDC providers whose discovery names endpoints off TLS.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use anchor_config::OidcSettings;
use anchor_store::{Database, sessions::LOCAL_ISSUER};
use anchor_testkit::TestDatabase;
use serde_json::{Value, json};

struct Web {
    base: String,
    client: reqwest::Client,
    db: Database,
    test_db: TestDatabase,
}

impl Web {
    async fn start(oidc: Option<OidcSettings>) -> Self {
        let test_db = TestDatabase::new().await;
        let db = test_db.connect(4).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = anchor_web::router::<()>(anchor_web::WebState::new(db.clone(), &base, oidc.as_ref()));
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
        });
        let _ = anchor_testkit::http_client();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { base, client, db, test_db }
    }

    /// Signs in with a local account; the session cookie's value.
    async fn sign_in(&self, username: &str, password: &str) -> String {
        let form = self.client.get(format!("{}/", self.base)).send().await.expect("get");
        let binding = cookie(&form, "anchor_signin").expect("sign-in cookie");
        let page = form.text().await.expect("text");
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.find(marker).expect("csrf field") + marker.len();
        let csrf = page[start..].split('"').next().expect("value").to_owned();
        let response = self
            .client
            .post(format!("{}/signin", self.base))
            .header("cookie", format!("anchor_signin={binding}"))
            .form(&[("username", username), ("password", password), ("csrf_token", &csrf)])
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 303, "signed in");
        cookie(&response, "anchor_session").expect("session cookie")
    }

    /// Whether the session still opens the workspace picker.
    async fn signed_in(&self, session: &str) -> bool {
        let page = self
            .client
            .get(format!("{}/", self.base))
            .header("cookie", format!("anchor_session={session}"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text");
        assert!(page.contains("Your workspaces") || page.contains("name=\"password\""), "{page}");
        page.contains("Your workspaces")
    }

    async fn sessions_of(&self, subject: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM platform.web_sessions WHERE issuer = $1 AND subject = $2")
            .bind(LOCAL_ISSUER)
            .bind(subject)
            .fetch_one(self.db.pool())
            .await
            .expect("count")
    }

    async fn stop(self) {
        self.db.close().await;
        self.test_db.drop_now().await;
    }
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let (pair, _) = c.split_once(';').unwrap_or((c, ""));
        let (n, v) = pair.split_once('=')?;
        (n == name && !v.is_empty()).then(|| v.to_owned())
    })
}

#[tokio::test]
async fn a_disabled_accounts_sessions_end_on_their_next_request() {
    let web = Web::start(None).await;
    let hash = anchor_auth::password::hash("correct horse battery").expect("hash");
    for username in ["alice", "bob"] {
        assert!(web.db.create_local_account(username, &hash).await.expect("create"));
    }
    let alice = web.sign_in("alice", "correct horse battery").await;
    let bob = web.sign_in("bob", "correct horse battery").await;
    assert!(web.signed_in(&alice).await && web.signed_in(&bob).await);

    // However an account comes to be disabled, its session is worth nothing
    // from the next request on.
    sqlx::query("UPDATE platform.local_accounts SET disabled = true WHERE username = 'alice'")
        .execute(web.db.pool())
        .await
        .expect("disable");
    assert!(!web.signed_in(&alice).await, "a disabled account's session ended");
    assert!(web.signed_in(&bob).await, "other accounts are not touched");
    // Enabled again, the old session stays ended (it was refused once, and
    // ending sessions is what disabling is for)...
    assert!(web.db.set_local_account_disabled("alice", false).await.expect("enable"));
    let alice = web.sign_in("alice", "correct horse battery").await;
    assert!(web.signed_in(&alice).await);
    // ... and disabling through the store (`anchor account disable`) deletes them.
    assert!(web.db.set_local_account_disabled("alice", true).await.expect("disable"));
    assert_eq!(web.sessions_of("alice").await, 0);
    assert!(!web.signed_in(&alice).await);
    assert!(web.signed_in(&bob).await);
    assert!(!web.db.set_local_account_disabled("nobody", true).await.expect("no such account"));
    web.stop().await;
}

/// A provider whose discovery document the test writes.
async fn provider(document: Arc<Mutex<Value>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let issuer = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(move || {
            let document = document.lock().expect("lock").clone();
            async move { axum::Json(document) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    issuer
}

#[tokio::test]
async fn discovered_endpoints_must_be_https_or_on_a_loopback_host_named_exactly() {
    let document = Arc::new(Mutex::new(Value::Null));
    let issuer = provider(Arc::clone(&document)).await;
    let oidc = OidcSettings {
        issuer: issuer.clone(),
        client_id: "anchor-web".to_owned(),
        client_secret: None,
        label: "SSO".to_owned(),
    };
    let web = Web::start(Some(oidc)).await;
    let good = json!({
        "issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"), "jwks_uri": format!("{issuer}/jwks"),
    });
    let port = issuer.rsplit(':').next().expect("port");
    for (member, value) in [
        ("token_endpoint", "http://idp.example.com/token".to_owned()),
        ("authorization_endpoint", format!("http://localhost.evil:{port}/authorize")),
        ("jwks_uri", format!("http://127.0.0.1:{port}@idp.example.com/jwks")),
    ] {
        let mut bad = good.clone();
        bad[member] = value.clone().into();
        *document.lock().expect("lock") = bad;
        let start = web.client.get(format!("{}/auth/oidc/start", web.base)).send().await.expect("start");
        assert_eq!(start.status(), 503, "{member} {value}: not used");
        assert!(start.headers().get("location").is_none());
    }
    // The same provider with every endpoint on TLS or loopback is used.
    *document.lock().expect("lock") = good;
    let start = web.client.get(format!("{}/auth/oidc/start", web.base)).send().await.expect("start");
    assert_eq!(start.status(), 303);
    let location = start.headers()["location"].to_str().expect("location");
    assert!(location.starts_with(&format!("{issuer}/authorize?")), "{location}");
    web.stop().await;
}
