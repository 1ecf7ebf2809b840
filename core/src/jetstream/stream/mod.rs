//! One stream: its config, its store, de-duplication, the publish checks, the subject
//! transform, republish and per-message TTL (Go: server/stream.go processJetStreamMsg).
//!
//! * `config`: the config checks and the store-level part of a config.
//! * Mirrors and sources are driven by the service (see `super::sourcing`); this module
//!   stores what they bring in ([`Stream::store_sourced`], [`Stream::store_mirrored`]).

mod batch;
mod config;
mod counter;
mod dedupe;
mod features;
mod markers;
mod schedule;

pub use batch::{is_batched, Batched, BATCH_COMMIT, BATCH_ID, BATCH_SEQ};
pub use config::{check_config, check_update, source_iname, store_config, validate_name};
pub use counter::{INCR, SOURCES as COUNTER_SOURCES};
pub use dedupe::MSG_ID;
pub(crate) use features::persist_async;
pub use features::persist_mode_is_default;
pub use markers::{Expired, Fired, MARKER_REASON};

use super::api::{err, rfc3339, ApiError, StreamConfig, StreamStateJson};
use super::consumer::Delivery;
use super::sourcing::SourceState;
use super::store::{StoreError, StoredMsg, StreamStore, UnixNanos};
use super::transform::Transform;
use super::ttl::{self, Ttl, TtlIndex};
use crate::proto::headers::Headers;
use crate::subject;

/// The header a sourced message carries: origin, sequence, filters, destinations.
pub const SOURCE_HEADER: &str = "Nats-Stream-Source";

/// Maps a store failure on the publish path to its API error.
pub fn store_error(e: &StoreError) -> ApiError {
    match e {
        StoreError::InsufficientResources => err::storage_exceeded(),
        StoreError::MsgTooLarge => err::msg_too_large(),
        StoreError::MaxMsgs | StoreError::MaxBytes | StoreError::MaxMsgsPerSubject => {
            ApiError::new(503, 10077, e.to_string())
        }
        _ => err::store_failed(&e.to_string()),
    }
}

/// A stored, not yet acknowledged publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Assigned sequence.
    pub seq: u64,
    /// Was it a duplicate (nothing stored; `seq` is the original's)?
    pub duplicate: bool,
    /// The copy `republish` sends, if any.
    pub republish: Option<Delivery>,
    /// A counter's new total, for the PubAck's `val`.
    pub val: Option<String>,
}

/// A stream.
pub struct Stream {
    /// Its config.
    pub config: StreamConfig,
    /// Its store.
    pub store: Box<dyn StreamStore + Send>,
    /// Creation time.
    pub created: UnixNanos,
    /// The duplicate window (`Nats-Msg-Id`s seen), rebuilt from the store when opened.
    dedupe: dedupe::Dedupe,
    /// The compiled `subject_transform`.
    transform: Option<Transform>,
    /// The compiled `republish` transform.
    republish: Option<Transform>,
    /// Messages with a `Nats-TTL`, by expiry.
    ttl: TtlIndex,
    /// Progress of the mirror, when this stream is one.
    pub(crate) mirror: Option<SourceState>,
    /// Progress of each source.
    pub(crate) sources: Vec<SourceState>,
    /// Atomic batches being staged.
    batches: batch::Batches,
    /// Message schedules waiting to fire.
    schedules: schedule::Schedules,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("config", &self.config)
            .finish()
    }
}

/// Header lookups the publish path makes (Go: getHeader and friends).
struct Hdr(Option<Headers>);

impl Hdr {
    fn parse(hdr: &[u8]) -> Self {
        Self(if hdr.is_empty() {
            None
        } else {
            Headers::parse(hdr).ok()
        })
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
    }
}

impl Stream {
    /// A stream over an opened store.
    pub fn new(
        config: StreamConfig,
        store: Box<dyn StreamStore + Send>,
        created: UnixNanos,
    ) -> Self {
        let ttl = if config.allow_msg_ttl {
            TtlIndex::rebuild(store.as_ref())
        } else {
            TtlIndex::default()
        };
        let schedules = if config.allow_msg_schedules {
            schedule::Schedules::rebuild(store.as_ref())
        } else {
            schedule::Schedules::default()
        };
        let mut s = Self {
            config,
            store,
            created,
            dedupe: dedupe::Dedupe::default(),
            transform: None,
            republish: None,
            ttl,
            mirror: None,
            sources: Vec::new(),
            batches: batch::Batches::new(),
            schedules,
        };
        s.compile();
        s.drop_torn_batch();
        s.rebuild_dedupe();
        s
    }

