//! Mirrors and sources between the streams of one account (Go: server/stream.go
//! setupMirrorConsumer, processInboundMirrorMsg, processInboundSourceMsg).
//!
//! nats-server runs an internal consumer per source. Here the origin's store is in the same
//! process, so a source is a cursor: after each group commit the service calls
//! `JetStream::pull_sources`, which copies what the origins hold *and have committed*
//! (synced, or acknowledged in `sync_interval` mode) past each cursor into the sourcing
//! streams. A cursor whose origin does not exist yet waits for it.
//!
//! * A mirror stores each message under its origin sequence (gaps are skipped) with the
//!   origin's headers and timestamp.
//! * A source stores each message as a new publish, with `Nats-Stream-Source:
//!   <origin> <seq> <filter> <destination>` (nats-server 2.10's form) instead of the origin's
//!   `Nats-Stream-Source` and `Nats-Expected-*` lines. De-duplication applies.
//!
//! Where a source resumes after a restart: a mirror after its last sequence; a source after
//! the last message carrying its own `Nats-Stream-Source`.
//!
//! A mirror or source that names a durable consumer of its origin (nats-server 2.14) reads
//! through that consumer instead of a cursor of its own, and acks it as its copies become
//! durable (see [`durable`]).

use serde_json::{json, Value};

use super::api::{err, ApiError, StreamConfig, StreamSource};
use super::consumer::Delivery;
use super::service::JetStream;
use super::store::{StoredMsg, StreamStore, UnixNanos};
use super::stream::{source_iname, Stream, SOURCE_HEADER};
use super::transform::{apply_first, Transform};
use crate::proto::headers::Headers;

pub mod durable;
pub mod external;
pub mod remote;
pub mod replicated;

/// Most messages one source copies per round; the rest follow in the next rounds.
const BATCH: usize = 1024;

/// One mirror or source of a stream and how far it got.
#[derive(Debug, Clone)]
pub struct SourceState {
    /// Its config.
    pub(crate) cfg: StreamSource,
    /// Its identity (Go: iname).
    pub(crate) iname: String,
    /// Filters and rewrites; empty: everything, unchanged.
    transforms: Vec<Transform>,
    /// The next origin sequence to look at; `None` until the start is known.
    next: Option<u64>,
    /// Origin messages not yet copied, at the last look.
    lag: u64,
    /// When the origin was last seen.
    last_seen: Option<UnixNanos>,
    /// The last round stopped at its batch limit: more is waiting.
    more: bool,
    /// Why an external origin (or a durable source's consumer) cannot be read
    /// (Go: `StreamSourceInfo.error`).
    error: Option<ApiError>,
    /// Durable sources: messages taken from the consumer and not stored yet.
    held: Vec<(StoredMsg, String)>,
    /// Durable sources: (origin sequence, sourcing-stream sequence) pairs: once the latter
    /// is durable, the consumer is acked up to the former.
    unacked: Vec<(u64, u64)>,
    /// Durable sources: the last origin sequence copied.
    high: u64,
    /// An external origin reached over the network (see [`remote`]).
    remote: Option<Box<remote::Remote>>,
}

impl SourceState {
    /// A fresh cursor.
    pub fn new(cfg: StreamSource) -> Self {
        let transforms = if cfg.subject_transforms.is_empty() {
            Transform::new(&cfg.filter_subject, "")
                .into_iter()
                .collect()
        } else {
            cfg.subject_transforms
                .iter()
                .filter_map(|t| Transform::new(&t.src, &t.dest).ok())
                .collect()
        };
        Self {
            iname: source_iname(&cfg),
            cfg,
            transforms,
            next: None,
            lag: 0,
            last_seen: None,
            more: false,
            error: None,
            held: Vec::new(),
            unacked: Vec::new(),
            high: 0,
            remote: None,
        }
    }

    /// The subject a message of the origin is stored under, `None` if it is filtered out.
    /// Reads the next batch from `origin`, starting at `next` and never past `committed`:
    /// the messages this cursor takes (with the subjects they are stored under) and where
    /// the read stopped.
    pub(crate) fn read_batch(
        &mut self,
        origin: &dyn StreamStore,
        next: u64,
        committed: u64,
        now: UnixNanos,
    ) -> (Vec<(StoredMsg, String)>, u64) {
        let single = match self.transforms.as_slice() {
            [t] => t.source().to_owned(),
            _ => String::new(),
        };
        let mut batch = Vec::new();
        let mut cursor = next;
        while batch.len() < BATCH && cursor <= committed {
            match origin.load_next_msg(&single, cursor) {
                Ok(m) if m.seq <= committed => {
                    cursor = m.seq + 1;
                    if let Some(subj) = self.map_subject(&m.subject) {
                        batch.push((m, subj));
                    }
                }
                _ => break,
            }
        }
        self.more = batch.len() >= BATCH;
        self.last_seen = Some(now);
        (batch, cursor)
    }

