//! Audit evidence: credentials (as issued, byte for byte), their index, the
//! chain check, and the issuer keys (public).

use anchor_domain::{ChangeId, EvidenceId, ExecutionId};
use anchor_evidence::{keys::PublishedKey, store::EvidenceStore, verify};
use anchor_store::evidence::EvidenceRecord;
use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{Public, WorkspaceScope, perm},
    commands::rfc3339,
    pagination::{ApiQuery, Page, PageParams, Paging},
    path::{ObjectId, not_found},
    problem::{Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(list_evidence))
        .routes(routes!(get_evidence))
        .routes(routes!(execution_evidence))
        .routes(routes!(verify_chain))
        .routes(routes!(issuer_keys))
        .routes(routes!(list_changes))
}

/// A credential in the workspace's index.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EvidenceView {
    #[schema(example = "evd_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    id: String,
    /// Its place in the workspace's hash chain, from 1.
    sequence: i64,
    /// The execution it attests, or
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_id: Option<String>,
    /// the administrative change it attests.
    #[serde(skip_serializing_if = "Option::is_none")]
    change_id: Option<String>,
    /// `sha256:<hex>` of the RFC 8785 canonical JSON of the credential.
    digest: String,
    previous_digest: Option<String>,
    /// The verification method (`did:key:...#...`) that signed it.
    key_id: String,
    issued_at: String,
}

impl From<EvidenceRecord> for EvidenceView {
    fn from(r: EvidenceRecord) -> Self {
        Self {
            id: r.id.to_string(),
            sequence: r.seq,
            execution_id: r.attests.execution().map(|e| e.to_string()),
            change_id: r.attests.change().map(|c| c.to_string()),
            digest: r.digest,
            previous_digest: r.previous_digest,
            key_id: r.key_id,
            issued_at: rfc3339(r.issued_at),
        }
    }
}

/// The document of a credential, as stored.
async fn document(store: &EvidenceStore, record: &EvidenceRecord) -> Result<Response, Problem> {
    match store.get(&record.object_key).await {
        Ok(Some(bytes)) => Ok(([(header::CONTENT_TYPE, "application/vc+json")], bytes).into_response()),
        Ok(None) => {
            tracing::error!(evidence = %record.id, key = %record.object_key, "credential missing from the evidence store");
            Err(Problem::new(
                axum::http::StatusCode::GONE,
                "evidence_missing",
                "the credential is indexed but missing from the evidence store; run the chain check",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "evidence store");
            Err(Problem::internal())
        }
    }
}

/// The workspace's credentials, in chain order.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/evidence", tag = "evidence", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), PageParams),
    responses((status = 200, body = Page<EvidenceView>)))]
pub(crate) async fn list_evidence(
    scope: WorkspaceScope<perm::EvidenceRead>,
    State(state): State<AppState>,
    paging: Paging,
) -> Result<Json<Page<EvidenceView>>, Problem> {
    let after = paging.after::<i64>()?.unwrap_or(0);
    let limit = paging.fetch();
    let rows = state.db.read(&scope.workspace, |tx| Box::pin(tx.evidence_after(after, limit))).await?;
    Ok(Json(paging.page(rows, |r| r.seq, EvidenceView::from)))
}

/// One credential: the W3C VC 2.0 document exactly as issued (verify it with
/// any `eddsa-jcs-2022` implementation).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/evidence/{id}", tag = "evidence", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Evidence id")),
    responses(
        (status = 200, description = "The credential", content_type = "application/vc+json", body = Object),
        (status = 404, description = "No such credential", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_evidence(
    scope: WorkspaceScope<perm::EvidenceRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<EvidenceId>,
) -> Result<Response, Problem> {
    let record = state.db.read(&scope.workspace, |tx| Box::pin(tx.evidence(id))).await?;
    document(&state.evidence.store, &record.ok_or_else(|| not_found(&id))?).await
}

/// The credential of an execution (issued once it finished).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/executions/{id}/evidence", tag = "evidence", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The credential", content_type = "application/vc+json", body = Object),
        (status = 404, description = "No such execution, or not finished and attested yet", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn execution_evidence(
    scope: WorkspaceScope<perm::EvidenceRead>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<ExecutionId>,
) -> Result<Response, Problem> {
    let record = state.db.read(&scope.workspace, |tx| Box::pin(tx.evidence_of(id))).await?;
    let missing = || Problem::not_found(format!("no credential for execution {id} (yet)"));
    document(&state.evidence.store, &record.ok_or_else(missing)?).await
}

/// The outcome of the chain check.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChainReportView {
    valid: bool,
    /// Credentials found good before the first problem.
    checked: i64,
    /// The chain's head, as the workspace records it.
    head: i64,
    /// The first problem: `{sequence, evidence_id, reason}`.
    #[schema(value_type = Option<Object>)]
    problem: Option<verify::ChainProblem>,
}

/// Checks the workspace's whole chain: every signature, the sequence, every
/// link, each stored document against its index entry, and that each was
/// signed by a key valid at the time. Reports the first problem. One check
/// runs per workspace at a time (another answers 429 with `Retry-After`),
/// and a few across the installation (more wait their turn).
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/evidence/chain/verify", tag = "evidence", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses((status = 200, body = ChainReportView),
              (status = 429, description = "`chain_check_running`: a check of this workspace's chain is under way",
               body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn verify_chain(
    scope: WorkspaceScope<perm::EvidenceRead>,
    State(state): State<AppState>,
) -> Result<Json<ChainReportView>, Problem> {
    let Some(_running) = state.evidence.chain_checks.start(scope.workspace.slug().as_str()) else {
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "chain_check_running",
            "a check of this workspace's chain is under way; ask again when it has finished",
        )
        .with_retry_after(5));
    };
    let _turn = state.evidence.chain_checks.turn().await;
    let keys = state.evidence.keys.published().await.map_err(|e| {
        tracing::error!(error = %e, "issuer keys");
        Problem::internal()
    })?;
    let report =
        verify::verify_chain(&state.db, &state.evidence.store, &keys, &scope.workspace).await.map_err(|e| {
            tracing::error!(error = %e, "chain check");
            Problem::internal()
        })?;
    Ok(Json(ChainReportView {
        valid: report.valid,
        checked: report.checked,
        head: report.head,
        problem: report.problem,
    }))
}

/// The issuer keys, current and retired.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssuerKeysView {
    /// Multikey verification methods with `validFrom` / `validUntil`.
    #[schema(value_type = Vec<Object>)]
    keys: Vec<PublishedKey>,
}

