//! One consumer: what it delivered, what is unacknowledged, pull requests waiting
//! (Go: server/consumer.go). Pure: the store and the time come in as arguments, deliveries
//! go out as [`Delivery`] values the shell publishes.
//!
//! * [`config`]: defaults and validation of a [`ConsumerConfig`].
//! * `ack`: acknowledgements, redelivery timers, backoff, max deliver.
//! * `pull`: the pull request queue (`max_waiting`, `max_bytes`, `no_wait`, `expires`).
//! * `pace`: replay at the original pace and the push rate limit.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::api::{rfc3339, ConsumerConfig};
use super::store::{StoredMsg, StreamStore, UnixNanos};
use crate::rng::SplitMix64;
use crate::subject;

mod ack;
pub mod config;
mod pace;
mod priority;
mod pull;
mod reset;
mod snap;
mod source;
pub(crate) use snap::ConsumerSnap;
#[cfg(test)]
mod info_tests;
pub(crate) mod state;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod tests;

pub use ack::AckKind;
pub use config::{
    check_config, check_update, parse_time, DEFAULT_ACK_WAIT, DEFAULT_MAX_ACK_PENDING,
    DEFAULT_MAX_WAITING,
};
pub use pull::parse_next_request;

use pull::Waiting;

/// A message (or status) for the shell to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Where to.
    pub subject: String,
    /// Reply subject (the ack subject for messages).
    pub reply: Option<String>,
    /// Header block, empty when none.
    pub headers: Vec<u8>,
    /// Body.
    pub payload: Vec<u8>,
    /// The subject receivers see, when it is not `subject` (a consumer delivers a stored
    /// message to its deliver subject under the subject it was stored with).
    pub shown_subject: Option<String>,
}

impl Delivery {
    /// A header-only status message (`NATS/1.0 404 No Messages`).
    pub fn status(to: &str, status: &str, extra: &[(&str, String)]) -> Self {
        let mut h = format!("NATS/1.0 {status}\r\n");
        for (k, v) in extra {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n");
        Self {
            subject: to.to_owned(),
            reply: None,
            headers: h.into_bytes(),
            payload: Vec::new(),
            shown_subject: None,
        }
    }
}

/// Something a consumer did that nats-server announces with an advisory
/// (`$JS.EVENT.ADVISORY.CONSUMER.…`); the shell drains these with
/// [`super::service::JetStream::take_consumer_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// A message reached `max_deliver` and will not be delivered again
    /// (Go: `MAX_DELIVERIES` advisory).
    MaxDeliveries {
        /// Stream.
        stream: String,
        /// Consumer.
        consumer: String,
        /// The message.
        stream_seq: u64,
        /// Deliveries made.
        deliveries: u64,
    },
    /// A message was terminated with `+TERM` (Go: `MSG_TERMINATED` advisory).
    Terminated {
        /// Stream.
        stream: String,
        /// Consumer.
        consumer: String,
        /// The message.
        stream_seq: u64,
        /// Deliveries made.
        deliveries: u64,
    },
    /// The consumer was deleted after `inactive_threshold` without activity.
    Deleted {
        /// Stream.
        stream: String,
        /// Consumer.
        consumer: String,
    },
}

/// Most undrained events a consumer keeps.
pub const MAX_EVENTS: usize = 1024;

#[derive(Debug, Clone)]
struct Pending {
    cseq: u64,
    /// When the ack timer started (delivery, `+WPI`; moved by a delayed `-NAK`).
    sent: UnixNanos,
}

/// Where [`Consumer::next_msg`] found a message (to put it back when pacing holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Redelivery,
    Initial,
    Fresh,
}

