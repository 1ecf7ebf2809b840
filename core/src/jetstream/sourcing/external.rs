//! Mirrors and sources whose origin is in another account, or behind this server's own
//! domain prefix (Go: server/stream.go setupMirrorConsumer / setupSourceConsumer with an
//! `ExternalStream`).
//!
//! nats-server reaches such an origin by sending its consumer-create request to
//! `<api>.CONSUMER.CREATE.<stream>` in the sourcing account and listening on a subject
//! under `<deliver>`: it works when the sourcing account imports the origin account's
//! `$JS.API` service under the `api` prefix and the origin account's deliver subjects as a
//! stream. Every account's JetStream lives in one worker here, so the cursor reads the
//! origin's store directly, but only along that same path: [`resolve`] follows the sourcing
//! account's imports to the origin account. Without them the request goes out over the
//! network as nats-server's does (see [`super::remote`]): across a leaf link to another
//! domain's JetStream, or nowhere, and then the cursor stays inactive, as a Go source whose
//! request goes unanswered does (no error, `active: -1`).
//!
//! `$JS.<domain>.API` with this server's own domain is the account's own API (nats-server
//! maps `$JS.<domain>.API.>` to `$JS.API.>` in every JetStream account), so such a source
//! reads a stream of its own account.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::super::api::{err, ApiError, ExternalStream, StreamConfig, StreamSource};
use super::super::consumer::Delivery;
use super::super::service::{Entry, JetStream};
use super::super::store::UnixNanos;
use super::super::stream::Stream;
use super::{resume_point, start_of, store_batch, SourceState};
use crate::account::Account;
use crate::router::SubTarget;
use crate::subject;

/// nats-server's API prefix, which `api` replaces.
const API_PREFIX: &str = "$JS.API";

/// The origin-name part of a source's identity: the name, for an external source a hash of
/// its API prefix, so one stream name in two accounts or domains is two sources, and for a
/// durable source a hash of its consumer's name (Go: composeIName, getHash).
pub fn iname_base(s: &StreamSource) -> String {
    let mut base = match &s.external {
        Some(e) => format!("{}:{}", s.name, hash8(&e.api)),
        None => s.name.clone(),
    };
    if let Some(c) = &s.consumer {
        base = format!("{base}:C={}", hash8(&c.name));
    }
    base
}

/// The identity of a durable source's consumer: one consumer serves one source of a stream
/// (Go: composeCName).
pub fn cname(s: &StreamSource) -> String {
    let base = match &s.external {
        Some(e) => format!("{}:{}", s.name, hash8(&e.api)),
        None => s.name.clone(),
    };
    let c = s.consumer.as_ref().map_or("", |c| c.name.as_str());
    format!("{base} {c}")
}

/// Eight base-62 characters from the SHA-256 of `s` (Go: getHashSize with its `digits`).
fn hash8(s: &str) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    Sha256::digest(s.as_bytes())
        .iter()
        .take(8)
        .map(|b| DIGITS[usize::from(b % 62)] as char)
        .collect()
}

/// Go: checkStreamCfg on external prefixes — `api` must be a literal subject apart from
/// `$JS.API`, `deliver` a literal subject.
pub fn check_prefixes(c: &StreamConfig) -> Result<(), ApiError> {
    let exts = c
        .mirror
        .iter()
        .chain(&c.sources)
        .filter_map(|s| s.external.as_ref());
    for e in exts {
        if !e.deliver.is_empty() && !subject::is_valid_literal_subject(e.deliver.as_bytes()) {
            return Err(ApiError::new(
                400,
                10024,
                format!(
                    "stream external delivery prefix {} must not contain wildcards",
                    e.deliver
                ),
            ));
        }
        if e.api.is_empty() {
            continue;
        }
        if !subject::is_valid_literal_subject(e.api.as_bytes()) {
            return Err(err::stream_invalid_config(&format!(
                "stream external api prefix {:?} must be a valid subject without wildcards",
                e.api
            )));
        }
        if subject::overlaps(e.api.as_bytes(), API_PREFIX.as_bytes()) {
            return Err(ApiError::new(
                400,
                10021,
                format!(
                    "stream external api prefix {} must not overlap with {API_PREFIX}",
                    e.api
                ),
            ));
        }
    }
    Ok(())
}

