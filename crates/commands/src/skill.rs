//! Performing a command in a skill, the same way for every command.
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
//! 3. apply the command ([`DomainCommand::apply`](crate::kit::DomainCommand::apply)),
//!    which checks the domain rules under its locks and refuses with a
//!    [`Refusal`]; a refusal is recorded like an effect, so it too is
//!    answered the same every time;
//! 4. record the result with the effect and its events, and finish the
//!    execution from it ([`crate::finish::performed`]), all in one commit.

use anchor_auth::permissions;
use anchor_domain::{Role, WorkspaceSlug};
use anchor_store::{
    Database, StoreError,
    access::SubjectRef,
    executions::{AgentFieldRun, EffectClaim},
};
use serde_json::{Value, json};

use crate::{
    CommandInput, CommandVerifier,
    command::SYSTEM_ISSUER,
    finish,
    kit::{Effect, FORBIDDEN, Refusal, Rejection},
    registry,
};

/// A skill's answer: 200 with the result, or an error status with
/// `{"code", "message"}` (refusals add their `status`).
#[derive(Debug, Clone, PartialEq)]
pub struct SkillAnswer {
    pub status: u16,
    pub body: Value,
}

impl SkillAnswer {
    fn ok(result: Value) -> Self {
        Self { status: 200, body: result }
    }

    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self { status, body: json!({"code": code, "message": message.into()}) }
    }

    fn refused(refusal: &Refusal) -> Self {
        Self { status: refusal.status, body: refusal.to_record() }
    }

    fn unavailable(e: &StoreError) -> Self {
        tracing::error!(error = %e, "skill could not reach the database");
        Self::error(503, "unavailable", "the database is unavailable; try again")
    }
}

/// Runs skill `skill` on the bare input `raw`; `run`: where AgentField is
/// running it (its `X-Execution-ID` and `X-Run-ID`), when it said.
pub async fn perform(
    db: &Database,
    verifier: &CommandVerifier,
    skill: &str,
    raw: Value,
    run: Option<AgentFieldRun<'_>>,
) -> SkillAnswer {
    let Some(spec) = registry::for_skill(skill) else {
        return SkillAnswer::error(404, "unknown_skill", format!("this node has no skill {skill}"));
    };
    let input: CommandInput = match serde_json::from_value(raw) {
        Ok(input) => input,
        Err(e) => return SkillAnswer::error(400, "invalid_input", e.to_string()),
    };
    if let Err(e) = verifier.verify(&input) {
        tracing::warn!(execution = %input.execution_id, error = %e, "refused a command without a valid envelope");
        return SkillAnswer::error(403, e.code(), e.to_string());
    }
    // Signed by the gateway from here on.
    if input.command != spec.name {
        let message = format!("{skill} performs {}, not {}", spec.name, input.command);
        return SkillAnswer::error(400, "wrong_skill", message);
    }
    let command = match spec.parse(input.args.clone()) {
        Ok(command) => command,
        Err(e) => return SkillAnswer::error(422, "invalid_arguments", e.to_string()),
    };
    match run_in(db, &input, &command, run.as_ref()).await {
        Ok(answer) => answer,
        Err(e) => SkillAnswer::unavailable(&e),
    }
}

/// The answer an earlier delivery of the same command recorded, if any.
fn answered(claim: EffectClaim) -> Option<SkillAnswer> {
    match claim {
        EffectClaim::New => None,
        EffectClaim::Applied(result) => Some(SkillAnswer::ok(result)),
        EffectClaim::Rejected(record) => Some(SkillAnswer::refused(&Refusal::from_record(&record))),
    }
}

async fn run_in(
    db: &Database,
    input: &CommandInput,
    command: &crate::Command,
    run: Option<&AgentFieldRun<'_>>,
) -> Result<SkillAnswer, StoreError> {
    let Ok(slug) = WorkspaceSlug::parse(&input.workspace) else {
        return Ok(SkillAnswer::error(404, "workspace_not_found", "no such workspace"));
    };
    let who = SubjectRef { issuer: &input.actor.issuer, subject: &input.actor.subject };
    let access = db.workspace_access(&slug, who).await?;
    let Some(workspace) = access.workspace else {
        return Ok(SkillAnswer::error(404, "workspace_not_found", "no such workspace"));
    };
    let mut tx = db.begin_workspace(&workspace).await?;
    let claim = match tx.claim_effect(input.execution_id).await {
        Ok(claim) => claim,
        // The envelope is genuine but the execution is gone (foreign key).
        Err(e) if e.sqlstate().as_deref() == Some("23503") => {
            return Ok(SkillAnswer::error(404, "execution_not_found", "no such execution"));
        }
        Err(e) => return Err(e),
    };
    if let Some(earlier) = answered(claim) {
        return Ok(earlier);
    }
    let permission = command.permission();
    // Anchor's own automation acts with a technician's permissions.
    let allowed = if input.actor.issuer == SYSTEM_ISSUER {
        permissions::grants(Role::Technician, permission)
    } else {
        permissions::granting(&access.roles, permission).is_some()
    };
    let outcome = if allowed {
        let mut effect = Effect { tx: &mut tx, actor: &input.actor, execution: input.execution_id };
        command.apply(&mut effect).await
    } else {
        let message = format!("{} may not {} in {}", input.actor.subject, permission.name(), input.workspace);
        Err(Rejection::Refused(FORBIDDEN.because(message)))
    };
    let answer = match outcome {
        Ok(result) => {
            tx.record_effect(input.execution_id, true, &result).await?;
            finish::performed(&mut tx, input, run, Ok(&result)).await?;
            SkillAnswer::ok(result)
        }
        Err(Rejection::Refused(refusal)) => {
            // What the effect may have written before it refused goes with
            // the unit of work; only the refusal is kept.
            tx.rollback().await?;
            tx = db.begin_workspace(&workspace).await?;
            // A delivery of the same command waiting on our claim may have
            // decided meanwhile; its answer stands.
            if let Some(earlier) = answered(tx.claim_effect(input.execution_id).await?) {
                return Ok(earlier);
            }
            let record = refusal.to_record();
            tx.record_effect(input.execution_id, false, &record).await?;
            finish::performed(&mut tx, input, run, Err(&record)).await?;
            SkillAnswer::refused(&refusal)
        }
        Err(Rejection::Store(e)) => return Err(e),
    };
    tx.commit().await?;
    tracing::info!(execution = %input.execution_id, command = %input.command, status = answer.status, "skill done");
    Ok(answer)
}
