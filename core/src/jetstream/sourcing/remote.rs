//! Mirrors and sources whose origin only the network reaches: an `external` API prefix that
//! no import of this server resolves, such as `$JS.<domain>.API` of a JetStream across a leaf
//! link (Go: server/stream.go setupMirrorConsumer, setSourceConsumer, processInboundMirrorMsg,
//! processInboundSourceMsg).
//!
//! As nats-server does, the sourcing stream asks the origin for an ephemeral push consumer
//! (`<api>.CONSUMER.CREATE.<stream>`, `direct`, no acks, flow control, 1 s heartbeats)
//! delivering to a fresh subject under the `deliver` prefix, starting after the last message
//! it copied, and stores what arrives there in order. It asks again (a new consumer on a new
//! deliver subject, from the last copied sequence) when the answer does not come within 5 s,
//! when heartbeats stop for 3 s (a cut link, an origin restart), or when a heartbeat or a
//! delivery shows that something was missed; never more often than every 2 s.
//!
//! The shell subscribes to each cursor's deliver and reply subjects ([`JetStream::subjects`]
//! includes them), hands what arrives to [`JetStream::remote_inbound`] and runs
//! [`JetStream::pull_remote`] for each such cursor after every round, which sends the
//! requests. A delivery arrives under the subject its origin stored it with (the deliver
//! subject only routes it), so it is recognised by its ack reply, which names the consumer.

use serde_json::{json, Value};

use super::super::api::{ApiError, ExternalStream, StreamSource};
use super::super::consumer::Delivery;
use super::super::service::JetStream;
use super::super::store::{StoredMsg, UnixNanos};
use super::external::ExternalCursor;
use super::{resume_point, store_batch, SourceState};
use crate::proto::headers::Headers;

/// Go: `sourceHealthCheckInterval`, the consumer's heartbeat.
const HEARTBEAT: u64 = 1_000_000_000;
/// Heartbeats missed for this long: the consumer is gone (Go: 3 × the heartbeat).
const STALLED: u64 = 3 * HEARTBEAT;
/// How long a create request may go unanswered.
const ANSWER_WAIT: u64 = 5_000_000_000;
/// Go: `sourceConsumerRetryThreshold`, the least time between two create requests.
const RETRY_GAP: u64 = 2_000_000_000;
/// Go: the consumer's `ack_wait` (22 h): never used with no acks, sent as Go sends it.
const ACK_WAIT: u64 = 22 * 3600 * 1_000_000_000;

/// The network side of one mirror or source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Where the current consumer delivers.
    deliver: String,
    /// Where the answer to the current create request comes.
    reply: String,
    /// The current consumer, once the origin answered.
    cname: Option<String>,
    /// When the next create request may go (`None`: one is not needed).
    ask_at: Option<UnixNanos>,
    /// When the last request went.
    asked: UnixNanos,
    /// When the origin was last heard from.
    heard: UnixNanos,
    /// The consumer's last delivery sequence seen.
    dseq: u64,
    /// The last origin sequence taken.
    sseq: u64,
}

/// A delivery's ack reply: (stream, consumer, delivery count, stream seq, consumer seq,
/// timestamp, pending). Both of nats-server's forms: `$JS.ACK.<stream>.<consumer>.<dc>.…`
/// and the one with domain and account hash first.
pub fn parse_ack(reply: &str) -> Option<(&str, &str, u64, u64, u64, u64, u64)> {
    let t: Vec<&str> = reply.strip_prefix("$JS.ACK.")?.split('.').collect();
    let t = match t.len() {
        7 => &t[..],
        n if n >= 10 => &t[2..9],
        _ => return None,
    };
    let n = |i: usize| t[i].parse::<u64>().ok();
    Some((t[0], t[1], n(2)?, n(3)?, n(4)?, n(5)?, n(6)?))
}

