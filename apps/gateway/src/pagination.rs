//! Lists: `?limit=` (default 50, max 500) and an opaque `?cursor=`; responses
//! are `{"items": [...], "next_cursor": null | "..."}`.

use std::str::FromStr;

use axum::extract::{FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose::URL_SAFE_NO_PAD},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use utoipa::{IntoParams, ToSchema};

use crate::problem::Problem;

/// Cursors are base64url without padding; any such text decodes (trailing
/// bits are ignored), so a cursor of the documented form is never refused
/// as malformed.
const CURSOR_DECODING: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_allow_trailing_bits(true)
    .with_decode_padding_mode(DecodePaddingMode::RequireNone);

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// Query parameters, with a 422 problem (not a plain 400) when they are wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| Problem::unprocessable("invalid_query", "", e.body_text()))
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, Problem> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(Problem::unprocessable("invalid_query", "/limit", "limit must be between 1 and 500")),
        }
    }

    /// The decoded cursor, if any (empty is none). Every cursor of the form
    /// the document states decodes; what it names is checked by
    /// [`Paging::after`].
    pub fn cursor(&self) -> Result<Option<String>, Problem> {
        let lenient = GeneralPurpose::new(&alphabet::URL_SAFE, CURSOR_DECODING);
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| {
                // Text keys never hold NUL, which PostgreSQL text cannot.
                let text = |b: Vec<u8>| String::from_utf8_lossy(&b).replace('\0', "\u{fffd}");
                lenient.decode(c).map(text).map_err(|_| {
                    Problem::unprocessable("invalid_cursor", "/cursor", "the cursor is not one this API issued")
                })
            })
            .transpose()
    }
}

/// Where a list starts and how long it is, validated: every list handler
/// takes this beside its own filters (and documents [`PageParams`]).
#[derive(Debug, Clone)]
pub struct Paging {
    pub limit: i64,
    cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiQuery(params) = ApiQuery::<PageParams>::from_request_parts(parts, state).await?;
        Ok(Self { limit: params.limit()?, cursor: params.cursor()? })
    }
}

impl Paging {
    /// The cursor as the key it encodes (the last item of the previous
    /// page). A cursor that decodes to no key of this list names no place
    /// in it: 404 `cursor_not_found`.
    pub fn after<K: FromStr>(&self) -> Result<Option<K>, Problem> {
        self.cursor.as_deref().map(|c| c.parse().map_err(|_| self.not_found())).transpose()
    }

    /// 404 `cursor_not_found`: the cursor decoded to a key, but of another
    /// order of the list than the one asked for.
    pub fn not_found(&self) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "cursor_not_found",
            "the cursor names no place in this list; start again without it",
        )
    }

    /// Rows to fetch: one more than the page, to tell whether more follow.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The page of `rows` (fetched with [`Self::fetch`]), keyed by `key`.
    pub fn page<R, T, K: ToString>(&self, rows: Vec<R>, key: impl Fn(&R) -> K, view: impl Fn(R) -> T) -> Page<T> {
        Page::from_rows(rows, self.limit, |r| key(r).to_string(), view)
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only
    /// tells that there is more.
    pub fn from_rows<R>(mut rows: Vec<R>, limit: i64, key: impl Fn(&R) -> String, view: impl Fn(R) -> T) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let next_cursor = if more { rows.last().map(|r| URL_SAFE_NO_PAD.encode(key(r))) } else { None };
        Self { items: rows.into_iter().map(view).collect(), next_cursor }
    }
}
