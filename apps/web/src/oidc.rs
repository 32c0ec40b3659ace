//! Staff sign-in through an OIDC provider: authorization code flow with PKCE
//! (RFC 7636, S256), `state` bound to the browser by a cookie and usable
//! once, `nonce` checked in the ID token, whose signature, issuer, audience
//! and lifetime are verified against the provider's published keys.

use anchor_auth::TokenVerifier;
use anchor_config::OidcSettings;
use anchor_store::access::Outcome;
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::{
    WebState, pages,
    session::{OIDC_COOKIE, cookie, random_token, removal, same},
    signin::{ClientAddress, audit_context, refuse, retry_after, start_session},
};

/// The largest discovery document read.
const DISCOVERY_MAX_BYTES: usize = 64 * 1024;

/// The provider, discovered on first use (so Anchor starts while it is down).
pub struct OidcClient {
    issuer: String,
    client_id: String,
    client_secret: Option<SecretString>,
    label: String,
    redirect_uri: String,
    http: reqwest::Client,
    discovered: OnceCell<Discovered>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

struct Discovered {
    authorization_endpoint: String,
    token_endpoint: String,
    id_tokens: TokenVerifier,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

impl OidcClient {
    pub fn new(settings: &OidcSettings, public_origin: &str) -> Self {
        Self {
            issuer: settings.issuer.trim_end_matches('/').to_owned(),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            label: settings.label.clone(),
            redirect_uri: format!("{public_origin}/auth/oidc/callback"),
            http: anchor_auth::token::http_client(),
            discovered: OnceCell::new(),
        }
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    async fn discover(&self) -> Result<&Discovered, String> {
        self.discovered
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let response = self.http.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("{url}: HTTP {}", response.status()));
                }
                let body = anchor_auth::token::read_capped(response, DISCOVERY_MAX_BYTES)
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                let doc: DiscoveryDocument = serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
                if doc.issuer.trim_end_matches('/') != self.issuer {
                    return Err(format!("{url} names issuer {:?}, not the configured one", doc.issuer));
                }
                // Codes, tokens and keys travel over TLS: the endpoints the
                // provider names are held to the rule its issuer URL was
                // (https, or http to a loopback host named exactly).
                for (name, endpoint) in [
                    ("authorization_endpoint", &doc.authorization_endpoint),
                    ("token_endpoint", &doc.token_endpoint),
                    ("jwks_uri", &doc.jwks_uri),
                ] {
                    if !anchor_config::https_or_loopback(endpoint) {
                        return Err(format!("{url}: {name} {endpoint:?} is not https"));
                    }
                }
                Ok(Discovered {
                    authorization_endpoint: doc.authorization_endpoint,
                    token_endpoint: doc.token_endpoint,
                    id_tokens: TokenVerifier::for_id_tokens(&doc.issuer, &doc.jwks_uri, &self.client_id),
                })
            })
            .await
    }
}

fn unavailable(detail: &str) -> Response {
    tracing::warn!(detail, "OIDC sign-in unavailable");
    pages::refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "Single sign-on is unavailable",
        "Anchor cannot reach the sign-in provider. Try again shortly, or sign in with a local account.",
    )
}

/// Redirects the browser to the provider. Each start writes the login in
/// flight, so a source may start only so many a minute.
pub(crate) async fn start(
    State(state): State<WebState>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return pages::refused(StatusCode::NOT_FOUND, "Single sign-on is not set up", "Sign in with a local account.");
    };
    if let Err(wait) = state.limits.admit("oidc.starts", &source.bucket(), crate::OIDC_STARTS).await {
        refuse(&state, &headers, (Outcome::Denied, "throttled"), &source, &oidc.issuer, None, "oidc");
        let page = pages::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins started",
            "Too many sign-ins were started from your network. Wait a minute, then try again.",
        );
        return retry_after(page, wait);
    }
    let discovered = match oidc.discover().await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    let login_state = random_token();
    let nonce = random_token();
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if let Err(e) = state.db.begin_oidc_login(&login_state, &verifier, &nonce).await {
        return unavailable(&e.to_string());
    }
    let Ok(mut url) = url::Url::parse(&discovered.authorization_endpoint) else {
        return unavailable("the provider's authorization endpoint is not a URL");
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.client_id)
        .append_pair("redirect_uri", &oidc.redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("state", &login_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let jar = jar.add(cookie(&state, OIDC_COOKIE, login_state, 600, SameSite::Lax));
    (jar, Redirect::to(url.as_str())).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

/// The provider sends the browser back here with a code.
pub(crate) async fn callback(
    State(state): State<WebState>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
    Query(params): Query<Callback>,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return pages::refused(StatusCode::NOT_FOUND, "Single sign-on is not set up", "Sign in with a local account.");
    };
    // Refusals are aggregated by reason, so reasons come from a bounded set:
    // what the caller sent (the `error` parameter) is logged, not recorded.
    let fail = |reason: &str| {
        refuse(&state, &headers, (Outcome::Failure, reason), &source, &oidc.issuer, None, "oidc");
        std::future::ready(pages::refused(
            StatusCode::UNAUTHORIZED,
            "Sign-in failed",
            "The sign-in provider did not confirm who you are. Try again.",
        ))
    };
    if let Some(error) = params.error {
        tracing::info!(error = %error.chars().take(100).collect::<String>(), "the OIDC provider refused the sign-in");
        return fail("provider error").await;
    }
    let (Some(code), Some(login_state)) = (params.code, params.state) else {
        return fail("callback without code or state").await;
    };
    let bound = jar.get(OIDC_COOKIE).is_some_and(|c| same(c.value(), &login_state));
    let taken = if bound { state.db.take_oidc_login(&login_state).await.ok().flatten() } else { None };
    let Some((verifier, nonce)) = taken else {
        return fail("unknown, expired, replayed or foreign state").await;
    };
    let discovered = match oidc.discover().await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };

    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", oidc.redirect_uri.clone()),
        ("client_id", oidc.client_id.clone()),
        ("code_verifier", verifier),
    ];
    if let Some(secret) = &oidc.client_secret {
        form.push(("client_secret", secret.expose_secret().to_owned()));
    }
    let response = match oidc.http.post(&discovered.token_endpoint).form(&form).send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return fail(&format!("token endpoint answered {}", r.status())).await,
        Err(e) => return unavailable(&e.to_string()),
    };
    let Ok(tokens) = response.json::<TokenResponse>().await else {
        return fail("token endpoint answered without an id_token").await;
    };
    let identity = match discovered.id_tokens.verify(&tokens.id_token).await {
        Ok(identity) => identity,
        Err(e) => return fail(&format!("ID token refused: {e}")).await,
    };
    if identity.nonce.as_deref().is_none_or(|n| !same(n, &nonce)) {
        return fail("ID token nonce does not match").await;
    }
    let context = audit_context(&headers, &identity.issuer, &identity.subject);
    let detail = serde_json::json!({"address": source.address(), "method": "oidc"});
    let jar = jar.remove(removal(&state, OIDC_COOKIE));
    start_session(&state, jar, &context, &identity.issuer, &identity.subject, detail).await
}
