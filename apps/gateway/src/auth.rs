//! Authentication and authorization at the edge.
//!
//! A handler states what it needs in its signature, and nothing reaches its
//! body unless that holds:
//!
//! - [`Caller`]: a valid access token (401 otherwise);
//! - [`PlatformScope<P>`]: a caller whose platform role grants `P`;
//! - [`WorkspaceScope<P>`]: a caller who is a member of the workspace named by
//!   the `{ws}` path segment, in a role that grants `P`. A non-member cannot
//!   tell an unknown workspace from one it does not belong to: both are 403
//!   `workspace_forbidden`. There is no default workspace.
//! - [`Public`]: deliberately open.
//!
//! Every one of these records that an authorization decision was made. The
//! [`require_decision`] middleware refuses to send a successful `/api/v1`
//! response for which none was, so a route added without one fails closed
//! (500 `authorization_missing`) instead of opening a door.
//!
//! Memberships and roles are read from the platform store on each request: a
//! removed member is refused on the very next request.

use std::{
    collections::HashMap,
    marker::PhantomData,
    sync::{Arc, OnceLock},
};

use anchor_auth::{DevIssuer, Identity, Permission, Scope, TokenVerifier, grants};
use anchor_commands::authorize::{Asking, Grant, authorize, record_denial};
use anchor_domain::Role;
use anchor_store::{
    Workspace,
    access::{AuditContext, Outcome, Refusal, SubjectRef},
};
use axum::{
    extract::{FromRequestParts, MatchedPath, Path, Request},
    http::{header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{AppState, commands::denied, middleware::RequestId, problem::Problem};

/// What the gateway knows about identity.
#[derive(Debug)]
pub struct AuthState {
    pub verifier: TokenVerifier,
    pub dev_issuer: Option<DevIssuer>,
    /// The issuer assumed for a subject named without one (`?issuer=`).
    pub default_issuer: Option<String>,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    pub platform_roles: Vec<Role>,
    pub audit: AuditContext,
}

impl Caller {
    pub fn subject(&self) -> SubjectRef<'_> {
        SubjectRef { issuer: &self.identity.issuer, subject: &self.identity.subject }
    }

    pub fn has_platform_permission(&self, permission: Permission) -> bool {
        self.platform_roles.iter().any(|r| grants(*r, permission))
    }
}

/// A permission named at the type level, so handlers can demand it in their
/// signature.
pub trait RequiredPermission: Send + Sync + 'static {
    const PERMISSION: Permission;
}

/// One marker type per permission.
pub mod perm {
    use super::{Permission, RequiredPermission};

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {$(
            #[derive(Debug)]
            pub struct $name;
            impl RequiredPermission for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    markers!(
        WorkspacesCreate,
        WorkspacesListAll,
        AuditRead,
        TeamsManage,
        WorkspaceRead,
        MembersRead,
        MembersManage,
        SettingsManage,
        ClientsRead,
        TicketsRead,
        TicketsWrite,
        ExecutionsRead,
        EvidenceRead,
        WebhooksManage,
        EnrollmentManage,
        AssetsRead,
        AlertsRead,
        AlertsManage,
        BillingRead,
        BillingWrite,
        KnowledgeRead,
    );
}

/// Access to one workspace, granted for permission `P`.
#[derive(Debug)]
pub struct WorkspaceScope<P> {
    pub caller: Caller,
    pub workspace: Workspace,
    /// The role that grants `P` (the most powerful that does).
    pub role: Role,
    /// Every role the caller holds there (membership and teams), most powerful first.
    pub roles: Vec<Role>,
    _permission: PhantomData<P>,
}

impl<P> WorkspaceScope<P> {
    /// Whether any of the caller's roles there grants `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        anchor_auth::permissions::granting(&self.roles, permission).is_some()
    }
}

/// A platform-level permission `P`.
#[derive(Debug)]
pub struct PlatformScope<P> {
    pub caller: Caller,
    _permission: PhantomData<P>,
}

/// A route that is deliberately open to anyone.
#[derive(Debug)]
pub struct Public;

/// A route authenticated by a signature over the request itself (inbound
/// callbacks), which its handler verifies before it reads anything else.
#[derive(Debug)]
pub struct SignedRequest;

/// Set by the extractors above (and by command routes, which decide for
/// their command's permission); read by [`require_decision`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Decision(Arc<OnceLock<&'static str>>);

impl Decision {
    /// Records that an authorization decision allowed the request.
    pub(crate) fn made(&self, how: &'static str) {
        let _ = self.0.set(how);
    }

    /// The decision made, if any: a permission name, or "authenticated",
    /// "public", "request_signature".
    pub(crate) fn how(&self) -> Option<&'static str> {
        self.0.get().copied()
    }
}

fn decide(parts: &Parts, how: &'static str) {
    if let Some(decision) = parts.extensions.get::<Decision>() {
        decision.made(how);
    }
}

fn audit_context(parts: &Parts, identity: Option<&Identity>) -> AuditContext {
    AuditContext {
        issuer: identity.map(|i| i.issuer.clone()),
        subject: identity.map(|i| i.subject.clone()),
        request_id: parts.extensions.get::<RequestId>().and_then(|r| r.0.to_str().ok()).map(str::to_owned),
    }
}

fn route_of(parts: &Parts) -> String {
    let path = parts.extensions.get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
    format!("{} {path}", parts.method)
}