impl JetStream {
    /// The subjects the remote cursors listen on.
    pub(crate) fn remote_subjects(&self) -> Vec<String> {
        let mut v = Vec::new();
        for e in self.streams.values() {
            for st in e.stream.mirror.iter().chain(&e.stream.sources) {
                if let Some(r) = &st.remote {
                    v.push(r.deliver.clone());
                    v.push(r.reply.clone());
                }
            }
        }
        v
    }

    /// Does any cursor listen on the network?
    fn has_remote(&self) -> bool {
        self.streams.values().any(|e| {
            e.stream
                .mirror
                .iter()
                .chain(&e.stream.sources)
                .any(|s| s.remote.is_some())
        })
    }

    /// `c` reads its origin in-process now: forgets its network side. True if that
    /// changes the subjects to listen on.
    pub fn drop_remote(&mut self, c: &ExternalCursor) -> bool {
        self.slot(c).is_some_and(|st| st.remote.take().is_some())
    }

    fn slot(&mut self, c: &ExternalCursor) -> Option<&mut SourceState> {
        let e = self.streams.get_mut(&c.stream)?;
        let st = match c.slot {
            None => e.stream.mirror.as_mut(),
            Some(i) => e.stream.sources.get_mut(i),
        }?;
        (st.cfg == c.source).then_some(st)
    }

    /// Runs the network side of `c`, whose origin no import resolves: sends a consumer
    /// create request when one is due. Returns it and whether the subjects to listen on
    /// changed (the shell subscribes before it sends the request).
    pub fn pull_remote(&mut self, c: &ExternalCursor, now: UnixNanos) -> (Vec<Delivery>, bool) {
        let Some(st) = self.slot(c) else {
            return (Vec::new(), false);
        };
        match &mut st.remote {
            None => {
                st.remote = Some(Box::new(Remote {
                    deliver: String::new(),
                    reply: String::new(),
                    cname: None,
                    ask_at: Some(now),
                    asked: 0,
                    heard: now,
                    dseq: 0,
                    sseq: 0,
                }));
            }
            Some(r) => {
                if r.cname.is_some() && now.saturating_sub(r.heard) > STALLED {
                    // Go: the source is stalled; a new consumer from the last copy.
                    r.cname = None;
                    r.ask_at = Some(r.asked.saturating_add(RETRY_GAP).max(now));
                }
            }
        }
        let due = st
            .remote
            .as_ref()
            .and_then(|r| r.ask_at)
            .is_some_and(|t| now >= t);
        if !due {
            return (Vec::new(), false);
        }
        let (deliver, reply, name) = (
            self.ephemeral_name(),
            self.ephemeral_name(),
            self.ephemeral_name(),
        );
        let Some(e) = self.streams.get(&c.stream) else {
            return (Vec::new(), false);
        };
        let mirror = c.slot.is_none();
        let Some(st) = (match c.slot {
            None => e.stream.mirror.as_ref(),
            Some(i) => e.stream.sources.get(i),
        }) else {
            return (Vec::new(), false);
        };
        let Some(ext) = st.cfg.external.as_ref() else {
            return (Vec::new(), false);
        };
        let reply = format!("$JSC.R.{reply}");
        // Where to start: after the last copy (Go: the mirror's last sequence, a source's
        // last `Nats-Stream-Source` of its own), else where the config says.
        let next = match st.remote.as_ref().map_or(0, |r| r.sseq) {
            0 => match st.next {
                Some(n) => Some(n),
                None if mirror => Some(e.stream.store.state().last_seq + 1).filter(|n| *n > 1),
                None => resume_point(e.stream.store.as_ref(), &st.iname).map(|s| s + 1),
            },
            s => Some(s + 1),
        };
        let (deliver, subject, body) = create_request(&st.cfg, ext, mirror, next, &deliver, &name);
        let Some(st) = self.slot(c) else {
            return (Vec::new(), false);
        };
        let Some(r) = st.remote.as_mut() else {
            return (Vec::new(), false);
        };
        r.deliver = deliver;
        r.reply.clone_from(&reply);
        r.cname = None;
        r.asked = now;
        r.ask_at = Some(now.saturating_add(ANSWER_WAIT));
        r.dseq = 0;
        let request = Delivery {
            subject,
            reply: Some(reply),
            headers: Vec::new(),
            payload: body.into_bytes(),
            shown_subject: None,
        };
        (vec![request], true)
    }

