//! The web app's static files, compiled in and served under content-hashed
//! names (`/static/anchor.3f9a0c12d4e5b6a7.css`) with `Cache-Control:
//! immutable`: a page always names the bytes it was built with, and a
//! browser never asks twice. A name whose hash is not the current one is a
//! 404 (an old page reloads and gets the new names).

use std::sync::OnceLock;

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// One static file.
struct Asset {
    /// The name pages use: `anchor.css`.
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        name: "anchor.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../static/anchor.css"),
    },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../static/vendor/htmx.min.js"),
    },
    Asset {
        name: "htmx-ext-sse.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../static/vendor/htmx-ext-sse.min.js"),
    },
    Asset {
        name: "anchor.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../static/anchor.js"),
    },
];

/// Each asset's served name, in [`ASSETS`] order.
fn hashed() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.bytes);
                let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                let (stem, ext) = asset.name.rsplit_once('.').unwrap_or((asset.name, ""));
                format!("{stem}.{hash}.{ext}")
            })
            .collect()
    })
}

/// The path of `name` as pages link it: `/static/<stem>.<hash>.<ext>`.
///
/// # Panics
/// When `name` is not one of the compiled-in files (a programming error,
/// caught by every page test).
pub(crate) fn url(name: &str) -> String {
    let index = ASSETS.iter().position(|a| a.name == name).unwrap_or_else(|| panic!("no static file {name}"));
    format!("/static/{}", hashed()[index])
}

/// `GET /static/{file}`.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    match hashed().iter().position(|served| *served == file) {
        Some(index) => {
            let asset = &ASSETS[index];
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
                    (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
                    (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                ],
                asset.bytes,
            )
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash_and_only_current_names_are_served() {
        let css = url("anchor.css");
        assert!(css.starts_with("/static/anchor.") && css.ends_with(".css"), "{css}");
        assert_eq!(css.len(), "/static/anchor..css".len() + 16);
        let names: std::collections::HashSet<_> = hashed().iter().collect();
        assert_eq!(names.len(), ASSETS.len(), "every file has its own name");
    }

    #[tokio::test]
    async fn a_stale_hash_is_not_found_and_a_current_one_is_immutable() {
        let current = url("htmx.min.js").trim_start_matches("/static/").to_owned();
        let ok = serve(Path(current)).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(ok.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        let stale = serve(Path("htmx.min.0000000000000000.js".to_owned())).await;
        assert_eq!(stale.status(), StatusCode::NOT_FOUND);
        let plain = serve(Path("anchor.css".to_owned())).await;
        assert_eq!(plain.status(), StatusCode::NOT_FOUND);
    }
}