/// A consumer's state.
#[derive(Debug, Clone)]
pub struct Consumer {
    /// Its name.
    pub name: String,
    /// Its stream.
    pub stream: String,
    /// Its config (defaults filled in).
    pub config: ConsumerConfig,
    /// Creation time.
    pub created: UnixNanos,
    /// The filters (`filter_subject` or `filter_subjects`); empty: everything.
    filters: Vec<String>,
    /// Next stream sequence to look at for fresh messages.
    next_sseq: u64,
    /// Sequences to deliver first (last-per-subject start).
    initial: VecDeque<u64>,
    /// Last consumer sequence handed out.
    cseq: u64,
    /// Last stream sequence handed out.
    last_sseq: u64,
    ack_floor_sseq: u64,
    ack_floor_cseq: u64,
    pending: BTreeMap<u64, Pending>,
    deliveries: BTreeMap<u64, u64>,
    redeliver: BTreeSet<u64>,
    waiting: VecDeque<Waiting>,
    redelivered_count: u64,
    /// Messages matching the filter not yet delivered.
    num_pending: u64,
    /// Pull: last request or delivery (Go: `waiting.last`), for `inactive_threshold`.
    last_activity: UnixNanos,
    /// A push consumer delivers only while someone listens on its deliver subject (the shell
    /// watches the interest, see [`Consumer::set_active`]).
    pub active: bool,
    /// Push: when the interest went away.
    inactive_since: Option<UnixNanos>,
    /// A durable mirror or source reads through it (ack policy `flow_control`): the sourcing
    /// stream takes its messages in-process (see `source`), none go to the deliver subject.
    pub(crate) sourced: bool,
    /// A durable mirror or source of another account read it since it was loaded (that
    /// account's rounds mark it; this one's do not see them).
    pub(crate) sourced_elsewhere: bool,
    /// When a push consumer last sent anything (for idle heartbeats).
    last_sent: UnixNanos,
    /// Replay `original`: messages up to this sequence keep their original gaps.
    replay_until: u64,
    /// Replay: store time and wall time of the last paced delivery.
    replay_last: Option<(UnixNanos, UnixNanos)>,
    /// Pacing (replay, rate limit) holds deliveries until then.
    hold_until: UnixNanos,
    /// Rate limit: theoretical arrival time of the next byte budget (GCRA).
    rl_tat: UnixNanos,
    /// Paused until (nats-server 2.11); 0 when not.
    paused_until: UnixNanos,
    /// Stream sequences acknowledged since the stream last looked (retention).
    acked: Vec<u64>,
    events: Vec<ConsumerEvent>,
    /// Pinned-client priority: the current pin, and where pin ids come from.
    pin: Option<priority::Pin>,
    pin_rng: SplitMix64,
    /// The delivery state changed since it was last saved (see `state`).
    state_dirty: bool,
    /// When it last delivered and when an ack last moved something (Go: `ldt`, `lat`;
    /// `last_active` in the info); 0: never since it was loaded.
    last_delivered_ts: UnixNanos,
    last_ack_ts: UnixNanos,
    /// The highest stream sequence it may hand out fresh (a replicated stream's leader caps
    /// it at the last committed message); `u64::MAX` otherwise.
    ceiling: u64,
}

/// A durable consumer's config and ack floor, saved on create and update and when the floor
/// moves. The rest of its delivery state has its own file (see `state`); should that be
/// lost, messages past this floor are delivered again (at-least-once, as after a lost ack).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsumerMeta {
    /// Name.
    pub name: String,
    /// Creation time.
    pub created: UnixNanos,
    /// Config.
    pub config: ConsumerConfig,
    /// Stream sequence everything at or below which is acknowledged.
    pub ack_floor_sseq: u64,
    /// Consumer sequence of that floor.
    pub ack_floor_cseq: u64,
}

/// FNV-1a, to seed a consumer's pin ids.
fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The first sequence stored at or after `t` (Go: GetSeqFromTime); `last + 1` if none.
fn seq_from_time(store: &dyn StreamStore, t: UnixNanos) -> u64 {
    let st = store.state();
    let mut seq = st.first_seq;
    while let Ok(m) = store.load_next_msg("", seq) {
        if m.ts >= t {
            return m.seq;
        }
        seq = m.seq + 1;
    }
    st.last_seq + 1
}