    /// Rebuilds the duplicate window from the stored messages' `Nats-Msg-Id` headers and
    /// store times (Go: rebuildDedupe). Called whenever a stream is opened over a store that
    /// may hold messages (recovery, restore); a replicated stream calls it once its store
    /// has caught up with the log.
    pub fn rebuild_dedupe(&mut self) {
        self.dedupe = dedupe::Dedupe::rebuild(self.store.as_ref(), self.config.duplicate_window);
    }

    /// Builds the transforms and the sourcing states from the config, keeping the progress
    /// of the sources that did not change.
    fn compile(&mut self) {
        let c = &self.config;
        self.transform = c
            .subject_transform
            .as_ref()
            .and_then(|t| Transform::new(&t.src, &t.dest).ok());
        self.republish = c
            .republish
            .as_ref()
            .and_then(|r| Transform::new(&r.src, &r.dest).ok());
        let mut old = std::mem::take(&mut self.sources);
        self.sources = c
            .sources
            .iter()
            .map(|src| {
                let iname = source_iname(src);
                match old.iter().position(|o| o.iname == iname) {
                    Some(i) => old.swap_remove(i),
                    None => SourceState::new(src.clone()),
                }
            })
            .collect();
        self.mirror = match (self.mirror.take(), &c.mirror) {
            (Some(m), Some(cfg)) if m.cfg == *cfg => Some(m),
            (_, Some(cfg)) => Some(SourceState::new(cfg.clone())),
            (_, None) => None,
        };
    }

    /// State as JSON.
    pub fn state_json(&self, consumers: usize) -> StreamStateJson {
        let s = self.store.state();
        // Go: a store that never held a message reports first_seq 0 (its state starts zeroed),
        // unless the config set where it starts.
        let untouched = s.last_seq == 0 && self.config.first_seq == 0;
        StreamStateJson {
            messages: s.msgs,
            bytes: s.bytes,
            first_seq: if untouched { 0 } else { s.first_seq },
            first_ts: rfc3339(s.first_ts),
            last_seq: s.last_seq,
            last_ts: rfc3339(s.last_ts),
            num_deleted: s.num_deleted,
            num_subjects: s.num_subjects,
            consumer_count: consumers as u64,
        }
    }

    /// Does this stream capture `subject`?
    pub fn captures(&self, subj: &str) -> bool {
        self.config
            .subjects
            .iter()
            .any(|f| subject::matches(f.as_bytes(), subj.as_bytes()))
    }