    /// A message for a remote cursor (an answer, a heartbeat, a flow-control request or a
    /// delivery), if it is one: what to send back (flow-control answers, republished
    /// copies). A new consumer it calls for is asked for by the next [`Self::pull_remote`].
    pub fn remote_inbound(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: &[u8],
        payload: &[u8],
        now: UnixNanos,
    ) -> Option<Vec<Delivery>> {
        // Cheap looks first: this sits on every publish's path. An answer comes on `$JSC.R.`,
        // a delivery with an ack reply, a heartbeat or flow-control request with status 100.
        let maybe = subject.starts_with("$JSC.R.")
            || reply.is_some_and(|r| r.starts_with("$JS.ACK."))
            || headers.starts_with(b"NATS/1.0 100");
        if !maybe || !self.has_remote() {
            return None;
        }
        // A delivery that came over a route or leaf link may still carry the subject it was
        // stored under after an `@` in its ack reply.
        let split = reply
            .and_then(|r| crate::leaf::split_js_reply(r.as_bytes()))
            .map(|(a, s)| {
                (
                    String::from_utf8_lossy(a).into_owned(),
                    String::from_utf8_lossy(s).into_owned(),
                )
            });
        let (reply, subject) = match &split {
            Some((a, s)) => (Some(a.as_str()), s.as_str()),
            None => (reply, subject),
        };
        let ack = reply.and_then(parse_ack);
        let mut found = None;
        'streams: for (name, e) in &self.streams {
            let slots = e.stream.mirror.iter().map(|m| (None, m));
            let slots = slots.chain(
                e.stream
                    .sources
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (Some(i), s)),
            );
            for (slot, st) in slots {
                let Some(r) = &st.remote else { continue };
                let hit = subject == r.reply
                    || subject == r.deliver
                    || ack.is_some_and(|a| a.0 == st.cfg.name && r.cname.as_deref() == Some(a.1));
                if hit {
                    found = Some((name.clone(), slot));
                    break 'streams;
                }
            }
        }
        let (stream, slot) = found?;
        let e = self.streams.get_mut(&stream)?;
        let mirror = slot.is_none();
        let mut st = match slot {
            None => e.stream.mirror.clone(),
            Some(i) => e.stream.sources.get(i).cloned(),
        }?;
        let mut r = st.remote.take()?;
        let mut out = Vec::new();
        let mut stored = false;
        if subject == r.reply {
            answered(&mut st, &mut r, payload, now);
        } else if subject == r.deliver && headers.starts_with(b"NATS/1.0 100") {
            r.heard = now;
            st.last_seen = Some(now);
            let (answer, last) = control(headers, reply);
            if r.cname.is_some() && last.is_some_and(|l| l > 0 && l != r.dseq) {
                // Go: a heartbeat naming a later delivery than ours: we missed one.
                retry(&mut r, now);
            } else if let Some(to) = answer {
                // Flow control, or a heartbeat saying the origin waits for us.
                out.push(empty(&to));
            }
        } else if let Some((_, _, dc, sseq, dseq, ts, pending)) = ack {
            r.heard = now;
            st.last_seen = Some(now);
            if dc == 1 && sseq > r.sseq {
                if dseq == r.dseq + 1 {
                    let m = StoredMsg {
                        seq: sseq,
                        ts,
                        subject: subject.to_owned(),
                        headers: bytes::Bytes::copy_from_slice(headers),
                        payload: bytes::Bytes::copy_from_slice(payload),
                    };
                    let batch: Vec<(StoredMsg, String)> = st
                        .map_subject(subject)
                        .map(|s| (m, s))
                        .into_iter()
                        .collect();
                    let (done, s) = store_batch(
                        &mut e.stream,
                        &mut e.consumers,
                        &mut st,
                        &batch,
                        mirror,
                        sseq + 1,
                        now,
                        &mut out,
                    );
                    stored = s;
                    if done > sseq {
                        r.sseq = sseq;
                        r.dseq = dseq;
                        st.next = Some(sseq + 1);
                        st.lag = pending.saturating_sub(1);
                    } else {
                        // Not stored (full, sealed): ask again from it later.
                        retry(&mut r, now);
                    }
                } else {
                    // Go: a delivery sequence out of turn, something was missed.
                    retry(&mut r, now);
                }
            }
        }
        st.remote = Some(r);
        let e = self.streams.get_mut(&stream)?;
        match slot {
            None => e.stream.mirror = Some(st),
            Some(i) => {
                if let Some(s) = e.stream.sources.get_mut(i) {
                    *s = st;
                }
            }
        }
        if stored {
            self.mark_dirty(&stream);
        }
        Some(out)
    }
}

