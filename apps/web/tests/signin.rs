//! Staff sign-in, end to end over HTTP against a real database.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use anchor_config::OidcSettings;
use anchor_domain::{Role, WorkspaceName, WorkspaceSlug};
use anchor_store::{
    Database,
    access::{AuditContext, SubjectRef},
    sessions::LOCAL_ISSUER,
};
use anchor_testkit::TestDatabase;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use sha2::{Digest, Sha256};

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
        let state = anchor_web::WebState::new(db.clone(), &base, oidc.as_ref());
        let app = anchor_web::router::<()>(state);
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
        });
        let _ = anchor_testkit::http_client();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { base, client, db, test_db }
    }

    async fn account(&self, username: &str, password: &str) {
        let hash = anchor_auth::password::hash(password).expect("hash");
        assert!(self.db.create_local_account(username, &hash).await.expect("create"));
    }

    async fn workspace_with(&self, slug: &str, name: &str, member: Option<(&str, &str, Role)>) {
        let ws = self
            .db
            .create_workspace(&WorkspaceSlug::parse(slug).expect("slug"), &WorkspaceName::parse(name).expect("name"))
            .await
            .expect("workspace");
        if let Some((issuer, subject, role)) = member {
            self.db
                .set_member(&ws, SubjectRef { issuer, subject }, role, &AuditContext::default())
                .await
                .expect("member");
        }
    }

    /// Loads the sign-in form: (csrf field, the cookie that binds it).
    async fn sign_in_form(&self) -> (String, String) {
        let response = self.client.get(format!("{}/", self.base)).send().await.expect("get");
        let cookie = set_cookie(&response, "anchor_signin").expect("sign-in cookie");
        let page = response.text().await.expect("text");
        (hidden_csrf(&page), cookie)
    }

    async fn sign_in(&self, username: &str, password: &str) -> reqwest::Response {
        let (csrf, cookie) = self.sign_in_form().await;
        self.client
            .post(format!("{}/signin", self.base))
            .header("cookie", format!("anchor_signin={cookie}"))
            .form(&[("username", username), ("password", password), ("csrf_token", &csrf)])
            .send()
            .await
            .expect("post")
    }

    async fn home(&self, session: &str) -> String {
        self.client
            .get(format!("{}/", self.base))
            .header("cookie", format!("anchor_session={session}"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text")
    }

    async fn stop(self) {
        self.db.close().await;
        self.test_db.drop_now().await;
    }
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let (pair, _) = c.split_once(';').unwrap_or((c, ""));
        let (n, v) = pair.split_once('=')?;
        (n == name && !v.is_empty()).then(|| v.to_owned())
    })
}

fn cookie_attributes(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or("")
        .to_owned()
}

fn hidden_csrf(page: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).expect("csrf field") + marker.len();
    page[start..].split('"').next().expect("value").to_owned()
}

