//! Anchor's domain vocabulary, shared by every layer.
//!
//! Types here parse untrusted input into values that are valid by construction
//! (a [`WorkspaceSlug`] cannot hold an invalid slug), so later layers never
//! re-check them.

pub mod workspace;

pub use workspace::{SlugError, WorkspaceName, WorkspaceSlug};
