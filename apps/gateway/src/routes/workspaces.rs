//! Workspaces and their members.

use std::{convert::Infallible, fmt, str::FromStr};

use anchor_domain::{Role, WorkspaceName, WorkspaceSlug};
use anchor_store::{
    Workspace,
    access::{AccessEvent, Member, Outcome, SubjectRef},
};
use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{Caller, PlatformScope, WorkspaceScope, perm},
    changes,
    commands::rfc3339,
    json::ApiJson,
    pagination::{ApiQuery, Page, PageParams, Paging},
    problem::{Problem, ProblemDocument},
    routes::ApiRoutes,
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(create_workspace, list_workspaces))
        .routes(routes!(get_workspace))
        .routes(routes!(list_members))
        .routes(routes!(get_member, put_member, delete_member))
}

/// A workspace as its members see it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkspaceView {
    #[schema(example = "acme")]
    slug: String,
    #[schema(example = "Acme Corp")]
    name: String,
    /// The caller's role here; `null` for a platform admin who is not a member.
    #[schema(example = "technician")]
    role: Option<String>,
    #[schema(example = "2026-11-24T06:00:00Z")]
    created_at: String,
}

fn workspace_view(workspace: &Workspace, role: Option<Role>) -> WorkspaceView {
    WorkspaceView {
        slug: workspace.slug().to_string(),
        name: workspace.name().to_owned(),
        role: role.map(|r| r.as_str().to_owned()),
        created_at: rfc3339(workspace.created_at()),
    }
}

/// A new workspace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slug": "acme", "name": "Acme Corp", "admin": {"subject": "alice"}}))]
pub(crate) struct NewWorkspace {
    /// 3-40 of a-z, 0-9 and `-`, starting with a letter.
    #[schema(value_type = String, example = "acme")]
    slug: WorkspaceSlug,
    #[schema(value_type = String, example = "Acme Corp")]
    name: WorkspaceName,
    /// Made `msp_admin` of the new workspace.
    admin: Option<SubjectInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectInput {
    /// The `sub` of the subject's access tokens.
    #[schema(example = "alice")]
    subject: String,
    /// Its issuer; defaults to the installation's default issuer.
    issuer: Option<String>,
}

/// The issuer a subject belongs to: the one named, which must be trusted, or
/// the installation's default.
pub(crate) fn issuer_for(state: &AppState, given: Option<&str>, path: &str) -> Result<String, Problem> {
    match given {
        Some(issuer) if state.auth.verifier.issuers().any(|i| i == issuer) => Ok(issuer.to_owned()),
        // Named in a member's address (`?issuer=`): nobody of an issuer the
        // installation does not trust can be a member, so there is no such
        // member to read, change or remove.
        Some(_) if path == "/issuer" => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_issuer",
            "this issuer is not trusted by the installation, so it has no members",
        )),
        Some(_) => {
            Err(Problem::unprocessable("unknown_issuer", path, "this issuer is not trusted by the installation"))
        }
        None => state.auth.default_issuer.clone().ok_or_else(|| {
            Problem::unprocessable("issuer_required", path, "name the subject's issuer; there is no default issuer")
        }),
    }
}

pub(crate) fn check_subject(subject: &str, path: &str) -> Result<(), Problem> {
    if subject.is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
        return Err(Problem::unprocessable(
            "invalid_subject",
            path,
            "a subject is 1 to 255 characters, no control characters",
        ));
    }
    Ok(())
}

/// Create a workspace (platform admins).
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", security(("bearer" = [])),
    request_body = NewWorkspace,
    responses(
        (status = 201, body = WorkspaceView, headers(("Location" = String, description = "The new workspace"))),
        (status = 409, description = "A workspace with this slug exists", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid slug, name or admin", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_workspace(
    scope: PlatformScope<perm::WorkspacesCreate>,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewWorkspace>,
) -> Result<Response, Problem> {
    let admin = match &new.admin {
        Some(admin) => {
            check_subject(&admin.subject, "/admin/subject")?;
            Some((issuer_for(&state, admin.issuer.as_deref(), "/admin/issuer")?, admin.subject.clone()))
        }
        None => None,
    };
    let workspace = state.db.create_workspace(&new.slug, &new.name).await?;
    let audit = &scope.caller.audit;
    let detail = serde_json::json!({"name": new.name.as_str()});
    state
        .db
        .record_access(&AccessEvent {
            context: audit,
            workspace: Some(new.slug.as_str()),
            action: "workspace.create",
            outcome: Outcome::Success,
            detail,
        })
        .await?;
    if let Some((issuer, subject)) = &admin {
        state.db.set_member(&workspace, SubjectRef { issuer, subject }, Role::MspAdmin, audit).await?;
    }
    let location = format!("/api/v1/workspaces/{}", workspace.slug());
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(workspace_view(&workspace, None))).into_response())
}

/// The workspaces the caller belongs to (all of them for platform admins).
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = inline(Page<WorkspaceView>))))]
pub(crate) async fn list_workspaces(
    caller: Caller,
    State(state): State<AppState>,
    paging: Paging,
) -> Result<Json<Page<WorkspaceView>>, Problem> {
    // The last slug of the previous page.
    let after = paging.after::<String>()?;
    let rows = if caller.has_platform_permission(anchor_auth::Permission::WorkspacesListAll) {
        state.db.all_workspaces_for(caller.subject(), after.as_deref(), paging.fetch()).await?
    } else {
        state.db.workspaces_of(caller.subject(), after.as_deref(), paging.fetch()).await?
    };
    Ok(Json(paging.page(rows, |(w, _)| w.slug().to_string(), |(w, r)| workspace_view(&w, r))))
}