#[tokio::test]
async fn local_accounts_sign_in_see_their_workspaces_and_sign_out() {
    let web = Web::start(None).await;
    web.account("alice", "correct horse battery").await;
    web.workspace_with("acme", "Acme Corp", Some((LOCAL_ISSUER, "alice", Role::Technician))).await;
    web.workspace_with("globex", "Globex Inc", None).await;

    let response = web.sign_in("Alice", "correct horse battery").await;
    assert_eq!(response.status(), 303, "usernames are case-insensitive");
    assert_eq!(response.headers()["location"], "/");
    let attributes = cookie_attributes(&response, "anchor_session");
    assert!(attributes.contains("HttpOnly") && attributes.contains("SameSite=Lax"), "{attributes}");
    assert!(!attributes.contains("Secure"), "plain http in tests: {attributes}");
    let session = set_cookie(&response, "anchor_session").expect("session cookie");

    let page = web.home(&session).await;
    assert!(page.contains("Acme Corp") && page.contains("technician"), "{page}");
    assert!(!page.contains("Globex"), "only the caller's workspaces");
    assert!(!page.contains("/w/"), "the picker never enters a workspace by itself");

    // Sign-out needs the session's CSRF token.
    let csrf = hidden_csrf(&page);
    let forged = web
        .client
        .post(format!("{}/signout", web.base))
        .header("cookie", format!("anchor_session={session}"))
        .form(&[("csrf_token", "nope")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    assert!(web.home(&session).await.contains("Acme Corp"), "still signed in after a forged sign-out");
    let out = web
        .client
        .post(format!("{}/signout", web.base))
        .header("cookie", format!("anchor_session={session}"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(out.status(), 303);
    assert!(web.home(&session).await.contains("name=\"password\""), "the old cookie is worthless after sign-out");
    web.stop().await;
}

#[tokio::test]
async fn form_posts_without_the_csrf_binding_are_refused() {
    let web = Web::start(None).await;
    web.account("alice", "correct horse battery").await;
    let post = |cookie: Option<String>, csrf: &str, origin: Option<&str>| {
        let mut request = web.client.post(format!("{}/signin", web.base)).form(&[
            ("username", "alice"),
            ("password", "correct horse battery"),
            ("csrf_token", csrf),
        ]);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("anchor_signin={cookie}"));
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let (csrf, cookie) = web.sign_in_form().await;
    assert_eq!(post(None, &csrf, None).await.expect("post").status(), 403, "no binding cookie");
    assert_eq!(post(Some(cookie.clone()), "forged", None).await.expect("post").status(), 403, "wrong token");
    assert_eq!(
        post(Some(cookie.clone()), &csrf, Some("https://evil.example")).await.expect("post").status(),
        403,
        "foreign origin"
    );
    let body = post(None, "", None).await.expect("post").text().await.expect("text");
    assert!(body.contains("This form has expired"), "a readable refusal: {body}");
    assert_eq!(post(Some(cookie), &csrf, Some(&web.base)).await.expect("post").status(), 303, "the genuine form works");
    web.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_are_audited_and_throttled_per_account() {
    let web = Web::start(None).await;
    web.account("alice", "correct horse battery").await;
    for _ in 0..anchor_web::MAX_FAILURES_PER_ACCOUNT {
        let response = web.sign_in("alice", "wrong password!!").await;
        assert_eq!(response.status(), 401);
        assert!(response.text().await.expect("text").contains("Wrong username or password."));
    }
    // Unknown accounts get the same answer.
    assert_eq!(web.sign_in("nobody", "whatever password").await.status(), 401);
    // Now even the right password waits.
    let throttled = web.sign_in("alice", "correct horse battery").await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.text().await.expect("text").contains("Too many failed sign-ins"));
    let failures: i64 = sqlx::query_scalar("SELECT count(*) FROM platform.access_audit WHERE action = 'signin' AND outcome = 'failure' AND subject = 'alice'")
        .fetch_one(web.db.pool())
        .await
        .expect("count");
    assert_eq!(failures, 5);
    web.stop().await;
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_expiry() {
    let web = Web::start(None).await;
    web.account("alice", "correct horse battery").await;
    for (column, age) in [("last_seen_at", "31 minutes"), ("expires_at", "-1 second")] {
        let session =
            set_cookie(&web.sign_in("alice", "correct horse battery").await, "anchor_session").expect("session");
        assert!(web.home(&session).await.contains("Your workspaces"));
        let sql = if column == "last_seen_at" {
            format!("UPDATE platform.web_sessions SET last_seen_at = now() - interval '{age}'")
        } else {
            format!("UPDATE platform.web_sessions SET expires_at = now() + interval '{age}'")
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(web.db.pool()).await.expect("age the session");
        assert!(web.home(&session).await.contains("name=\"password\""), "{column}: signed out");
        sqlx::query("DELETE FROM platform.web_sessions").execute(web.db.pool()).await.expect("clear");
    }
    web.stop().await;
}

/// An issued code: (code_challenge, nonce, redirect_uri).
type PendingCode = (String, String, String);

/// A small OIDC provider: discovery, authorize (approves at once), token
/// (checks the PKCE verifier), JWKS. Ed25519-signed ID tokens.
#[derive(Clone)]
struct Provider {
    issuer: String,
    key: Arc<jsonwebtoken::EncodingKey>,
    codes: Arc<Mutex<HashMap<String, PendingCode>>>,
    subject: String,
}

async fn start_provider(subject: &str) -> Provider {
    use axum::{
        Form, Json, Router,
        extract::{Query, State},
        response::{IntoResponse, Redirect},
        routing::{get, post},
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let issuer = format!("http://{}", listener.local_addr().expect("addr"));
    let signing = SigningKey::from_bytes(&[9; 32]);
    let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
    let provider = Provider {
        issuer: issuer.clone(),
        key: Arc::new(jsonwebtoken::EncodingKey::from_ed_der(signing.to_pkcs8_der().expect("der").as_bytes())),
        codes: Arc::default(),
        subject: subject.to_owned(),
    };
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(|State(p): State<Provider>| async move {
                Json(serde_json::json!({
                    "issuer": p.issuer, "authorization_endpoint": format!("{}/authorize", p.issuer),
                    "token_endpoint": format!("{}/token", p.issuer), "jwks_uri": format!("{}/jwks", p.issuer),
                }))
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let x = x.clone();
                async move { Json(serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "idp-1", "alg": "EdDSA", "use": "sig"}]})) }
            }),
        )
        .route(
            "/authorize",
            get(|State(p): State<Provider>, Query(q): Query<HashMap<String, String>>| async move {
                assert_eq!(q["response_type"], "code");
                assert_eq!(q["code_challenge_method"], "S256");
                let code = format!("code-{}", q["state"].len() + p.codes.lock().expect("lock").len());
                p.codes.lock().expect("lock").insert(code.clone(), (q["code_challenge"].clone(), q["nonce"].clone(), q["redirect_uri"].clone()));
                Redirect::to(&format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]))
            }),
        )
        .route(
            "/token",
            post(|State(p): State<Provider>, Form(f): Form<HashMap<String, String>>| async move {
                let Some((challenge, nonce, redirect_uri)) = p.codes.lock().expect("lock").remove(&f["code"]) else {
                    return (axum::http::StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"}))).into_response();
                };
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(f["code_verifier"].as_bytes()));
                if computed != challenge || f["redirect_uri"] != redirect_uri || f["client_id"] != "anchor-web" {
                    return (axum::http::StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"}))).into_response();
                }
                let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
                header.kid = Some("idp-1".to_owned());
                let claims = serde_json::json!({"iss": p.issuer, "sub": p.subject, "aud": "anchor-web", "exp": now + 300, "iat": now, "nonce": nonce});
                let id_token = jsonwebtoken::encode(&header, &claims, &p.key).expect("sign");
                Json(serde_json::json!({"id_token": id_token, "access_token": "opaque", "token_type": "Bearer"})).into_response()
            }),
        )
        .with_state(provider.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    provider
}

#[tokio::test]
async fn oidc_sign_in_with_pkce() {
    let provider = start_provider("sso-carol").await;
    let oidc = OidcSettings {
        issuer: provider.issuer.clone(),
        client_id: "anchor-web".to_owned(),
        client_secret: None,
        label: "Sign in with Test IdP".to_owned(),
    };
    let web = Web::start(Some(oidc)).await;
    web.workspace_with("acme", "Acme Corp", Some((&provider.issuer, "sso-carol", Role::Auditor))).await;
    assert!(
        web.client
            .get(format!("{}/", web.base))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text")
            .contains("Sign in with Test IdP")
    );

    // Start: redirected to the provider with a PKCE challenge; state bound by cookie.
    let start = web.client.get(format!("{}/auth/oidc/start", web.base)).send().await.expect("start");
    assert_eq!(start.status(), 303);
    let state_cookie = set_cookie(&start, "anchor_oidc").expect("state cookie");
    let authorize = start.headers()["location"].to_str().expect("location").to_owned();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", provider.issuer)) && authorize.contains("code_challenge="),
        "{authorize}"
    );

    // The provider approves and sends the browser back.
    let back = web.client.get(&authorize).send().await.expect("authorize");
    let callback = back.headers()["location"].to_str().expect("location").to_owned();

    // Without the browser's state cookie (a login CSRF attempt): refused.
    let foreign = web.client.get(&callback).send().await.expect("callback");
    assert_eq!(foreign.status(), 401);

    // The genuine browser: signed in. (The failed attempt above did not consume the state.)
    let done = web
        .client
        .get(&callback)
        .header("cookie", format!("anchor_oidc={state_cookie}"))
        .send()
        .await
        .expect("callback");
    assert_eq!(done.status(), 303, "{}", done.text().await.unwrap_or_default());
    let session = set_cookie(&done, "anchor_session").expect("session");
    let page = web.home(&session).await;
    assert!(page.contains("Acme Corp") && page.contains("auditor") && page.contains("sso-carol"), "{page}");

    // Replaying the callback: the state was used once.
    let replay = web
        .client
        .get(&callback)
        .header("cookie", format!("anchor_oidc={state_cookie}"))
        .send()
        .await
        .expect("callback");
    assert_eq!(replay.status(), 401);

    // A code redeemed without the right PKCE verifier is refused by the provider.
    let start = web.client.get(format!("{}/auth/oidc/start", web.base)).send().await.expect("start");
    let state_cookie = set_cookie(&start, "anchor_oidc").expect("state cookie");
    let authorize = start.headers()["location"].to_str().expect("location").to_owned();
    for entry in provider.codes.lock().expect("lock").values_mut() {
        entry.0 = "tampered".to_owned();
    }
    let back = web.client.get(&authorize).send().await.expect("authorize");
    for entry in provider.codes.lock().expect("lock").values_mut() {
        entry.0 = "not-the-challenge".to_owned();
    }
    let callback = back.headers()["location"].to_str().expect("location").to_owned();
    let refused = web
        .client
        .get(&callback)
        .header("cookie", format!("anchor_oidc={state_cookie}"))
        .send()
        .await
        .expect("callback");
    assert_eq!(refused.status(), 401);

    let outcomes: Vec<String> =
        sqlx::query_scalar("SELECT outcome FROM platform.access_audit WHERE action = 'signin' ORDER BY id")
            .fetch_all(web.db.pool())
            .await
            .expect("audit");
    assert_eq!(outcomes, ["failure", "success", "failure", "failure"]);
    web.stop().await;
}
