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

/// An RFC 9457 problem document, with Anchor's machine-readable `code`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
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
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) to the offending field, e.g. `/name`.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:anchor:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            errors: Vec::new(),
            checks: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_checks(mut self, checks: serde_json::Value) -> Self {
        self.checks = Some(checks);
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
        let mut response = (status, Json(self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
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
            other => {
                tracing::error!(error = %other, "storage error");
                Problem::internal()
            }
        }
    }
}