/// One workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug")),
    responses(
        (status = 200, body = WorkspaceView),
        (status = 403, description = "Not a member, or no such workspace", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_workspace(scope: WorkspaceScope<perm::WorkspaceRead>) -> Json<WorkspaceView> {
    Json(workspace_view(&scope.workspace, Some(scope.role)))
}

/// A member of a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberView {
    #[schema(example = "alice")]
    subject: String,
    #[schema(example = "urn:anchor:dev-issuer")]
    issuer: String,
    #[schema(example = "technician")]
    role: String,
    created_at: String,
    updated_at: String,
}

/// Where a page of members starts: the last member of the previous page.
struct MemberKey {
    issuer: String,
    subject: String,
}

impl MemberKey {
    fn of(m: &Member) -> Self {
        Self { issuer: m.issuer.clone(), subject: m.subject.clone() }
    }
}

impl fmt::Display for MemberKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}", self.issuer, self.subject)
    }
}

impl FromStr for MemberKey {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (issuer, subject) = s.split_once('\n').unwrap_or((s, ""));
        Ok(Self { issuer: issuer.to_owned(), subject: subject.to_owned() })
    }
}

fn member_view(m: Member) -> MemberView {
    MemberView {
        subject: m.subject,
        issuer: m.issuer,
        role: m.role.as_str().to_owned(),
        created_at: rfc3339(m.created_at),
        updated_at: rfc3339(m.updated_at),
    }
}

/// The workspace's members.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/members", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), PageParams),
    responses((status = 200, body = inline(Page<MemberView>))))]
pub(crate) async fn list_members(
    scope: WorkspaceScope<perm::MembersRead>,
    State(state): State<AppState>,
    paging: Paging,
) -> Result<Json<Page<MemberView>>, Problem> {
    let after = paging.after::<MemberKey>()?;
    let after = after.as_ref().map(|k| (k.issuer.as_str(), k.subject.as_str()));
    let rows = state.db.members(&scope.workspace, after, paging.fetch()).await?;
    Ok(Json(paging.page(rows, MemberKey::of, member_view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IssuerParam {
    /// The subject's issuer; defaults to the installation's default issuer.
    issuer: Option<String>,
}

impl IssuerParam {
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

/// One member.
#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/members/{subject}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("subject" = String, Path, description = "The member's `sub`", min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"), IssuerParam),
    responses(
        (status = 200, body = MemberView),
        (status = 404, description = "Not a member of this workspace", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_member(
    scope: WorkspaceScope<perm::MembersRead>,
    State(state): State<AppState>,
    Path((_, subject)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<IssuerParam>,
) -> Result<Json<MemberView>, Problem> {
    let issuer = issuer_for(&state, params.issuer.as_deref(), "/issuer")?;
    let member = state.db.member(&scope.workspace, SubjectRef { issuer: &issuer, subject: &subject }).await?;
    member.map(|m| Json(member_view(m))).ok_or_else(member_not_found)
}

fn member_not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "member_not_found", "no such member in this workspace")
}

/// A member's role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "technician"}))]
pub(crate) struct MemberRole {
    // msp_admin, technician, finance, auditor, client_admin or client_user.
    #[schema(value_type = crate::schemas::WorkspaceRole, inline)]
    role: String,
}

/// Add a member or change its role.
#[utoipa::path(put, path = "/api/v1/workspaces/{ws}/members/{subject}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("subject" = String, Path, description = "The member's `sub`", min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"), IssuerParam),
    request_body = MemberRole,
    responses(
        (status = 200, description = "Role changed", body = MemberView),
        (status = 201, description = "Member added", body = MemberView),
        (status = 409, description = "`last_admin`: the workspace's only MSP admin cannot be demoted", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role or issuer", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_member(
    scope: WorkspaceScope<perm::MembersManage>,
    State(state): State<AppState>,
    Path((_, subject)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<IssuerParam>,
    ApiJson(body): ApiJson<MemberRole>,
) -> Result<Response, Problem> {
    check_subject(&subject, "/subject")?;
    let role = Role::parse_workspace_role(&body.role)
        .map_err(|e| Problem::unprocessable("invalid_role", "/role", e.to_string()))?;
    let issuer = issuer_for(&state, params.issuer.as_deref(), "/issuer")?;
    let who = SubjectRef { issuer: &issuer, subject: &subject };
    let (member, created) = state.db.set_member(&scope.workspace, who, role, &scope.caller.audit).await?;
    let action = if created { "member.added" } else { "member.role_set" };
    let details = json!({"issuer": issuer, "subject": subject, "role": role.as_str()});
    changes::record_after(&state.db, &scope, action, format!("{issuer} {subject}"), details).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(member_view(member))).into_response())
}

/// Remove a member. Takes effect on the member's next request.
#[utoipa::path(delete, path = "/api/v1/workspaces/{ws}/members/{subject}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = String, Path, description = "Workspace slug"), ("subject" = String, Path, description = "The member's `sub`", min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"), IssuerParam),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not a member of this workspace", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`last_admin`: the workspace's only MSP admin cannot be removed", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_member(
    scope: WorkspaceScope<perm::MembersManage>,
    State(state): State<AppState>,
    Path((_, subject)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<IssuerParam>,
) -> Result<StatusCode, Problem> {
    let issuer = issuer_for(&state, params.issuer.as_deref(), "/issuer")?;
    let who = SubjectRef { issuer: &issuer, subject: &subject };
    let remove = state.db.remove_member(&scope.workspace, who, &scope.caller.audit);
    let details = json!({"issuer": issuer, "subject": subject});
    changes::delete_after(
        &state.db,
        &scope,
        "member.removed",
        format!("{issuer} {subject}"),
        details,
        member_not_found(),
        remove,
    )
    .await
}