impl Consumer {
    /// A consumer positioned per its deliver policy on `store`
    /// (Go: selectStartingSeqNo).
    pub fn new(
        name: String,
        stream: String,
        config: ConsumerConfig,
        store: &dyn StreamStore,
        now: UnixNanos,
    ) -> Self {
        let st = store.state();
        let filters = config::filters_of(&config);
        let mut initial = VecDeque::new();
        let mut next_sseq = match config.deliver_policy.as_str() {
            "new" => st.last_seq + 1,
            "last" if filters.is_empty() => st.last_seq,
            "last" => filters
                .iter()
                .filter_map(|f| store.load_last_msg(f).ok().map(|m| m.seq))
                .max()
                .unwrap_or(st.first_seq),
            "by_start_sequence" => config.opt_start_seq,
            "by_start_time" => {
                let t = config
                    .opt_start_time
                    .as_deref()
                    .and_then(parse_time)
                    .unwrap_or(0);
                seq_from_time(store, t)
            }
            "last_per_subject" => {
                let mut seqs: Vec<u64> = filters
                    .iter()
                    .flat_map(|f| store.subjects_totals(f).into_keys())
                    .filter_map(|s| store.load_last_msg(&s).ok().map(|m| m.seq))
                    .collect();
                seqs.sort_unstable();
                seqs.dedup();
                initial.extend(seqs);
                st.last_seq + 1
            }
            _ => st.first_seq,
        };
        next_sseq = next_sseq.clamp(st.first_seq.max(1), st.last_seq + 1);
        let push = config.deliver_subject.is_some();
        let replay_until = if config.replay_policy == "original" {
            st.last_seq
        } else {
            0
        };
        let seed = now ^ name_hash(&name) ^ name_hash(&stream).rotate_left(32);
        let delivered_from = if initial.is_empty() {
            next_sseq.saturating_sub(1)
        } else {
            0
        };
        let mut c = Self {
            name,
            stream,
            filters,
            next_sseq,
            initial,
            cseq: 0,
            // Go: `delivered.stream_seq` starts just before the first message to deliver
            // (a mirror across a link skips ahead to it, so 0 would make it skip what it
            // already holds).
            last_sseq: delivered_from,
            ack_floor_sseq: next_sseq.saturating_sub(1),
            ack_floor_cseq: 0,
            pending: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            redeliver: BTreeSet::new(),
            waiting: VecDeque::new(),
            redelivered_count: 0,
            num_pending: 0,
            last_activity: now,
            active: false,
            inactive_since: push.then_some(now),
            sourced: false,
            sourced_elsewhere: false,
            last_sent: now,
            replay_until,
            replay_last: None,
            hold_until: 0,
            rl_tat: 0,
            paused_until: 0,
            acked: Vec::new(),
            events: Vec::new(),
            pin: None,
            pin_rng: SplitMix64::new(seed),
            state_dirty: false,
            last_delivered_ts: 0,
            last_ack_ts: 0,
            ceiling: u64::MAX,
            created: now,
            config,
        };
        c.apply_pause();
        c.recount(store);
        c
    }

    /// Rebuilds a durable consumer from what it kept.
    pub fn restore(meta: ConsumerMeta, stream: String, store: &dyn StreamStore) -> Self {
        let mut c = Self::new(meta.name, stream, meta.config, store, meta.created);
        c.initial.clear();
        c.next_sseq = meta.ack_floor_sseq + 1;
        c.cseq = meta.ack_floor_cseq;
        c.last_sseq = meta.ack_floor_sseq;
        c.ack_floor_sseq = meta.ack_floor_sseq;
        c.ack_floor_cseq = meta.ack_floor_cseq;
        // The inactivity clock restarts with the server (at the first tick), as Go's timers do.
        c.last_activity = 0;
        c.inactive_since = None;
        c.recount(store);
        c
    }

