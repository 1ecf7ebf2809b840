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
//!
//! # Back-pressure
//!
//! A publisher's reader task delivers straight into its receivers' bounded outbound queues.
//! When a batch it routed reached a receiver whose queue is past half of `max_pending` (a
//! client, or a route to another server), the reader reads nothing more until that receiver's
//! writer catches up, for 100 ms to 1 s at most (`natsd_core::outbound::stall_duration`); a
//! route's reader does the same for local receivers, for at most 100 ms per read (all of the
//! route's traffic waits with it, and the peer cuts a route whose writes stall for its write
//! deadline), so a burst across a cluster slows the
//! publisher on the far side instead of cutting the subscriber. The wait runs on tokio time,
//! which the simulation drives. A receiver that stops reading is still closed as a slow
//! consumer, at `max_pending` or `write_deadline`, logged as nats-server does
//! (`Slow Consumer Detected: ...`), counted in `/varz` (`slow_consumers`,
//! `slow_consumer_stats`), shown as the close reason in `/connz?state=closed`, and announced
//! by the `$SYS.ACCOUNT.<account>.DISCONNECT` event with that reason (nats-server 2.9 and 2.10
//! publish no separate slow-consumer advisory).
//!
//! Short of a stall, a reader whose batch left more than 128 KiB untaken at a receiver's writer
//! (`natsd_core::outbound::READ_AHEAD_BYTES`) yields its turn once before reading more, so
//! the writers sharing its core run first: an open-loop publisher no longer fills every
//! receiver's queue to the stall threshold before anything is written. A receiver with little
//! pending is written inline by the publisher at the end of its batch (see `writer`).

pub mod bench;
pub mod cli;
mod client;
pub mod config;
mod gateway;
mod jetstream;
mod leaf;
mod link;
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
