//! natsd-core: the sans-IO state machines of the natsd NATS server.
//!
//! # Contract
//!
//! Nothing in this crate performs I/O, reads a clock or draws OS randomness:
//!
//! * time comes in as a `now: Instant` argument, monotonic across calls; wall-clock time (JWT
//!   expiry, JetStream timestamps) is an explicit input;
//! * randomness comes from a seeded [`rng::SplitMix64`] handed down from the parent
//!   (server seed → connection seed), so a simulation seed replays a whole run;
//! * a peer's misbehaviour is an *output* (a `-ERR '…'` transmit followed by a close event),
//!   never a Rust `Err`; `Result` is reserved for API misuse and configuration errors;
//! * every queue and buffer has a bound, with nats-server's default and error text.
//!
//! # Driving rule
//!
//! Every machine is driven the same way (quinn's `Connection`, str0m's `Rtc`): after each
//! `handle_*` call, the driver
//!
//! 1. drains `poll_transmit` until `None` (or until the socket is not writable),
//! 2. drains `poll_event` until `None`, routing each event (which may deliver to other
//!    machines, whose outputs are drained in turn),
//! 3. asks `poll_timeout` and re-arms its single timer.
//!
//! The production driver is the tokio shell in the `natsd` crate; the simulation drives the very
//! same shell over turmoil.
//!
//! # Back-pressure (the stall rule)
//!
//! A receiver's outbound queue (a client's [`outbound::Outbound`], a route's) opens its
//! [`outbound::StallGate`] once its pending bytes pass half of `max_pending`. The publish path
//! records the open gates of the receivers a batch delivered to
//! ([`router::PendingFlush::flush_and_take_stall`]); the driver of a client connection (and of
//! a route) then stops reading its socket until every recorded gate is released (the receiver's
//! writer took its queue, having written everything before it) or for at most
//! [`outbound::stall_duration`]: 100 ms at half of `max_pending`, 100 ms more per further
//! twentieth, 1 s once full. Nothing is dropped while a producer waits, and every wait is
//! bounded, so producers and receivers that wait on each other slow down but never deadlock.
//! A receiver that stops reading is still closed as a slow consumer: when a delivery would
//! pass `max_pending`, or when its writer makes no progress within `write_deadline`.
//! Go: server/client.go (2.9) queueOutbound, stalledWait, stallDuration, flushOutbound.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod auth;
pub mod civil;
pub mod conf;
pub mod conn;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod gojson;
pub mod jetstream;
pub mod leaf;
pub mod link;
pub mod linkout;
pub mod options;
pub mod outbound;
pub mod proto;
pub mod rng;
pub mod route;
pub mod router;
pub mod subject;
pub mod sublist;
