//! Skills: the side effects of domain commands.
//!
//! Each call is checked before anything is touched: the input must carry an
//! envelope the gateway signed over exactly this execution, workspace, actor,
//! command and arguments, and the skill must be the one that performs the
//! command. Then, in the workspace's unit of work:
//!
//! 1. claim the execution's effect: a command delivered again (AgentField
//!    retried, a worker handed it off twice) gets the first answer back and
//!    does nothing;
//! 2. check the actor still holds the command's permission in the workspace;
//! 3. check the domain rules (the ticket exists, the move is allowed) under
//!    a row lock, and refuse with a code when they fail; a refusal is
//!    recorded like an effect, so it too is answered the same every time;
//! 4. apply the effect, publish the domain event through the outbox, and
//!    record the result, all in one commit.

use anchor_auth::permissions;
use anchor_commands::{
    Command, CommandInput,
    command::{SYSTEM_ISSUER, TicketComment, TicketCreate, TicketReopen, TicketResolve, TicketTransition},
    finish::publish,
};
use anchor_domain::{CommentVisibility, Role, TicketId, TicketStatus, WorkspaceSlug};
use anchor_store::{StoreError, WorkspaceTx, access::SubjectRef, executions::EffectClaim, tickets::NewTicket};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::NodeState;

/// A skill's answer: 200 with the result, or an error status with
/// `{"code", "message"}`.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl Answer {
    fn ok(result: Value) -> Self {
        Self { status: StatusCode::OK, body: result }
    }

    fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, body: json!({"code": code, "message": message.into()}) }
    }

    /// A refusal as recorded: the status follows from its code.
    fn refusal(body: Value) -> Self {
        let status = match body["code"].as_str() {
            Some("forbidden") => StatusCode::FORBIDDEN,
            Some("ticket_not_found") => StatusCode::NOT_FOUND,
            Some("transition_not_allowed") => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self { status, body }
    }

    fn unavailable(e: &StoreError) -> Self {
        tracing::error!(error = %e, "skill could not reach the database");
        Self::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database is unavailable; try again")
    }
}

/// A refusal decided by the domain rules.
struct Refusal {
    code: &'static str,
    message: String,
}

/// Runs skill `skill` on the bare input `raw`.
pub(crate) async fn perform(node: &NodeState, skill: &str, raw: Value) -> Answer {
    let Some(expected) = Command::for_skill(skill) else {
        return Answer::error(StatusCode::NOT_FOUND, "unknown_skill", format!("this node has no skill {skill}"));
    };
    let input: CommandInput = match serde_json::from_value(raw) {
        Ok(input) => input,
        Err(e) => return Answer::error(StatusCode::BAD_REQUEST, "invalid_input", e.to_string()),
    };
    if let Err(e) = node.verifier.verify(&input) {
        tracing::warn!(execution = %input.execution_id, error = %e, "refused a command without a valid envelope");
        return Answer::error(StatusCode::FORBIDDEN, e.code(), e.to_string());
    }
    // Signed by the gateway from here on.
    if input.command != expected {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "wrong_skill",
            format!("{skill} performs {expected}, not {}", input.command),
        );
    }
    let command = match Command::parse(&input.command, input.args.clone()) {
        Ok(command) => command,
        Err(message) => return Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_arguments", message),
    };
    match run(node, &input, &command).await {
        Ok(answer) => answer,
        Err(e) => Answer::unavailable(&e),
    }
}

async fn run(node: &NodeState, input: &CommandInput, command: &Command) -> Result<Answer, StoreError> {
    let Ok(slug) = WorkspaceSlug::parse(&input.workspace) else {
        return Ok(Answer::error(StatusCode::NOT_FOUND, "workspace_not_found", "no such workspace"));
    };
    let who = SubjectRef { issuer: &input.actor.issuer, subject: &input.actor.subject };
    let access = node.db.workspace_access(&slug, who).await?;
    let Some(workspace) = access.workspace else {
        return Ok(Answer::error(StatusCode::NOT_FOUND, "workspace_not_found", "no such workspace"));
    };
    let mut tx = node.db.begin_workspace(&workspace).await?;
    let claim = match tx.claim_effect(input.execution_id).await {
        Ok(claim) => claim,
        // The envelope is genuine but the execution is gone (foreign key).
        Err(e) if e.sqlstate().as_deref() == Some("23503") => {
            return Ok(Answer::error(StatusCode::NOT_FOUND, "execution_not_found", "no such execution"));
        }
        Err(e) => return Err(e),
    };
    match claim {
        EffectClaim::Applied(result) => return Ok(Answer::ok(result)),
        EffectClaim::Rejected(refusal) => return Ok(Answer::refusal(refusal)),
        EffectClaim::New => {}
    }
    let permission = command.permission();
    // Anchor's own automation acts with a technician's permissions.
    let role = if input.actor.issuer == SYSTEM_ISSUER { Some(Role::Technician) } else { access.role };
    let outcome = if role.is_some_and(|role| permissions::grants(role, permission)) {
        apply(&mut tx, input, command).await?
    } else {
        Err(Refusal {
            code: "forbidden",
            message: format!("{} may not {} in {}", input.actor.subject, permission.name(), input.workspace),
        })
    };
    let answer = match outcome {
        Ok(result) => {
            tx.record_effect(input.execution_id, true, &result).await?;
            Answer::ok(result)
        }
        Err(refusal) => {
            let body = json!({"code": refusal.code, "message": refusal.message});
            tx.record_effect(input.execution_id, false, &body).await?;
            Answer::refusal(body)
        }
    };
    tx.commit().await?;
    tracing::info!(execution = %input.execution_id, command = %input.command, status = %answer.status, "skill done");
    Ok(answer)
}

