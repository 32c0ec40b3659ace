//! Time entries: time someone worked on a ticket, and the rules of their
//! lifecycle (psa.md "Time entry").
//!
//! ```text
//! draft -> submitted -> approved -> invoiced
//!   ^          |
//!   |          v
//!   '----- rejected
//! ```
//! The author edits a draft (or a rejected entry, which an edit returns to
//! draft) and submits it; someone allowed to review time approves or rejects
//! a submitted one. Approved and invoiced entries are locked: billing reads
//! them, nobody changes them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::vocabulary::{Text, TextError};

crate::names!(
    /// Where a time entry is in its lifecycle.
    pub enum TimeEntryState {
        Draft = "draft",
        Submitted = "submitted",
        Approved = "approved",
        Rejected = "rejected",
        Invoiced = "invoiced",
    }
);

/// A move the lifecycle does not allow, with the moves it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} time entry cannot become {to}; from {from} it can become: {allowed}")]
pub struct TimeEntryTransitionError {
    pub from: TimeEntryState,
    pub to: TimeEntryState,
    pub allowed: String,
}

impl TimeEntryState {
    /// The states an entry in this state may move to.
    pub fn next(self) -> &'static [TimeEntryState] {
        use TimeEntryState as S;
        match self {
            S::Draft => &[S::Submitted],
            S::Submitted => &[S::Approved, S::Rejected],
            S::Rejected => &[S::Draft],
            S::Approved => &[S::Invoiced],
            S::Invoiced => &[],
        }
    }

    /// Approved and invoiced entries are what billing reads: nobody changes
    /// them any more.
    pub fn is_locked(self) -> bool {
        matches!(self, Self::Approved | Self::Invoiced)
    }

    /// Whether its author may still change it (a rejected entry returns to
    /// draft when changed).
    pub fn is_editable(self) -> bool {
        matches!(self, Self::Draft | Self::Rejected)
    }

    /// Checks a move; the error lists the moves that are allowed.
    pub fn transition(self, to: TimeEntryState) -> Result<TimeEntryState, TimeEntryTransitionError> {
        if self.next().contains(&to) {
            Ok(to)
        } else {
            let allowed = self.next().iter().map(|s| s.as_str()).collect::<Vec<_>>();
            let allowed = if allowed.is_empty() { "nothing".to_owned() } else { allowed.join(", ") };
            Err(TimeEntryTransitionError { from: self, to, allowed })
        }
    }
}

crate::text_type!(
    /// A time entry's note, or why it was rejected.
    TimeNote,
    "the note",
    4000,
    true
);

/// What kind of work it was, as a short code: `remote_support`, `onsite`.
/// 1-60 characters of `a-z`, `0-9` and `_`, starting with a letter. Any code
/// is accepted for now; the catalogue of work types (with their rates and
/// whether they are billable by default) comes with billing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct WorkType(String);

impl WorkType {
    pub const MAX_CHARS: usize = 60;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let mut chars = raw.chars();
        let valid = raw.len() <= Self::MAX_CHARS
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(TextError {
                what: "a work type",
                reason: format!(
                    "{:?} is not one: 1-60 of a-z, 0-9 and _, starting with a letter, e.g. remote_support",
                    raw.chars().take(64).collect::<String>()
                ),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WorkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Text for WorkType {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.0)
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Self::parse(text).map_err(|e| e.to_string())
    }
}

impl<'de> Deserialize<'de> for WorkType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

crate::inline_schema!(WorkType, {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[a-z][a-z0-9_]*$",
                                 "examples": ["remote_support", "onsite"]});
crate::stored_as_text!(WorkType);

/// Minutes of work in one entry: 1 to 1440 (a day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct WorkMinutes(u16);

impl WorkMinutes {
    pub const MAX: u16 = 1440;

    pub fn new(minutes: i64) -> Result<Self, TextError> {
        match u16::try_from(minutes) {
            Ok(m) if (1..=Self::MAX).contains(&m) => Ok(Self(m)),
            _ => Err(TextError { what: "minutes", reason: format!("must be 1 to 1440 (a day), not {minutes}") }),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl<'de> Deserialize<'de> for WorkMinutes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

crate::inline_schema!(WorkMinutes, {"type": "integer", "minimum": 1, "maximum": 1440});

// Stored as PostgreSQL `integer`; decoding checks the bound again.
impl sqlx::Type<sqlx::Postgres> for WorkMinutes {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <i32 as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for WorkMinutes {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <i32 as sqlx::Encode<sqlx::Postgres>>::encode(i32::from(self.0), buf)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for WorkMinutes {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let minutes = <i32 as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Self::new(minutes.into()).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TimeEntryState as S;

    #[test]
    fn the_lifecycle_has_exactly_its_moves() {
        let mut allowed_moves = 0;
        for from in S::ALL {
            for to in S::ALL {
                match from.transition(to) {
                    Ok(_) => allowed_moves += 1,
                    Err(e) => assert!(e.to_string().contains(from.as_str()), "{e}"),
                }
            }
        }
        assert_eq!(allowed_moves, 5);
        assert!(S::Rejected.transition(S::Submitted).is_err(), "a rejected entry is edited back to draft first");
        assert!(S::Invoiced.transition(S::Draft).unwrap_err().to_string().contains("nothing"));
        assert!(S::Approved.is_locked() && S::Invoiced.is_locked() && !S::Submitted.is_locked());
        assert!(S::Draft.is_editable() && S::Rejected.is_editable() && !S::Submitted.is_editable());
    }

    #[test]
    fn work_types_minutes_and_notes_are_checked() {
        for good in ["onsite", "remote_support", "a", "p2_after_hours"] {
            assert_eq!(WorkType::parse(good).expect(good).as_str(), good);
        }
        for bad in ["", "Onsite", "1st_line", "_x", "remote-support", "on site", &"a".repeat(61)] {
            assert!(WorkType::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(serde_json::from_str::<WorkMinutes>("90").expect("90").get(), 90);
        for bad in ["0", "1441", "-5", "1.5", "\"30\""] {
            assert!(serde_json::from_str::<WorkMinutes>(bad).is_err(), "{bad}");
        }
        assert!(TimeNote::parse(&"x".repeat(4000)).is_ok());
        assert!(TimeNote::parse(&"x".repeat(4001)).is_err());
    }
}
