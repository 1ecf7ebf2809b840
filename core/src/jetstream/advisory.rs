//! JetStream advisories and metrics (Go: server/jetstream_events.go): JSON events published in
//! the account on `$JS.EVENT.ADVISORY.…` / `$JS.EVENT.METRIC.…` when streams and consumers
//! come and go, on API calls, naks, terms and exhausted deliveries. They are [`Delivery`]
//! values like any reply; nobody listening costs only the JSON.
//!
//! Ids are drawn from the instance's seeded generator and timestamps from the `now` input, so
//! a run is reproducible.

use serde_json::{json, Map, Value};

use super::api::rfc3339;
use super::consumer::{ConsumerEvent, Delivery};
use super::service::JetStream;
use super::store::UnixNanos;

/// Audit of every API call (Go: `JSAuditAdvisory`).
pub const API_AUDIT: &str = "$JS.EVENT.ADVISORY.API";
const STREAM_CREATED: &str = "$JS.EVENT.ADVISORY.STREAM.CREATED";
const STREAM_UPDATED: &str = "$JS.EVENT.ADVISORY.STREAM.UPDATED";
const STREAM_DELETED: &str = "$JS.EVENT.ADVISORY.STREAM.DELETED";
const CONSUMER_CREATED: &str = "$JS.EVENT.ADVISORY.CONSUMER.CREATED";
const CONSUMER_DELETED: &str = "$JS.EVENT.ADVISORY.CONSUMER.DELETED";
const MAX_DELIVERIES: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES";
const MSG_NAKED: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED";
const MSG_TERMINATED: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED";
const METRIC_ACK: &str = "$JS.EVENT.METRIC.CONSUMER.ACK";

const TYPE_PREFIX: &str = "io.nats.jetstream.advisory.v1.";

/// What happened to a stream or consumer (Go: `ActionAdvisoryType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Created.
    Create,
    /// Config updated (streams only).
    Modify,
    /// Deleted.
    Delete,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Modify => "modify",
            Self::Delete => "delete",
        }
    }
}

/// A redelivery event on one message of a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgEvent {
    /// `-NAK` (Go: `JSConsumerDeliveryNakAdvisory`).
    Nak,
    /// `+TERM` (Go: `JSConsumerDeliveryTerminatedAdvisory`).
    Term,
}

