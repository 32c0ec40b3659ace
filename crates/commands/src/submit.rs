//! Submitting a command: the one way a person's command enters Anchor,
//! whether it comes from the API or from a page. [`Desk::submit`]
//!
//! 1. makes the authorization decision ([`authorize`]) for the command's
//!    permission, recording a refusal in the access audit log;
//! 2. claims the caller's idempotency key, if one was given: a retry of the
//!    same command gets the first answer again, a different command with the
//!    same key is refused, a retry while the first is still being accepted
//!    is told so;
//! 3. checks the command against the workspace as it is now, so that one
//!    that cannot succeed is refused at once with its code and status;
//! 4. accepts it: execution, signed envelope and hand-off event in one unit
//!    of work ([`crate::accept_in`]), the idempotency key recorded on the
//!    execution so that even a retry after a crash finds it;
//! 5. optionally waits for the outcome: executions notify
//!    `anchor_execution_finished` when they finish (a trigger); one listener
//!    per process fans the notifications out. A waiter subscribes before the
//!    command is accepted, so no announcement can pass unheard, and reads its
//!    execution when a notification names it (and once a second in case one
//!    was missed).
//!
//! Nothing here knows HTTP: the gateway and the web pages translate the
//! [`Receipt`] or [`SubmitError`] into their own answers.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use anchor_auth::permissions::Permission;
use anchor_domain::{ExecutionId, ExecutionStatus};
use anchor_store::{
    Database, StoreError, Workspace,
    access::AuditContext,
    executions::{Actor, Execution},
    idempotency::{Claim, KeyScope, StoredBody, StoredResponse},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgListener;
use tokio::sync::{Mutex, broadcast};

use crate::{
    AcceptError, Command, CommandSigner, EnvelopeError, accept_in,
    authorize::{Asking, Denial, Grant, authorize},
    kit::{Refusal, Rejection},
};

/// How long an idempotency key and its answer are kept.
pub const KEY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest wait for an outcome (api.md: `Prefer: wait=N`, N <= 30).
pub const MAX_WAIT: Duration = Duration::from_secs(30);
const CHANNEL: &str = "anchor_execution_finished";

/// An accepted command, as its submitter is answered.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub workspace: Workspace,
    /// The execution as last seen.
    pub execution: Execution,
    /// The status the (first) answer reported.
    pub answered: ExecutionStatus,
    /// The (first) answer was the finished execution, not its acceptance.
    pub settled: bool,
    /// The answer of an earlier submission with the same key.
    pub replayed: bool,
}

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("access denied: {}", .0.code())]
    Denied(Denial),
    #[error(transparent)]
    Refused(Refusal),
    #[error("a submission with this idempotency key is still being accepted")]
    KeyInFlight,
    #[error("this idempotency key was used for a different command")]
    KeyReused,
    #[error(transparent)]
    Unavailable(#[from] StoreError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

impl From<AcceptError> for SubmitError {
    fn from(e: AcceptError) -> Self {
        match e {
            AcceptError::Store(e) => Self::Unavailable(e),
            AcceptError::Envelope(e) => Self::Envelope(e),
        }
    }
}

/// What an idempotency key keeps: the first answer, in terms of the command.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Kept {
    Accepted { execution_id: ExecutionId, status: ExecutionStatus, settled: bool },
    Refused(Refusal),
}

/// Accepts commands and waits for their outcomes.
#[derive(Debug)]
pub struct Desk {
    db: Database,
    signer: Arc<CommandSigner>,
    max_wait: Duration,
    /// How long a claimed key stays in flight before a retry may take it
    /// over (the submitter died).
    lease: Duration,
    finished: Mutex<Option<broadcast::Sender<String>>>,
}

impl Desk {
    /// `max_wait` caps waits (below the caller's own timeout); `lease`
    /// bounds how long a submission may take before its key is free again.
    pub fn new(db: Database, signer: Arc<CommandSigner>, max_wait: Duration, lease: Duration) -> Arc<Self> {
        Arc::new(Self { db, signer, max_wait: max_wait.min(MAX_WAIT), lease, finished: Mutex::new(None) })
    }

    pub fn signer(&self) -> &CommandSigner {
        &self.signer
    }

    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Decides whether `asking` may submit commands needing `permission` in
    /// workspace `slug` (see [`authorize`]); the first step of a submission,
    /// taken by the API and the pages before they read the command itself.
    pub async fn authorize(
        &self,
        asking: Asking<'_>,
        slug: &str,
        permission: Permission,
    ) -> Result<Grant, SubmitError> {
        authorize(&self.db, asking, slug, permission).await?.map_err(SubmitError::Denied)
    }

