//! One consumer: what it delivered, what is unacknowledged, pull requests waiting
//! (Go: server/consumer.go). Pure: the store and the time come in as arguments, deliveries
//! go out as [`Delivery`] values the shell publishes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::api::{err, ApiError, ConsumerConfig, NextRequest};
use super::store::{StoreError, StoredMsg, StreamStore, UnixNanos};
use crate::subject;

/// Go's default ack wait (30s).
pub const DEFAULT_ACK_WAIT: u64 = 30_000_000_000;
/// Go's default max ack pending.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// Go's default max waiting pull requests.
pub const DEFAULT_MAX_WAITING: u64 = 512;

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

/// An acknowledgement kind parsed from an ack body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// `+ACK` (or empty).
    Ack,
    /// `-NAK`.
    Nak,
    /// `+WPI`: still working, restart the ack timer.
    Progress,
    /// `+TERM`: never redeliver.
    Term,
    /// `+NXT`: ack and ask for more (treated as ack).
    Next,
}

impl AckKind {
    /// Parses an ack body.
    pub fn parse(body: &[u8]) -> Self {
        let b = body.trim_ascii();
        if b.starts_with(b"-NAK") {
            Self::Nak
        } else if b.starts_with(b"+WPI") {
            Self::Progress
        } else if b.starts_with(b"+TERM") {
            Self::Term
        } else if b.starts_with(b"+NXT") {
            Self::Next
        } else {
            Self::Ack
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    cseq: u64,
    sent: UnixNanos,
}

#[derive(Debug, Clone)]
struct Waiting {
    reply: String,
    left: u64,
    expires: Option<UnixNanos>,
    no_wait: bool,
    delivered: u64,
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
    last_activity: UnixNanos,
    /// A push consumer delivers only while someone listens on its deliver subject (the shell
    /// watches the interest and sets this).
    pub active: bool,
    /// When a push consumer last sent anything (for idle heartbeats).
    last_sent: UnixNanos,
}

/// What a durable consumer keeps across restarts: its config and ack floor. Messages past
/// the floor are delivered again after a restart (at-least-once, as after a lost ack).
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

/// Fills in Go's defaults and validates (Go: setConsumerConfigDefaults + checkConsumerCfg).
pub fn check_config(
    mut c: ConsumerConfig,
    stream_subjects: &[String],
) -> Result<ConsumerConfig, ApiError> {
    let bad = |t: &str| Err(ApiError::new(400, 10094, t));
    if c.deliver_policy.is_empty() {
        c.deliver_policy = "all".to_owned();
    }
    if c.ack_policy.is_empty() {
        c.ack_policy = if c.deliver_subject.is_some() {
            "none".to_owned()
        } else {
            "explicit".to_owned()
        };
    }
    if c.replay_policy.is_empty() {
        c.replay_policy = "instant".to_owned();
    }
    if c.ack_wait == 0 {
        c.ack_wait = DEFAULT_ACK_WAIT;
    }
    if c.max_deliver == 0 {
        c.max_deliver = -1;
    }
    if c.max_ack_pending == 0 && c.ack_policy != "none" {
        c.max_ack_pending = DEFAULT_MAX_ACK_PENDING;
    }
    if c.deliver_subject.is_none() && c.max_waiting == 0 {
        c.max_waiting = DEFAULT_MAX_WAITING;
    }
    match c.ack_policy.as_str() {
        "none" | "all" | "explicit" => {}
        _ => return Err(ApiError::new(400, 10181, "consumer ack policy invalid")),
    }
    match c.deliver_policy.as_str() {
        "all" | "last" | "new" | "last_per_subject" => {}
        "by_start_sequence" if c.opt_start_seq > 0 => {}
        "by_start_sequence" => {
            return bad("consumer delivery policy is deliver by start sequence, but optional start sequence is not set")
        }
        _ => return bad("invalid deliver policy"),
    }
    if c.deliver_policy == "last_per_subject" && c.filter_subject.is_empty() {
        return Err(ApiError::new(
            400,
            10094,
            "consumer delivery policy is deliver last per subject, but optional filter subject is not set",
        ));
    }
    if c.idle_heartbeat > 0 && c.deliver_subject.is_none() {
        return Err(ApiError::new(
            400,
            10088,
            "consumer idle heartbeat requires a push based consumer",
        ));
    }
    if let Some(d) = &c.deliver_subject {
        if !subject::is_valid_literal_subject(d.as_bytes()) {
            return Err(ApiError::new(
                400,
                10112,
                "invalid push consumer deliver subject",
            ));
        }
    }
    finish(c, stream_subjects)
}

fn finish(c: ConsumerConfig, stream_subjects: &[String]) -> Result<ConsumerConfig, ApiError> {
    let f = &c.filter_subject;
    if !f.is_empty() && f != ">" {
        if !subject::is_valid_subject(f.as_bytes()) {
            return Err(err::filter_not_subset());
        }
        let ok = stream_subjects.iter().any(|s| {
            subject::is_subset(f.as_bytes(), s.as_bytes())
                || subject::overlaps(f.as_bytes(), s.as_bytes())
        });
        if !ok {
            return Err(err::filter_not_subset());
        }
    }
    Ok(c)
}

impl Consumer {
    /// A consumer positioned per its deliver policy on `store`.
    pub fn new(
        name: String,
        stream: String,
        config: ConsumerConfig,
        store: &dyn StreamStore,
        now: UnixNanos,
    ) -> Self {
        let st = store.state();
        let filter = config.filter_subject.clone();
        let mut initial = VecDeque::new();
        let next_sseq = match config.deliver_policy.as_str() {
            "new" => st.last_seq + 1,
            "last" => store
                .load_last_msg(&filter)
                .map_or(st.last_seq + 1, |m| m.seq),
            "by_start_sequence" => config.opt_start_seq.max(1),
            "last_per_subject" => {
                let mut seqs: Vec<u64> = store
                    .subjects_totals(&filter)
                    .keys()
                    .filter_map(|s| store.load_last_msg(s).ok().map(|m| m.seq))
                    .collect();
                seqs.sort_unstable();
                initial.extend(seqs);
                st.last_seq + 1
            }
            _ => st.first_seq.max(1),
        };
        let mut c = Self {
            name,
            stream,
            config,
            created: now,
            next_sseq,
            initial,
            cseq: 0,
            last_sseq: 0,
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
            last_sent: now,
        };
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

    /// Is it durable (kept across restarts)?
    pub fn is_durable(&self) -> bool {
        self.config.durable_name.is_some()
    }

    fn filter(&self) -> &str {
        &self.config.filter_subject
    }

    /// Is this a push consumer?
    pub fn is_push(&self) -> bool {
        self.config.deliver_subject.is_some()
    }

    /// Recomputes the pending count from the store (after purges and deletes).
    pub fn recount(&mut self, store: &dyn StreamStore) {
        let mut n = self.initial.len() as u64;
        let mut seq = self.next_sseq;
        while let Ok(m) = store.load_next_msg(self.filter(), seq) {
            n += 1;
            seq = m.seq + 1;
        }
        self.num_pending = n;
    }

    /// A new message was stored in the stream.
    pub fn on_stored(&mut self, subj: &str, seq: u64) {
        let f = self.filter();
        if seq >= self.next_sseq
            && (f.is_empty() || f == ">" || subject::matches(f.as_bytes(), subj.as_bytes()))
        {
            self.num_pending += 1;
        }
    }

    /// Messages not yet delivered.
    pub fn num_pending(&self) -> u64 {
        self.num_pending
    }

    fn max_ack_pending_reached(&self) -> bool {
        self.config.ack_policy != "none"
            && self.config.max_ack_pending > 0
            && self.pending.len() as u64 >= self.config.max_ack_pending as u64
    }

    /// The next message to hand out: redeliveries first, then fresh ones.
    fn next_msg(&mut self, store: &dyn StreamStore) -> Option<(StoredMsg, bool)> {
        while let Some(seq) = self.redeliver.pop_first() {
            if let Ok(m) = store.load_msg(seq) {
                return Some((m, true));
            }
            self.pending.remove(&seq);
            self.deliveries.remove(&seq);
        }
        while let Some(seq) = self.initial.pop_front() {
            self.num_pending = self.num_pending.saturating_sub(1);
            if let Ok(m) = store.load_msg(seq) {
                return Some((m, false));
            }
        }
        match store.load_next_msg(self.filter(), self.next_sseq) {
            Ok(m) => {
                self.next_sseq = m.seq + 1;
                self.num_pending = self.num_pending.saturating_sub(1);
                Some((m, false))
            }
            Err(StoreError::Eof | StoreError::NotFound) | Err(_) => None,
        }
    }

    fn deliver_one(&mut self, m: StoredMsg, to: &str, now: UnixNanos) -> (Delivery, String) {
        self.last_sent = now;
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
        } else {
            self.pending.insert(
                m.seq,
                Pending {
                    cseq: self.cseq,
                    sent: now,
                },
            );
        }
        let reply = format!(
            "$JS.ACK.{}.{}.{count}.{}.{}.{}.{}",
            self.stream, self.name, m.seq, self.cseq, m.ts, self.num_pending
        );
        let (headers, payload) = if self.config.headers_only {
            let mut h = if m.headers.is_empty() {
                "NATS/1.0\r\n".to_owned()
            } else {
                let s = String::from_utf8_lossy(&m.headers).into_owned();
                s.trim_end_matches("\r\n").to_owned() + "\r\n"
            };
            h.push_str(&format!("Nats-Msg-Size: {}\r\n\r\n", m.payload.len()));
            (h.into_bytes(), Vec::new())
        } else {
            (m.headers.to_vec(), m.payload.to_vec())
        };
        let d = Delivery {
            subject: to.to_owned(),
            reply: Some(reply),
            headers,
            payload,
            shown_subject: Some(m.subject.clone()),
        };
        (d, m.subject)
    }

    /// A pull request arrived (Go: processNextMsgRequest).
    pub fn on_next(
        &mut self,
        reply: &str,
        req: &NextRequest,
        store: &dyn StreamStore,
        now: UnixNanos,
    ) -> Vec<(Delivery, String)> {
        if self.is_push() {
            return vec![(
                Delivery::status(reply, "409 Consumer is push based", &[]),
                String::new(),
            )];
        }
        if self.waiting.len() as u64 >= self.config.max_waiting {
            return vec![(
                Delivery::status(reply, "409 Exceeded MaxWaiting", &[]),
                String::new(),
            )];
        }
        self.last_activity = now;
        let batch = u64::try_from(req.batch).unwrap_or(1).max(1);
        self.waiting.push_back(Waiting {
            reply: reply.to_owned(),
            left: batch,
            expires: (req.expires > 0).then(|| now + req.expires),
            no_wait: req.no_wait,
            delivered: 0,
        });
        self.pump(store, now)
    }

    /// Hands out what can be handed out: to waiting pull requests or the push subject.
    /// Each delivery comes with the stored message's subject (the shell may need it).
    pub fn pump(&mut self, store: &dyn StreamStore, now: UnixNanos) -> Vec<(Delivery, String)> {
        let mut out = Vec::new();
        if let Some(to) = self.config.deliver_subject.clone() {
            while self.active && !self.max_ack_pending_reached() {
                let Some((m, _)) = self.next_msg(store) else {
                    break;
                };
                let d = self.deliver_one(m, &to, now);
                out.push(d);
            }
            return out;
        }
        while let Some(left) = self.waiting.front().map(|w| w.left) {
            if left == 0 {
                self.waiting.pop_front();
                continue;
            }
            let next = if self.max_ack_pending_reached() {
                None
            } else {
                self.next_msg(store)
            };
            let Some((m, _)) = next else {
                // Nothing to hand out now: a no-wait request ends here.
                if let Some(w) = self.waiting.front() {
                    if w.no_wait {
                        let status = if w.delivered == 0 {
                            "404 No Messages"
                        } else {
                            "408 Request Timeout"
                        };
                        out.push((Delivery::status(&w.reply, status, &[]), String::new()));
                        self.waiting.pop_front();
                        continue;
                    }
                }
                break;
            };
            let Some(w) = self.waiting.front_mut() else {
                break;
            };
            let reply = w.reply.clone();
            w.left -= 1;
            w.delivered += 1;
            let d = self.deliver_one(m, &reply, now);
            out.push(d);
        }
        out
    }

    /// An ack for the message at `sseq` (Go: processAck).
    pub fn on_ack(&mut self, sseq: u64, kind: AckKind, now: UnixNanos) {
        self.last_activity = now;
        match kind {
            AckKind::Ack | AckKind::Next | AckKind::Term => {
                if self.config.ack_policy == "all" {
                    let done: Vec<u64> = self.pending.range(..=sseq).map(|(s, _)| *s).collect();
                    for s in done {
                        self.pending.remove(&s);
                        self.deliveries.remove(&s);
                        self.redeliver.remove(&s);
                    }
                } else if self.pending.remove(&sseq).is_some() {
                    self.deliveries.remove(&sseq);
                    self.redeliver.remove(&sseq);
                }
                self.advance_floor();
            }
            AckKind::Nak => {
                if self.pending.contains_key(&sseq) {
                    self.redeliver.insert(sseq);
                }
            }
            AckKind::Progress => {
                if let Some(p) = self.pending.get_mut(&sseq) {
                    p.sent = now;
                }
            }
        }
    }

    fn advance_floor(&mut self) {
        match self.pending.first_key_value() {
            Some((s, p)) => {
                self.ack_floor_sseq = s.saturating_sub(1);
                self.ack_floor_cseq = p.cseq.saturating_sub(1);
            }
            None => {
                self.ack_floor_sseq = self.last_sseq.max(self.ack_floor_sseq);
                self.ack_floor_cseq = self.cseq;
            }
        }
    }

    /// Timers: pull request expiry (408) and ack-wait redelivery (Go: checkPending).
    pub fn tick(&mut self, store: &dyn StreamStore, now: UnixNanos) -> Vec<(Delivery, String)> {
        let mut out = Vec::new();
        let pending = self.num_pending;
        self.waiting.retain(|w| match w.expires {
            Some(t) if t <= now => {
                out.push((
                    Delivery::status(
                        &w.reply,
                        "408 Request Timeout",
                        &[
                            ("Nats-Pending-Messages", pending.to_string()),
                            ("Nats-Pending-Bytes", "0".to_owned()),
                        ],
                    ),
                    String::new(),
                ));
                false
            }
            _ => true,
        });
        let wait = self.config.ack_wait;
        let max = self.config.max_deliver;
        let mut dropped = Vec::new();
        for (seq, p) in &self.pending {
            if now.saturating_sub(p.sent) >= wait && !self.redeliver.contains(seq) {
                let n = self.deliveries.get(seq).copied().unwrap_or(0);
                if max > 0 && n >= max as u64 {
                    dropped.push(*seq);
                } else {
                    self.redeliver.insert(*seq);
                }
            }
        }
        for seq in dropped {
            // Max deliveries reached: it stays unacknowledged but is never sent again.
            if let Some(p) = self.pending.get_mut(&seq) {
                p.sent = UnixNanos::MAX / 2;
            }
        }
        out.extend(self.pump(store, now));
        out.extend(self.heartbeat(now));
        out
    }

    /// Go: a push consumer with `idle_heartbeat` sends `100 Idle Heartbeat` when it has been
    /// quiet that long, naming its last delivered sequences.
    fn heartbeat(&mut self, now: UnixNanos) -> Option<(Delivery, String)> {
        let hb = self.config.idle_heartbeat;
        let to = self.config.deliver_subject.as_ref()?;
        if hb == 0 || !self.active || now.saturating_sub(self.last_sent) < hb {
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

    /// The earliest time [`Consumer::tick`] has work.
    pub fn next_deadline(&self) -> Option<UnixNanos> {
        let exp = self.waiting.iter().filter_map(|w| w.expires).min();
        let ack = self
            .pending
            .values()
            .map(|p| p.sent.saturating_add(self.config.ack_wait))
            .min();
        let hb = (self.active && self.config.idle_heartbeat > 0)
            .then(|| self.last_sent.saturating_add(self.config.idle_heartbeat));
        [exp, ack, hb].into_iter().flatten().min()
    }

    /// Go: `ConsumerInfo` JSON body (without the `type`).
    pub fn info(&self, server_name: &str, now: UnixNanos) -> serde_json::Value {
        serde_json::json!({
            "stream_name": self.stream,
            "name": self.name,
            "created": super::api::rfc3339(self.created),
            "config": self.config,
            "delivered": {"consumer_seq": self.cseq, "stream_seq": self.last_sseq},
            "ack_floor": {"consumer_seq": self.ack_floor_cseq, "stream_seq": self.ack_floor_sseq},
            "num_ack_pending": self.pending.len(),
            "num_redelivered": self.redelivered_count,
            "num_waiting": self.waiting.len(),
            "num_pending": self.num_pending,
            "cluster": {"leader": server_name},
            "ts": super::api::rfc3339(now),
        })
    }
}