    /// What to keep of it (see [`ConsumerMeta`]).
    pub fn meta(&self) -> ConsumerMeta {
        ConsumerMeta {
            name: self.name.clone(),
            created: self.created,
            config: self.config.clone(),
            ack_floor_sseq: self.ack_floor_sseq,
            ack_floor_cseq: self.ack_floor_cseq,
        }
    }

    /// Takes a new config (an update that passed the checks); the pause time is kept, as Go
    /// only changes it through the PAUSE API.
    pub fn update_config(&mut self, mut cfg: ConsumerConfig) {
        cfg.pause_until = self.config.pause_until.clone();
        self.filters = config::filters_of(&cfg);
        self.config = cfg;
    }

    fn apply_pause(&mut self) {
        self.paused_until = self
            .config
            .pause_until
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(0);
    }

    /// Pauses deliveries until `until` (0 or a past time: resumes) (Go 2.11: pauseConsumer).
    pub fn set_pause(&mut self, until: UnixNanos) {
        self.config.pause_until = (until > 0).then(|| rfc3339(until));
        self.paused_until = until;
    }

    /// Is it paused at `now`?
    pub fn is_paused(&self, now: UnixNanos) -> bool {
        now < self.paused_until
    }

    /// Is it durable (kept across restarts)?
    pub fn is_durable(&self) -> bool {
        self.config.durable_name.is_some()
    }

    /// Is this a push consumer?
    pub fn is_push(&self) -> bool {
        self.config.deliver_subject.is_some()
    }