/// The installation's evidence issuer keys (public; every key ever used,
/// with its validity period).
#[utoipa::path(get, path = "/api/v1/evidence/keys", tag = "evidence",
    responses((status = 200, body = IssuerKeysView)))]
pub(crate) async fn issuer_keys(_: Public, State(state): State<AppState>) -> Result<Json<IssuerKeysView>, Problem> {
    let keys = state.evidence.keys.published().await.map_err(|e| {
        tracing::error!(error = %e, "issuer keys");
        Problem::internal()
    })?;
    Ok(Json(IssuerKeysView { keys }))
}

/// An administrative change, as the audit trail shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChangeView {
    #[schema(example = "chg_01jd6m2h9x8k7v5t3r1p0n9q8w")]
    id: String,
    /// `<thing>.<what happened>`, e.g. `webhook.created`, `member.removed`.
    #[schema(example = "alert_rule.updated")]
    action: String,
    /// The id or name of what changed.
    target: String,
    actor: crate::commands::ActorView,
    /// The actor's role in the workspace at that moment.
    role: Option<String>,
    /// What changed (never a secret).
    #[schema(value_type = Object)]
    details: serde_json::Value,
    created_at: String,
    /// Its signed credential, once issued (`GET .../evidence/{id}`).
    evidence_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChangeQuery {
    /// Only changes of this target (an endpoint, a rule, a member ...).
    target: Option<String>,
}

/// The administrative changes made to the workspace, newest first, each
/// with its signed credential.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/changes", tag = "evidence", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ChangeQuery, PageParams),
    responses((status = 200, body = Page<ChangeView>)))]
pub(crate) async fn list_changes(
    scope: WorkspaceScope<perm::EvidenceRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ChangeQuery>,
    paging: Paging,
) -> Result<Json<Page<ChangeView>>, Problem> {
    let (target, after, limit) = (query.target, paging.after::<ChangeId>()?, paging.fetch());
    let rows = state
        .db
        .read(&scope.workspace, |tx| Box::pin(async move { tx.changes(target.as_deref(), after, limit).await }))
        .await?;
    Ok(Json(paging.page(
        rows,
        |c| c.id,
        |c| ChangeView {
            id: c.id.to_string(),
            action: c.action,
            target: c.target,
            actor: crate::commands::ActorView::from(c.actor),
            role: c.actor_role.map(|r| r.as_str().to_owned()),
            details: c.details,
            created_at: rfc3339(c.created_at),
            evidence_id: c.evidence_id.map(|e| e.to_string()),
        },
    )))
}

/// Chain checks under way: at most one per workspace, and at most
/// [`ChainChecks::AT_ONCE`] across the installation (each reads every
/// credential of a workspace, so more at once would only share the disk,
/// the store and the cores between them).
#[derive(Debug)]
pub struct ChainChecks {
    running: std::sync::Mutex<std::collections::HashSet<String>>,
    turns: tokio::sync::Semaphore,
}

impl Default for ChainChecks {
    fn default() -> Self {
        Self { running: Default::default(), turns: tokio::sync::Semaphore::new(Self::AT_ONCE) }
    }
}

impl ChainChecks {
    pub const AT_ONCE: usize = 2;

    /// Marks a check of `workspace` as under way; `None` if one already is.
    fn start(&self, workspace: &str) -> Option<RunningCheck<'_>> {
        let mut running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        running.insert(workspace.to_owned()).then(|| RunningCheck { checks: self, workspace: workspace.to_owned() })
    }

    /// Waits for a turn among the checks across the installation.
    async fn turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.turns.acquire().await.expect("the semaphore is never closed")
    }
}

/// A check under way; over when dropped (also when the request is dropped).
struct RunningCheck<'a> {
    checks: &'a ChainChecks,
    workspace: String,
}

impl Drop for RunningCheck<'_> {
    fn drop(&mut self) {
        let mut running = self.checks.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        running.remove(&self.workspace);
    }
}
