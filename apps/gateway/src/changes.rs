//! Administrative changes (webhook endpoints, inbound sources, alert rules,
//! enrollment tokens, agents, members) are recorded with their actor and
//! role in the unit of work of the change itself, and attested by a signed
//! credential in the workspace's evidence chain, like executions: every
//! human change leaves evidence.

use anchor_store::{Database, WorkspaceTx, changes::NewChange, executions::Actor};
use serde_json::Value;

use crate::{auth::WorkspaceScope, problem::Problem};

/// Records `action` on `target` by the caller of `scope`, in `tx`.
pub(crate) async fn record<P>(
    tx: &mut WorkspaceTx,
    scope: &WorkspaceScope<P>,
    action: &str,
    target: impl std::fmt::Display,
    details: Value,
) -> Result<(), Problem> {
    let identity = &scope.caller.identity;
    let actor = Actor { issuer: identity.issuer.clone(), subject: identity.subject.clone() };
    let target = target.to_string();
    let change = NewChange { action, target: &target, actor: &actor, actor_role: Some(scope.role), details };
    anchor_evidence::issue::record_change(tx, &change).await?;
    Ok(())
}

/// [`record`] in a unit of work of its own, for a change made in the
/// platform's tables (tokens, agents, members), just after it committed.
pub(crate) async fn record_after<P>(
    db: &Database,
    scope: &WorkspaceScope<P>,
    action: &str,
    target: impl std::fmt::Display,
    details: Value,
) -> Result<(), Problem> {
    let mut tx = db.begin_workspace(&scope.workspace).await?;
    record(&mut tx, scope, action, target, details).await?;
    tx.commit().await?;
    Ok(())
}
