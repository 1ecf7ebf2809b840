//! Pull requests: the waiting queue and the status messages nats-server 2.9 answers with
//! (Go: processNextMsgRequest, nextWaiting, processWaiting, waitQueue).

use super::super::api::NextRequest;
use super::super::store::{StreamStore, UnixNanos};
use super::priority::Pick;
use super::{Consumer, Delivery};

const PENDING_MSGS: &str = "Nats-Pending-Messages";
const PENDING_BYTES: &str = "Nats-Pending-Bytes";

/// One pull request waiting for messages.
#[derive(Debug, Clone)]
pub(super) struct Waiting {
    reply: String,
    /// Messages still wanted.
    left: u64,
    /// Bytes still allowed (0: no limit).
    bytes: u64,
    pub(super) expires: Option<UnixNanos>,
    no_wait: bool,
    delivered: u64,
    /// Heartbeat interval and when the next is due.
    hb: Option<(u64, UnixNanos)>,
    /// Priority (overflow): serve only while this backed up.
    pub(super) min_pending: u64,
    pub(super) min_ack_pending: u64,
    /// Priority (pinned client): the request's pin id.
    pub(super) pin_id: String,
    /// Priority (prioritized): 0 is served first.
    pub(super) priority: i64,
}

impl Waiting {
    fn status(&self, status: &str) -> (Delivery, String) {
        let d = Delivery::status(
            &self.reply,
            status,
            &[
                (PENDING_MSGS, self.left.to_string()),
                (PENDING_BYTES, self.bytes.to_string()),
            ],
        );
        (d, String::new())
    }
}

/// Parses a pull request body: empty (one message), a bare batch size, or JSON
/// (Go: nextReqFromMsg). The error is the `400` status text.
pub fn parse_next_request(payload: &[u8]) -> Result<NextRequest, String> {
    let req = payload.trim_ascii();
    if req.first() == Some(&b'{') {
        let r: NextRequest = crate::gojson::from_slice(req, crate::gojson::Unknown::Ignore)
            .map_err(|e| format!("400 Bad Request - {e}"))?;
        if r.idle_heartbeat > 0 && r.idle_heartbeat.saturating_mul(2) > r.expires {
            return Err("400 Bad Request - heartbeat value too large".to_owned());
        }
        return Ok(r);
    }
    let batch = std::str::from_utf8(req)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(1);
    Ok(NextRequest {
        batch,
        ..NextRequest::default()
    })
}

fn status(to: &str, s: &str) -> Vec<(Delivery, String)> {
    vec![(Delivery::status(to, s, &[]), String::new())]
}

impl Consumer {
    /// A pull request arrived (Go: processNextMsgRequest).
    pub fn on_next(
        &mut self,
        reply: &str,
        req: &NextRequest,
        store: &dyn StreamStore,
        now: UnixNanos,
    ) -> Vec<(Delivery, String)> {
        if self.is_push() {
            return status(reply, "409 Consumer is push based");
        }
        let batch = u64::try_from(req.batch).unwrap_or(0).max(1);
        let max_bytes = u64::try_from(req.max_bytes).unwrap_or(0);
        let c = &self.config;
        if c.max_batch > 0 && batch > c.max_batch {
            return status(
                reply,
                &format!("409 Exceeded MaxRequestBatch of {}", c.max_batch),
            );
        }
        if req.expires > 0 && c.max_expires > 0 && req.expires > c.max_expires {
            let d = std::time::Duration::from_nanos(c.max_expires);
            return status(reply, &format!("409 Exceeded MaxRequestExpires of {d:?}"));
        }
        if max_bytes > 0 && c.max_bytes > 0 && max_bytes > c.max_bytes {
            return status(
                reply,
                &format!("409 Exceeded MaxRequestMaxBytes of {}", c.max_bytes),
            );
        }
        if let Err(s) = self.check_priority_request(req, now) {
            return status(reply, s);
        }
        let mut out = Vec::new();
        if self.waiting.len() as u64 >= self.config.max_waiting {
            out.extend(self.expire_waiting(now));
        }
        self.last_activity = now;
        if req.no_wait {
            let available = self.num_pending + self.redeliver.len() as u64;
            if available == 0 && req.expires == 0 {
                out.extend(status(reply, "404 No Messages"));
                return out;
            }
            let asked: u64 = self.waiting.iter().map(|w| w.left).sum();
            if available > 0 && available < asked {
                out.extend(status(reply, "408 Requests Pending"));
                return out;
            }
        }
        if self.waiting.len() as u64 >= self.config.max_waiting {
            out.extend(status(reply, "409 Exceeded MaxWaiting"));
            return out;
        }
        self.enqueue(Waiting {
            reply: reply.to_owned(),
            left: batch,
            bytes: max_bytes,
            expires: (req.expires > 0).then(|| now + req.expires),
            no_wait: req.no_wait,
            delivered: 0,
            hb: (req.idle_heartbeat > 0).then(|| (req.idle_heartbeat, now + req.idle_heartbeat)),
            min_pending: req.min_pending,
            min_ack_pending: req.min_ack_pending,
            pin_id: req.id.clone(),
            priority: req.priority,
        });
        out.extend(self.pump(store, now));
        out
    }

