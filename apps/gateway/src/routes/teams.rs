//! Teams: the MSP's staff in groups, each team granted a staff role in a set
//! of workspaces or in all of them, present and future (platform
//! administration, `teams.manage`). A person's roles in a workspace are
//! their membership's and their teams'; authorization reads both on every
//! request, so adding, removing or regranting takes effect on the next one.

use anchor_domain::{Role, TeamId, WorkspaceSlug};
use anchor_store::{
    access::SubjectRef,
    teams::{Team, TeamError},
};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::{
    AppState,
    auth::{PlatformScope, perm},
    json::ApiJson,
    pagination::{ApiQuery, Page},
    path::ObjectId,
    problem::{FieldError, Problem, ProblemDocument},
    routes::{
        ApiRoutes,
        workspaces::{IssuerParam, check_subject, issuer_for},
    },
};

pub(crate) fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, update_team, delete_team))
        .routes(routes!(put_team_grants))
        .routes(routes!(put_team_member, delete_team_member))
}

/// A team's name and what it does.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Service desk", "description": "First line, every client"}))]
pub(crate) struct TeamBody {
    #[schema(min_length = 1, max_length = 120, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*\\S[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    name: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    description: String,
}

impl TeamBody {
    fn checked(&self) -> Result<(&str, &str), Problem> {
        let name = self.name.trim();
        if name.is_empty() || self.name.chars().count() > 120 || self.name.chars().any(char::is_control) {
            return Err(Problem::unprocessable("invalid_team", "/name", "1-120 characters on one line"));
        }
        if self.description.chars().count() > 2000 || self.description.contains('\0') {
            return Err(Problem::unprocessable("invalid_team", "/description", "at most 2,000 characters"));
        }
        Ok((name, &self.description))
    }
}

fn problem(e: TeamError) -> Problem {
    match e {
        TeamError::NotFound => Problem::not_found("no such team"),
        TeamError::NameTaken => Problem::new(StatusCode::CONFLICT, "name_taken", "another team has this name"),
        TeamError::NotAStaffRole(role) => Problem::unprocessable(
            "invalid_grant",
            "/grants",
            format!("teams grant staff roles only (msp_admin, technician, finance, auditor), not {role}"),
        ),
        TeamError::Store(e) => e.into(),
    }
}

/// Every team, by name, with its members and grants.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", security(("bearer" = [])),
    responses((status = 200, body = Page<Team>)))]
pub(crate) async fn list_teams(
    _scope: PlatformScope<perm::TeamsManage>,
    State(state): State<AppState>,
) -> Result<Json<Page<Team>>, Problem> {
    Ok(Json(Page { items: state.db.teams().await?, next_cursor: None }))
}