    /// Does `subj` pass the consumer's filters?
    pub fn matches(&self, subj: &str) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|f| subject::matches(f.as_bytes(), subj.as_bytes()))
    }

    /// The filters; empty: everything.
    pub fn filters(&self) -> &[String] {
        &self.filters
    }

    fn load_next(&self, store: &dyn StreamStore, from: u64) -> Option<StoredMsg> {
        if self.filters.is_empty() {
            return store.load_next_msg("", from).ok();
        }
        self.filters
            .iter()
            .filter_map(|f| store.load_next_msg(f, from).ok())
            .min_by_key(|m| m.seq)
    }

    /// Fresh messages past `seq` are not handed out until the ceiling rises (a replicated
    /// stream's leader: only committed messages); `u64::MAX` lifts it.
    pub fn set_ceiling(&mut self, seq: u64) {
        self.ceiling = seq;
    }

    /// Recomputes the pending count from the store (after purges and deletes).
    pub fn recount(&mut self, store: &dyn StreamStore) {
        let mut n = self.initial.len() as u64;
        let mut seq = self.next_sseq;
        while let Some(m) = self.load_next(store, seq) {
            n += 1;
            seq = m.seq + 1;
        }
        self.num_pending = n;
    }

    /// A new message was stored in the stream.
    pub fn on_stored(&mut self, subj: &str, seq: u64) {
        if seq >= self.next_sseq && self.matches(subj) {
            self.num_pending += 1;
        }
    }

    /// Messages not yet delivered.
    pub fn num_pending(&self) -> u64 {
        self.num_pending
    }

    /// Interest on the deliver subject of a push consumer came or went.
    pub fn set_active(&mut self, active: bool, now: UnixNanos) {
        if active != self.active || (!active && self.inactive_since.is_none()) {
            self.inactive_since = (!active).then_some(now);
        }
        self.active = active;
    }

    /// Go: deleteNotActive — has it been idle past `inactive_threshold`?
    pub fn is_inactive(&self, now: UnixNanos) -> bool {
        self.inactive_deadline().is_some_and(|d| now >= d)
    }

    fn inactive_deadline(&self) -> Option<UnixNanos> {
        let t = self.config.inactive_threshold;
        if t == 0 {
            return None;
        }
        if self.is_push() {
            if self.sourced {
                return None;
            }
            return match (self.active, self.inactive_since) {
                (false, Some(since)) => Some(since.saturating_add(t)),
                _ => None,
            };
        }
        self.waiting
            .is_empty()
            .then(|| self.last_activity.saturating_add(t).saturating_add(1))
    }

    /// Would this consumer still want `seq` (stored under `subj`) acknowledged?
    /// (Go: needAck; interest retention keeps a message while any consumer does.)
    pub fn needs_ack(&self, seq: u64, subj: &str) -> bool {
        if !self.matches(subj) || seq <= self.ack_floor_sseq {
            return false;
        }
        match self.config.ack_policy.as_str() {
            "explicit" => {
                seq >= self.next_sseq
                    || self.pending.contains_key(&seq)
                    || self.initial.contains(&seq)
            }
            _ => true,
        }
    }

    /// Stream sequences acknowledged since the last call (for retention).
    pub fn take_acked(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.acked)
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<ConsumerEvent> {
        std::mem::take(&mut self.events)
    }

    /// Records an event; when nobody drains them, the oldest go (advisories are best effort).
    pub(super) fn event(&mut self, e: ConsumerEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.remove(0);
        }
        self.events.push(e);
    }

    /// The stream sequence all below which is acknowledged.
    pub fn ack_floor(&self) -> u64 {
        self.ack_floor_sseq
    }

    fn max_ack_pending_reached(&self) -> bool {
        self.config.ack_policy != "none"
            && self.config.max_ack_pending > 0
            && self.pending.len() as u64 >= self.config.max_ack_pending as u64
    }

    /// The next message to hand out: redeliveries first, then fresh ones (Go: getNextMsg).
    fn next_msg(&mut self, store: &dyn StreamStore) -> Option<(StoredMsg, Source)> {
        while let Some(seq) = self.redeliver.pop_first() {
            let n = self.deliveries.get(&seq).copied().unwrap_or(0);
            if self.config.max_deliver > 0 && n >= self.config.max_deliver as u64 {
                self.give_up(seq, n);
                continue;
            }
            if let Ok(m) = store.load_msg(seq) {
                return Some((m, Source::Redelivery));
            }
            self.pending.remove(&seq);
            self.deliveries.remove(&seq);
            self.state_dirty = true;
        }
        if self.max_ack_pending_reached() {
            return None;
        }
        while let Some(seq) = self.initial.pop_front() {
            self.num_pending = self.num_pending.saturating_sub(1);
            if let Ok(m) = store.load_msg(seq) {
                return Some((m, Source::Initial));
            }
        }
        let m = self
            .load_next(store, self.next_sseq)
            .filter(|m| m.seq <= self.ceiling)?;
        self.next_sseq = m.seq + 1;
        self.num_pending = self.num_pending.saturating_sub(1);
        Some((m, Source::Fresh))
    }

    /// Puts back a message [`Consumer::next_msg`] handed out but pacing held.
    fn unread(&mut self, m: &StoredMsg, src: Source) {
        match src {
            Source::Redelivery => {
                self.redeliver.insert(m.seq);
            }
            Source::Initial => {
                self.initial.push_front(m.seq);
                self.num_pending += 1;
            }
            Source::Fresh => {
                self.next_sseq = m.seq;
                self.num_pending += 1;
            }
        }
    }
}

/// `headers` with one more header line.
fn with_header(headers: &[u8], name: &str, value: &str) -> Vec<u8> {
    let mut h = if headers.is_empty() {
        "NATS/1.0\r\n".to_owned()
    } else {
        let s = String::from_utf8_lossy(headers).into_owned();
        s.trim_end_matches("\r\n").to_owned() + "\r\n"
    };
    h.push_str(&format!("{name}: {value}\r\n\r\n"));
    h.into_bytes()
}

impl Consumer {
    fn ack_reply(&self, m: &StoredMsg, count: u64, cseq: u64) -> String {
        format!(
            "$JS.ACK.{}.{}.{count}.{}.{cseq}.{}.{}",
            self.stream, self.name, m.seq, m.ts, self.num_pending
        )
    }

