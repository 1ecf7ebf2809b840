//! JetStream: persistent streams on one server.
//!
//! * [`store`]: the storage layer ([`store::StreamStore`], memory and file stores).
//! * [`api`]: the `$JS.API` JSON documents and error codes.
//! * [`stream`] and [`consumer`]: the stream and consumer machines.
//! * [`service::JetStream`]: one account's streams and consumers, the API dispatcher
//!   ([`service::JetStream::api`]) and group commit ([`service::JetStream::commit`]): a stored
//!   publish is acknowledged only once its store synced it.
//!
//! Everything here is pure: time comes in as Unix nanoseconds, replies and deliveries go out as
//! [`consumer::Delivery`] values the shell publishes.

pub mod advisory;
pub mod api;
pub mod cluster;
pub mod consumer;
pub mod factory;
mod handlers;
mod info;
pub mod jsz;
pub mod limits;
mod retention;
pub mod service;
pub mod signed;
mod snapshot;
pub use snapshot::replica::{ReplicaRestore, ReplicaSnapshot};
pub mod sourcing;
pub mod store;
pub mod stream;
pub mod transform;
pub mod ttl;

#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod tests;
