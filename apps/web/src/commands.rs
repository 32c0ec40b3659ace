//! Commands from the pages. Every form that changes domain state posts to
//! `POST /w/{ws}/commands` (the command's name, its arguments, the CSRF
//! token and an idempotency key minted with the form), and that goes through
//! the command desk of `anchor-commands`: the same authorization decision,
//! audit record, idempotency, pre-check and unit of work as the API. The
//! answer is a redirect to the execution's page (post/redirect/get), which
//! shows where the command is and, once finished, what it did.

use std::time::Duration;

use anchor_auth::permissions::{Permission, roles_granting};
use anchor_commands::{
    Command, Receipt, SubmitError,
    authorize::{Asking, Denial, authorize},
    registry,
};
use anchor_domain::ExecutionId;
use anchor_store::access::SubjectRef;
use axum::{
    Form,
    extract::{Path, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    WebState, pages,
    session::{MaybeSignedIn, SignedIn, same, same_origin},
    signin::audit_context,
};

/// How long a page waits for a command to finish before it shows the
/// execution still running (the execution page refreshes itself).
const PAGE_WAIT: Duration = Duration::from_secs(3);

/// A command form.
#[derive(Debug, Deserialize)]
pub(crate) struct CommandForm {
    csrf_token: String,
    /// Minted when the form was drawn: sending it twice (a double click, a
    /// reload) submits the command once.
    #[serde(default)]
    idempotency_key: Option<String>,
    /// `ticket.create`, ...
    command: String,
    /// The arguments as a JSON object.
    args: String,
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn signed_out() -> Response {
    pages::refused(StatusCode::UNAUTHORIZED, "Please sign in", "Your session has ended. Sign in again, then retry.")
}

/// The page for a refused authorization: what was needed, which roles have
/// it, whom to ask, and the request id to quote.
fn forbidden(denial: Denial, workspace: &str, headers: &HeaderMap) -> Response {
    let request = request_id(headers);
    let (title, message) = match denial {
        // As on every page: a workspace one is not in does not exist for them.
        Denial::NotAMember => {
            let message = format!("You are not a member of the workspace {workspace:?}, or it does not exist.");
            return pages::refused_with_request(
                StatusCode::NOT_FOUND,
                "No such workspace",
                &message,
                request.as_deref(),
            );
        }
        Denial::Role { role, permission } => {
            let roles: Vec<&str> = roles_granting(permission).map(|r| r.as_str()).collect();
            (
                "Not allowed",
                format!(
                    "This needs {}; your role here is {role}. Roles that have it: {}. Ask an MSP admin of this workspace.",
                    permission.name(),
                    roles.join(", ")
                ),
            )
        }
    };
    pages::refused_with_request(StatusCode::FORBIDDEN, title, &message, request.as_deref())
}

/// `POST /w/{ws}/commands`.
pub(crate) async fn submit(
    State(state): State<WebState>,
    Path(workspace): Path<String>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    form: Result<Form<CommandForm>, FormRejection>,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return signed_out() };
    let Ok(Form(form)) = form else { return pages::form_expired() };
    if !same(&session.csrf_token, &form.csrf_token) || !same_origin(&state, &headers) {
        return pages::form_expired();
    }
    let args = match serde_json::from_str::<serde_json::Value>(&form.args) {
        Ok(args) => args,
        Err(e) => {
            return pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "The command is not valid", &e.to_string());
        }
    };
    let key = form.idempotency_key.as_deref();
    match submit_as(&state, &workspace, &session, &headers, &form.command, args, key, "POST /w/{ws}/commands").await {
        Ok(Receipt { workspace, execution, .. }) => {
            Redirect::to(&format!("/w/{}/executions/{}", workspace.slug(), execution.id)).into_response()
        }
        Err(page) => page,
    }
}

/// Submits command `name` with `args` for the person signed in, through
/// the command desk: the same authorization decision, audit record,
/// idempotency, pre-check and unit of work as the API. A page that refuses
/// (sign in, permission, bad arguments, refusal) is the error.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn submit_as(
    state: &WebState,
    workspace: &str,
    session: &anchor_store::sessions::WebSession,
    headers: &HeaderMap,
    name: &str,
    args: serde_json::Value,
    key: Option<&str>,
    route: &'static str,
) -> Result<Receipt, Response> {
    submit_waiting(state, workspace, session, headers, name, args, key, route, Some(PAGE_WAIT)).await
}

