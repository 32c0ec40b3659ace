//! Prefixed, opaque, time-sortable ids (`tkt_01jd...`): a ULID in lowercase
//! Crockford base32 after a prefix that names the kind of object, so an id
//! says what it is and can never be mistaken for another kind's.

use std::{fmt, str::FromStr};

/// Defines an id type with its prefix.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(ulid::Ulid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id: its time part is now, so ids sort by creation.
            pub fn new() -> Self {
                Self(new_ulid())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.to_string().to_lowercase())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let body = s
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .ok_or_else(|| IdError { expected: $prefix, given: s.chars().take(40).collect() })?;
                ulid::Ulid::from_string(&body.to_uppercase())
                    .map(Self)
                    .map_err(|_| IdError { expected: $prefix, given: s.chars().take(40).collect() })
            }
        }

        impl $crate::vocabulary::Text for $name {
            fn text(&self) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Owned(self.to_string())
            }
            fn from_text(text: &str) -> Result<Self, String> {
                text.parse().map_err(|e: IdError| e.to_string())
            }
        }

        $crate::stored_as_text!($name);

        $crate::inline_schema!($name, {"type": "string", "pattern": concat!("^", $prefix, "_[0-7][0-9a-hjkmnp-tv-z]{25}$")});

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::vocabulary::openapi_string(None, Some(concat!("^", $prefix, "_[0-7][0-9a-hjkmnp-tv-z]{25}$")))
            }
        }

        impl utoipa::ToSchema for $name {}

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// 48 bits of milliseconds since the epoch, 80 random bits (the ULID layout).
fn new_ulid() -> ulid::Ulid {
    use rand::Rng;
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let random: u128 = rand::rng().random::<u128>() & ((1 << 80) - 1);
    ulid::Ulid::from_parts(millis, random)
}

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a {expected}_ id")]
pub struct IdError {
    pub expected: &'static str,
    pub given: String,
}

prefixed_id!(
    /// A ticket.
    TicketId,
    "tkt"
);
prefixed_id!(
    /// A comment on a ticket.
    CommentId,
    "cmt"
);
prefixed_id!(
    /// A command's execution (Anchor's own id; AgentField's is recorded beside it).
    ExecutionId,
    "exe"
);
prefixed_id!(
    /// A signed audit credential.
    EvidenceId,
    "evd"
);
prefixed_id!(
    /// A webhook endpoint.
    WebhookId,
    "whk"
);
prefixed_id!(
    /// The receipt of an accepted inbound callback.
    ReceiptId,
    "rcp"
);
prefixed_id!(
    /// A webhook message (its `webhook-id`).
    MessageId,
    "msg"
);
prefixed_id!(
    /// An enrollment token.
    EnrollmentTokenId,
    "enr"
);
prefixed_id!(
    /// An asset (a configuration item: a machine, a device, a licence).
    AssetId,
    "ast"
);
prefixed_id!(
    /// A team of the MSP's staff, granted roles in workspaces.
    TeamId,
    "tea"
);
prefixed_id!(
    /// A typed relationship between two assets.
    RelationshipId,
    "rel"
);
prefixed_id!(
    /// An accepted telemetry batch.
    BatchId,
    "tb"
);
prefixed_id!(
    /// An alert rule.
    RuleId,
    "rul"
);
prefixed_id!(
    /// An alert.
    AlertId,
    "alr"
);
prefixed_id!(
    /// An enrolled edge agent.
    AgentId,
    "agt"
);
prefixed_id!(
    /// A client's site: an office, a branch, a data centre.
    SiteId,
    "sit"
);
prefixed_id!(
    /// Time someone worked on a ticket (a time entry).
    TimeEntryId,
    "tim"
);
prefixed_id!(
    /// A business calendar (working hours and holidays of a zone).
    CalendarId,
    "cal"
);
prefixed_id!(
    /// An SLA policy (targets per priority over a business calendar).
    SlaPolicyId,
    "slp"
);
prefixed_id!(
    /// A ticket queue (a team's inbox: service desk, projects, on-site).
    QueueId,
    "que"
);
prefixed_id!(
    /// A saved ticket view (a named query string of the ticket list).
    ViewId,
    "viw"
);
prefixed_id!(
    /// A person at the client (a contact).
    ContactId,
    "con"
);
prefixed_id!(
    /// An administrative change someone made to a workspace (a webhook
    /// endpoint, an alert rule, a member ...), attested like an execution.
    ChangeId,
    "chg"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Two kinds of id with one prefix would parse as each other.
    #[test]
    fn every_kind_of_id_has_its_own_prefix() {
        let source = include_str!("id.rs");
        let mut prefixes: Vec<&str> = source
            .split("prefixed_id!(")
            .skip(1)
            .filter_map(|block| block.split('"').nth(1))
            .filter(|p| p.len() == 3 && p.bytes().all(|b| b.is_ascii_lowercase()))
            .collect();
        let all = prefixes.len();
        assert!(all > 20, "the ids were read: {prefixes:?}");
        prefixes.sort_unstable();
        prefixes.dedup();
        assert_eq!(prefixes.len(), all, "a prefix is used twice: {prefixes:?}");
    }

    #[test]
    fn ids_round_trip_and_name_their_kind() {
        let id = TicketId::new();
        let text = id.to_string();
        assert!(text.starts_with("tkt_") && text.len() == 4 + 26, "{text}");
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<TicketId>(), Ok(id));
        assert_eq!(serde_json::to_value(id).expect("json"), serde_json::Value::String(text.clone()));
        assert_eq!(serde_json::from_value::<TicketId>(text.clone().into()).expect("parse"), id);
    }

    #[test]
    fn an_id_of_another_kind_or_garbage_is_refused() {
        let execution = ExecutionId::new().to_string();
        let err = execution.parse::<TicketId>().expect_err("wrong kind");
        assert_eq!(err.expected, "tkt");
        for bad in ["", "tkt_", "tkt_not-a-ulid", "tkt01hv", "TKT_01J0000000000000000000000Z"] {
            assert!(bad.parse::<TicketId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_sort_by_creation() {
        let first = TicketId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = TicketId::new();
        assert!(first < second);
        assert!(first.to_string() < second.to_string(), "the text sorts like the id");
    }
}
prefixed_id!(
    /// A runbook: the steps people follow for a kind of problem.
    RunbookId,
    "rbk"
);
prefixed_id!(
    /// One run of a runbook, about a ticket, an alert or an asset.
    RunbookRunId,
    "rbr"
);
prefixed_id!(
    /// A maintenance window over an asset or a site.
    MaintenanceWindowId,
    "mnt"
);
prefixed_id!(
    /// An invoice or a credit note.
    InvoiceId,
    "inv"
);
prefixed_id!(
    /// A contract: what a client pays for, and how.
    ContractId,
    "ctr"
);
prefixed_id!(
    /// A quote: priced work offered to a client, accepted or declined.
    QuoteId,
    "qte"
);
prefixed_id!(
    /// A payment received from a client, or a refund paid back to one.
    PaymentId,
    "pay"
);
prefixed_id!(
    /// An invitation of a client's contact to the portal.
    PortalInviteId,
    "pin"
);
prefixed_id!(
    /// A knowledge base article.
    ArticleId,
    "kba"
);
prefixed_id!(
    /// An e-mail to a contact about something in their portal.
    NotificationId,
    "ntf"
);
