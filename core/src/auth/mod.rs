//! Authentication (user/password, bcrypt, token, nkeys, TLS mapping) and authorization
//! (publish/subscribe permissions, `allow_responses`).
//!
//! Everything here is pure logic over [`crate::options`]: the shell hands in what it learned from
//! the socket (CONNECT, nonce, certificate identities, listener kind) and gets a verdict back.
//!
//! * [`permissions`]: allow/deny lists compiled into a [`permissions::PermissionChecker`], plus
//!   small per-connection caches for the hot paths.
//! * [`responses`]: the dynamic reply permissions of `allow_responses`.
//! * [`authenticate`]: the [`authenticate::Authenticator`] built once from the options.

pub mod authenticate;
pub mod permissions;
pub mod responses;

pub(crate) mod b64;

pub use authenticate::{new_nonce, AuthError, AuthOutcome, Authenticator, ConnType};
pub use permissions::{DeliverPermCache, PermissionChecker, PubPermCache};
pub use responses::ResponseTracker;
