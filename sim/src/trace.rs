//! What the clients saw, in order, stamped with sim time; and its hash.
//!
//! The trace is the sim's only output: checkers read it, and its hash is compared across runs
//! of one seed to prove determinism. Only sim-relative time goes in (never an `Instant` or a
//! wall clock), and entries are appended in the single-threaded order the sim ran them.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

/// One client-observed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A connection was accepted (CONNECT + PING answered by PONG).
    Connected {
        /// Connection epoch of this client (counts reconnects).
        epoch: u32,
    },
    /// Connecting failed: refused, timed out, or rejected with `-ERR`.
    ConnectFailed {
        /// Why.
        reason: String,
    },
    /// The connection ended (EOF, error, or given up by the client).
    Disconnected {
        /// Connection epoch that ended.
        epoch: u32,
        /// Why.
        reason: String,
    },
    /// A message was published (written to the socket).
    Published {
        /// Connection epoch it went out on.
        epoch: u32,
        /// Subject.
        subject: String,
        /// Payload, as text.
        payload: String,
    },
    /// A message was handed to the application.
    Received {
        /// Connection epoch it arrived on.
        epoch: u32,
        /// Subscription id.
        sid: u64,
        /// Subject.
        subject: String,
        /// Payload, as text (lossy).
        payload: String,
        /// Header status code, for status messages (503 no responders).
        status: Option<u16>,
    },
    /// `-ERR` from the server.
    ServerError {
        /// Connection epoch.
        epoch: u32,
        /// The error text.
        text: String,
    },
    /// A scenario-defined note (request outcomes, phase marks, counters).
    Note(String),
}

/// One trace entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Sim time since the start of the run.
    pub at: Duration,
    /// The client (not host) that observed it.
    pub client: String,
    /// What happened.
    pub kind: EventKind,
}

/// A shared, append-only trace. Cheap to clone (one `Rc`); the sim is single-threaded.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    events: Rc<RefCell<Vec<Event>>>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event stamped with the current sim time.
    pub fn record(&self, client: &str, kind: EventKind) {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        self.events.borrow_mut().push(Event {
            at,
            client: client.to_owned(),
            kind,
        });
    }

    /// Appends a free-form note.
    pub fn note(&self, client: &str, text: impl Into<String>) {
        self.record(client, EventKind::Note(text.into()));
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }

    /// Number of events so far.
    pub fn len(&self) -> usize {
        self.events.borrow().len()
    }

    /// Is the trace empty?
    pub fn is_empty(&self) -> bool {
        self.events.borrow().is_empty()
    }

    /// The trace hash: FNV-1a over one canonical line per event (stable across Rust versions,
    /// unlike `DefaultHasher`).
    pub fn hash(&self) -> u64 {
        hash_events(&self.events.borrow())
    }
}

/// FNV-1a 64 over `"{at_ns} {client} {kind:?}\n"` per event.
pub fn hash_events(events: &[Event]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut line = String::new();
    for e in events {
        line.clear();
        let _ = writeln!(line, "{} {} {:?}", e.at.as_nanos(), e.client, e.kind);
        for b in line.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}