    fn map_subject(&self, subj: &str) -> Option<String> {
        if self.transforms.is_empty() {
            return Some(subj.to_owned());
        }
        apply_first(&self.transforms, subj)
    }

    /// Go: `StreamSourceInfo`.
    pub fn info(&self, now: UnixNanos) -> Value {
        let active = self.last_seen.map_or(-1, |t| {
            i64::try_from(now.saturating_sub(t)).unwrap_or(i64::MAX)
        });
        let mut v = json!({"name": self.cfg.name, "lag": self.lag, "active": active});
        if !self.cfg.filter_subject.is_empty() {
            v["filter_subject"] = json!(self.cfg.filter_subject);
        }
        if !self.cfg.subject_transforms.is_empty() {
            v["subject_transforms"] = json!(self.cfg.subject_transforms);
        }
        if let Some(e) = &self.cfg.external {
            v["external"] = json!(e);
        }
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        v
    }
}

/// RFC 3339 (as Go's `time.Time` JSON) to Unix nanoseconds.
pub(crate) fn parse_time(s: &str) -> Option<UnixNanos> {
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        let digits = &frac[..end.min(9)];
        nanos = format!("{digits:0<9}").parse().ok()?;
        rest = &frac[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (num(rest_at(s, o, 1)..rest_at(s, o, 3))? * 3600
                + num(rest_at(s, o, 4)..rest_at(s, o, 6))? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos as u64)
}

/// Index in `s` of byte `i` of its suffix `o`.
fn rest_at(s: &str, o: &str, i: usize) -> usize {
    s.len() - o.len() + i
}

/// Where a cursor starts when nothing says otherwise.
fn start_of(cfg: &StreamSource, origin: &dyn StreamStore) -> u64 {
    if cfg.opt_start_seq > 0 {
        return cfg.opt_start_seq;
    }
    if let Some(t) = cfg.opt_start_time.as_deref().and_then(parse_time) {
        let mut seq = origin.state().first_seq;
        while let Ok(m) = origin.load_next_msg("", seq) {
            if m.ts >= t {
                return m.seq;
            }
            seq = m.seq + 1;
        }
        return seq;
    }
    1
}

/// The last origin sequence a source stored in `target` (its own `Nats-Stream-Source`).
fn resume_point(target: &dyn StreamStore, iname: &str) -> Option<u64> {
    let mut found = None;
    let mut seq = target.state().first_seq;
    while let Ok(m) = target.load_next_msg("", seq) {
        seq = m.seq + 1;
        let Some(v) = Headers::parse(&m.headers).ok().and_then(|h| {
            h.get(SOURCE_HEADER)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        }) else {
            continue;
        };
        let f: Vec<&str> = v.split(' ').collect();
        if f.len() >= 4 && format!("{} {} {}", f[0], f[2], f[3]) == iname {
            found = f[1].parse().ok();
        }
    }
    found
}

/// Stores a batch read from an origin into `target`: a mirror keeps the origin's sequences
/// (skipping what it already holds), a source publishes each message anew under its
/// `Nats-Stream-Source` header. Returns where the cursor goes next (`cursor`, or the first
/// message that could not be stored, to retry later) and whether anything was stored.
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_batch(
    stream: &mut Stream,
    consumers: &mut std::collections::BTreeMap<String, super::consumer::Consumer>,
    st: &mut SourceState,
    batch: &[(StoredMsg, String)],
    mirror: bool,
    cursor: u64,
    now: UnixNanos,
    out: &mut Vec<Delivery>,
) -> (u64, bool) {
    let mut stored = false;
    for (m, subj) in batch {
        let r = if mirror && m.seq <= stream.store.state().last_seq {
            Ok((None, 0))
        } else if mirror {
            stream.store_mirrored(m, subj).map(|r| (r, m.seq))
        } else {
            let hdr = sourced_headers(m, &st.iname);
            stream
                .store_sourced(subj, &hdr, &m.payload, now)
                .map(|s| (s.republish, if s.duplicate { 0 } else { s.seq }))
        };
        match r {
            Ok((republish, seq)) => {
                out.extend(republish);
                if seq > 0 {
                    stored = true;
                    for c in consumers.values_mut() {
                        c.on_stored(subj, seq);
                    }
                }
            }
            Err(e) => {
                // Go: a full sourcing stream (discard new) or a sealed one retries later
                // from the message it could not store.
                tracing::debug!("JetStream: sourcing {}: {e:?}", st.cfg.name);
                st.more = false;
                return (m.seq, stored);
            }
        }
    }
    (cursor, stored)
}

/// The header block of a sourced message: the origin's, without its source and
/// expectation lines, plus this source's line.
fn sourced_headers(m: &StoredMsg, iname: &str) -> Vec<u8> {
    let mut h = Headers::new();
    if let Ok(orig) = Headers::parse(&m.headers) {
        for (n, v) in orig.iter() {
            let expected = n.len() >= 14 && n[..14].eq_ignore_ascii_case("Nats-Expected-");
            if !expected && !n.eq_ignore_ascii_case(SOURCE_HEADER) {
                let _ = h.append(n, v.to_vec());
            }
        }
    }
    let mut f = iname.splitn(2, ' ');
    let (name, rest) = (f.next().unwrap_or_default(), f.next().unwrap_or_default());
    // Go 2.12: `<origin> <seq> <filters> <dests> <original subject>`; the last field lets an
    // aggregate counter tell the origin's subjects apart after a transform.
    let _ = h.append(
        SOURCE_HEADER,
        format!("{name} {} {rest} {}", m.seq, m.subject),
    );
    h.to_bytes().to_vec()
}

impl JetStream {
    /// Account-level checks of a config (Go: checkStreamCfg's look at the other streams):
    /// origins' message sizes and cycles through sources and mirrors.
    pub(crate) fn check_sourcing(&self, c: &StreamConfig) -> Result<(), ApiError> {
        let origin = |n: &str| self.streams.get(n).map(|e| &e.stream.config);
        let too_small = |o: &StreamConfig| {
            c.max_msg_size > 0 && o.max_msg_size > 0 && c.max_msg_size < o.max_msg_size
        };
        if let Some(m) = &c.mirror {
            if m.external.is_none() && origin(&m.name).is_some_and(too_small) {
                return Err(err::mirror_max_msg_size());
            }
        }
        for s in &c.sources {
            if s.external.is_none() && origin(&s.name).is_some_and(too_small) {
                return Err(err::source_max_msg_size());
            }
        }
        // Walk the sourcing graph from the new config; coming back to a visited stream
        // whose subjects the source would pick up again is a cycle.
        let cycle = || Err(err::stream_invalid_config("detected cycle"));
        let mut visited: Vec<String> = Vec::new();
        let mut todo: Vec<StreamConfig> = vec![c.clone()];
        while let Some(cfg) = todo.pop() {
            visited.push(cfg.name.clone());
            for s in cfg.sources.iter().filter(|s| s.external.is_none()) {
                if visited.contains(&s.name) {
                    let hits = s.filter_subject.is_empty()
                        || cfg.subjects.iter().any(|x| {
                            crate::subject::overlaps(x.as_bytes(), s.filter_subject.as_bytes())
                        });
                    if hits {
                        return cycle();
                    }
                } else if let Some(o) = origin(&s.name) {
                    todo.push(o.clone());
                }
            }
            if let Some(m) = cfg.mirror.as_ref().filter(|m| m.external.is_none()) {
                if visited.contains(&m.name) {
                    return cycle();
                }
                if let Some(o) = origin(&m.name) {
                    todo.push(o.clone());
                }
            }
        }
        Ok(())
    }

    /// Copies committed origin messages into mirrors and sourcing streams. `sync`: the
    /// commit synced the stores (otherwise acknowledged is committed). Returns the
    /// republished copies and whether anything was stored.
    pub(crate) fn pull_sources(&mut self, now: UnixNanos, sync: bool) -> (Vec<Delivery>, bool) {
        let mut out = Vec::new();
        let mut stored_any = false;
        self.bind_source_consumers();
        let names: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, e)| e.stream.mirror.is_some() || !e.stream.sources.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let n_sources = self
                .streams
                .get(&name)
                .map_or(0, |e| e.stream.sources.len());
            let mut stored = self.pull_one(&name, None, now, sync, &mut out);
            for i in 0..n_sources {
                stored |= self.pull_one(&name, Some(i), now, sync, &mut out);
            }
            if stored {
                self.mark_dirty(&name);
                stored_any = true;
            }
        }
        (out, stored_any)
    }

    /// One cursor (`None`: the mirror) of stream `name`: one batch.
    fn pull_one(
        &mut self,
        name: &str,
        source: Option<usize>,
        now: UnixNanos,
        sync: bool,
        out: &mut Vec<Delivery>,
    ) -> bool {
        let Some(target) = self.streams.get(name) else {
            return false;
        };
        let st = match source {
            None => target.stream.mirror.as_ref(),
            Some(i) => target.stream.sources.get(i),
        };
        let Some(st) = st else {
            return false;
        };
        let mut st = st.clone();
        if st.cfg.external.is_some() || st.cfg.name == name {
            return false;
        }
        if st.cfg.consumer.is_some() {
            return self.pull_durable(name, source, st, now, sync, out);
        }
        let Some(origin) = self.streams.get(&st.cfg.name).map(|e| &e.stream) else {
            return false;
        };
        let ostore = origin.store.as_ref();
        let committed = if sync {
            ostore.synced_through()
        } else {
            ostore.state().last_seq
        };
        let next = match st.next {
            // The origin was deleted and created again: a source starts over on the new
            // one (a mirror cannot go back and waits for it to catch up).
            Some(n) if source.is_some() && ostore.state().last_seq + 1 < n => {
                start_of(&st.cfg, ostore)
            }
            Some(n) => n,
            None if source.is_none() => {
                let last = target.stream.store.state().last_seq;
                if last > 0 {
                    last + 1
                } else {
                    start_of(&st.cfg, ostore)
                }
            }
            None => match resume_point(target.stream.store.as_ref(), &st.iname) {
                Some(s) => s + 1,
                None => start_of(&st.cfg, ostore),
            },
        };
        let (batch, cursor) = st.read_batch(ostore, next, committed, now);
        let Some(target) = self.streams.get_mut(name) else {
            return false;
        };
        let (done, stored) = store_batch(
            &mut target.stream,
            &mut target.consumers,
            &mut st,
            &batch,
            source.is_none(),
            cursor,
            now,
            out,
        );
        st.next = Some(done);
        let last = self
            .streams
            .get(&st.cfg.name)
            .map_or(0, |e| e.stream.store.state().last_seq);
        st.lag = last.saturating_sub(done.saturating_sub(1));
        if let Some(target) = self.streams.get_mut(name) {
            let slot = match source {
                None => target.stream.mirror.as_mut(),
                Some(i) => target.stream.sources.get_mut(i),
            };
            if let Some(slot) = slot {
                *slot = st;
            }
        }
        stored
    }

    /// When sourcing has more to copy right away.
    pub(crate) fn sourcing_deadline(&self) -> Option<UnixNanos> {
        self.streams
            .values()
            .any(|e| {
                e.stream
                    .mirror
                    .iter()
                    .chain(&e.stream.sources)
                    .any(|s| s.more)
            })
            .then_some(0)
    }
}