/// nats-server's consumer-create request for a mirror or source reached over the network:
/// the deliver subject (`token` makes it new), the subject to send the request to and its
/// body. `next`: the first origin sequence wanted, if known (Go: setupMirrorConsumer,
/// setSourceConsumer).
pub fn create_request(
    src: &StreamSource,
    ext: &ExternalStream,
    mirror: bool,
    next: Option<u64>,
    token: &str,
    name: &str,
) -> (String, String, String) {
    let prefix = match ext.deliver.trim_end_matches('.') {
        "" => "$JS",
        p => p,
    };
    let deliver = format!("{prefix}.{}.{token}", if mirror { "M" } else { "S" });
    let mut cfg = json!({
        "deliver_subject": deliver,
        "deliver_policy": "all",
        "ack_policy": "none",
        "ack_wait": ACK_WAIT,
        "max_deliver": 1,
        "idle_heartbeat": HEARTBEAT,
        "flow_control": true,
        "direct": true,
    });
    let start = next.or((src.opt_start_seq > 0).then_some(src.opt_start_seq));
    if let Some(seq) = start {
        cfg["deliver_policy"] = json!("by_start_sequence");
        cfg["opt_start_seq"] = json!(seq);
    } else if let Some(t) = &src.opt_start_time {
        cfg["deliver_policy"] = json!("by_start_time");
        cfg["opt_start_time"] = json!(t);
    }
    let api = ext.api.trim_end_matches('.');
    let origin = &src.name;
    let subject = if src.filter_subject.is_empty() {
        format!("{api}.CONSUMER.CREATE.{origin}")
    } else {
        // Go: with a filter, the extended create subject and a name of its own.
        let name = format!("{}-{name}", if mirror { "mirror" } else { "src" });
        cfg["filter_subject"] = json!(src.filter_subject);
        cfg["name"] = json!(name);
        format!(
            "{api}.CONSUMER.CREATE.{origin}.{name}.{}",
            src.filter_subject
        )
    };
    let body = json!({"stream_name": origin, "config": cfg}).to_string();
    (deliver, subject, body)
}

/// What an origin's answer to a create request says: the consumer's name and the last
/// origin sequence it counts as delivered, or the error.
pub fn parse_answer(payload: &[u8]) -> Option<Result<(String, u64), ApiError>> {
    let v = serde_json::from_slice::<Value>(payload).ok()?;
    if let Some(e) = v.get("error") {
        let code = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0);
        return Some(Err(ApiError::new(
            u16::try_from(code("code")).unwrap_or(500),
            u16::try_from(code("err_code")).unwrap_or(0),
            e.get("description").and_then(Value::as_str).unwrap_or(""),
        )));
    }
    let name = v.get("name").and_then(Value::as_str)?;
    let delivered = v
        .pointer("/delivered/stream_seq")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some(Ok((name.to_owned(), delivered)))
}

