//! The search port of the ticket list: what a search text restricts the
//! list to. The ticket list stays one statement per page whatever answers
//! the search: PostgreSQL full-text search is a condition of that
//! statement; an external index (OpenSearch) would answer with the ids of
//! the tickets it found, which the same statement then filters and sorts.

use anchor_domain::TicketId;
use futures_util::future::BoxFuture;

use crate::{StoreError, Workspace};

/// Longest search text taken (characters).
pub const MAX_SEARCH_TEXT: usize = 200;

/// A search as typed: web-search syntax (`printer -toner "out of paper" or scanner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    /// 1 to [`MAX_SEARCH_TEXT`] characters. Any other text is a search (what
    /// is not a word separates words; a search of no words finds nothing),
    /// except NUL, which PostgreSQL text cannot hold: it separates too.
    /// White space alone is refused (`\S` in the API document, white space
    /// as ECMAScript regular expressions see it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let space = |c: char| (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}';
        if text.chars().all(space) || text.chars().count() > MAX_SEARCH_TEXT {
            return Err(format!("q is a search of 1-{MAX_SEARCH_TEXT} characters, not white space alone"));
        }
        Ok(Self(text.replace('\0', " ")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a search restricts the ticket list to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchMatch {
    /// Matched by the store itself, in the list's own statement
    /// (`search @@ websearch_to_tsquery('english', text)`).
    InStore(SearchText),
    /// The tickets an external index found (at most a bounded number).
    Ids(Vec<TicketId>),
}

/// Finds tickets by their words: title, description and comments
/// (internal notes included: every reader is staff).
pub trait TicketSearch: Send + Sync + std::fmt::Debug {
    /// What `text` restricts `workspace`'s ticket list to.
    fn search<'a>(
        &'a self,
        workspace: &'a Workspace,
        text: &'a SearchText,
    ) -> BoxFuture<'a, Result<SearchMatch, StoreError>>;
}

/// PostgreSQL full-text search: a `tsvector` per ticket kept by triggers
/// (workspace migration 0019) with a GIN index. It needs no round trip of
/// its own: the match is a condition of the list's statement.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresTicketSearch;

impl TicketSearch for PostgresTicketSearch {
    fn search<'a>(
        &'a self,
        _workspace: &'a Workspace,
        text: &'a SearchText,
    ) -> BoxFuture<'a, Result<SearchMatch, StoreError>> {
        Box::pin(async move { Ok(SearchMatch::InStore(text.clone())) })
    }
}
