//! Runbook runs: started about a ticket, an alert or an asset, and stepped
//! through, each step a command with its execution and signed evidence. A
//! command step's own command runs first, through the desk like any other
//! (its own execution and evidence); recording the step links that
//! execution to the run. A step done on a run about a ticket becomes an
//! internal note on the ticket.

use anchor_auth::permissions::Permission;
use anchor_domain::{
    AlertId, AssetId, CommentVisibility, ExecutionId, RunbookId, RunbookRunId, TicketId, TicketText,
    runbook::RunbookStep,
};
use anchor_events::EventSpec;
use anchor_store::{WorkspaceTx, executions::Actor, runbooks::RunbookRun};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    alert_handling::ALERT_NOT_FOUND,
    cmdb::ASSET_NOT_FOUND,
    kit::{DomainCommand, Effect, RefusalKind, Rejection},
    tickets::{TICKET_NOT_FOUND, TicketComment, TicketUpdated},
};

pub const RUNBOOK_NOT_FOUND: RefusalKind =
    RefusalKind { code: "runbook_not_found", status: 404, when: "the runbook does not exist in this workspace" };
pub const RUN_NOT_FOUND: RefusalKind =
    RefusalKind { code: "runbook_run_not_found", status: 404, when: "the run does not exist in this workspace" };
pub const STEP_NOT_FOUND: RefusalKind =
    RefusalKind { code: "runbook_step_not_found", status: 422, when: "the runbook's version has no such step" };
pub const STEP_DONE: RefusalKind =
    RefusalKind { code: "runbook_step_done", status: 409, when: "the step was done already in this run" };
pub const STEP_EXECUTION: RefusalKind = RefusalKind {
    code: "runbook_step_execution",
    status: 422,
    when: "a command step is recorded with the execution of its command (and only a command step is)",
};

/// Start a runbook (at its current version) about a ticket, an alert or an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"runbook_id": "rbk_01jd6m2h9x8k7v5t3r1p0n9q8w", "ticket_id": "tkt_01jd6m2h9x8k7v5t3r1p0n9q8w"}))]
pub struct RunbookStart {
    pub runbook_id: RunbookId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<TicketId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<AssetId>,
}

/// Record a step of a run as done: a text or check step with an optional
/// note; a command step with the execution that ran its command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = serde_json::json!({"run_id": "rbr_01jd6m2h9x8k7v5t3r1p0n9q8w", "step": 1, "note": "Cleared 20 GB of old logs."}))]
pub struct RunbookRecordStep {
    pub run_id: RunbookRunId,
    /// The step's number, from 1.
    pub step: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<TicketText>,
    /// For a command step: the execution of its command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<ExecutionId>,
}

/// What starting a run did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunStarted {
    pub run_id: RunbookRunId,
    pub version: i32,
}

/// What recording a step did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StepRecorded {
    pub run_id: RunbookRunId,
    pub step: u32,
    /// Every step of the run is done.
    pub finished: bool,
}

impl DomainCommand for RunbookStart {
    const NAME: &'static str = "runbook.start";
    const SKILL: &'static str = "runbook_start";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Start a runbook about a ticket, an alert or an asset";
    const REFUSALS: &'static [&'static RefusalKind] =
        &[&RUNBOOK_NOT_FOUND, &TICKET_NOT_FOUND, &ALERT_NOT_FOUND, &ASSET_NOT_FOUND];
    type Output = RunStarted;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        self.found(tx).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<RunStarted, Rejection> {
        let runbook = self.found(effect.tx).await?;
        let id = RunbookRunId::new();
        let about = (self.ticket_id, self.alert_id, self.asset_id);
        let run = effect.tx.insert_run(id, &runbook, about, effect.actor, effect.execution).await?;
        Ok(RunStarted { run_id: run.id, version: run.version })
    }
}

impl RunbookStart {
    async fn found(&self, tx: &mut WorkspaceTx) -> Result<anchor_store::runbooks::Runbook, Rejection> {
        if let Some(id) = self.ticket_id
            && tx.ticket(id).await?.is_none()
        {
            return Err(TICKET_NOT_FOUND.because(format!("no ticket {id} in this workspace")).into());
        }
        if let Some(id) = self.alert_id
            && tx.alert(id).await?.is_none()
        {
            return Err(ALERT_NOT_FOUND.because(format!("no alert {id} in this workspace")).into());
        }
        if let Some(id) = self.asset_id
            && tx.asset(id).await?.is_none()
        {
            return Err(ASSET_NOT_FOUND.because(format!("no asset {id} in this workspace")).into());
        }
        let id = self.runbook_id;
        tx.runbook(id)
            .await?
            .ok_or_else(|| RUNBOOK_NOT_FOUND.because(format!("no runbook {id} in this workspace")).into())
    }
}