/// A flow-control request (it has a reply subject) or a heartbeat: `Some(reply)` to answer
/// at once; for a heartbeat also the last consumer sequence it names.
pub fn control(headers: &[u8], reply: Option<&str>) -> (Option<String>, Option<u64>) {
    if let Some(fc) = reply {
        return (Some(fc.to_owned()), None);
    }
    let h = Headers::parse(headers).ok();
    let get = |n: &str| {
        h.as_ref()
            .and_then(|h| h.get(n))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let last = get("Nats-Last-Consumer").and_then(|v| v.parse::<u64>().ok());
    (get("Nats-Consumer-Stalled"), last)
}

/// The origin's answer to a create request.
fn answered(st: &mut SourceState, r: &mut Remote, payload: &[u8], now: UnixNanos) {
    match parse_answer(payload) {
        None => {}
        Some(Err(e)) => {
            st.error = Some(e);
            // Go: retried, no sooner than the threshold.
            r.ask_at = Some(r.asked.saturating_add(RETRY_GAP).max(now));
        }
        Some(Ok((name, delivered))) => {
            st.error = None;
            r.cname = Some(name);
            r.ask_at = None;
            r.heard = now;
            r.dseq = 0;
            st.last_seen = Some(now);
            // Go: the consumer starts after what it says was delivered.
            r.sseq = r.sseq.max(delivered);
        }
    }
}

/// Asks for a new consumer from the last copy, as soon as the threshold allows.
fn retry(r: &mut Remote, now: UnixNanos) {
    r.cname = None;
    r.ask_at = Some(r.asked.saturating_add(RETRY_GAP).max(now));
}

fn empty(to: &str) -> Delivery {
    Delivery {
        subject: to.to_owned(),
        reply: None,
        headers: Vec::new(),
        payload: Vec::new(),
        shown_subject: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::external::ExternalCursor;
    use super::*;
    use crate::jetstream::factory::DiskFactory;
    use crate::jetstream::service::JsSettings;
    use crate::jetstream::store::{MemDisk, SyncPolicy};

    const T0: u64 = 1_700_000_000_000_000_000;
    const SEC: u64 = 1_000_000_000;

    fn js() -> JetStream {
        let d = MemDisk::new(1);
        let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always);
        JetStream::new(JsSettings::default(), Box::new(f), 1)
    }

    fn api(js: &mut JetStream, subject: &str, req: &Value) -> Value {
        let out = js.api(subject, Some("_INBOX.r"), req.to_string().as_bytes(), T0);
        serde_json::from_slice(&out[0].payload).unwrap()
    }

    fn cursor(js: &JetStream) -> ExternalCursor {
        js.external_cursors().remove(0)
    }

    fn body(d: &Delivery) -> Value {
        serde_json::from_slice(&d.payload).unwrap()
    }

    #[test]
    fn both_ack_reply_forms() {
        assert_eq!(
            parse_ack("$JS.ACK.O.C1.1.5.3.1700.9"),
            Some(("O", "C1", 1, 5, 3, 1700, 9))
        );
        assert_eq!(
            parse_ack("$JS.ACK.hub.ACCHASH.O.C1.2.5.3.1700.9.tok"),
            Some(("O", "C1", 2, 5, 3, 1700, 9))
        );
        assert_eq!(parse_ack("$JS.ACK.O.C1.x.5.3.1700.9"), None);
        assert_eq!(parse_ack("_INBOX.x"), None);
    }

    /// A mirror asks for a consumer, stores its deliveries in order under their origin
    /// sequences, answers flow control, and asks again from its last copy after a gap.
    #[test]
    fn a_mirror_over_the_network() {
        let mut js = js();
        let ext = json!({"api": "$JS.hub.API", "deliver": ""});
        let v = api(
            &mut js,
            "$JS.API.STREAM.CREATE.M",
            &json!({"name": "M", "mirror": {"name": "O", "external": ext}}),
        );
        assert!(v["error"].is_null(), "{v}");
        let c = cursor(&js);
        let (req, changed) = js.pull_remote(&c, T0);
        assert!(changed);
        assert_eq!(req[0].subject, "$JS.hub.API.CONSUMER.CREATE.O");
        let b = body(&req[0]);
        assert_eq!(b["stream_name"], "O");
        assert_eq!(b["config"]["deliver_policy"], "all");
        assert_eq!(b["config"]["flow_control"], true);
        assert_eq!(b["config"]["idle_heartbeat"], SEC);
        let deliver = b["config"]["deliver_subject"].as_str().unwrap().to_owned();
        assert!(deliver.starts_with("$JS.M."), "{deliver}");
        let reply = req[0].reply.clone().unwrap();
        let subs = js.subjects();
        assert!(subs.contains(&deliver) && subs.contains(&reply), "{subs:?}");
        // Nothing more is asked while the answer may still come.
        assert!(js.pull_remote(&c, T0 + SEC).0.is_empty());
        let answer = json!({"name": "C1", "delivered": {"consumer_seq": 0, "stream_seq": 0}});
        let out = js.remote_inbound(&reply, None, b"", answer.to_string().as_bytes(), T0 + SEC);
        assert_eq!(out, Some(Vec::new()));
        for (seq, ack) in [
            (1, "$JS.ACK.O.C1.1.1.1.5.1"),
            (2, "$JS.ACK.O.C1.1.2.2.6.0@o.2"),
        ] {
            let p = format!("m{seq}");
            let out = js.remote_inbound("o.x", Some(ack), b"", p.as_bytes(), T0 + SEC);
            assert!(out.is_some(), "{ack}");
        }
        // Not ours: another consumer's delivery is left to the streams.
        assert!(js
            .remote_inbound("o.x", Some("$JS.ACK.O.OLD.1.3.3.7.0"), b"", b"", T0 + SEC)
            .is_none());
        // Flow control is answered.
        let fc = js
            .remote_inbound(
                &deliver,
                Some("$JS.FC.O.C1.1"),
                b"NATS/1.0 100 FlowControl Request\r\n\r\n",
                b"",
                T0 + SEC,
            )
            .unwrap();
        assert_eq!(fc[0].subject, "$JS.FC.O.C1.1");
        js.commit(T0 + SEC);
        let st = js.streams["M"].stream.store.state();
        assert_eq!((st.msgs, st.last_seq), (2, 2));
        let m = js.streams["M"].stream.store.load_next_msg("", 2).unwrap();
        assert_eq!((m.subject.as_str(), m.ts), ("o.2", 6));
        // Delivery 4 after 2: one was missed; a new consumer from sequence 3, not before
        // two seconds after the last request.
        js.remote_inbound("o.x", Some("$JS.ACK.O.C1.1.5.4.8.0"), b"", b"", T0 + SEC);
        assert!(js.pull_remote(&c, T0 + SEC).0.is_empty());
        let (req, _) = js.pull_remote(&c, T0 + 2 * SEC);
        let b = body(&req[0]);
        assert_eq!(b["config"]["deliver_policy"], "by_start_sequence");
        assert_eq!(b["config"]["opt_start_seq"], 3);
        assert_ne!(
            b["config"]["deliver_subject"].as_str(),
            Some(deliver.as_str())
        );
        // No answer within 5 s: asked again.
        assert!(js.pull_remote(&c, T0 + 6 * SEC).0.is_empty());
        assert_eq!(js.pull_remote(&c, T0 + 7 * SEC).0.len(), 1);
    }
}
