//! A publish into a stream, and the PubAcks it gets (at once for an error or a duplicate,
//! after the commit that makes it durable otherwise).

use std::io::Write as _;

use serde_json::json;

use super::{json_reply, JetStream, PendingAck};
use crate::jetstream::api::ApiError;
use crate::jetstream::consumer::Delivery;
use crate::jetstream::limits::{account_resources_exceeded, insufficient_resources};
use crate::jetstream::store::UnixNanos;

/// The PubAck of a stored message, with a counter's total (Go: PubAck.Value, after the
/// domain).
pub(super) fn stored_ack(a: PendingAck, domain: Option<&str>) -> Delivery {
    let mut ack = pub_ack(a.reply, &a.stream, a.seq, domain);
    if let Some(v) = &a.val {
        ack.payload.pop();
        let _ = write!(ack.payload, ",\"val\":\"{v}\"}}");
    }
    if let Some((id, count)) = &a.batch {
        ack.payload.pop();
        ack.payload.extend_from_slice(b",\"batch\":");
        let _ = serde_json::to_writer(&mut ack.payload, id);
        let _ = write!(ack.payload, ",\"count\":{count}}}");
    }
    ack
}

/// The PubAck of a duplicate: the original's sequence, `"duplicate": true`.
pub(super) fn dup_ack(reply: &str, stream: &str, seq: u64, domain: Option<&str>) -> Delivery {
    let mut v = json!({"stream": stream, "seq": seq, "duplicate": true});
    if let Some(d) = domain {
        v["domain"] = json!(d);
    }
    json_reply(reply, &v)
}

/// A PubAck, `{"stream":…,"seq":…[,"domain":…]}` in nats-server's field order. Written
/// directly rather than through a JSON tree: every stored message gets one.
pub(super) fn pub_ack(reply: String, stream: &str, seq: u64, domain: Option<&str>) -> Delivery {
    let mut p = Vec::with_capacity(40 + stream.len());
    p.extend_from_slice(b"{\"stream\":");
    // Writing to a Vec cannot fail, and a str always serializes.
    let _ = serde_json::to_writer(&mut p, stream);
    let _ = write!(p, ",\"seq\":{seq}");
    if let Some(d) = domain {
        p.extend_from_slice(b",\"domain\":");
        let _ = serde_json::to_writer(&mut p, d);
    }
    p.push(b'}');
    Delivery {
        subject: reply,
        reply: None,
        headers: Vec::new(),
        payload: p,
        shown_subject: None,
    }
}

impl JetStream {
    /// A message published on some subject: stored if a stream captures it. Errors are
    /// answered at once; successes wait for [`JetStream::commit`].
    pub fn publish(
        &mut self,
        subj: &str,
        reply: Option<&str>,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let Some(name) = self
            .streams
            .iter()
            .find(|(_, e)| e.stream.captures(subj))
            .map(|(n, _)| n.clone())
        else {
            return Vec::new();
        };
        if let Some(err) = self.publish_limit_error(&name) {
            return reply
                .map(|r| {
                    vec![json_reply(
                        r,
                        &json!({"error": err, "stream": name, "seq": 0}),
                    )]
                })
                .unwrap_or_default();
        }
        if crate::jetstream::stream::is_batched(hdr) {
            return self.publish_batched(&name, subj, reply, hdr, payload, now);
        }
        let Some(e) = self.streams.get_mut(&name) else {
            return Vec::new();
        };
        let memory = e.stream.config.storage == "memory";
        let stored = e.stream.publish(subj, hdr, payload, now);
        // Go: jsa.limitsExceeded after the store — the message is taken back.
        if let Ok(st) = &stored {
            if !st.duplicate && self.account_over(memory) {
                if let Some(e) = self.streams.get_mut(&name) {
                    let _ = e.stream.store.remove_msg(st.seq);
                }
                let err = account_resources_exceeded();
                return reply
                    .map(|r| {
                        vec![json_reply(
                            r,
                            &json!({"error": err, "stream": name, "seq": 0}),
                        )]
                    })
                    .unwrap_or_default();
            }
        }
        let Some(e) = self.streams.get_mut(&name) else {
            return Vec::new();
        };
        match stored {
            // A duplicate of a message not yet synced waits for it: had the sync failed,
            // an immediate "duplicate" would acknowledge a message the crash then loses.
            Ok(st) if st.duplicate && e.stream.store.synced_through() < st.seq => {
                if let Some(r) = reply {
                    self.acks.push(PendingAck {
                        stream: name.clone(),
                        seq: st.seq,
                        reply: r.to_owned(),
                        duplicate: true,
                        val: None,
                        batch: None,
                    });
                    self.mark_dirty(&name);
                }
                Vec::new()
            }
            Ok(st) if st.duplicate => reply
                .map(|r| vec![dup_ack(r, &name, st.seq, self.settings.domain.as_deref())])
                .unwrap_or_default(),
            Ok(st) => {
                if !crate::jetstream::retention::drop_unwanted(e, subj, st.seq) {
                    for c in e.consumers.values_mut() {
                        c.on_stored(subj, st.seq);
                    }
                }
                if !self.dirty.contains(&name) {
                    self.dirty.push(name.clone());
                }
                let mut out: Vec<Delivery> = st.republish.into_iter().collect();
                if let Some(r) = reply {
                    let a = PendingAck {
                        stream: name,
                        seq: st.seq,
                        reply: r.to_owned(),
                        duplicate: false,
                        val: st.val,
                        batch: None,
                    };
                    // `persist_mode: async` (Go 2.12): acknowledged before the sync.
                    if crate::jetstream::stream::persist_async(&e.stream.config) {
                        out.push(stored_ack(a, self.settings.domain.as_deref()));
                    } else {
                        self.acks.push(a);
                    }
                }
                out
            }
            Err(e) => reply
                .map(|r| vec![json_reply(r, &json!({"error": e}))])
                .unwrap_or_default(),
        }
    }

    /// Go: processJetStreamMsg — a server over its limit refuses before storing.
    fn publish_limit_error(&self, stream: &str) -> Option<ApiError> {
        let memory = self.streams.get(stream)?.stream.config.storage == "memory";
        self.server_full(memory).then(insufficient_resources)
    }
}