async fn apply(
    tx: &mut WorkspaceTx,
    input: &CommandInput,
    command: &Command,
) -> Result<Result<Value, Refusal>, StoreError> {
    let actor = &input.actor;
    let execution = input.execution_id;
    match command {
        Command::TicketCreate(TicketCreate { title, description, priority, asset_id, alert_id }) => {
            let id = TicketId::new();
            let new = NewTicket {
                id,
                title,
                description: description.as_ref(),
                priority: *priority,
                asset_id: asset_id.map(|a| a.to_string()),
                alert_id: alert_id.map(|a| a.to_string()),
            };
            let ticket = tx.insert_ticket(&new, actor, execution).await?;
            if let Some(alert) = alert_id {
                tx.link_alert_ticket(&alert.to_string(), &id.to_string()).await?;
            }
            publish(tx, "ticket.created", json!({"ticket": ticket, "execution_id": execution})).await?;
            Ok(Ok(json!({"ticket_id": id})))
        }
        Command::TicketTransition(TicketTransition { ticket_id, to }) => {
            let Some(from) = tx.lock_ticket_status(*ticket_id).await? else {
                return Ok(Err(not_found(*ticket_id)));
            };
            if let Err(e) = from.transition(*to) {
                return Ok(Err(Refusal { code: "transition_not_allowed", message: e.to_string() }));
            }
            tx.set_ticket_status(*ticket_id, from, *to, actor, execution).await?;
            let data = json!({"ticket_id": ticket_id, "change": "status_changed", "from": from, "to": to,
                              "actor": actor, "execution_id": execution});
            publish(tx, "ticket.updated", data).await?;
            Ok(Ok(json!({"ticket_id": ticket_id, "from": from, "to": to})))
        }
        Command::TicketResolve(TicketResolve { ticket_id, note, .. }) => {
            let Some(mut status) = tx.lock_ticket_status(*ticket_id).await? else {
                return Ok(Err(not_found(*ticket_id)));
            };
            let from = status;
            // Along the lifecycle, each step in the history.
            while status.is_open() {
                let next = match status {
                    TicketStatus::New => TicketStatus::Triaged,
                    TicketStatus::Triaged => TicketStatus::InProgress,
                    _ => TicketStatus::Resolved,
                };
                tx.set_ticket_status(*ticket_id, status, next, actor, execution).await?;
                status = next;
            }
            tx.insert_comment(*ticket_id, note, CommentVisibility::Internal, actor, execution).await?;
            let data = json!({"ticket_id": ticket_id, "change": "status_changed", "from": from, "to": status,
                              "actor": actor, "execution_id": execution});
            publish(tx, "ticket.updated", data).await?;
            Ok(Ok(json!({"ticket_id": ticket_id, "from": from, "to": status})))
        }
        Command::TicketReopen(TicketReopen { ticket_id, note, .. }) => {
            let Some(from) = tx.lock_ticket_status(*ticket_id).await? else {
                return Ok(Err(not_found(*ticket_id)));
            };
            // Reopening is the lifecycle's way back from resolved; a ticket
            // still open only gets the note, a closed one stays closed.
            let to = match from {
                TicketStatus::Resolved => TicketStatus::InProgress,
                TicketStatus::Closed => {
                    let message = format!("ticket {ticket_id} is closed; it cannot be reopened");
                    return Ok(Err(Refusal { code: "transition_not_allowed", message }));
                }
                open => open,
            };
            if to != from {
                tx.set_ticket_status(*ticket_id, from, to, actor, execution).await?;
            }
            tx.insert_comment(*ticket_id, note, CommentVisibility::Internal, actor, execution).await?;
            let data = json!({"ticket_id": ticket_id, "change": "status_changed", "from": from, "to": to,
                              "actor": actor, "execution_id": execution});
            publish(tx, "ticket.updated", data).await?;
            Ok(Ok(json!({"ticket_id": ticket_id, "from": from, "to": to})))
        }
        Command::TicketComment(TicketComment { ticket_id, body, visibility }) => {
            if tx.lock_ticket_status(*ticket_id).await?.is_none() {
                return Ok(Err(not_found(*ticket_id)));
            }
            let comment = tx.insert_comment(*ticket_id, body, *visibility, actor, execution).await?;
            let data = json!({"ticket_id": ticket_id, "change": "commented", "comment_id": comment,
                              "visibility": visibility, "actor": actor, "execution_id": execution});
            publish(tx, "ticket.updated", data).await?;
            Ok(Ok(json!({"ticket_id": ticket_id, "comment_id": comment})))
        }
    }
}

fn not_found(id: TicketId) -> Refusal {
    Refusal { code: "ticket_not_found", message: format!("no ticket {id} in this workspace") }
}
