//! Workspaces: one per client company the MSP serves.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The rule every slug follows, in words; errors quote it so that the user
/// learns the rule instead of guessing.
pub const SLUG_RULE: &str = "3 to 40 characters: lowercase letters a-z, digits and hyphens, \
     starting with a letter and ending with a letter or digit";

/// Slugs that would collide with routes, system schemas or words users would
/// mistake for something built in.
const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "anchor",
    "api",
    "app",
    "assets",
    "auth",
    "console",
    "default",
    "health",
    "healthz",
    "internal",
    "login",
    "logout",
    "metrics",
    "new",
    "none",
    "null",
    "ops",
    "platform",
    "portal",
    "public",
    "readyz",
    "root",
    "settings",
    "static",
    "status",
    "system",
    "well-known",
    "www",
];

/// Prefixes that would read as PostgreSQL's own objects or as our derived
/// schema names (`ws_ws_...`).
const RESERVED_PREFIXES: &[&str] = &["pg-", "ws-"];

/// A workspace's URL and database identity: `^[a-z][a-z0-9-]{1,38}[a-z0-9]$`,
/// not reserved.
///
/// The slug maps one-to-one onto the workspace schema name (`ws_` + slug with
/// `-` as `_`); since slugs never contain `_`, the mapping is injective.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct WorkspaceSlug(String);

/// Why a slug was refused. The message always states the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("workspace slug {0:?} is invalid: use {SLUG_RULE}")]
    Invalid(String),
    #[error("workspace slug {0:?} is reserved; choose another name ({SLUG_RULE})")]
    Reserved(String),
}

impl WorkspaceSlug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let bytes = input.as_bytes();
        let well_formed = (3..=40).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[bytes.len() - 1] != b'-';
        if !well_formed {
            return Err(SlugError::Invalid(input.to_owned()));
        }
        let reserved = RESERVED_SLUGS.contains(&input) || RESERVED_PREFIXES.iter().any(|p| input.starts_with(p));
        if reserved {
            return Err(SlugError::Reserved(input.to_owned()));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The PostgreSQL schema that holds this workspace's business data.
    pub fn schema_name(&self) -> String {
        format!("ws_{}", self.0.replace('-', "_"))
    }
}

impl fmt::Display for WorkspaceSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkspaceSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkspaceSlug({})", self.0)
    }
}

impl std::str::FromStr for WorkspaceSlug {
    type Err = SlugError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl crate::vocabulary::Text for WorkspaceSlug {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(&self.0)
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Self::parse(text).map_err(|e| e.to_string())
    }
}

crate::stored_as_text!(WorkspaceSlug);

impl<'de> Deserialize<'de> for WorkspaceSlug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A workspace's display name: the client company's name as staff write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WorkspaceName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workspace name is invalid: use 1 to 200 characters, not only spaces, without control characters")]
pub struct WorkspaceNameError;

impl WorkspaceName {
    pub fn parse(input: &str) -> Result<Self, WorkspaceNameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control) {
            return Err(WorkspaceNameError);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for WorkspaceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_slugs() {
        for ok in ["acme", "acme-corp", "a1b", "contoso-2026", &"a".repeat(40)] {
            assert!(WorkspaceSlug::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn refuses_malformed_slugs_with_the_rule() {
        for bad in ["Bad_Slug", "ab", "1acme", "acme-", "acme_corp", "ACME", "", &"a".repeat(41), "acmé"] {
            let err = WorkspaceSlug::parse(bad).expect_err(bad);
            assert!(matches!(err, SlugError::Invalid(_)), "{bad}: {err}");
            assert!(err.to_string().contains(SLUG_RULE));
        }
    }

    #[test]
    fn refuses_reserved_slugs() {
        for bad in ["admin", "platform", "pg-stats", "ws-acme", "public"] {
            assert!(matches!(WorkspaceSlug::parse(bad), Err(SlugError::Reserved(_))), "{bad}");
        }
        assert!(WorkspaceSlug::parse("pgadmin-clients").is_ok());
    }

    #[test]
    fn schema_name_is_injective_over_valid_slugs() {
        let a = WorkspaceSlug::parse("acme-corp").expect("valid");
        assert_eq!(a.schema_name(), "ws_acme_corp");
    }

    #[test]
    fn deserialising_validates() {
        let err = serde_json::from_str::<WorkspaceSlug>("\"Bad_Slug\"").expect_err("invalid");
        assert!(err.to_string().contains("invalid"));
        let name = serde_json::from_str::<WorkspaceName>("\"  Acme Corp \"").expect("valid");
        assert_eq!(name.as_str(), "Acme Corp");
    }
}