/// Where the requests of an external source would go.
#[derive(Debug, Clone)]
pub enum Route {
    /// Nowhere: no import carries them (or no stream import brings deliveries back).
    Unreachable,
    /// To the sourcing account's own API (its own domain).
    Local,
    /// To another account's API.
    Account(Arc<Account>),
}

/// Follows `importer`'s imports for the consumer-create request of an external source
/// (Go: `<api>.CONSUMER.CREATE.<stream>`) and for its deliver subject back
/// (`<deliver>.S.<id>`, `.M.` for a mirror). `domain`: this server's JetStream domain.
pub fn resolve(
    importer: &Arc<Account>,
    domain: Option<&str>,
    ext: &ExternalStream,
    stream: &str,
    mirror: bool,
) -> Route {
    let api = ext.api.trim_end_matches('.');
    if domain.is_some_and(|d| api == format!("$JS.{d}.API")) {
        return Route::Local;
    }
    let request = format!("{api}.CONSUMER.CREATE.{stream}");
    let wanted = format!("{API_PREFIX}.CONSUMER.CREATE.{stream}");
    let matched = importer.sublist.matches(request.as_bytes());
    let exporter = matched.psubs.iter().find_map(|s| match &s.0.target {
        SubTarget::ServiceImport {
            exporter, rename, ..
        } if rename.apply(request.as_bytes()) == wanted.as_bytes() => exporter.upgrade(),
        _ => None,
    });
    let Some(exporter) = exporter else {
        return Route::Unreachable;
    };
    if Arc::ptr_eq(&exporter, importer) {
        return Route::Local;
    }
    // Deliveries are published in the origin account; the stream import must bring them
    // into the importer under the same subject, where the source listens.
    let prefix = if ext.deliver.is_empty() {
        "$JS"
    } else {
        ext.deliver.trim_end_matches('.')
    };
    let deliver = format!("{prefix}.{}.x", if mirror { "M" } else { "S" });
    let back = exporter
        .sublist
        .matches(deliver.as_bytes())
        .psubs
        .iter()
        .any(|s| match &s.0.target {
            SubTarget::StreamImport { into, rename } => {
                into.upgrade().is_some_and(|i| Arc::ptr_eq(&i, importer))
                    && rename.apply(deliver.as_bytes()) == deliver.as_bytes()
            }
            _ => false,
        });
    if back {
        Route::Account(exporter)
    } else {
        Route::Unreachable
    }
}

/// One external mirror or source of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalCursor {
    /// The sourcing stream.
    pub stream: String,
    /// Which cursor: `None` for the mirror, else the index in `sources`.
    pub slot: Option<usize>,
    /// Its config.
    pub source: StreamSource,
}

/// What an external cursor reads from, as the shell resolved it.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// No path to the origin: the cursor stays inactive.
    Unreachable,
    /// The origin account has no JetStream.
    NoJetStream,
    /// A stream of the sourcing account itself.
    Local,
    /// Another account's JetStream.
    Other(&'a JetStream),
}

impl JetStream {
    /// This server's JetStream domain, for [`resolve`].
    pub fn domain(&self) -> Option<&str> {
        self.settings.domain.as_deref()
    }

    /// Does any stream mirror or source from outside the account?
    pub fn has_external_sources(&self) -> bool {
        self.streams.values().any(|e| {
            let s = &e.stream;
            s.mirror
                .iter()
                .chain(&s.sources)
                .any(|c| c.cfg.external.is_some())
        })
    }