    /// Submits `command` under `grant` (see the module documentation), with
    /// the caller's idempotency `key` and optional `wait` for the outcome.
    #[tracing::instrument(skip_all, fields(workspace = %grant.workspace.slug(), command = command.name()))]
    pub async fn submit(
        self: &Arc<Self>,
        grant: &Grant,
        command: Command,
        key: Option<&str>,
        wait: Option<Duration>,
    ) -> Result<Receipt, SubmitError> {
        if grant.permission != command.permission() {
            // Decided for another permission: decide again for this one.
            let asking = Asking { who: grant.subject(), audit: &AuditContext::default(), route: command.name() };
            let grant = self.authorize(asking, grant.workspace.slug().as_str(), command.permission()).await?;
            return Box::pin(self.submit(&grant, command, key, wait)).await;
        }
        let actor = &grant.actor;
        let Some(key) = key else { return self.accept(grant, actor, &command, None, wait).await };

        let scope = KeyScope {
            issuer: &actor.issuer,
            subject: &actor.subject,
            workspace: grant.workspace.slug().as_str(),
            key,
        };
        let fingerprint = fingerprint(&command)?;
        match self.db.claim_idempotency_key(scope, &fingerprint, self.lease, KEY_RETENTION).await? {
            Claim::Proceed => {}
            Claim::InFlight => return Err(SubmitError::KeyInFlight),
            Claim::Reused => return Err(SubmitError::KeyReused),
            Claim::Replay(stored) => return self.replay(&grant.workspace, &stored).await,
        }
        let outcome = self.accept(grant, actor, &command, Some(key), wait).await;
        let kept = match &outcome {
            Ok(receipt) => Some(Kept::Accepted {
                execution_id: receipt.execution.id,
                status: receipt.answered,
                settled: receipt.settled,
            }),
            Err(SubmitError::Refused(refusal)) => Some(Kept::Refused(refusal.clone())),
            Err(_) => None,
        };
        let kept = match kept {
            Some(kept) => {
                let status = match &kept {
                    Kept::Accepted { settled: true, .. } => 200,
                    Kept::Accepted { .. } => 202,
                    Kept::Refused(refusal) => refusal.status,
                };
                // An execution id or a refusal: nothing secret, kept plain.
                let body = StoredBody::Plain(serde_json::to_vec(&kept).expect("serialises"));
                // Authorized above, before the key was looked at; a replay
                // passes the same decision first.
                let decided_by = Some(command.permission().name().to_owned());
                self.db
                    .complete_idempotency_key(scope, &StoredResponse { status, headers: Vec::new(), body, decided_by })
                    .await
            }
            None => self.db.release_idempotency_key(scope).await,
        };
        if let Err(e) = kept {
            // The execution is recorded with its key: a retry after the lease
            // finds it there instead of accepting the command again.
            tracing::error!(error = %e, "cannot keep the answer of an idempotent submission");
        }
        outcome
    }

