//! `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header), required
//! on every POST, PUT, PATCH and DELETE under `/api/v1` except the routes
//! that carry ids of their own (telemetry, callbacks, agent enrollment).
//!
//! Scope: (authenticated subject, workspace of the path, key). The request
//! fingerprint is SHA-256 of method, path and query, and body.
//! - first use: the request runs; its response is kept for replay;
//! - same key, same fingerprint, finished: the kept response again, with
//!   `Idempotent-Replayed: true`, and nothing runs twice;
//! - same key, different fingerprint: 422 `idempotency_key_reused`;
//! - same key while the first still runs: 409 `idempotency_key_in_flight`.
//!
//! Keys are kept for [`RETENTION`] (24 h), then pruned. Responses that say
//! "not done, try again" (5xx, 401, 403, 429) are not kept: the key is
//! released, so a retry with the same key can succeed.
//!
//! A kept body is sealed with the master key, bound to the key's scope
//! (some answers carry a secret shown only once: webhook and inbound-source
//! signing secrets, enrollment tokens), and kept with the authorization
//! decision it was given under. A replay makes that decision again first: a
//! member removed since the first answer gets a refusal, not the secret.
//!
//! Command routes are passed through: the command desk
//! (`anchor_commands::Desk`) keeps their keys itself, after its
//! authorization decision and in terms of the command, for the API and the
//! pages alike.

use std::{sync::Arc, time::Duration};

use anchor_crypto::seal::Sealed;
use anchor_store::idempotency::{Claim, KeyScope, StoredBody, StoredResponse};
use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use crate::{AppState, auth, problem::Problem};

/// How long a key and its response are kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Largest response kept for replay; larger ones are answered but not kept.
const MAX_STORED_RESPONSE: usize = 1024 * 1024;
/// Response headers replayed with the body.
const KEPT_HEADERS: &[HeaderName] =
    &[header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER, header::CACHE_CONTROL];

static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

fn applies(req: &Request) -> bool {
    let path = req.uri().path();
    matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
        && path.starts_with("/api/v1/")
        && !crate::routes::WITHOUT_IDEMPOTENCY_KEY.iter().any(|p| path.starts_with(p))
}

/// The `{ws}` of `/api/v1/workspaces/{ws}/...`, or "".
pub(crate) fn workspace_of(path: &str) -> &str {
    path.strip_prefix("/api/v1/workspaces/").and_then(|rest| rest.split('/').next()).unwrap_or("")
}

/// The `Idempotency-Key` of a request: required, 1 to 255 printable ASCII
/// characters.
pub(crate) fn key_of(headers: &HeaderMap) -> Result<String, Problem> {
    match headers.get(&IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        None => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "idempotency_key_missing",
            "POST, PUT, PATCH and DELETE need an Idempotency-Key header (e.g. a UUID); it makes retries safe",
        )),
        Some(Ok(key)) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(key.to_owned())
        }
        Some(_) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "idempotency_key_invalid",
            "an Idempotency-Key is 1 to 255 printable ASCII characters",
        )),
    }
}

pub(crate) fn in_flight() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_flight",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )
}

pub(crate) fn reused() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different request; use a new key for a new request",
    )
}

