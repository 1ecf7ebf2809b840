//! External mirrors and sources of clustered streams, read over the network as nats-server
//! does (see core's `sourcing::remote`): the stream's leader runs one task per such mirror
//! or source while it leads. The task subscribes in the stream's account to a fresh deliver
//! subject and reply subject, sends the consumer-create request through the `external` API
//! prefix, and hands each run of deliveries to the stream's proposer as a read
//! ([`super::Sourced`]), so the copies are proposed in order with the stream's other writes
//! and a new leader resumes from its replica's store. A lost heartbeat (3 s), a missed
//! delivery or a refused copy ends the consumer; the task asks again from where the stream
//! stands, no sooner than 2 s after the last request.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::jetstream::consumer::Delivery;
use natsd_core::jetstream::sourcing::remote::{control, create_request, parse_ack, parse_answer};
use natsd_core::jetstream::sourcing::replicated::{self as rsrc, ReadReply};
use natsd_core::jetstream::store::StoredMsg;
use natsd_core::leaf::split_js_reply;
use natsd_core::rng::SplitMix64;
use natsd_core::router::{InternalSink, Message, SubRef, SubTarget, Subscription};
use tokio::sync::{mpsc, oneshot};

use super::super::consumers::emit;
use super::super::replicas::{Op, StreamGroup};
use super::super::{tell_interest, JsCluster};
use super::Sourced;
use crate::server::{lock, Shared};

/// How long the origin may take to answer a create request.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// Silence (no heartbeat, no delivery) after which the consumer counts as gone.
const STALLED: Duration = Duration::from_secs(3);
/// The least time between two create requests (Go: `sourceConsumerRetryThreshold`).
const RETRY_GAP: Duration = Duration::from_secs(2);
/// Most deliveries handed to the proposer at once.
const RUN: usize = 256;

/// One message heard on the task's subscriptions.
#[derive(Debug)]
struct Heard {
    subject: String,
    reply: Option<String>,
    headers: Vec<u8>,
    payload: Bytes,
}

#[derive(Debug)]
struct Sink(mpsc::Sender<Heard>);

impl InternalSink for Sink {
    fn deliver(&self, m: &Message<'_>) {
        // A full queue drops the message: the gap in delivery sequences brings a new
        // consumer from the last copy.
        let _ = self.0.try_send(Heard {
            subject: String::from_utf8_lossy(m.subject).into_owned(),
            reply: m.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            headers: m.headers.map(<[u8]>::to_vec).unwrap_or_default(),
            payload: m
                .shared
                .cloned()
                .unwrap_or_else(|| Bytes::copy_from_slice(m.payload)),
        });
    }
}

/// The task's subscriptions, dropped with it.
struct Subs {
    srv: Weak<Shared>,
    acc: Arc<Account>,
    subs: Vec<SubRef>,
}

impl Subs {
    fn new(
        srv: &Arc<Shared>,
        acc: &Arc<Account>,
        subjects: &[&str],
        tx: &mpsc::Sender<Heard>,
    ) -> Self {
        let sink: Arc<dyn InternalSink> = Arc::new(Sink(tx.clone()));
        let mut subs = Vec::new();
        for s in subjects {
            let s = Bytes::from((*s).to_owned());
            let sub = SubRef(Arc::new(Subscription::new(
                s.clone(),
                None,
                SubTarget::Internal(Arc::clone(&sink)),
            )));
            if acc.sublist.insert(&s, None, sub.clone()).is_ok() {
                tell_interest(srv, &acc.name, &s, true);
                subs.push(sub);
            }
        }
        Self {
            srv: Arc::downgrade(srv),
            acc: Arc::clone(acc),
            subs,
        }
    }
}

impl Drop for Subs {
    fn drop(&mut self) {
        let srv = self.srv.upgrade();
        for sub in self.subs.drain(..) {
            if self.acc.sublist.remove(&sub.0.subject, None, &sub).is_ok() {
                if let Some(srv) = &srv {
                    tell_interest(srv, &self.acc.name, &sub.0.subject, false);
                }
            }
        }
    }
}

/// Eight random characters.
fn token(rng: &mut SplitMix64) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| A[rng.below(A.len() as u64) as usize] as char)
        .collect()
}