/// Authenticates the request once (the result is kept in its extensions).
/// This is not an authorization decision; the extractors below make those.
pub(crate) async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Caller, Problem> {
    if let Some(caller) = parts.extensions.get::<Caller>() {
        return Ok(caller.clone());
    }
    let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = match header.map(|h| h.split_once(' ')) {
        Some(Some((scheme, token))) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            token.trim()
        }
        Some(_) => {
            return Err(Problem::unauthorized(
                "invalid_token",
                "the Authorization header must be `Bearer <access token>`",
                Some("invalid_request"),
            ));
        }
        None => {
            return Err(Problem::unauthorized(
                "unauthenticated",
                "this endpoint needs an access token: Authorization: Bearer <token>",
                None,
            ));
        }
    };
    let identity = match state.auth.verifier.verify(token).await {
        Ok(identity) => identity,
        Err(reason) => {
            // Counted in memory and written in aggregate: a flood of bad
            // tokens costs neither a row nor a connection each.
            let context = audit_context(parts, None);
            let source = anchor_web::client_source(parts, &state.proxies);
            state.refusals.record(Refusal {
                action: "authenticate",
                outcome: Outcome::Failure,
                reason: &reason.to_string(),
                source: &source.bucket(),
                issuer: None,
                subject: None,
                detail: &[("route", &route_of(parts))],
                request_id: context.request_id.as_deref(),
            });
            return Err(Problem::unauthorized("invalid_token", reason.to_string(), Some("invalid_token")));
        }
    };
    let who = SubjectRef { issuer: &identity.issuer, subject: &identity.subject };
    let platform_roles = state.db.touch_subject_roles(who).await?;
    let audit = audit_context(parts, Some(&identity));
    let caller = Caller { identity, platform_roles, audit };
    parts.extensions.insert(caller.clone());
    Ok(caller)
}

/// Records an authorization decision made outside the extractors.
pub(crate) fn record_decision(parts: &Parts, how: &'static str) {
    decide(parts, how);
}

/// Makes again, for the replay of a kept answer, the decision the answer was
/// first given under (`decided_by`, see [`Decision::how`]), so a caller who
/// lost the permission or the membership since gets a refusal instead.
/// Answers kept before decisions were recorded need the caller to be still
/// a member of the workspace of the path (if any).
pub(crate) async fn decide_again(
    parts: &Parts,
    state: &AppState,
    caller: &Caller,
    decided_by: Option<&str>,
) -> Result<(), Problem> {
    let route = route_of(parts);
    let workspace = crate::idempotency::workspace_of(parts.uri.path());
    let permission = match decided_by {
        Some(name) => Permission::from_name(name),
        None if !workspace.is_empty() => Some(Permission::WorkspaceRead),
        None => None,
    };
    match permission {
        Some(permission) if permission.scope() == Scope::Platform && !caller.has_platform_permission(permission) => {
            record_denial(&state.db, asking(caller, &route), None, permission, "role").await;
            return Err(Problem::permission_denied(permission.name()));
        }
        Some(permission) if permission.scope() == Scope::Platform => {}
        Some(permission) => {
            authorize(&state.db, asking(caller, &route), workspace, permission).await?.map_err(denied)?;
        }
        // Authenticated (or open) routes: the caller is authenticated.
        None => {}
    }
    decide(parts, "idempotent_replay");
    Ok(())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = authenticate(parts, state).await?;
        decide(parts, "authenticated");
        Ok(caller)
    }
}

/// The audit view of who asks, through which route.
fn asking<'a>(caller: &'a Caller, route: &'a str) -> Asking<'a> {
    Asking { who: caller.subject(), audit: &caller.audit, route }
}

impl<P: RequiredPermission> FromRequestParts<AppState> for PlatformScope<P> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = authenticate(parts, state).await?;
        if !caller.has_platform_permission(P::PERMISSION) {
            let route = route_of(parts);
            record_denial(&state.db, asking(&caller, &route), None, P::PERMISSION, "role").await;
            return Err(Problem::permission_denied(P::PERMISSION.name()));
        }
        decide(parts, P::PERMISSION.name());
        Ok(Self { caller, _permission: PhantomData })
    }
}

impl<P: RequiredPermission> FromRequestParts<AppState> for WorkspaceScope<P> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Authenticate first: an anonymous caller learns nothing about workspaces.
        let caller = authenticate(parts, state).await?;
        let params = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::workspace_forbidden())?;
        let raw = params.get("ws").map(String::as_str).unwrap_or_default();
        let route = route_of(parts);
        let grant = authorize(&state.db, asking(&caller, &route), raw, P::PERMISSION).await?.map_err(denied)?;
        decide(parts, P::PERMISSION.name());
        let Grant { workspace, role, roles, .. } = grant;
        Ok(Self { caller, workspace, role, roles, _permission: PhantomData })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Public {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        decide(parts, "public");
        Ok(Public)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedRequest {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        decide(parts, "request_signature");
        Ok(SignedRequest)
    }
}

/// Fails closed: a successful `/api/v1` response whose handler made no
/// authorization decision is replaced by a 500 and logged loudly.
pub(crate) async fn require_decision(mut req: Request, next: Next) -> Response {
    let decision = Decision::default();
    req.extensions_mut().insert(decision.clone());
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let guarded = req.uri().path().starts_with("/api/");
    let response = next.run(req).await;
    if guarded && decision.0.get().is_none() && response.status().as_u16() < 400 {
        tracing::error!(route = ?route, "route answered without an authorization decision; refusing");
        return Problem::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "authorization_missing",
            "this route has no authorization decision and is refused",
        )
        .into_response();
    }
    response
}
