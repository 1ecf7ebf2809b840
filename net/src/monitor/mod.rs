//! HTTP monitoring: nats-server's endpoints (`/varz`, `/connz`, …) with its JSON field names
//! and query options, plus Prometheus `/metrics`.
//!
//! The documents are built by `build` from the server's shared state; the same structs are
//! returned by the embedding API and the `$SYS.REQ.…` services.

mod build;
mod http;
mod jsz;
mod metrics;
mod proc;
pub(crate) mod timefmt;
pub mod types;

pub use build::{
    AccountStatzOptions, AccountzOptions, ConnState, ConnzOptions, SortOpt, SubszOptions,
    DEFAULT_LIST_SIZE,
};
pub(crate) use http::serve;
pub use jsz::JszOptions;
