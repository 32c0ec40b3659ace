//! Staff sign-in, end to end over HTTP against a real database.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anchor_auth::{password::PasswordHashing, source::TrustedProxies};
use anchor_config::OidcSettings;
use anchor_domain::{Role, WorkspaceName, WorkspaceSlug};
use anchor_store::{
    Database,
    access::{AuditContext, Refusals, SubjectRef},
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
    /// The app's refusal buffer: flushed before the audit log is read.
    refusals: Refusals,
    /// The app's password-check slots, whose gauge the tests read.
    hashing: Arc<PasswordHashing>,
}

impl Web {
    async fn start(oidc: Option<OidcSettings>) -> Self {
        Self::start_with(oidc, TrustedProxies::default(), patient()).await
    }

    async fn start_with(oidc: Option<OidcSettings>, proxies: TrustedProxies, hashing: PasswordHashing) -> Self {
        let test_db = TestDatabase::new().await;
        let db = test_db.connect(8).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let refusals = Refusals::new(db.clone());
        let hashing = Arc::new(hashing);
        let state = anchor_web::WebState::new(db.clone(), &base, oidc.as_ref())
            .with_refusals(refusals.clone())
            .with_trusted_proxies(Arc::new(proxies))
            .with_password_hashing(Arc::clone(&hashing));
        let app = anchor_web::router::<()>(state);
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
        });
        let _ = anchor_testkit::http_client();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { base, client, db, test_db, refusals, hashing }
    }

    /// The audit log as it stands once the refusals in memory are written.
    async fn flush_refusals(&self) {
        self.refusals.flush().await.expect("flush refusals");
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
        self.sign_in_via(username, password, None).await
    }

    /// Signs in with `X-Forwarded-For: forwarded_for` (as a proxy would add it).
    async fn sign_in_via(&self, username: &str, password: &str, forwarded_for: Option<&str>) -> reqwest::Response {
        let form = self.sign_in_form().await;
        self.post_sign_in(form, username, password, forwarded_for).await
    }

    async fn post_sign_in(
        &self,
        (csrf, cookie): (String, String),
        username: &str,
        password: &str,
        forwarded_for: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/signin", self.base))
            .header("cookie", format!("anchor_signin={cookie}"))
            .form(&[("username", username), ("password", password), ("csrf_token", &csrf)]);
        if let Some(forwarded_for) = forwarded_for {
            request = request.header("x-forwarded-for", forwarded_for);
        }
        request.send().await.expect("post")
    }

    /// Sign-ins sent all at once: their statuses and `Retry-After` headers.
    async fn sign_ins_at_once(&self, attempts: &[(&str, &str)]) -> Vec<(u16, Option<String>)> {
        let mut forms = Vec::new();
        for _ in attempts {
            forms.push(self.sign_in_form().await);
        }
        let sent = forms.into_iter().zip(attempts).map(|(form, (username, password))| async move {
            let response = self.post_sign_in(form, username, password, None).await;
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
            (response.status().as_u16(), retry_after)
        });
        futures_util::future::join_all(sent).await
    }

    /// Occurrences of refused sign-ins with this outcome (aggregated rows summed).
    async fn refused_sign_ins(&self, outcome: &str, subject: Option<&str>) -> i64 {
        self.flush_refusals().await;
        sqlx::query_scalar(
            "SELECT coalesce(sum(count), 0)::bigint FROM platform.access_audit
              WHERE action = 'signin' AND outcome = $1 AND ($2::text IS NULL OR subject = $2)",
        )
        .bind(outcome)
        .bind(subject)
        .fetch_one(self.db.pool())
        .await
        .expect("count")
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

/// One password check per core, and time to wait for one (tests share the cores).
fn patient() -> PasswordHashing {
    PasswordHashing::new(0, Duration::from_secs(600))
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
    // The picker never enters a workspace by itself: it links to each one's Console, by name in the URL.
    assert!(page.contains("href=\"/w/acme/console\""), "{page}");
    assert!(!page.contains("/w/globex"), "no link to a workspace the caller is not in");

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
async fn failed_sign_ins_are_audited_and_throttled_per_account_and_source() {
    let web = Web::start(None).await;
    web.account("alice", "correct horse battery").await;
    for _ in 0..anchor_web::MAX_FAILURES_PER_ACCOUNT_AND_SOURCE {
        let response = web.sign_in("alice", "wrong password!!").await;
        assert_eq!(response.status(), 401);
        assert!(response.text().await.expect("text").contains("Wrong username or password."));
    }
    // Unknown accounts get the same answer.
    assert_eq!(web.sign_in("nobody", "whatever password").await.status(), 401);
    // Now even the right password waits, from this source.
    let throttled = web.sign_in("alice", "correct horse battery").await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
    assert!(throttled.text().await.expect("text").contains("Too many failed sign-ins"));
    assert_eq!(web.refused_sign_ins("failure", Some("alice")).await, 5);
    assert_eq!(web.refused_sign_ins("denied", None).await, 1, "the throttled attempt");
    web.stop().await;
}

/// Twenty guesses sent at once: attempts count from the moment they start,
/// so no more than the limit get a password check.
#[tokio::test]
async fn parallel_wrong_guesses_cannot_exceed_the_throttle() {
    let web = Web::start(None).await;
    web.account("alice", "correct horse battery").await;
    let guesses = vec![("alice", "wrong password!!"); 20];
    let answers = web.sign_ins_at_once(&guesses).await;
    let checked = answers.iter().filter(|(status, _)| *status == 401).count();
    let throttled = answers.iter().filter(|(status, retry)| *status == 429 && retry.is_some()).count();
    assert_eq!(checked, anchor_web::MAX_FAILURES_PER_ACCOUNT_AND_SOURCE as usize, "{answers:?}");
    assert_eq!(checked + throttled, 20, "{answers:?}");
    assert_eq!(web.refused_sign_ins("failure", Some("alice")).await, 5);
    assert_eq!(web.sign_in("alice", "correct horse battery").await.status(), 429, "and the limit holds after");
    web.stop().await;
}

/// An attacker's wrong guesses stop the attacker's source, not the
/// account: its owner still signs in from elsewhere.
#[tokio::test]
async fn an_attackers_guesses_do_not_lock_the_owner_out() {
    let proxies = TrustedProxies::parse("127.0.0.1").expect("proxies");
    let web = Web::start_with(None, proxies, patient()).await;
    web.account("alice", "correct horse battery").await;
    let attacker = Some("203.0.113.66");
    for _ in 0..anchor_web::MAX_FAILURES_PER_ACCOUNT_AND_SOURCE {
        assert_eq!(web.sign_in_via("alice", "guess guess guess", attacker).await.status(), 401);
    }
    assert_eq!(web.sign_in_via("alice", "guess guess guess", attacker).await.status(), 429);
    assert_eq!(web.sign_in_via("alice", "correct horse battery", attacker).await.status(), 429, "even a right guess");

    let owner = web.sign_in_via("alice", "correct horse battery", Some("198.51.100.7")).await;
    assert_eq!(owner.status(), 303, "the owner, from another source, is not locked out");
    assert!(set_cookie(&owner, "anchor_session").is_some());
    web.stop().await;
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    // No trusted proxies: a client that varies X-Forwarded-For is still one source.
    let web = Web::start(None).await;
    web.account("alice", "correct horse battery").await;
    for i in 0..anchor_web::MAX_FAILURES_PER_ACCOUNT_AND_SOURCE {
        let spoofed = format!("203.0.113.{i}");
        assert_eq!(web.sign_in_via("alice", "guess guess guess", Some(&spoofed)).await.status(), 401);
    }
    let spoofed = web.sign_in_via("alice", "correct horse battery", Some("198.51.100.7")).await;
    assert_eq!(spoofed.status(), 429, "the header is not believed from an untrusted peer");
    web.flush_refusals().await;
    let sources: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT detail->>'address' FROM platform.access_audit WHERE action = 'signin'")
            .fetch_all(web.db.pool())
            .await
            .expect("audit");
    assert_eq!(sources, ["127.0.0.1"], "the peer is the source");
    web.stop().await;

    // The peer is a trusted proxy: the client it names is the source. What
    // the client wrote further left is not believed.
    let proxies = TrustedProxies::parse("127.0.0.0/8").expect("proxies");
    let web = Web::start_with(None, proxies, patient()).await;
    web.account("alice", "correct horse battery").await;
    let signed_in = web.sign_in_via("alice", "correct horse battery", Some("10.9.9.9, 198.51.100.7")).await;
    assert_eq!(signed_in.status(), 303);
    let address: String = sqlx::query_scalar(
        "SELECT detail->>'address' FROM platform.access_audit WHERE action = 'signin' AND outcome = 'success'",
    )
    .fetch_one(web.db.pool())
    .await
    .expect("audit");
    assert_eq!(address, "198.51.100.7");
    web.stop().await;
}

/// A burst of sign-ins never runs more password checks at once than the
/// slots; callers who would wait too long are told when to come back.
#[tokio::test]
async fn a_burst_of_sign_ins_runs_at_most_the_slots_of_password_checks_at_once() {
    let web = Web::start_with(None, TrustedProxies::default(), PasswordHashing::new(2, Duration::from_secs(600))).await;
    let names: Vec<String> = (0..16).map(|i| format!("user{i}")).collect();
    let burst: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "some password here")).collect();
    let answers = web.sign_ins_at_once(&burst).await;
    assert!(answers.iter().all(|(status, _)| *status == 401), "{answers:?}");
    assert_eq!(web.hashing.peak(), 2, "never more than the two slots, and the burst filled them");
    web.stop().await;

    // One slot and little patience: some are turned away, with Retry-After.
    let web = Web::start_with(None, TrustedProxies::default(), PasswordHashing::new(1, Duration::from_millis(1))).await;
    let answers = web.sign_ins_at_once(&burst[..8]).await;
    let busy: Vec<_> = answers.iter().filter(|(status, _)| *status == 503).collect();
    assert!(!busy.is_empty() && busy.iter().all(|(_, retry)| retry.is_some()), "{answers:?}");
    assert!(answers.iter().all(|(status, _)| [401, 503].contains(status)), "{answers:?}");
    assert_eq!(web.hashing.peak(), 1);
    // A turned-away attempt does not count against the source.
    let counted: i32 =
        sqlx::query_scalar("SELECT attempts FROM platform.signin_attempts WHERE key = 'source:127.0.0.1'")
            .fetch_one(web.db.pool())
            .await
            .expect("attempts");
    assert_eq!(counted as usize, answers.len() - busy.len());
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

#[tokio::test]
async fn using_a_session_extends_it_but_writes_its_row_at_most_once_a_minute() {
    let web = Web::start(None).await;
    web.account("alice", "correct horse battery").await;
    let session = set_cookie(&web.sign_in("alice", "correct horse battery").await, "anchor_session").expect("session");
    let seen = || async {
        sqlx::query_scalar::<_, time::OffsetDateTime>("SELECT last_seen_at FROM platform.web_sessions")
            .fetch_one(web.db.pool())
            .await
            .expect("last seen")
    };
    // Used 29 minutes ago: still live, and this use starts the idle window again.
    sqlx::query("UPDATE platform.web_sessions SET last_seen_at = now() - interval '29 minutes'")
        .execute(web.db.pool())
        .await
        .expect("age");
    assert!(web.home(&session).await.contains("Your workspaces"));
    let extended = seen().await;
    assert!(time::OffsetDateTime::now_utc() - extended < time::Duration::seconds(30), "{extended}");
    // Used again at once: read, not written.
    assert!(web.home(&session).await.contains("Your workspaces"));
    assert!(web.home(&session).await.contains("Your workspaces"));
    assert_eq!(seen().await, extended, "no new row version within the minute");
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

    // Every step is in the audit log; the two refusals with one reason (the
    // foreign browser and the replay) are one row with a count.
    web.flush_refusals().await;
    let outcomes: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT outcome, detail->>'reason', sum(count)::bigint FROM platform.access_audit WHERE action = 'signin'
          GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(web.db.pool())
    .await
    .expect("audit");
    let outcomes: Vec<(&str, Option<&str>, i64)> =
        outcomes.iter().map(|(o, r, c)| (o.as_str(), r.as_deref(), *c)).collect();
    assert_eq!(
        outcomes,
        [
            ("failure", Some("token endpoint answered 400 Bad Request"), 1),
            ("failure", Some("unknown, expired, replayed or foreign state"), 2),
            ("success", None, 1),
        ]
    );
    web.stop().await;
}
