//! Accounts: isolated subject spaces, with stream and service exports and imports.

pub mod validate;