/// [`submit_as`], waiting for the outcome up to `wait` (none: answered as
/// soon as the command is accepted).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn submit_waiting(
    state: &WebState,
    workspace: &str,
    session: &anchor_store::sessions::WebSession,
    headers: &HeaderMap,
    name: &str,
    args: serde_json::Value,
    key: Option<&str>,
    route: &'static str,
    wait: Option<Duration>,
) -> Result<Receipt, Response> {
    let Some(desk) = state.desk.clone() else { return Err(unavailable()) };
    let Some(spec) = registry::find(name) else {
        let message = format!("Anchor has no command {:?}.", name.chars().take(64).collect::<String>());
        return Err(pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "Unknown command", &message));
    };
    let audit = audit_context(headers, &session.issuer, &session.subject);
    let asking =
        Asking { who: SubjectRef { issuer: &session.issuer, subject: &session.subject }, audit: &audit, route };
    let grant = match desk.authorize(asking, workspace, spec.permission).await {
        Ok(grant) => grant,
        Err(e) => return Err(failed(e, workspace, headers)),
    };
    let command = match spec
        .parse(args)
        .map_err(|e| if e.path.is_empty() { e.message } else { format!("{}: {}", e.path, e.message) })
    {
        Ok(command) => command,
        Err(message) => {
            return Err(pages::declined(StatusCode::UNPROCESSABLE_ENTITY, "The command is not valid", &message));
        }
    };
    let key = key.filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    desk.submit(&grant, command, key, wait).await.map_err(|e| failed(e, workspace, headers))
}

fn unavailable() -> Response {
    pages::declined(StatusCode::SERVICE_UNAVAILABLE, "Commands are unavailable", "Try again shortly.")
}

/// The page for a command that was not accepted.
fn failed(error: SubmitError, workspace: &str, headers: &HeaderMap) -> Response {
    match error {
        SubmitError::Denied(denial) => forbidden(denial, workspace, headers),
        SubmitError::Refused(refusal) => pages::declined(
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            "The command was refused",
            &pages::sentence(&refusal.message),
        ),
        SubmitError::KeyInFlight => pages::declined(
            StatusCode::CONFLICT,
            "Still working on it",
            "This form was already sent and is being handled. Wait a moment, then reload.",
        ),
        SubmitError::KeyReused => pages::declined(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This form was used already",
            "Reload the page to start again.",
        ),
        SubmitError::Unavailable(e) => {
            tracing::error!(error = %e, "a page's command could not be submitted");
            unavailable()
        }
        SubmitError::Envelope(e) => {
            tracing::error!(error = %e, "cannot sign a command envelope");
            unavailable()
        }
    }
}

/// `GET /w/{ws}/executions/{id}`: where a command is, and what it did.
pub(crate) async fn execution(
    State(state): State<WebState>,
    Path((workspace, id)): Path<(String, String)>,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
) -> Response {
    let Some(SignedIn { session, .. }) = signed_in else { return Redirect::to("/").into_response() };
    let audit = audit_context(&headers, &session.issuer, &session.subject);
    let asking = Asking {
        who: SubjectRef { issuer: &session.issuer, subject: &session.subject },
        audit: &audit,
        route: "GET /w/{ws}/executions/{id}",
    };
    let grant = match authorize(&state.db, asking, &workspace, Permission::ExecutionsRead).await {
        Ok(Ok(grant)) => grant,
        Ok(Err(denial)) => return forbidden(denial, &workspace, &headers),
        Err(e) => return failed(SubmitError::Unavailable(e), &workspace, &headers),
    };
    let not_found =
        || pages::declined(StatusCode::NOT_FOUND, "No such execution", "There is no such command in this workspace.");
    let Ok(id) = id.parse::<ExecutionId>() else { return not_found() };
    match state.db.read(&grant.workspace, |tx| Box::pin(tx.execution(id))).await {
        Ok(Some(execution)) => {
            let command = Command::parse(&execution.command, execution.input.clone()).ok();
            let summary = command.as_ref().map_or(execution.command.as_str(), |c| c.spec().summary);
            pages::page(
                StatusCode::OK,
                pages::execution(&session.subject, &session.csrf_token, &grant.workspace, summary, &execution),
            )
        }
        Ok(None) => not_found(),
        Err(e) => failed(SubmitError::Unavailable(e), &workspace, &headers),
    }
}