/// Add a team (no members and no grants yet).
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", security(("bearer" = [])),
    request_body = TeamBody,
    responses((status = 201, body = Team),
              (status = 409, description = "Another team has this name", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn create_team(
    scope: PlatformScope<perm::TeamsManage>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TeamBody>,
) -> Result<Response, Problem> {
    let (name, description) = body.checked()?;
    let team = state.db.create_team(name, description, &scope.caller.audit).await.map_err(problem)?;
    Ok((StatusCode::CREATED, Json(team)).into_response())
}

/// A team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id")),
    responses((status = 200, body = Team),
              (status = 404, description = "No such team", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn get_team(
    _scope: PlatformScope<perm::TeamsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<TeamId>,
) -> Result<Json<Team>, Problem> {
    state.db.team(id).await?.map(Json).ok_or_else(|| problem(TeamError::NotFound))
}

/// Rename a team or change what it does.
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id")),
    request_body = TeamBody,
    responses((status = 200, body = Team),
              (status = 404, description = "No such team", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 409, description = "Another team has this name", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn update_team(
    scope: PlatformScope<perm::TeamsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<TeamId>,
    ApiJson(body): ApiJson<TeamBody>,
) -> Result<Json<Team>, Problem> {
    let (name, description) = body.checked()?;
    state.db.update_team(id, name, description, &scope.caller.audit).await.map(Json).map_err(problem)
}

/// Delete a team: its members lose its grants on their next request.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such team", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_team(
    scope: PlatformScope<perm::TeamsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<TeamId>,
) -> Result<StatusCode, Problem> {
    state.db.delete_team(id, &scope.caller.audit).await.map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}

/// One grant as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantBody {
    /// A workspace's slug; `null`: every workspace, present and future.
    #[schema(value_type = Option<String>, pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$", example = "acme")]
    workspace: Option<String>,
    /// `msp_admin`, `technician`, `finance` or `auditor`.
    #[schema(value_type = String, example = "technician")]
    role: String,
}

/// The team's grants, whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grants": [{"workspace": null, "role": "auditor"}, {"workspace": "acme", "role": "technician"}]}))]
pub(crate) struct GrantsBody {
    /// At most one per workspace, and at most one for every workspace; at most 1,000.
    #[schema(max_items = 1000)]
    grants: Vec<GrantBody>,
}

/// Set a team's grants: exactly these, replacing what it had. A workspace
/// where it is given no role any more is closed to its members (who are not
/// members there themselves) on their next request.
#[utoipa::path(put, path = "/api/v1/teams/{id}/grants", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id")),
    request_body = GrantsBody,
    responses((status = 200, body = Team),
              (status = 404, description = "No such team", body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, description = "An unknown workspace, a role a team cannot hold, or a workspace twice; `errors` names each", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_team_grants(
    scope: PlatformScope<perm::TeamsManage>,
    State(state): State<AppState>,
    ObjectId(id): ObjectId<TeamId>,
    ApiJson(body): ApiJson<GrantsBody>,
) -> Result<Json<Team>, Problem> {
    let mut errors = Vec::new();
    let mut grants = Vec::new();
    if body.grants.len() > 1000 {
        errors.push(FieldError { path: "/grants".into(), message: "at most 1,000 grants".into() });
    }
    for (i, grant) in body.grants.iter().enumerate().take(1000) {
        let role = match Role::parse(&grant.role) {
            Ok(role) if [Role::MspAdmin, Role::Technician, Role::Finance, Role::Auditor].contains(&role) => Some(role),
            _ => {
                errors.push(FieldError {
                    path: format!("/grants/{i}/role"),
                    message: "msp_admin, technician, finance or auditor".into(),
                });
                None
            }
        };
        let workspace = match grant.workspace.as_deref() {
            None => Some(None),
            Some(slug) => match WorkspaceSlug::parse(slug) {
                Ok(slug) => match state.db.workspace(&slug).await? {
                    Some(workspace) => Some(Some(workspace)),
                    None => {
                        errors.push(FieldError {
                            path: format!("/grants/{i}/workspace"),
                            message: "no such workspace".into(),
                        });
                        None
                    }
                },
                Err(_) => {
                    errors.push(FieldError {
                        path: format!("/grants/{i}/workspace"),
                        message: "no such workspace".into(),
                    });
                    None
                }
            },
        };
        if let (Some(role), Some(workspace)) = (role, workspace) {
            let slug = workspace.as_ref().map(|w| w.slug().as_str().to_owned());
            if grants.iter().any(|(w, _): &(Option<anchor_store::Workspace>, Role)| {
                w.as_ref().map(|w| w.slug().as_str().to_owned()) == slug
            }) {
                errors.push(FieldError { path: format!("/grants/{i}/workspace"), message: "given twice".into() });
            } else {
                grants.push((workspace, role));
            }
        }
    }
    if let Some(first) = errors.first().cloned() {
        return Err(Problem::unprocessable("invalid_grant", &first.path, first.message).with_errors(errors));
    }
    state.db.set_team_grants(id, &grants, &scope.caller.audit).await.map_err(problem)?;
    state.db.team(id).await?.map(Json).ok_or_else(|| problem(TeamError::NotFound))
}

const SUBJECT: &str = "The member's `sub`";

/// Put someone in a team.
#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{subject}", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id"),
           ("subject" = String, Path, description = SUBJECT, min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"),
           IssuerParam),
    responses((status = 200, body = Team),
              (status = 404, description = "No such team", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn put_team_member(
    scope: PlatformScope<perm::TeamsManage>,
    State(state): State<AppState>,
    Path((id, subject)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<IssuerParam>,
) -> Result<Json<Team>, Problem> {
    let id: TeamId = id.parse().map_err(|_| problem(TeamError::NotFound))?;
    check_subject(&subject, "/subject")?;
    let issuer = issuer_for(&state, params.issuer(), "/issuer")?;
    let who = SubjectRef { issuer: &issuer, subject: &subject };
    state.db.add_team_member(id, who, &scope.caller.audit).await.map_err(problem)?;
    state.db.team(id).await?.map(Json).ok_or_else(|| problem(TeamError::NotFound))
}

/// Take someone out of a team: decided without its grants from their next request on.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{subject}", tag = "teams", security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id"),
           ("subject" = String, Path, description = SUBJECT, min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"),
           IssuerParam),
    responses((status = 204, description = "Removed (or was not in it)"),
              (status = 404, description = "No such team", body = ProblemDocument, content_type = "application/problem+json")))]
pub(crate) async fn delete_team_member(
    scope: PlatformScope<perm::TeamsManage>,
    State(state): State<AppState>,
    Path((id, subject)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<IssuerParam>,
) -> Result<StatusCode, Problem> {
    let id: TeamId = id.parse().map_err(|_| problem(TeamError::NotFound))?;
    let issuer = issuer_for(&state, params.issuer(), "/issuer")?;
    let who = SubjectRef { issuer: &issuer, subject: &subject };
    state.db.remove_team_member(id, who, &scope.caller.audit).await.map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}
