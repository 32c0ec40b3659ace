//! `ApiJson<T>`: the JSON body extractor of every API route. It turns each
//! way a body can be wrong into a precise problem: wrong media type (415),
//! not JSON (400 `malformed_json`), JSON of the wrong shape (422
//! `validation_failed`, with the path of the field), too large (413).

use anchor_commands::kit::json_pointer;
use axum::{
    body::Bytes,
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

use crate::problem::{FieldError, Problem};

#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state).await.map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            status => Problem::new(status, "bad_request", e.body_text()),
        })?;
        json_object(&headers, &body)?;
        without_nul(&body)?;
        axum::Json::<T>::from_bytes(&body).map(|axum::Json(value)| Self(value)).map_err(problem_for)
    }
}

/// No text of the API holds NUL (U+0000): PostgreSQL text cannot, and no
/// person types it. Refused wherever it is, with its place.
fn without_nul(body: &[u8]) -> Result<(), Problem> {
    // JSON can carry NUL only as the escape `\u0000`; most bodies have none.
    if !body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Ok(());
    }
    fn find(value: &Value, at: &mut String) -> bool {
        let mark = at.len();
        let found = match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, v)| {
                at.truncate(mark);
                at.push_str(&format!("/{i}"));
                find(v, at)
            }),
            Value::Object(members) => members.iter().any(|(k, v)| {
                at.truncate(mark);
                at.push_str(&format!("/{}", k.replace('~', "~0").replace('/', "~1")));
                k.contains('\0') || find(v, at)
            }),
            _ => false,
        };
        if !found {
            at.truncate(mark);
        }
        found
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return Ok(()) };
    let mut at = String::new();
    if find(&value, &mut at) {
        return Err(Problem::unprocessable("validation_failed", &at, "text must not contain NUL (U+0000)"));
    }
    Ok(())
}

/// A JSON object body: JSON by its media type (415 otherwise), well-formed
/// (400), and an object (422): every request body of the API is one, and
/// serde would otherwise read a struct from an array.
fn json_object(headers: &HeaderMap, body: &[u8]) -> Result<(), Problem> {
    // `application/json` or `application/<anything>+json`, as axum's `Json`.
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    let json = essence
        .as_deref()
        .and_then(|e| e.strip_prefix("application/"))
        .is_some_and(|subtype| subtype == "json" || (subtype.ends_with("+json") && !subtype.contains('/')));
    if !json {
        return Err(Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(());
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(e) => {
            Err(Problem::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {e}")))
        }
        Ok(_) => Err(Problem::unprocessable("validation_failed", "", "the body must be a JSON object")),
    }
}

/// [`whole_number`] for a member that must be a number when present
/// (with `#[serde(default)]` for when it is absent).
pub(crate) fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let number = serde_json::Number::deserialize(d)?;
    whole_number(serde_json::Value::Number(number))
        .map_err(D::Error::custom)?
        .ok_or_else(|| D::Error::custom("a number"))
}

/// For `#[serde(deserialize_with)]` on an optional integer: JSON Schema's
/// `integer` is any number without a fraction, `1e3` and `60.0` included.
pub(crate) fn whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    let whole =
        number.as_i64().or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64));
    let whole = whole.ok_or_else(|| D::Error::custom(format!("{number} is not a whole number")))?;
    T::try_from(whole).map(Some).map_err(|_| D::Error::custom(format!("{number} is out of range")))
}

/// A JSON body read as raw bytes (by handlers that decide who may ask
/// before they read what is asked): the same problems as [`ApiJson`].
pub(crate) fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Problem> {
    json_object(headers, body)?;
    without_nul(body)?;
    axum::Json::<Value>::from_bytes(body).map(|axum::Json(v)| v).map_err(problem_for)
}

fn problem_for(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        JsonRejection::JsonSyntaxError(e) => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {}", source_text(&e)),
        ),
        JsonRejection::JsonDataError(e) => {
            let message = source_text(&e);
            // serde_path_to_error renders "path.to.field: message".
            let (path, detail) = match message.split_once(": ") {
                Some((path, detail)) if !path.contains(' ') && path != "." => (json_pointer(path), detail.to_owned()),
                _ => (String::new(), message.clone()),
            };
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!("the body is not a valid request: {message}"),
            )
            .with_errors(vec![FieldError { path, message: detail }])
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE)
        }
        other => Problem::new(other.status(), "bad_request", other.body_text()),
    }
}

fn source_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use anchor_commands::kit::json_pointer as pointer;

    #[test]
    fn serde_paths_become_json_pointers() {
        assert_eq!(pointer("name"), "/name");
        assert_eq!(pointer("items[0].name"), "/items/0/name");
        assert_eq!(pointer("a/b"), "/a~1b");
    }
}