    /// The external cursors, in stream order.
    pub fn external_cursors(&self) -> Vec<ExternalCursor> {
        let mut out = Vec::new();
        for (name, e) in &self.streams {
            let slots = e.stream.mirror.iter().map(|m| (None, m));
            let slots = slots.chain(
                e.stream
                    .sources
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (Some(i), s)),
            );
            // A durable external source (through a consumer of another account) is not
            // read yet: it stays inactive.
            let external =
                |st: &SourceState| st.cfg.external.is_some() && st.cfg.consumer.is_none();
            for (slot, st) in slots.filter(|(_, st)| external(st)) {
                out.push(ExternalCursor {
                    stream: name.clone(),
                    slot,
                    source: st.cfg.clone(),
                });
            }
        }
        out
    }

    /// Copies one batch of what the origin of `c` committed (`sync`: synced; otherwise
    /// acknowledged) into its stream. Returns the republished copies and whether anything
    /// was stored (the stream then waits for a commit).
    pub fn pull_external(
        &mut self,
        c: &ExternalCursor,
        origin: Origin<'_>,
        now: UnixNanos,
        sync: bool,
    ) -> (Vec<Delivery>, bool) {
        let mut out = Vec::new();
        // Out of the map while it reads a stream of the same account.
        let Some(mut target) = self.streams.remove(&c.stream) else {
            return (out, false);
        };
        let origin_stream = match origin {
            Origin::Unreachable => Err(None),
            Origin::NoJetStream => Err(Some(ApiError::new(
                503,
                10039,
                "JetStream not enabled for account",
            ))),
            Origin::Local => self.streams.get(&c.source.name).ok_or(None),
            Origin::Other(js) => js.streams.get(&c.source.name).ok_or(None),
        }
        .map(|e| &e.stream);
        let origin_stream = match (origin, origin_stream) {
            (Origin::Local | Origin::Other(_), Err(None)) => Err(Some(err::stream_not_found())),
            (_, r) => r,
        };
        let stored = match slot_mut(&mut target, c) {
            None => false,
            Some(_) if c.source.name == c.stream && matches!(origin, Origin::Local) => false,
            Some(st) => match origin_stream {
                Ok(o) => {
                    st.error = None;
                    copy_batch(&mut target, c.slot, o, now, sync, &mut out)
                }
                Err(e) => {
                    st.error = e;
                    false
                }
            },
        };
        self.streams.insert(c.stream.clone(), target);
        if stored {
            self.mark_dirty(&c.stream);
        }
        (out, stored)
    }
}

/// The cursor `c` names, if the stream still has it with the same config.
fn slot_mut<'a>(e: &'a mut Entry, c: &ExternalCursor) -> Option<&'a mut SourceState> {
    let st = match c.slot {
        None => e.stream.mirror.as_mut(),
        Some(i) => e.stream.sources.get_mut(i),
    }?;
    (st.cfg == c.source).then_some(st)
}

/// One batch from `origin` into the cursor `slot` of `target` (the same steps as a cursor
/// within the account: committed messages only, resume after the last copy).
fn copy_batch(
    target: &mut Entry,
    slot: Option<usize>,
    origin: &Stream,
    now: UnixNanos,
    sync: bool,
    out: &mut Vec<Delivery>,
) -> bool {
    let is_mirror = slot.is_none();
    let st = match slot {
        None => target.stream.mirror.as_ref(),
        Some(i) => target.stream.sources.get(i),
    };
    let Some(mut st) = st.cloned() else {
        return false;
    };
    let ostore = origin.store.as_ref();
    let committed = if sync {
        ostore.synced_through()
    } else {
        ostore.state().last_seq
    };
    let next = match st.next {
        // The origin was deleted and created again: a source starts over on the new one.
        Some(n) if !is_mirror && ostore.state().last_seq + 1 < n => start_of(&st.cfg, ostore),
        Some(n) => n,
        None if is_mirror => match target.stream.store.state().last_seq {
            0 => start_of(&st.cfg, ostore),
            last => last + 1,
        },
        None => resume_point(target.stream.store.as_ref(), &st.iname)
            .map_or_else(|| start_of(&st.cfg, ostore), |s| s + 1),
    };
    let (batch, cursor) = st.read_batch(ostore, next, committed, now);
    let (done, stored) = store_batch(
        &mut target.stream,
        &mut target.consumers,
        &mut st,
        &batch,
        is_mirror,
        cursor,
        now,
        out,
    );
    st.next = Some(done);
    st.lag = ostore
        .state()
        .last_seq
        .saturating_sub(done.saturating_sub(1));
    let slot = match slot {
        None => target.stream.mirror.as_mut(),
        Some(i) => target.stream.sources.get_mut(i),
    };
    if let Some(s) = slot {
        *s = st;
    }
    stored
}

#[cfg(test)]
mod tests;
