//! Entry points shared by the cargo-fuzz targets and the corpus replay test.
//!
//! Each function takes the raw bytes of one fuzz input and panics when it finds a bug (a panic
//! in the code under test, or a disagreement with the reference model or invariant it checks).
//! The cargo-fuzz targets in `fuzz/` are one-line wrappers around them, and
//! `core/tests/fuzz_corpus.rs` replays every committed corpus file through the very same code on
//! the stable toolchain, so a crasher once added to the corpus stays fixed.
//!
//! Inputs are decoded from bytes here rather than with `arbitrary`, so that core gains no
//! dependency for fuzzing. The formats are chosen so that hand-written seeds stay readable
//! (mostly protocol or config text, with a short prefix of control bytes); each entry point's
//! documentation describes its format.

use std::time::Instant;

mod cluster;
mod conf;
mod conn;
mod gojson;
mod js;
mod perms;
mod proto;
mod route;
mod sublist;

pub use cluster::{cluster_entries, cluster_snapshots};
pub use conf::config_parser;
pub use conn::conn_machine;
pub use gojson::js_request_json;
pub use js::js_api;
pub use perms::permissions;
pub use proto::{client_parser, connect_json};
pub use route::{parse_leaf, route_parser};
pub use sublist::sublist_ops;

/// A fuzz entry point as the replay test calls it: a starting instant, then the input.
pub type Target = fn(Instant, &[u8]);

/// The fuzz targets by name, for replaying corpora: `fuzz/corpus/<name>/` holds the inputs of
/// each. `conn_machine` needs a starting instant, which the caller supplies (core reads no
/// clock), and so does `cluster_entries`; the others ignore it.
pub const TARGETS: &[(&str, Target)] = &[
    ("client_parser", |_, d| client_parser(d)),
    ("connect_json", |_, d| connect_json(d)),
    ("conn_machine", conn_machine),
    ("config_parser", |_, d| config_parser(d)),
    ("sublist_ops", |_, d| sublist_ops(d)),
    ("permissions", |_, d| permissions(d)),
    ("route_parser", |_, d| route_parser(d)),
    ("parse_leaf", |_, d| parse_leaf(d)),
    ("js_api", |_, d| js_api(d)),
    ("js_request_json", |_, d| js_request_json(d)),
    ("cluster_entries", cluster_entries),
    ("cluster_snapshots", |_, d| cluster_snapshots(d)),
];

/// Reads fuzz bytes front to back; past the end every read yields zero, so decoding never fails
/// and a shorter input is a prefix of a longer one's behaviour.
#[derive(Debug, Clone)]
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A number below `n` (`n` > 0) from one byte.
    fn below(&mut self, n: u8) -> u8 {
        self.byte() % n
    }

    /// One of `items` (non-empty), chosen by one byte.
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.byte()) % items.len()]
    }

    /// Up to `n` bytes.
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// A subject made of `n` tokens drawn from `alphabet` (one byte each).
fn subject_from(b: &mut Input<'_>, n: usize, alphabet: &[&str]) -> String {
    let toks: Vec<&str> = (0..n).map(|_| b.pick(alphabet)).collect();
    toks.join(".")
}

/// Reference semantics of subjects, written independently of [`crate::subject`] so the models
/// do not share its bugs.
mod reference {
    /// ASCII whitespace as nats-server sees it in subjects.
    fn is_space(c: char) -> bool {
        matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0b' | '\x0c')
    }

    /// A valid subscription subject: non-empty tokens without whitespace, `>` only last.
    pub(super) fn valid(s: &str) -> bool {
        let toks: Vec<&str> = s.split('.').collect();
        !s.is_empty()
            && toks
                .iter()
                .all(|t| !t.is_empty() && !t.chars().any(is_space))
            && toks[..toks.len() - 1].iter().all(|t| *t != ">")
    }

    /// Has a wildcard token.
    pub(super) fn has_wildcard(s: &str) -> bool {
        s.split('.').any(|t| t == "*" || t == ">")
    }

    /// Does `pattern` match `subject`, whose tokens are taken literally (a `*` in `subject` is
    /// only matched by a `*` or a wildcard in `pattern`)?
    pub(super) fn matches(pattern: &str, subject: &str) -> bool {
        fn go(p: &[&str], s: &[&str]) -> bool {
            match (p.split_first(), s.split_first()) {
                (None, None) => true,
                (Some((&">", _)), Some(_)) => true,
                (Some((pt, pr)), Some((st, sr))) => (*pt == "*" || pt == st) && go(pr, sr),
                _ => false,
            }
        }
        let p: Vec<&str> = pattern.split('.').collect();
        let s: Vec<&str> = subject.split('.').collect();
        go(&p, &s)
    }

    /// Exact overlap of two valid patterns: some literal subject matches both.
    pub(super) fn overlaps(a: &str, b: &str) -> bool {
        fn go(a: &[&str], b: &[&str]) -> bool {
            match (a.split_first(), b.split_first()) {
                (None, None) => true,
                (Some((&">", _)), _) => !b.is_empty(),
                (_, Some((&">", _))) => !a.is_empty(),
                (Some((x, ar)), Some((y, br))) => (*x == "*" || *y == "*" || x == y) && go(ar, br),
                _ => false,
            }
        }
        let a: Vec<&str> = a.split('.').collect();
        let b: Vec<&str> = b.split('.').collect();
        go(&a, &b)
    }
}