impl JetStream {
    /// A NUID-like event id: 22 base-62 characters from the seeded generator.
    fn event_id(&mut self) -> String {
        const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..22)
            .map(|_| A[self.events.below(A.len() as u64) as usize] as char)
            .collect()
    }

    /// `{"type", "id", "timestamp", …fields, "domain"?}` on `subject`.
    pub(crate) fn event(
        &mut self,
        subject: String,
        ty: &str,
        now: UnixNanos,
        fields: Value,
    ) -> Delivery {
        let mut m = Map::new();
        m.insert("type".to_owned(), json!(ty));
        m.insert("id".to_owned(), json!(self.event_id()));
        m.insert("timestamp".to_owned(), json!(rfc3339(now)));
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        if let Some(d) = self.settings.domain.as_deref().filter(|d| !d.is_empty()) {
            m.insert("domain".to_owned(), json!(d));
        }
        Delivery {
            subject,
            reply: None,
            headers: Vec::new(),
            payload: serde_json::to_vec(&Value::Object(m)).unwrap_or_default(),
            shown_subject: None,
        }
    }

    /// Go: JSAPIAudit on `$JS.EVENT.ADVISORY.API`. `client` is Go's `ClientInfo` of the
    /// requester when the shell knows it (`null` otherwise).
    pub fn api_audit(
        &mut self,
        subject: &str,
        request: &[u8],
        response: &[u8],
        client: Option<&Value>,
        now: UnixNanos,
    ) -> Delivery {
        let mut f = json!({
            "server": self.settings.server_name,
            "client": client.cloned().unwrap_or(Value::Null),
            "subject": subject,
        });
        if !request.is_empty() {
            f["request"] = json!(String::from_utf8_lossy(request));
        }
        f["response"] = json!(String::from_utf8_lossy(response));
        self.event(
            API_AUDIT.to_owned(),
            &format!("{TYPE_PREFIX}api_audit"),
            now,
            f,
        )
    }

    /// Go: JSStreamActionAdvisory on `$JS.EVENT.ADVISORY.STREAM.{CREATED,UPDATED,DELETED}.<s>`.
    pub fn stream_advisory(&mut self, stream: &str, action: Action, now: UnixNanos) -> Delivery {
        let pre = match action {
            Action::Create => STREAM_CREATED,
            Action::Modify => STREAM_UPDATED,
            Action::Delete => STREAM_DELETED,
        };
        self.event(
            format!("{pre}.{stream}"),
            &format!("{TYPE_PREFIX}stream_action"),
            now,
            json!({"stream": stream, "action": action.as_str()}),
        )
    }

    /// Go: JSConsumerActionAdvisory on `$JS.EVENT.ADVISORY.CONSUMER.{CREATED,DELETED}.<s>.<c>`.
    pub fn consumer_advisory(
        &mut self,
        stream: &str,
        consumer: &str,
        action: Action,
        now: UnixNanos,
    ) -> Delivery {
        let pre = if action == Action::Delete {
            CONSUMER_DELETED
        } else {
            CONSUMER_CREATED
        };
        self.event(
            format!("{pre}.{stream}.{consumer}"),
            &format!("{TYPE_PREFIX}consumer_action"),
            now,
            json!({"stream": stream, "consumer": consumer, "action": action.as_str()}),
        )
    }

    /// Go: notifyDeliveryExceeded — a message reached the consumer's `max_deliver`
    /// (`deliveries` is how often it was delivered). For the consumer's redelivery path.
    pub fn max_deliveries_advisory(
        &mut self,
        stream: &str,
        consumer: &str,
        stream_seq: u64,
        deliveries: u64,
        now: UnixNanos,
    ) -> Delivery {
        self.event(
            format!("{MAX_DELIVERIES}.{stream}.{consumer}"),
            &format!("{TYPE_PREFIX}max_deliver"),
            now,
            json!({
                "stream": stream, "consumer": consumer,
                "stream_seq": stream_seq, "deliveries": deliveries,
            }),
        )
    }

    /// Go: processNak / processTerm advisories on `…CONSUMER.MSG_NAKED.<s>.<c>` and
    /// `…CONSUMER.MSG_TERMINATED.<s>.<c>`.
    pub fn msg_advisory(
        &mut self,
        event: MsgEvent,
        stream: &str,
        consumer: &str,
        (stream_seq, consumer_seq, deliveries): (u64, u64, u64),
        now: UnixNanos,
    ) -> Delivery {
        let (pre, kind) = match event {
            MsgEvent::Nak => (MSG_NAKED, "nak"),
            MsgEvent::Term => (MSG_TERMINATED, "terminated"),
        };
        self.event(
            format!("{pre}.{stream}.{consumer}"),
            &format!("{TYPE_PREFIX}{kind}"),
            now,
            json!({
                "stream": stream, "consumer": consumer, "consumer_seq": consumer_seq,
                "stream_seq": stream_seq, "deliveries": deliveries,
            }),
        )
    }

    /// Go: sampleAck — `io.nats.jetstream.metric.v1.consumer_ack` on
    /// `$JS.EVENT.METRIC.CONSUMER.ACK.<s>.<c>`, for consumers with `sample_freq` set.
    /// `ack_time` is nanoseconds from delivery to ack.
    pub fn ack_metric(
        &mut self,
        stream: &str,
        consumer: &str,
        (stream_seq, consumer_seq, deliveries): (u64, u64, u64),
        ack_time: i64,
        now: UnixNanos,
    ) -> Delivery {
        self.event(
            format!("{METRIC_ACK}.{stream}.{consumer}"),
            "io.nats.jetstream.metric.v1.consumer_ack",
            now,
            json!({
                "stream": stream, "consumer": consumer, "consumer_seq": consumer_seq,
                "stream_seq": stream_seq, "ack_time": ack_time, "deliveries": deliveries,
            }),
        )
    }

    /// Deletes a stream with Go's advisories: one per consumer, then the stream's
    /// (Go: mset.stop with advisories on).
    pub(crate) fn delete_stream_advised(
        &mut self,
        name: &str,
        now: UnixNanos,
    ) -> Result<(), super::api::ApiError> {
        let consumers: Vec<String> = self
            .streams
            .get(name)
            .map(|e| e.consumers.keys().cloned().collect())
            .unwrap_or_default();
        // Go: deleting a stream deletes its consumers, which end their pull requests.
        if let Some(e) = self.streams.get_mut(name) {
            for c in e.consumers.values_mut() {
                self.advisories.extend(c.release_waiting());
            }
        }
        self.delete_stream(name)?;
        for c in consumers {
            let adv = self.consumer_advisory(name, &c, Action::Delete, now);
            self.advisories.push(adv);
        }
        let adv = self.stream_advisory(name, Action::Delete, now);
        self.advisories.push(adv);
        Ok(())
    }

    /// The advisories of an ack on `$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<cseq>.…`:
    /// Go sends a nak advisory only while the message is still unacknowledged, a term
    /// advisory always. `floor` is the consumer's ack floor (consumer sequence) before the ack.
    pub(crate) fn ack_advisories(
        &mut self,
        tokens: &[&str],
        body: &[u8],
        floor: u64,
        now: UnixNanos,
    ) -> Option<Delivery> {
        let b = body.trim_ascii();
        let event = if b.starts_with(b"-NAK") {
            MsgEvent::Nak
        } else if b.starts_with(b"+TERM") {
            MsgEvent::Term
        } else {
            return None;
        };
        let num = |i: usize| tokens.get(i).and_then(|t| t.parse::<u64>().ok());
        let (dc, sseq, cseq) = (num(4)?, num(5)?, num(6)?);
        if event == MsgEvent::Nak && cseq <= floor {
            return None;
        }
        let (stream, consumer) = (tokens.get(2)?, tokens.get(3)?);
        Some(self.msg_advisory(event, stream, consumer, (sseq, cseq, dc), now))
    }

    /// The advisories of what consumers recorded since the last call: max deliveries, and
    /// deletion after `inactive_threshold`. Terminations are advised on the ack path
    /// ([`Self::ack_advisories`]), which sees the ack itself.
    pub(crate) fn consumer_advisories(&mut self, now: UnixNanos) -> Vec<Delivery> {
        let mut out = Vec::new();
        for ev in self.take_consumer_events() {
            match ev {
                ConsumerEvent::MaxDeliveries {
                    stream,
                    consumer,
                    stream_seq,
                    deliveries,
                } => out.push(
                    self.max_deliveries_advisory(&stream, &consumer, stream_seq, deliveries, now),
                ),
                ConsumerEvent::Deleted { stream, consumer } => {
                    out.push(self.consumer_advisory(&stream, &consumer, Action::Delete, now));
                }
                ConsumerEvent::Terminated { .. } => {}
            }
        }
        out
    }
}
