//! `ApiJson<T>`: the JSON body extractor of every API route. It turns each
//! way a body can be wrong into a precise problem: wrong media type (415),
//! not JSON (400 `malformed_json`), JSON of the wrong shape (422
//! `validation_failed`, with the path of the field), too large (413).

use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::StatusCode,
};
use serde::de::DeserializeOwned;

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
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(problem_for(rejection)),
        }
    }
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
                Some((path, detail)) if !path.contains(' ') && path != "." => (pointer(path), detail.to_owned()),
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

/// `items[0].name` -> `/items/0/name`.
fn pointer(path: &str) -> String {
    let mut out = String::new();
    for segment in path.split('.') {
        let (name, indexes) = segment.split_once('[').map_or((segment, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            out.push('/');
            out.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(index.trim_end_matches(']'));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pointer;

    #[test]
    fn serde_paths_become_json_pointers() {
        assert_eq!(pointer("name"), "/name");
        assert_eq!(pointer("items[0].name"), "/items/0/name");
        assert_eq!(pointer("a/b"), "/a~1b");
    }
}