impl Stream {
    /// Adds `mirror` / `sources` to a stream info document.
    pub(crate) fn sourcing_info(&self, v: &mut Value, now: UnixNanos) {
        if let Some(m) = &self.mirror {
            v["mirror"] = m.info(now);
        }
        if !self.sources.is_empty() {
            v["sources"] = Value::Array(self.sources.iter().map(|s| s.info(now)).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2023-11-14T22:13:2é.5Z"), None);
        assert_eq!(parse_time("2023-11-14T22:13:20.5+01"), None);
    }

    #[test]
    fn source_header_replaces_origin_lines() {
        let m = StoredMsg {
            seq: 7,
            ts: 0,
            subject: "a".into(),
            headers: bytes::Bytes::from_static(
                b"NATS/1.0\r\nX: 1\r\nNats-Expected-Stream: O\r\nNats-Stream-Source: Z 3 > >\r\n\r\n",
            ),
            payload: bytes::Bytes::new(),
        };
        let h = Headers::parse(&sourced_headers(&m, "ORIGIN > >")).unwrap();
        assert_eq!(h.get("X"), Some(&b"1"[..]));
        assert_eq!(h.get("Nats-Expected-Stream"), None);
        assert_eq!(h.get(SOURCE_HEADER), Some(&b"ORIGIN 7 > > a"[..]));
    }
}
