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

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    Triaged,
    InProgress,
    WaitingOnClient,
    Resolved,
    Closed,
}

/// A move the lifecycle does not allow, with the moves it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} ticket cannot become {to}; from {from} it can become: {allowed}")]
pub struct TransitionError {
    pub from: TicketStatus,
    pub to: TicketStatus,
    pub allowed: String,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 6] = [
        TicketStatus::New,
        TicketStatus::Triaged,
        TicketStatus::InProgress,
        TicketStatus::WaitingOnClient,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Triaged => "triaged",
            Self::InProgress => "in_progress",
            Self::WaitingOnClient => "waiting_on_client",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

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

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent: p1 (critical, business stopped) to p4 (low).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P1 => "p1",
            Self::P2 => "p2",
            Self::P3 => "p3",
            Self::P4 => "p4",
        }
    }
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Who may read a comment: staff only, or the client too (in the portal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommentVisibility {
    Internal,
    Public,
}

impl CommentVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Internal, Self::Public].into_iter().find(|v| v.as_str() == s)
    }
}

/// Text a person typed, checked once: trimmed, within `max` characters,
/// without control characters other than line breaks and tabs (when
/// `multiline`).
fn checked_text(raw: &str, what: &'static str, max: usize, multiline: bool) -> Result<String, TextError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(TextError { what, reason: "must not be empty".into() });
    }
    let length = text.chars().count();
    if length > max {
        return Err(TextError { what, reason: format!("is {length} characters; at most {max}") });
    }
    let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t'));
    if !text.chars().all(allowed) {
        return Err(TextError { what, reason: "must not contain control characters".into() });
    }
    Ok(text.to_owned())
}

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {reason}")]
pub struct TextError {
    pub what: &'static str,
    pub reason: String,
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $multiline:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, TextError> {
                checked_text(raw, $what, $max, $multiline).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_type!(
    /// A ticket's one-line summary.
    TicketTitle,
    "a ticket title",
    200,
    false
);
text_type!(
    /// A ticket's description or a comment's body.
    TicketText,
    "the text",
    20000,
    true
);

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
