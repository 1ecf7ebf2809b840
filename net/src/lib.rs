//! natsd: a NATS server. The tokio shell around `natsd-core`'s machines, the embedding API and
//! the pieces of the `natsd` binary.
//!
//! ```no_run
//! # async fn run() -> Result<(), natsd::ServerError> {
//! let opts = natsd::Options { port: None, ..Default::default() };
//! let server = natsd::Server::new(opts)?;
//! server.start().await?;
//! println!("clients connect to {}", server.client_url().unwrap_or_default());
//! server.shutdown();
//! server.wait_for_shutdown().await;
//! # Ok(()) }
//! ```

pub mod bench;
pub mod cli;
mod client;
pub mod config;
mod jetstream;
pub mod logging;
pub mod monitor;
mod prefixed;
mod route;
mod server;
mod sys;
mod tls;
pub mod transport;
mod writer;

pub use jetstream::{StoreFactoryFn, StreamDamage};
pub use natsd_core::options::Options;
pub use server::{
    os_seed, ClientEntry, ClosedClient, Server, ServerError, BUILD_TOOLCHAIN, JS_API_LEVEL,
    NATSD_VERSION, NATS_COMPAT_VERSION,
};