    /// Stores a published message after the subject transform, the expected-*, TTL and
    /// rollup checks (Go: processJetStreamMsg). The caller acknowledges once the store
    /// synced `seq`.
    pub fn publish(
        &mut self,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Stored, ApiError> {
        let transformed = self.transform.as_ref().and_then(|t| t.apply(subj));
        let subj = transformed.as_deref().unwrap_or(subj);
        self.process(subj, hdr, payload, now, false)
    }

    /// Stores a message a source brought in; `hdr` already carries its
    /// [`SOURCE_HEADER`] and no `Nats-Expected-*` lines.
    pub fn store_sourced(
        &mut self,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Stored, ApiError> {
        self.process(subj, hdr, payload, now, true)
    }

    fn process(
        &mut self,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
        sourced: bool,
    ) -> Result<Stored, ApiError> {
        if self.config.sealed {
            return Err(err::sealed());
        }
        let h = Hdr::parse(hdr);
        let incr = counter::check(self.config.allow_msg_counter, &h, payload, sourced)?;
        let scheduled = if sourced {
            None
        } else {
            let c = &self.config;
            schedule::check(
                c.allow_msg_schedules,
                c.allow_msg_ttl,
                |s| self.captures(s),
                subj,
                &h,
                hdr,
            )?
        };
        let (hdr, h) = match &scheduled {
            Some(nh) => (&nh[..], Hdr::parse(nh)),
            None => (hdr, h),
        };
        self.dedupe.prune(now, self.config.duplicate_window);
        let msg_id = h.get(MSG_ID).filter(|s| !s.is_empty());
        if let Some(id) = &msg_id {
            if let Some(seq) = self.dedupe.check(id) {
                return Ok(Stored {
                    seq,
                    duplicate: true,
                    republish: None,
                    val: None,
                });
            }
        }
        if let Some(s) = h.get("Nats-Expected-Stream") {
            if s != self.config.name {
                return Err(err::stream_not_match());
            }
        }
        // Go: a TTL on a stream without allow_msg_ttl refuses the message, unless it was
        // sourced (the origin accepted it).
        let ttl = match h.get(ttl::HEADER) {
            Some(v) => ttl::parse(&v)?,
            None => None,
        };
        if ttl.is_some() && !sourced && !self.config.allow_msg_ttl {
            return Err(err::msg_ttl_disabled());
        }
        let state = self.store.state();
        if let Some(v) = h.get("Nats-Expected-Last-Sequence") {
            let want: u64 = v.parse().map_err(|_| err::bad_request())?;
            if want != state.last_seq {
                return Err(err::wrong_last_sequence(state.last_seq));
            }
        }
        if let Some(v) = h.get("Nats-Expected-Last-Subject-Sequence") {
            let want: u64 = v.parse().map_err(|_| err::bad_request())?;
            let last = self.store.load_last_msg(subj).map(|m| m.seq).unwrap_or(0);
            if want != last {
                return Err(err::wrong_last_sequence(last));
            }
        }
        if let Some(v) = h.get("Nats-Expected-Last-Msg-Id") {
            if v != self.dedupe.last_msg_id {
                return Err(err::wrong_last_msg_id(&self.dedupe.last_msg_id));
            }
        }
        let rollup = h.get("Nats-Rollup");
        if let Some(r) = &rollup {
            if !self.config.allow_rollup_hdrs {
                return Err(err::rollup_failed("rollup not permitted"));
            }
            if r != "sub" && r != "all" {
                return Err(err::rollup_failed(&format!("rollup value invalid: {r:?}")));
            }
        }
        let counted = match incr {
            Some(n) => Some(self.count(subj, hdr, payload, n)?),
            None => None,
        };
        let (hdr, payload) = match &counted {
            Some(c) => (&c.hdr[..], &c.payload[..]),
            None => (hdr, payload),
        };
        let prev = self.last_of_subject(subj);
        let (seq, ts) = self
            .store
            .store_msg(subj, hdr, payload, now)
            .map_err(|e| store_error(&e))?;
        match rollup.as_deref() {
            Some("sub") => {
                let _ = self.store.purge_ex(subj, 1, 0);
            }
            Some("all") => {
                let _ = self.store.compact(seq);
            }
            _ => {}
        }
        match msg_id {
            Some(id) => self.dedupe.record(&id, seq, ts),
            None => self.dedupe.last_msg_id.clear(),
        }
        self.track_schedule(seq, ts, hdr);
        if !sourced {
            self.purge_schedule(&h);
        }
        let republish = self.after_store(seq, ts, subj, hdr, payload, ttl, prev);
        Ok(Stored {
            seq,
            duplicate: false,
            republish,
            val: counted.map(|c| c.val),
        })
    }

    /// The last sequence stored on exactly `subj`, when republish needs it
    /// (Go: `Nats-Last-Sequence`, for gap detection by lightweight clients).
    fn last_of_subject(&self, subj: &str) -> u64 {
        if self.republish.as_ref().is_none_or(|r| !r.matches(subj)) {
            return 0;
        }
        self.store.load_last_msg(subj).map_or(0, |m| m.seq)
    }

    /// Stores a mirrored message under its origin sequence (Go: processInboundMirrorMsg).
    /// Older sequences are ignored; a gap is skipped.
    pub fn store_mirrored(
        &mut self,
        m: &StoredMsg,
        subj: &str,
    ) -> Result<Option<Delivery>, ApiError> {
        if m.seq <= self.store.state().last_seq {
            return Ok(None);
        }
        self.skip_to(m.seq, m.ts)?;
        let ttl = ttl::from_headers(&m.headers).unwrap_or(None);
        let prev = self.last_of_subject(subj);
        let (seq, ts) = self
            .store
            .store_msg(subj, &m.headers, &m.payload, m.ts)
            .map_err(|e| store_error(&e))?;
        // A mirror copies its origin as it is (the origin already judged the ids), but keeps
        // the window a rebuild after a restart would find, if it has one.
        let window = self.config.duplicate_window;
        if window > 0 {
            self.dedupe.prune(ts, window);
            match dedupe::msg_id_of(&m.headers) {
                Some(id) => self.dedupe.record(&id, seq, ts),
                None => self.dedupe.last_msg_id.clear(),
            }
        }
        Ok(self.after_store(seq, ts, subj, &m.headers, &m.payload, ttl, prev))
    }

    /// Stores a record a replicated stream's leader already decided (sequence, time, final
    /// subject, headers and payload; `rollup` and `sourced` as its publish found them) and
    /// does what [`Stream::process`] does after storing, judging nothing again
    /// (see `cluster::replica`).
    pub(crate) fn store_decided(
        &mut self,
        m: &StoredMsg,
        rollup: Option<&str>,
        sourced: bool,
    ) -> Result<(), ApiError> {
        self.store_mirrored(m, &m.subject)?;
        match rollup {
            Some("sub") => {
                let _ = self.store.purge_ex(&m.subject, 1, 0);
            }
            Some("all") => {
                let _ = self.store.compact(m.seq);
            }
            _ => {}
        }
        self.track_schedule(m.seq, m.ts, &m.headers);
        if !sourced {
            self.purge_schedule(&Hdr::parse(&m.headers));
        }
        Ok(())
    }

    /// Makes `seq` the next sequence the store assigns: the sequences in between are skipped
    /// in one store operation, however many (Go: processInboundMirrorMsg → SkipMsgs).
    pub(crate) fn skip_to(&mut self, seq: u64, ts: UnixNanos) -> Result<(), ApiError> {
        let last = self.store.state().last_seq;
        if seq <= last + 1 {
            return Ok(());
        }
        self.store
            .skip_msgs(last + 1, seq - last - 1, ts)
            .map_err(|e| store_error(&e))
    }

    /// TTL bookkeeping and the republished copy of a message just stored.
    #[allow(clippy::too_many_arguments)]
    fn after_store(
        &mut self,
        seq: u64,
        ts: UnixNanos,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
        ttl: Option<Ttl>,
        prev: u64,
    ) -> Option<Delivery> {
        if let (true, Some(Ttl::Secs(s))) = (self.config.allow_msg_ttl, ttl) {
            self.ttl.track(seq, ts, s);
        }
        let dest = self.republish.as_ref()?.apply(subj)?;
        if !subject::is_valid_literal_subject(dest.as_bytes()) {
            return None;
        }
        let headers_only = self
            .config
            .republish
            .as_ref()
            .is_some_and(|r| r.headers_only);
        let mut h = if hdr.is_empty() {
            "NATS/1.0\r\n".to_owned()
        } else {
            let s = String::from_utf8_lossy(hdr);
            s.trim_end_matches("\r\n").to_owned() + "\r\n"
        };
        h.push_str(&format!(
            "Nats-Stream: {}\r\nNats-Subject: {subj}\r\nNats-Sequence: {seq}\r\nNats-Time-Stamp: {}\r\nNats-Last-Sequence: {prev}\r\n",
            self.config.name,
            rfc3339(ts),
        ));
        if headers_only {
            h.push_str(&format!("Nats-Msg-Size: {}\r\n", payload.len()));
        }
        h.push_str("\r\n");
        Some(Delivery {
            subject: dest,
            reply: None,
            headers: h.into_bytes(),
            payload: if headers_only {
                Vec::new()
            } else {
                payload.to_vec()
            },
            shown_subject: None,
        })
    }

    /// Removes the messages whose `Nats-TTL` ran out by `now`; returns how many went.
    pub fn expire_ttl(&mut self, now: UnixNanos) -> u64 {
        let mut n = 0;
        for seq in self.ttl.take_due(now) {
            if let Ok(true) = self.store.remove_msg(seq) {
                n += 1;
            }
        }
        n
    }

    /// When the next `Nats-TTL` runs out or the next schedule fires: when
    /// [`Stream::expire`] has work.
    pub fn next_ttl(&self) -> Option<UnixNanos> {
        [self.ttl.next(), self.schedules.next()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Applies an updated config (Go: stream.update; see [`check_update`]).
    pub fn update(&mut self, c: StreamConfig) -> Result<(), ApiError> {
        check_update(&self.config, &c)?;
        self.store
            .update_config(store_config(&c))
            .map_err(|e| store_error(&e))?;
        let ttl_on = c.allow_msg_ttl && !self.config.allow_msg_ttl;
        let schedules_on = c.allow_msg_schedules && !self.config.allow_msg_schedules;
        self.config = c;
        if ttl_on {
            self.ttl = TtlIndex::rebuild(self.store.as_ref());
        }
        if schedules_on {
            self.schedules = schedule::Schedules::rebuild(self.store.as_ref());
        }
        self.compile();
        Ok(())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod dedupe_tests;

#[cfg(test)]
mod features_tests;

#[cfg(test)]
mod batch_tests;

#[cfg(test)]
mod schedule_tests;
