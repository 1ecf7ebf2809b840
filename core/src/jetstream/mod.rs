//! JetStream: persistent streams.
//!
//! Only the storage layer lives here so far ([`store`]); the stream and consumer machines will
//! sit on top of its [`store::StreamStore`] trait.

pub mod store;
