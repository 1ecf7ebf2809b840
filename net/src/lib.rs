//! natsd: a NATS server. The tokio shell around `natsd-core`'s machines, the embedding API and
//! the pieces of the `natsd` binary.

pub mod cli;