    /// Header block and body as delivered: `headers_only` sends the headers plus
    /// `Nats-Msg-Size` and no body (Go: convertToHeadersOnly).
    fn shaped(&self, m: &StoredMsg) -> (Vec<u8>, Vec<u8>) {
        if !self.config.headers_only {
            return (m.headers.to_vec(), m.payload.to_vec());
        }
        let mut h = if m.headers.is_empty() {
            "NATS/1.0\r\n".to_owned()
        } else {
            let s = String::from_utf8_lossy(&m.headers).into_owned();
            s.trim_end_matches("\r\n").to_owned() + "\r\n"
        };
        h.push_str(&format!("Nats-Msg-Size: {}\r\n\r\n", m.payload.len()));
        (h.into_bytes(), Vec::new())
    }

    /// Go's size of a delivery for `max_bytes`: subject, ack reply, headers and body.
    fn wire_size(&self, m: &StoredMsg) -> u64 {
        let count = self.deliveries.get(&m.seq).copied().unwrap_or(0) + 1;
        let reply = self.ack_reply(m, count, self.cseq + 1);
        let (h, b) = self.shaped(m);
        (m.subject.len() + reply.len() + h.len() + b.len()) as u64
    }

    fn deliver_one(&mut self, m: StoredMsg, to: &str, now: UnixNanos) -> (Delivery, String) {
        let count = self.note_delivered(&m, now);
        let reply = self.ack_reply(&m, count, self.cseq);
        let (mut headers, payload) = self.shaped(&m);
        if let (Some(pin), false) = (self.pin_header(), self.is_push()) {
            headers = with_header(&headers, "Nats-Pin-Id", pin);
        }
        let d = Delivery {
            subject: to.to_owned(),
            reply: Some(reply),
            headers,
            payload,
            shown_subject: Some(m.subject.clone()),
        };
        (d, m.subject)
    }

    /// Records `m` as handed out (consumer sequence, delivery count, pending); returns the
    /// delivery count.
    fn note_delivered(&mut self, m: &StoredMsg, now: UnixNanos) -> u64 {
        self.last_sent = now;
        self.last_delivered_ts = now;
        self.last_activity = now;
        self.state_dirty = true;
        let count = {
            let e = self.deliveries.entry(m.seq).or_insert(0);
            *e += 1;
            *e
        };
        if count > 1 {
            self.redelivered_count += 1;
        }
        self.cseq += 1;
        self.last_sseq = self.last_sseq.max(m.seq);
        if self.config.ack_policy == "none" {
            self.deliveries.remove(&m.seq);
            self.ack_floor_sseq = m.seq;
            self.ack_floor_cseq = self.cseq;
            self.acked.push(m.seq);
        } else {
            // Go: trackPending — a redelivery restarts the timer but keeps the first
            // consumer sequence.
            let cseq = self.cseq;
            self.pending
                .entry(m.seq)
                .and_modify(|p| p.sent = now)
                .or_insert(Pending { cseq, sent: now });
        }
        count
    }

    /// Hands out what can be handed out: to waiting pull requests or the push subject.
    /// Each delivery comes with the stored message's subject (the shell may need it).
    pub fn pump(&mut self, store: &dyn StreamStore, now: UnixNanos) -> Vec<(Delivery, String)> {
        if self.is_paused(now) || now < self.hold_until {
            return Vec::new();
        }
        // Past deadlines are cleared so next_deadline does not report them again.
        self.hold_until = 0;
        self.paused_until = 0;
        let Some(to) = self.config.deliver_subject.clone() else {
            return self.pump_pull(store, now);
        };
        // Go: a `flow_control` consumer is acked only by the flow-control replies of the
        // stream sourcing through it; here that stream reads it in-process, and nothing goes
        // to the deliver subject (where no reply could ack it).
        if self.sourced || self.config.ack_policy == config::FLOW_CONTROL {
            return Vec::new();
        }
        let mut out = Vec::new();
        while self.active {
            let Some((m, src)) = self.next_msg(store) else {
                break;
            };
            if !self.pace(&m, src, now) {
                self.unread(&m, src);
                break;
            }
            out.push(self.deliver_one(m, &to, now));
        }
        out
    }