pub(crate) async fn enforce(
    State(state): State<AppState>,
    body_limit: usize,
    lease: Duration,
    routing: Arc<crate::routes::Routing>,
    req: Request,
    next: Next,
) -> Response {
    // A method the path does not offer (the router answers 405), or a
    // command (the command desk keeps its key): nothing to do here.
    let operation = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| (req.method().as_str().to_ascii_lowercase(), p.as_str().to_owned()));
    let skip = operation.is_some_and(|o| routing.commands.contains(&o) || routing.not_offered(&o));
    if skip || !applies(&req) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    // Who asks comes first: an anonymous request never touches a key.
    let caller = match auth::authenticate(&mut parts, &state).await {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    let key = match key_of(&parts.headers) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    let bytes = match axum::body::to_bytes(body, body_limit).await {
        Ok(bytes) => bytes,
        Err(_) => return Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response(),
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(parts.uri.path_and_query().map_or("", |p| p.as_str()).as_bytes());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let fingerprint = hasher.finalize();

    let owner = KeyOwner {
        issuer: caller.identity.issuer.clone(),
        subject: caller.identity.subject.clone(),
        workspace: workspace_of(parts.uri.path()).to_owned(),
        key,
    };
    match state.db.claim_idempotency_key(owner.scope(), &fingerprint, lease, RETENTION).await {
        Err(e) => Problem::from(e).into_response(),
        Ok(Claim::InFlight) => in_flight().into_response(),
        Ok(Claim::Reused) => reused().into_response(),
        Ok(Claim::Replay(stored)) => {
            // Authorized when it was first produced; authorized again now.
            if let Err(problem) = auth::decide_again(&parts, &state, &caller, stored.decided_by.as_deref()).await {
                return problem.into_response();
            }
            replay(&state, owner.scope(), stored)
        }
        Ok(Claim::Proceed) => {
            // The request runs to its end and its answer is kept even when
            // the client goes away or the timeout layer answers 504 first:
            // dropped half-way, the key would stay in flight until its lease
            // ends and the same request would then run a second time.
            let decision = parts.extensions.get::<auth::Decision>().cloned().unwrap_or_default();
            let request = Request::from_parts(parts, Body::from(bytes));
            let run = tokio::spawn(async move {
                let response = next.run(request).await;
                finish(&state, owner.scope(), decision.how(), response).await
            });
            match run.await {
                Ok(response) => response,
                Err(e) => {
                    tracing::error!(error = %e, "an idempotent request's task ended abnormally");
                    Problem::internal().into_response()
                }
            }
        }
    }
}

/// The owned form of a [`KeyScope`], so the request can run in its own task.
#[derive(Debug)]
struct KeyOwner {
    issuer: String,
    subject: String,
    workspace: String,
    key: String,
}

impl KeyOwner {
    fn scope(&self) -> KeyScope<'_> {
        KeyScope { issuer: &self.issuer, subject: &self.subject, workspace: &self.workspace, key: &self.key }
    }
}

/// What a sealed body is bound to: the table and the key's whole scope, so
/// it opens nowhere else.
fn associated_data(scope: KeyScope<'_>) -> Vec<u8> {
    let mut data = b"platform.idempotency_keys.response_body".to_vec();
    for part in [scope.issuer, scope.subject, scope.workspace, scope.key] {
        data.extend_from_slice(&(part.len() as u32).to_be_bytes());
        data.extend_from_slice(part.as_bytes());
    }
    data
}

fn replay(state: &AppState, scope: KeyScope<'_>, stored: StoredResponse) -> Response {
    let body = match stored.body {
        StoredBody::Plain(body) => body,
        StoredBody::Sealed { ciphertext, nonce, master_key_id } => {
            let sealed = Sealed { ciphertext, nonce, master_key_id };
            match state.webhooks.master.open(&sealed, &associated_data(scope)) {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(error = %e, "cannot open a kept response for replay");
                    return Problem::internal().into_response();
                }
            }
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(REPLAYED.clone(), HeaderValue::from_static("true"));
    response
}

/// Keeps the response for replay, or releases the key when the outcome says
/// "not done".
async fn finish(
    state: &AppState,
    scope: KeyScope<'_>,
    decided_by: Option<&'static str>,
    response: Response,
) -> Response {
    let status = response.status();
    let keep = !(status.is_server_error()
        || matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS));
    if !keep {
        if let Err(e) = state.db.release_idempotency_key(scope).await {
            tracing::error!(error = %e, "cannot release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_STORED_RESPONSE).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "response too large to keep for idempotent replay");
            let _ = state.db.release_idempotency_key(scope).await;
            return Problem::internal().into_response();
        }
    };
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|name| Some((name.as_str().to_owned(), parts.headers.get(name)?.to_str().ok()?.to_owned())))
        .collect();
    let sealed = state.webhooks.master.seal(&bytes, &associated_data(scope));
    let body =
        StoredBody::Sealed { ciphertext: sealed.ciphertext, nonce: sealed.nonce, master_key_id: sealed.master_key_id };
    let stored = StoredResponse { status: status.as_u16(), headers, body, decided_by: decided_by.map(str::to_owned) };
    if let Err(e) = state.db.complete_idempotency_key(scope, &stored).await {
        // The effect happened; the client gets its answer. A retry would see
        // the key in flight until its lease ends, then run again: log loudly.
        tracing::error!(error = %e, "cannot keep the response of an idempotent request");
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::workspace_of;

    #[test]
    fn the_workspace_comes_from_the_path() {
        assert_eq!(workspace_of("/api/v1/workspaces/acme/members/bob"), "acme");
        assert_eq!(workspace_of("/api/v1/workspaces/acme"), "acme");
        assert_eq!(workspace_of("/api/v1/workspaces"), "");
    }
}