    /// Checks and accepts the command in one unit of work, then waits.
    async fn accept(
        self: &Arc<Self>,
        grant: &Grant,
        actor: &Actor,
        command: &Command,
        key: Option<&str>,
        wait: Option<Duration>,
    ) -> Result<Receipt, SubmitError> {
        let wait = wait.map(|w| w.min(self.max_wait)).filter(|w| !w.is_zero());
        // Listening before the command is accepted: its outcome cannot be
        // announced unheard, so the wait reads it only once it is announced.
        let listening = match wait {
            Some(_) => self
                .subscribe()
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for finished executions"))
                .ok(),
            None => None,
        };
        let mut tx = self.db.begin_workspace(&grant.workspace).await?;
        if let Some(key) = key
            && let Some(earlier) = tx.execution_for_key(actor, key).await?
        {
            // Accepted before, but its answer was never kept (the process
            // died in between): the same command gets the same execution.
            tx.rollback().await?;
            if earlier.command != command.name() || earlier.input != command.args() {
                return Err(SubmitError::KeyReused);
            }
            let answered = earlier.status;
            return Ok(Receipt {
                workspace: grant.workspace.clone(),
                execution: earlier,
                answered,
                settled: false,
                replayed: true,
            });
        }
        match command.check(&mut tx, actor).await {
            Ok(()) => {}
            Err(Rejection::Refused(refusal)) => return Err(SubmitError::Refused(refusal)),
            Err(Rejection::Store(e)) => return Err(e.into()),
        }
        let execution = accept_in(&mut tx, &self.signer, actor, Some(grant.role), command, key).await?;
        tx.commit().await?;
        tracing::info!(execution = %execution.id, "command accepted");

        let mut receipt = Receipt {
            workspace: grant.workspace.clone(),
            answered: execution.status,
            execution,
            settled: false,
            replayed: false,
        };
        if let Some(wait) = wait {
            // The command is accepted: a failed wait must not turn into an
            // error (a retry would be a second command), only into an
            // answer that it is on its way.
            let (workspace, id) = (&grant.workspace, receipt.execution.id);
            let waited = match listening {
                Some(finished) => self.wait_heard(finished, workspace, id, wait, false).await,
                None => self.wait(workspace, id, wait).await,
            };
            match waited {
                Ok(Some(latest)) => receipt.execution = latest,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "waiting for an accepted command failed"),
            }
            receipt.answered = receipt.execution.status;
            receipt.settled = receipt.execution.status.is_finished();
        }
        Ok(receipt)
    }

    /// The first answer given for a key, again.
    async fn replay(&self, workspace: &Workspace, stored: &StoredResponse) -> Result<Receipt, SubmitError> {
        let StoredBody::Plain(body) = &stored.body else {
            // Only the HTTP layer seals: the same key on a different request.
            return Err(SubmitError::KeyReused);
        };
        let kept: Kept = serde_json::from_slice(body).map_err(|e| {
            // Written by the HTTP layer for a request that was not a command:
            // the same key on a different request.
            tracing::debug!(error = %e, "an idempotency key kept another kind of answer");
            SubmitError::KeyReused
        })?;
        let (execution_id, status, settled) = match kept {
            Kept::Refused(refusal) => return Err(SubmitError::Refused(refusal)),
            Kept::Accepted { execution_id, status, settled } => (execution_id, status, settled),
        };
        let execution = read(&self.db, workspace, execution_id).await?.ok_or_else(|| {
            StoreError::Database(sqlx::Error::Protocol(format!("kept execution {execution_id} is gone")))
        })?;
        Ok(Receipt { workspace: workspace.clone(), execution, answered: status, settled, replayed: true })
    }

    /// Every finished execution of the installation, as `"<schema> <execution id>"`
    /// (pages that follow a ticket live filter these).
    pub async fn finished_executions(self: &Arc<Self>) -> Result<broadcast::Receiver<String>, StoreError> {
        self.subscribe().await
    }

    /// Subscribes to finished executions, starting the listener on first use.
    async fn subscribe(self: &Arc<Self>) -> Result<broadcast::Receiver<String>, StoreError> {
        let mut slot = self.finished.lock().await;
        if let Some(sender) = slot.as_ref() {
            return Ok(sender.subscribe());
        }
        let mut listener = PgListener::connect_with(self.db.pool()).await?;
        listener.listen(CHANNEL).await?;
        let (sender, receiver) = broadcast::channel(1024);
        tokio::spawn(fan_out(listener, self.db.clone(), Arc::downgrade(self), sender.clone()));
        *slot = Some(sender);
        Ok(receiver)
    }

    /// Waits up to `wait` for execution `id` of `workspace` to finish;
    /// returns it as last seen.
    pub async fn wait(
        self: &Arc<Self>,
        workspace: &Workspace,
        id: ExecutionId,
        wait: Duration,
    ) -> Result<Option<Execution>, StoreError> {
        let finished = self.subscribe().await?;
        self.wait_heard(finished, workspace, id, wait, true).await
    }

    /// [`Self::wait`] on notifications `finished` subscribed to already;
    /// `look_first`: read the execution before the first notification too
    /// (without it, the caller subscribed before the execution existed).
    async fn wait_heard(
        &self,
        mut finished: broadcast::Receiver<String>,
        workspace: &Workspace,
        id: ExecutionId,
        wait: Duration,
        look_first: bool,
    ) -> Result<Option<Execution>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let name = format!("{} {id}", workspace.schema_name());
        let mut look = look_first;
        loop {
            if look {
                let execution = read(&self.db, workspace, id).await?;
                let done = execution.as_ref().is_none_or(|e| e.status.is_finished());
                if done || tokio::time::Instant::now() >= deadline {
                    return Ok(execution);
                }
            }
            look = true;
            let recheck = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
            loop {
                tokio::select! {
                    message = finished.recv() => match message {
                        Ok(m) if m == name => break,
                        Ok(_) => {}
                        Err(_) => break, // lagged or closed: re-read
                    },
                    () = tokio::time::sleep_until(recheck) => break,
                }
            }
        }
    }
}

/// What an idempotency key remembers of a command: its name and arguments.
fn fingerprint(command: &Command) -> Result<Vec<u8>, EnvelopeError> {
    let digest = anchor_crypto::canonical::digest(&command.args()).map_err(|e| EnvelopeError::Sign(e.to_string()))?;
    let mut hasher = Sha256::new();
    hasher.update(b"command\n");
    hasher.update(command.name().as_bytes());
    hasher.update(b"\n");
    hasher.update(digest.as_bytes());
    Ok(hasher.finalize().to_vec())
}

/// Forwards notifications until the desk or the pool is gone; reconnects
/// on errors.
async fn fan_out(mut listener: PgListener, db: Database, desk: Weak<Desk>, sender: broadcast::Sender<String>) {
    loop {
        tokio::select! {
            message = listener.recv() => match message {
                Ok(n) => { let _ = sender.send(n.payload().to_owned()); }
                Err(_) if db.pool().is_closed() => return,
                Err(e) => {
                    tracing::warn!(error = %e, "execution notifications interrupted; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            () = tokio::time::sleep(Duration::from_secs(5)) => {
                if desk.strong_count() == 0 {
                    return;
                }
            }
        }
    }
}

async fn read(db: &Database, workspace: &Workspace, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
    let mut tx = db.begin_workspace(workspace).await?;
    let execution = tx.execution(id).await?;
    tx.discard();
    Ok(execution)
}
