//! Ids from the path. `{ws}` is decided by the authorization extractors;
//! [`ObjectId`] parses the `{id}` of an object route into its prefixed id
//! type, and anything that cannot be one is simply not found, like an id of
//! another workspace.

use std::{collections::HashMap, str::FromStr};

use axum::{
    extract::{FromRequestParts, Path},
    http::request::Parts,
};

use crate::problem::Problem;

/// A kind of object a route can name.
pub(crate) trait Object: FromStr + Send {
    /// What it is called in answers: "ticket".
    const WHAT: &'static str;
}

macro_rules! objects {
    ($($id:ty => $what:literal),+ $(,)?) => {$(
        impl Object for $id {
            const WHAT: &'static str = $what;
        }
    )+};
}

objects!(
    anchor_domain::TicketId => "ticket",
    anchor_domain::ExecutionId => "execution",
    anchor_domain::SiteId => "site",
    anchor_domain::ContactId => "contact",
    anchor_domain::WebhookId => "webhook endpoint",
    anchor_domain::AgentId => "agent",
    anchor_domain::RuleId => "alert rule",
    anchor_domain::EvidenceId => "credential",
    anchor_domain::EnrollmentTokenId => "enrollment token",
    anchor_domain::CalendarId => "calendar",
    anchor_domain::QueueId => "queue",
    anchor_domain::SlaPolicyId => "SLA policy",
    anchor_domain::TimeEntryId => "time entry",
    anchor_domain::ViewId => "ticket view",
    anchor_domain::AssetId => "asset",
    anchor_domain::RelationshipId => "relationship",
    anchor_domain::SchemaKey => "asset type",
    anchor_domain::TeamId => "team",
    anchor_domain::RunbookId => "runbook",
    anchor_domain::RunbookRunId => "runbook run",
    anchor_domain::MaintenanceWindowId => "maintenance window",
    anchor_domain::InvoiceId => "invoice",
    anchor_domain::PaymentId => "payment",
    anchor_domain::ContractId => "contract",
    anchor_domain::QuoteId => "quote",
    anchor_domain::ArticleId => "article",
    anchor_domain::PortalInviteId => "portal invitation",
);

/// The `{id}` of the path, as a `T`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObjectId<T>(pub(crate) T);

impl<S: Send + Sync, T: Object> FromRequestParts<S> for ObjectId<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params =
            Path::<HashMap<String, String>>::from_request_parts(parts, state).await.map(|p| p.0).unwrap_or_default();
        let raw = params.get("id").map(String::as_str).unwrap_or_default();
        raw.parse().map(Self).map_err(|_| {
            Problem::not_found(format!(
                "no {} {:?} in this workspace",
                T::WHAT,
                raw.chars().take(64).collect::<String>()
            ))
        })
    }
}

/// "no ticket tkt_... in this workspace".
pub(crate) fn not_found<T: Object + std::fmt::Display>(id: &T) -> Problem {
    Problem::not_found(format!("no {} {id} in this workspace", T::WHAT))
}