impl JsCluster {
    /// Copies the external mirror or source `slot` of `g` while this replica leads it in
    /// the current term.
    pub(super) async fn run_remote_source(
        self: &Arc<Self>,
        g: &Arc<StreamGroup>,
        slot: Option<usize>,
    ) {
        let term = g.group.raft().metrics().borrow().current_term;
        let current = || {
            !*self.stop.borrow()
                && g.is_leading()
                && g.group.raft().metrics().borrow().current_term == term
        };
        let Some(srv) = self.srv.upgrade() else {
            return;
        };
        let Some(acc) = srv.lookup_account(&g.account) else {
            return;
        };
        let mut rng = SplitMix64::new(srv.next_seed());
        let mut last_ask: Option<tokio::time::Instant> = None;
        while current() {
            if let Some(t) = last_ask {
                tokio::time::sleep_until(t + RETRY_GAP).await;
                if !current() {
                    return;
                }
            }
            last_ask = Some(tokio::time::Instant::now());
            let Some((cursor, src)) = lock(&g.replica)
                .rs_mut()
                .and_then(|rs| rsrc::remote_cursor(rs, slot))
            else {
                return;
            };
            let Some(ext) = src.external.clone() else {
                return;
            };
            let next = (cursor.request.next > 0).then_some(cursor.request.next);
            let (deliver, subject, body) = create_request(
                &src,
                &ext,
                slot.is_none(),
                next,
                &token(&mut rng),
                &token(&mut rng),
            );
            let reply = format!("$JSC.R.{}", token(&mut rng));
            let (tx, mut rx) = mpsc::channel(4 * RUN);
            let _subs = Subs::new(&srv, &acc, &[&deliver, &reply], &tx);
            tracing::debug!(
                "JetStream: {} asks {subject} for a source consumer",
                g.group.name()
            );
            emit(
                &acc,
                vec![Delivery {
                    subject,
                    reply: Some(reply.clone()),
                    headers: Vec::new(),
                    payload: body.into_bytes(),
                    shown_subject: None,
                }],
            );
            // The answer.
            let cname = loop {
                match tokio::time::timeout(ANSWER_WAIT, rx.recv()).await {
                    Ok(Some(h)) if h.subject == reply => break parse_answer(&h.payload),
                    Ok(Some(_)) => {}
                    _ => break None,
                }
            };
            let Some(Ok((cname, _))) = cname else {
                continue;
            };
            let mut dseq = 0;
            let mut next = cursor.request.next;
            // The deliveries, in runs.
            'consumer: while current() {
                let Ok(Some(first)) = tokio::time::timeout(STALLED, rx.recv()).await else {
                    break;
                };
                let mut run = Vec::new();
                let mut pending = 0;
                let mut heard = Some(first);
                while let Some(mut h) = heard.take() {
                    // A delivery that came over a route or leaf link may still carry the
                    // subject it was stored under after an `@` in its ack reply.
                    if let Some((ack, subj)) = h.reply.as_deref().and_then(|r| {
                        split_js_reply(r.as_bytes()).map(|(a, s)| {
                            (
                                String::from_utf8_lossy(a).into_owned(),
                                String::from_utf8_lossy(s).into_owned(),
                            )
                        })
                    }) {
                        h.reply = Some(ack);
                        h.subject = subj;
                    }
                    let ack = h.reply.as_deref().and_then(parse_ack);
                    match ack {
                        Some((_, c, dc, sseq, d, ts, p)) if c == cname => {
                            if dc > 1 || sseq < next {
                                // A redelivery or what the stream already holds.
                            } else if d != dseq + 1 {
                                // Go: a delivery out of turn; something was missed.
                                break 'consumer;
                            } else {
                                dseq = d;
                                next = sseq + 1;
                                pending = p;
                                run.push(StoredMsg {
                                    seq: sseq,
                                    ts,
                                    subject: h.subject,
                                    headers: Bytes::from(h.headers),
                                    payload: h.payload,
                                });
                            }
                        }
                        Some(_) => {}
                        None if h.subject == deliver && h.headers.starts_with(b"NATS/1.0 100") => {
                            let (answer, last) = control(&h.headers, h.reply.as_deref());
                            if last.is_some_and(|l| l > 0 && l != dseq) {
                                break 'consumer;
                            }
                            if let Some(to) = answer {
                                emit(&acc, vec![empty(&to)]);
                            }
                        }
                        None => {}
                    }
                    if run.len() < RUN {
                        heard = rx.try_recv().ok();
                    }
                }
                if run.is_empty() {
                    continue;
                }
                let mut c = cursor.clone();
                c.request.next = lock(&g.replica)
                    .rs()
                    .and_then(|rs| rsrc::next_of(rs, slot))
                    .unwrap_or(0);
                let reply = ReadReply {
                    found: true,
                    cursor: next,
                    last_seq: next.saturating_sub(1) + pending,
                    msgs: run,
                };
                let (done, stored) = oneshot::channel();
                if !g.submit(Op::Sourced(Box::new(Sourced {
                    cursor: c,
                    reply,
                    done,
                }))) || stored.await.is_err()
                {
                    return;
                }
                let at = lock(&g.replica).rs().and_then(|rs| rsrc::next_of(rs, slot));
                if at != Some(next) {
                    // Not stored (the stream refused a copy, or the cursor moved): a new
                    // consumer from where the stream stands.
                    break;
                }
            }
        }
    }
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
