//! RFC 9457 problem details: the one error shape of the HTTP API.
//!
//! Handlers return [`Problem`]; everything else that can go wrong before a
//! handler runs (unknown route, wrong method, oversized body, timeout, panic)
//! is turned into a `Problem` by the middleware in [`crate::middleware`], so
//! that every 4xx and 5xx a client sees is `application/problem+json`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer. Boxed, so that `Result<T, Problem>` stays small on the
/// happy path; the document itself is [`ProblemDocument`].
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemDocument>);

/// An RFC 9457 problem document, with Anchor's machine-readable `code`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDocument {
    /// A URI naming the problem type: `urn:anchor:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:anchor:problem:not_found")]
    pub type_uri: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 404)]
    pub status: u16,
    /// What went wrong with this request, for a person to read.
    pub detail: String,
    /// Stable, machine-readable code; clients branch on this.
    #[schema(example = "not_found")]
    pub code: String,
    /// Per-field problems, each with a JSON Pointer to the field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension member: the dependency checks of `/readyz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub checks: Option<serde_json::Value>,
    /// Sent as the `WWW-Authenticate` header of a 401, not in the body.
    #[serde(skip)]
    #[schema(ignore)]
    pub www_authenticate: Option<String>,
    /// Sent as the `Retry-After` header (seconds), not in the body.
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) to the offending field, e.g. `/name`.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemDocument {
            type_uri: format!("urn:anchor:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            errors: Vec::new(),
            checks: None,
            www_authenticate: None,
            retry_after: None,
        }))
    }

    /// The document, for reading.
    pub fn document(&self) -> &ProblemDocument {
        &self.0
    }

    /// 401 with an RFC 6750 challenge. `error` is `None` when no token was sent.
    pub fn unauthorized(code: &str, detail: impl Into<String>, error: Option<&str>) -> Self {
        let detail = detail.into();
        let mut problem = Self::new(StatusCode::UNAUTHORIZED, code, detail.clone());
        problem.0.www_authenticate = Some(match error {
            None => "Bearer realm=\"anchor\"".to_owned(),
            Some(error) => format!(
                "Bearer realm=\"anchor\", error=\"{error}\", error_description=\"{}\"",
                detail.replace(['"', '\\'], "")
            ),
        });
        problem
    }

    pub fn workspace_forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "workspace_forbidden",
            "you are not a member of this workspace, or it does not exist",
        )
    }

    pub fn permission_denied(permission: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_denied", format!("your role does not grant {permission}"))
    }

    pub fn unprocessable(code: &str, path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.clone())
            .with_errors(vec![FieldError { path: path.to_owned(), message }])
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors = errors;
        self
    }

    /// Tells the client when to ask again (`Retry-After`, in seconds).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds);
        self
    }

    pub fn with_checks(mut self, checks: serde_json::Value) -> Self {
        self.0.checks = Some(checks);
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// A 500 that says nothing about internals; the cause goes to the log,
    /// correlated by the request id.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to handle this request; quote the X-Request-Id header when reporting it",
        )
    }

    /// The problem for a bare status produced by a layer below the handlers.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
            StatusCode::NOT_FOUND => ("not_found", "no resource at this path"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this path does not support this method"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body exceeds the size limit"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "the request body must be JSON (Content-Type: application/json)")
            }
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
                ("request_timeout", "the request did not complete in time")
            }
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests; retry later"),
            StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "the service is temporarily unavailable"),
            s if s.is_server_error() => return Self::internal(),
            _ => ("http_error", "the request could not be handled"),
        };
        Self::new(status, code, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let challenge = self.0.www_authenticate.clone();
        let retry_after = self.0.retry_after;
        let mut response = (status, Json(self.0)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Errors of lower layers meet the API here, and only here.
impl From<anchor_store::StoreError> for Problem {
    fn from(error: anchor_store::StoreError) -> Self {
        use anchor_store::StoreError as E;
        match error {
            E::WorkspaceExists(slug) => {
                Problem::new(StatusCode::CONFLICT, "workspace_exists", format!("workspace \"{slug}\" already exists"))
            }
            E::WorkspaceNotFound(slug) => Problem::not_found(format!("workspace \"{slug}\" does not exist")),
            e @ E::LastAdmin(_) => {
                Problem::new(StatusCode::CONFLICT, "last_admin", format!("{e}; make someone else an MSP admin first"))
            }
            e @ E::WrongKindOfRole(_) => Problem::unprocessable("invalid_role", "/role", e.to_string()),
            other => {
                tracing::error!(error = %other, "storage error");
                Problem::internal()
            }
        }
    }
}