    /// Serves waiting pull requests, round robin as Go's waitQueue does.
    pub(super) fn pump_pull(
        &mut self,
        store: &dyn StreamStore,
        now: UnixNanos,
    ) -> Vec<(Delivery, String)> {
        let mut out = Vec::new();
        while !self.waiting.is_empty() {
            let Some((m, src)) = self.next_msg(store) else {
                // Go: at the end of the stream a no-wait request that got something is done.
                let mut keep = std::collections::VecDeque::new();
                for w in std::mem::take(&mut self.waiting) {
                    if w.no_wait && w.delivered > 0 {
                        out.push(w.status("408 Request Timeout"));
                    } else {
                        keep.push_back(w);
                    }
                }
                self.waiting = keep;
                break;
            };
            if !self.pace(&m, src, now) {
                self.unread(&m, src);
                break;
            }
            let size = self.wire_size(&m);
            let Some(mut w) = self.take_waiter(size, now, &mut out) else {
                self.unread(&m, src);
                break;
            };
            w.left -= 1;
            w.delivered += 1;
            if let Some((hb, _)) = w.hb {
                w.hb = Some((hb, now + hb));
            }
            out.push(self.deliver_one(m, &w.reply, now));
            if w.left > 0 {
                self.enqueue(w);
            }
        }
        out
    }

    /// The first waiting request that can take a message of `size` bytes; requests whose
    /// byte budget is too small end with `409 Message Size Exceeds MaxBytes`, requests with
    /// a stale pin id with `423 Nats-Wrong-Pin-Id`; priority rules may pass some over.
    fn take_waiter(
        &mut self,
        size: u64,
        now: UnixNanos,
        out: &mut Vec<(Delivery, String)>,
    ) -> Option<Waiting> {
        let mut i = 0;
        while let Some(mut w) = self.waiting.remove(i) {
            if w.bytes > 0 && size > w.bytes {
                out.push(w.status("409 Message Size Exceeds MaxBytes"));
                continue;
            }
            match self.pick(&mut w, now) {
                Pick::Serve => {
                    if w.bytes > 0 {
                        w.bytes -= size;
                        if w.bytes == 0 {
                            // Go: the budget is spent exactly; this one goes, then it ends.
                            w.left = 1;
                        }
                    }
                    return Some(w);
                }
                Pick::Skip => {
                    self.waiting.insert(i, w);
                    i += 1;
                }
                Pick::WrongPin => {
                    let d = Delivery::status(&w.reply, "423 Nats-Wrong-Pin-Id", &[]);
                    out.push((d, String::new()));
                }
            }
        }
        None
    }

    /// Ends expired pull requests with `408 Request Timeout` and sends per-request
    /// heartbeats (Go: processWaiting).
    pub(super) fn expire_waiting(&mut self, now: UnixNanos) -> Vec<(Delivery, String)> {
        let mut out = Vec::new();
        let (cseq, sseq) = (self.cseq, self.last_sseq);
        self.waiting.retain_mut(|w| {
            if w.expires.is_some_and(|t| t <= now) {
                out.push(w.status("408 Request Timeout"));
                return false;
            }
            if let Some((hb, due)) = w.hb {
                if due <= now {
                    let d = Delivery::status(
                        &w.reply,
                        "100 Idle Heartbeat",
                        &[
                            ("Nats-Last-Consumer", cseq.to_string()),
                            ("Nats-Last-Stream", sseq.to_string()),
                        ],
                    );
                    out.push((d, String::new()));
                    w.hb = Some((hb, now + hb));
                }
            }
            true
        });
        out
    }

    /// The consumer is going away: every waiting pull request ends with
    /// `409 Consumer Deleted`, which tells clients (ordered consumers above all) to make a
    /// new one (Go: releaseAnyPendingRequests; push consumers get nothing).
    pub fn release_waiting(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.waiting)
            .into_iter()
            .map(|w| Delivery::status(&w.reply, "409 Consumer Deleted", &[]))
            .collect()
    }

    /// Ends the pull requests that expired by `now` (Go's consumer info runs processWaiting
    /// first, so `num_waiting` never counts a request past its expiry).
    pub fn expire_waiting_now(&mut self, now: UnixNanos) -> Vec<Delivery> {
        self.expire_waiting(now).into_iter().map(|d| d.0).collect()
    }

    /// When the next pull request expires or wants a heartbeat.
    pub(super) fn waiting_deadline(&self) -> Option<UnixNanos> {
        self.waiting
            .iter()
            .flat_map(|w| [w.expires, w.hb.map(|h| h.1)])
            .flatten()
            .min()
    }
}
