//! Tickets: the service desk's unit of work, and the rules of its lifecycle.
//!
//! ```text
//! new -> triaged -> in_progress <-> waiting_on_client
//!                        |                 |
//!                        v                 v
//!                     resolved <-----------'
//!                        |   ^
//!                        v   | reopen (to in_progress)
//!                      closed
//! ```
//! A resolved or closed ticket is reopened by moving it back to
//! `in_progress`. Closing needs a resolution first.

use crate::vocabulary::TextError;

crate::names!(
    /// Where a ticket is in its lifecycle.
    pub enum TicketStatus {
        New = "new",
        Triaged = "triaged",
        InProgress = "in_progress",
        WaitingOnClient = "waiting_on_client",
        Resolved = "resolved",
        Closed = "closed",
    }
);

/// A move the lifecycle does not allow, with the moves it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} ticket cannot become {to}; from {from} it can become: {allowed}")]
pub struct TransitionError {
    pub from: TicketStatus,
    pub to: TicketStatus,
    pub allowed: String,
}

impl TicketStatus {
    /// The statuses a ticket in this status may move to.
    pub fn next(self) -> &'static [TicketStatus] {
        use TicketStatus as S;
        match self {
            S::New => &[S::Triaged],
            S::Triaged => &[S::InProgress],
            S::InProgress => &[S::WaitingOnClient, S::Resolved],
            S::WaitingOnClient => &[S::InProgress, S::Resolved],
            S::Resolved => &[S::Closed, S::InProgress],
            S::Closed => &[S::InProgress],
        }
    }

    /// Whether the ticket still needs work (counts against SLAs, shows in queues).
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved | Self::Closed)
    }

    /// Checks a move; the error lists the moves that are allowed.
    pub fn transition(self, to: TicketStatus) -> Result<TicketStatus, TransitionError> {
        if self.next().contains(&to) {
            Ok(to)
        } else {
            let allowed = self.next().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            Err(TransitionError { from: self, to, allowed })
        }
    }
}

crate::names!(
    /// How urgent: p1 (critical, business stopped) to p4 (low).
    #[derive(PartialOrd, Ord)]
    pub enum Priority {
        P1 = "p1",
        P2 = "p2",
        P3 = "p3",
        P4 = "p4",
    }
);

crate::names!(
    /// Who may read a comment: staff only, or the client too (in the portal).
    pub enum CommentVisibility {
        Internal = "internal",
        Public = "public",
    }
);

crate::names!(
    /// Where a ticket stands against its SLA, for lists and filters: the most
    /// pressing of its clocks.
    pub enum SlaState {
        /// No clocks (opened before SLAs were planned, or no policy applies).
        None = "none",
        /// Clocks are counting, none past its warning share.
        Running = "running",
        /// A running clock passed its warning share.
        Warning = "warning",
        /// A clock of the current cycle missed its target.
        Breached = "breached",
        /// Every running clock is paused (waiting on the client).
        Paused = "paused",
        /// Every clock met its target; nothing is counting.
        Met = "met",
    }
);

crate::names!(
    /// Who owes the next answer on a ticket.
    pub enum Awaiting {
        /// The service desk: a new ticket, the client wrote, work resumed.
        Us = "us",
        /// The client: we replied to them, or we are waiting on them.
        Client = "client",
    }
);

crate::text_type!(
    /// A ticket's one-line summary.
    TicketTitle,
    "a ticket title",
    200,
    false
);
crate::text_type!(
    /// A ticket's description or a comment's body.
    TicketText,
    "the text",
    20000,
    true
);

/// A ticket tag: lower case letters, digits, `-` and `_`, 1-40 characters
/// (`VIP ` is read as `vip`), so that one tag is never spelled two ways.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let tag = raw.trim().to_lowercase();
        let well_formed = (1..=40).contains(&tag.chars().count())
            && tag.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric());
        if well_formed {
            Ok(Self(tag))
        } else {
            Err(TextError {
                what: "a tag",
                reason: format!("{raw:?} is not a tag: 1-40 letters, digits, - or _, starting with a letter or digit"),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Tag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::vocabulary::openapi_string(None, Some("^\\s*[A-Za-z0-9][A-Za-z0-9_-]{0,39}\\s*$"))
    }
}

impl utoipa::ToSchema for Tag {}

impl schemars::JsonSchema for Tag {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Tag".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "minLength": 1, "maxLength": 40,
                                "pattern": "^\\s*[A-Za-z0-9][A-Za-z0-9_-]{0,39}\\s*$", "examples": ["vip"]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketStatus as S;

    #[test]
    fn the_happy_path_and_reopening() {
        let mut status = S::New;
        for to in [S::Triaged, S::InProgress, S::WaitingOnClient, S::InProgress, S::Resolved, S::Closed, S::InProgress]
        {
            status = status.transition(to).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(status, S::InProgress, "a closed ticket reopens to in_progress");
    }

    #[test]
    fn every_other_move_is_refused_with_the_allowed_ones() {
        let mut allowed_moves = 0;
        for from in S::ALL {
            for to in S::ALL {
                match from.transition(to) {
                    Ok(_) => allowed_moves += 1,
                    Err(e) => {
                        assert!(!from.next().contains(&to));
                        assert!(e.to_string().contains(from.as_str()) && e.to_string().contains(to.as_str()), "{e}");
                    }
                }
            }
        }
        assert_eq!(allowed_moves, 9, "the lifecycle has exactly nine moves");
        assert!(S::New.transition(S::Closed).is_err(), "closing needs a resolution first");
        assert!(S::Triaged.transition(S::Triaged).is_err(), "no move to itself");
    }

    #[test]
    fn names_round_trip() {
        for status in S::ALL {
            assert_eq!(S::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).expect("json"), status.as_str());
        }
        assert_eq!(serde_json::from_str::<Priority>("\"p2\"").expect("p2"), Priority::P2);
        assert!(serde_json::from_str::<Priority>("\"p5\"").is_err());
        assert!(S::WaitingOnClient.is_open() && !S::Resolved.is_open());
        assert_eq!(Priority::parse("p1"), Some(Priority::P1));
        assert_eq!(CommentVisibility::parse("public"), Some(CommentVisibility::Public));
    }

    #[test]
    fn tags_have_one_spelling() {
        assert_eq!(Tag::parse(" VIP ").expect("vip").as_str(), "vip");
        assert_eq!(Tag::parse("on-site_2").expect("ok").as_str(), "on-site_2");
        for bad in ["", "-x", "two words", "a,b", &"x".repeat(41), "café"] {
            assert!(Tag::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_is_trimmed_bounded_and_printable() {
        assert_eq!(TicketTitle::parse("  Printer offline ").expect("ok").as_str(), "Printer offline");
        assert!(TicketTitle::parse("   ").is_err());
        assert!(TicketTitle::parse(&"x".repeat(201)).is_err());
        assert!(TicketTitle::parse(&"é".repeat(200)).is_ok(), "characters, not bytes");
        assert!(TicketTitle::parse("two\nlines").is_err());
        assert!(TicketText::parse("two\nlines\tok").is_ok());
        assert!(TicketText::parse("bell\u{7}").is_err());
        let err = serde_json::from_str::<TicketTitle>("\"\"").expect_err("empty");
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }
}