    /// Timers: pull request expiry (408), ack-wait redelivery, pacing, heartbeats.
    pub fn tick(&mut self, store: &dyn StreamStore, now: UnixNanos) -> Vec<(Delivery, String)> {
        if self.last_activity == 0 {
            self.last_activity = now;
            if self.is_push() && !self.active {
                self.inactive_since = Some(now);
            }
        }
        self.expire_pin(now);
        let mut out = self.expire_waiting(now);
        self.check_pending(now);
        out.extend(self.pump(store, now));
        out.extend(self.heartbeat(now));
        out
    }

    /// Go: a push consumer with `idle_heartbeat` sends `100 Idle Heartbeat` when it has been
    /// quiet that long, naming its last delivered sequences.
    fn heartbeat(&mut self, now: UnixNanos) -> Option<(Delivery, String)> {
        let hb = self.config.idle_heartbeat;
        let to = self.config.deliver_subject.as_ref()?;
        if hb == 0 || !self.active || self.sourced || now.saturating_sub(self.last_sent) < hb {
            return None;
        }
        self.last_sent = now;
        let d = Delivery::status(
            to,
            "100 Idle Heartbeat",
            &[
                ("Nats-Last-Consumer", self.cseq.to_string()),
                ("Nats-Last-Stream", self.last_sseq.to_string()),
            ],
        );
        Some((d, String::new()))
    }

    /// The earliest time [`Consumer::tick`] has work (or the consumer goes inactive).
    pub fn next_deadline(&self) -> Option<UnixNanos> {
        let exp = self.waiting_deadline();
        let timed = self.config.ack_wait > 0 || !self.config.backoff.is_empty();
        let ack = self
            .pending
            .iter()
            .filter(|_| timed)
            .filter(|(s, _)| !self.redeliver.contains(s))
            .map(|(s, p)| p.sent.saturating_add(self.wait_for(*s)))
            .min();
        let hb = (self.active && !self.sourced && self.config.idle_heartbeat > 0)
            .then(|| self.last_sent.saturating_add(self.config.idle_heartbeat));
        let hold = (self.hold_until > 0).then_some(self.hold_until);
        let pause = (self.paused_until > 0).then_some(self.paused_until);
        let pin = self.pin.as_ref().map(|p| p.expires);
        [exp, ack, hb, hold, pause, pin, self.inactive_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Go: `ConsumerInfo` JSON body (without the `type`). A consumer on one server has no
    /// Raft group, so Go sends no `cluster` block for it.
    pub fn info(&self, now: UnixNanos) -> serde_json::Value {
        let seq = |c: u64, s: u64, last: UnixNanos| {
            let mut v = serde_json::json!({"consumer_seq": c, "stream_seq": s});
            // Go: `last_active` is a *time.Time, left out while it is the zero time.
            if last > 0 {
                v["last_active"] = serde_json::json!(rfc3339(last));
            }
            v
        };
        let mut v = serde_json::json!({
            "stream_name": self.stream,
            "name": self.name,
            "created": rfc3339(self.created),
            "config": self.config,
            "delivered": seq(self.cseq, self.last_sseq, self.last_delivered_ts),
            "ack_floor": seq(self.ack_floor_cseq, self.ack_floor_sseq, self.last_ack_ts),
            "num_ack_pending": self.pending.len(),
            "num_redelivered": self.redelivered_count,
            "num_waiting": self.waiting.len(),
            "num_pending": self.num_pending,
            "ts": rfc3339(now),
        });
        // Go: `push_bound` is set while someone listens on the deliver subject.
        // A durable mirror or source reading it counts as its listener (Go subscribes it).
        if self.is_push() && (self.active || self.sourced) {
            v["push_bound"] = serde_json::json!(true);
        }
        if let Some(p) = self.priority_info() {
            v["priority_groups"] = p;
        }
        if self.is_paused(now) {
            v["paused"] = serde_json::json!(true);
            v["pause_remaining"] = serde_json::json!(self.paused_until - now);
        }
        v
    }
}
