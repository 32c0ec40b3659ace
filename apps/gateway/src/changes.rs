//! Administrative changes (webhook endpoints, inbound sources, alert rules,
//! enrollment tokens, agents, members) are recorded with their actor and
//! role in the unit of work of the change itself, and attested by a signed
//! credential in the workspace's evidence chain, like executions: every
//! human change leaves evidence.

use std::{fmt::Display, future::Future, pin::Pin};

use anchor_store::{Database, StoreError, WorkspaceTx, changes::NewChange, executions::Actor};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{auth::WorkspaceScope, problem::Problem};

/// Records `action` on `target` by the caller of `scope`, in `tx`.
pub(crate) async fn record<P>(
    tx: &mut WorkspaceTx,
    scope: &WorkspaceScope<P>,
    action: &str,
    target: impl Display,
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
    target: impl Display,
    details: Value,
) -> Result<(), Problem> {
    let mut tx = db.begin_workspace(&scope.workspace).await?;
    record(&mut tx, scope, action, target, details).await?;
    tx.commit().await?;
    Ok(())
}

/// A delete in a workspace's unit of work: whether it deleted something.
pub(crate) type Deletion<'t> = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 't>>;

/// An administrative delete of an object in the workspace's own tables: in
/// one unit of work, `delete` runs and, if it deleted something, `action` on
/// `target` is recorded. 204, or `missing` (404) when there was nothing to
/// delete.
pub(crate) async fn delete<P>(
    db: &Database,
    scope: &WorkspaceScope<P>,
    action: &str,
    target: impl Display,
    missing: Problem,
    delete: impl for<'t> FnOnce(&'t mut WorkspaceTx) -> Deletion<'t>,
) -> Result<StatusCode, Problem> {
    let mut tx = db.begin_workspace(&scope.workspace).await?;
    let deleted = delete(&mut tx).await?;
    if deleted {
        record(&mut tx, scope, action, target, json!({})).await?;
    }
    tx.commit().await?;
    if deleted { Ok(StatusCode::NO_CONTENT) } else { Err(missing) }
}

/// [`delete`] for an object in the platform's tables: `delete` commits on its
/// own, and the change is recorded just after it ([`record_after`]).
pub(crate) async fn delete_after<P>(
    db: &Database,
    scope: &WorkspaceScope<P>,
    action: &str,
    target: impl Display,
    details: Value,
    missing: Problem,
    delete: impl Future<Output = Result<bool, StoreError>>,
) -> Result<StatusCode, Problem> {
    if !delete.await? {
        return Err(missing);
    }
    record_after(db, scope, action, target, details).await?;
    Ok(StatusCode::NO_CONTENT)
}
