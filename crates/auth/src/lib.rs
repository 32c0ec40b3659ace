//! Identity: who is calling, proven by an access token.
//!
//! - [`TokenVerifier`] validates access tokens per RFC 8725 against pinned
//!   issuers: the built-in [`DevIssuer`] and external OIDC issuers.
//! - [`permissions`] maps roles to named permissions, the one table that
//!   decides what a role may do.
//!
//! Authentication ends here; authorization (which workspaces and roles a
//! subject has) is read from the platform store on every request.

pub mod dev_issuer;
pub mod password;
pub mod permissions;
pub mod source;
pub mod token;

pub use dev_issuer::DevIssuer;
pub use permissions::{Permission, Scope, grants};
pub use token::{Identity, TokenError, TokenVerifier};