impl DomainCommand for RunbookRecordStep {
    const NAME: &'static str = "runbook.record_step";
    const SKILL: &'static str = "runbook_record_step";
    const PERMISSION: Permission = Permission::TicketsWrite;
    const SUMMARY: &'static str = "Record a runbook step as done";
    const REFUSALS: &'static [&'static RefusalKind] = &[&RUN_NOT_FOUND, &STEP_NOT_FOUND, &STEP_DONE, &STEP_EXECUTION];
    const EVENTS: &'static [EventSpec] = &[EventSpec::of::<TicketUpdated>()];
    type Output = StepRecorded;

    async fn check(&self, tx: &mut WorkspaceTx, _: &Actor) -> Result<(), Rejection> {
        let run = tx.runbook_run(self.run_id).await?;
        self.valid(tx, run).await.map(drop)
    }

    async fn apply(&self, effect: &mut Effect<'_>) -> Result<StepRecorded, Rejection> {
        let run = effect.tx.lock_runbook_run(self.run_id).await?;
        let (run, step) = self.valid(effect.tx, run).await?;
        let number = self.step as i32;
        let note = self.note.as_ref().map(|n| n.as_str());
        effect.tx.record_runbook_step(&run, number, effect.actor, note, self.execution_id, effect.execution).await?;
        let finished = run.done.len() + 1 >= run.steps.0.len();
        // On a run about a ticket, the step is a note on it.
        if let Some(ticket) = run.ticket_id
            && effect.tx.ticket(ticket).await?.is_some_and(|t| t.merged_into.is_none())
        {
            let mut body = format!("Runbook “{}”, step {}: {} — done", run.runbook_name, self.step, step.text());
            if let Some(ran) = self.execution_id {
                body.push_str(&format!(" (ran {ran})"));
            }
            if let Some(note) = note {
                body.push_str(&format!(". {note}"));
            }
            let body: String = body.chars().take(20_000).collect();
            if let Ok(body) = TicketText::parse(&body) {
                let comment = TicketComment { ticket_id: ticket, body, visibility: CommentVisibility::Internal };
                comment.apply(effect).await?;
            }
        }
        Ok(StepRecorded { run_id: run.id, step: self.step, finished })
    }
}

impl RunbookRecordStep {
    async fn valid(
        &self,
        tx: &mut WorkspaceTx,
        run: Option<RunbookRun>,
    ) -> Result<(RunbookRun, RunbookStep), Rejection> {
        let id = self.run_id;
        let run = run.ok_or_else(|| RUN_NOT_FOUND.because(format!("no runbook run {id} in this workspace")))?;
        let step = (self.step as usize).checked_sub(1).and_then(|i| run.steps.0.get(i)).cloned().ok_or_else(|| {
            STEP_NOT_FOUND
                .because(format!("version {} of “{}” has no step {}", run.version, run.runbook_name, self.step))
        })?;
        if run.done.iter().any(|d| d.step == self.step as i32) {
            return Err(STEP_DONE.because(format!("step {} of this run is done already", self.step)).into());
        }
        match (&step, self.execution_id) {
            (RunbookStep::Command { command, .. }, Some(ran)) => {
                let execution = tx.execution(ran).await?;
                if execution.as_ref().map(|e| e.command.as_str()) != Some(command.as_str()) {
                    return Err(STEP_EXECUTION
                        .because(format!("execution {ran} did not run {command} in this workspace"))
                        .into());
                }
            }
            (RunbookStep::Command { command, .. }, None) => {
                return Err(STEP_EXECUTION
                    .because(format!("step {} runs {command}: record it with that command's execution", self.step))
                    .into());
            }
            (_, Some(_)) => {
                return Err(STEP_EXECUTION.because(format!("step {} runs no command", self.step)).into());
            }
            (_, None) => {}
        }
        Ok((run, step))
    }
}
