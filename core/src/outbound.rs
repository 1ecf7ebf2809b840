//! A connection's bounded outbound queue, with slow-consumer accounting.
//!
//! Producers (the connection itself and every publisher that delivers to it) append; the
//! connection's writer drains whole batches and writes them vectored. Small payloads are copied
//! into a shared tail buffer (one memcpy is cheaper than an extra iovec and refcount); large ones
//! are queued as the publisher's refcounted `Bytes`, never copied per subscriber.
//!
//! Go: server/client.go queueOutbound — a connection whose pending bytes pass `max_pending` is a
//! slow consumer and is closed; nobody else waits for it.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::proto::client::MsgTemplate;

/// Payloads up to this size are copied into the tail buffer instead of queued by reference.
pub const COPY_THRESHOLD: usize = 2048;

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// Pending bytes would pass `max_pending`: the connection is a slow consumer.
    #[error("slow consumer: pending bytes exceed max_pending")]
    SlowConsumer,
    /// The connection is closing; nothing more is queued.
    #[error("connection closed")]
    Closed,
}

/// The outbound queue of one connection.
#[derive(Debug)]
pub struct Outbound {
    queue: VecDeque<Bytes>,
    tail: BytesMut,
    pending_bytes: u64,
    max_pending_bytes: u64,
    closed: bool,
}

impl Outbound {
    /// An empty queue bounded by `max_pending_bytes`.
    pub fn new(max_pending_bytes: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            tail: BytesMut::new(),
            pending_bytes: 0,
            max_pending_bytes,
            closed: false,
        }
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// Is there anything to write?
    pub fn is_empty(&self) -> bool {
        self.pending_bytes == 0
    }

    /// No more pushes are accepted; what is queued may still be drained.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Has [`Outbound::close`] been called?
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn admit(&self, len: usize) -> Result<(), PushError> {
        if self.closed {
            return Err(PushError::Closed);
        }
        if self.pending_bytes + len as u64 > self.max_pending_bytes {
            return Err(PushError::SlowConsumer);
        }
        Ok(())
    }

    /// Queues protocol bytes the connection itself produced (INFO, PONG, -ERR, ...). These are
    /// never refused for size: they are small and bounded by the connection's own input.
    pub fn push_control(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.tail.extend_from_slice(bytes);
        self.pending_bytes += bytes.len() as u64;
    }

    /// Queues one message: a control line written by `write_header` into the tail, then the
    /// payload (copied when small, by reference when large), then CRLF.
    pub fn push_msg(
        &mut self,
        header_len_hint: usize,
        write_header: impl FnOnce(&mut BytesMut),
        payload: &Bytes,
    ) -> Result<usize, PushError> {
        self.push_msg_from(header_len_hint, write_header, payload, Some(payload))
    }

    /// Like [`Self::push_msg`] for a borrowed payload; `shared`, when given, holds the same bytes
    /// refcounted, and a large payload is then queued by reference instead of copied.
    pub fn push_msg_from(
        &mut self,
        header_len_hint: usize,
        write_header: impl FnOnce(&mut BytesMut),
        payload: &[u8],
        shared: Option<&Bytes>,
    ) -> Result<usize, PushError> {
        self.admit(header_len_hint + payload.len() + 2)?;
        let before = self.tail.len();
        write_header(&mut self.tail);
        let header_len = self.tail.len() - before;
        match shared {
            Some(b) if payload.len() > COPY_THRESHOLD => {
                debug_assert_eq!(&b[..], payload);
                self.seal_tail();
                self.queue.push_back(b.clone());
            }
            _ => self.tail.extend_from_slice(payload),
        }
        self.tail.extend_from_slice(b"\r\n");
        let total = header_len + payload.len() + 2;
        self.pending_bytes += total as u64;
        Ok(total)
    }

    /// Queues one message encoded once by a [`MsgTemplate`] for all its receivers, completed
    /// with this receiver's `sid`. `by_ref` is the payload when the template does not hold it
    /// inline (large payloads are queued by reference, never copied per receiver).
    pub fn push_template(
        &mut self,
        t: &mut MsgTemplate,
        sid: &[u8],
        by_ref: Option<&Bytes>,
    ) -> Result<usize, PushError> {
        debug_assert_eq!(t.payload_inline(), by_ref.is_none());
        let total = t.encoded_len(sid) + by_ref.map_or(0, |b| b.len() + 2);
        self.admit(total)?;
        t.write_to(&mut self.tail, sid);
        if let Some(b) = by_ref {
            self.seal_tail();
            self.queue.push_back(b.clone());
            self.tail.extend_from_slice(b"\r\n");
        }
        self.pending_bytes += total as u64;
        Ok(total)
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.queue.push_back(self.tail.split().freeze());
        }
    }

    /// Moves everything queued into `out`, in order, and returns the number of bytes moved.
    pub fn drain_into(&mut self, out: &mut Vec<Bytes>) -> u64 {
        self.seal_tail();
        out.extend(self.queue.drain(..));
        let n = self.pending_bytes;
        self.pending_bytes = 0;
        // Keep the tail's allocation from growing without bound after a burst.
        if self.tail.capacity() > 1 << 20 {
            self.tail = BytesMut::new();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(o: &mut Outbound) -> Vec<u8> {
        let mut v = Vec::new();
        o.drain_into(&mut v);
        v.concat()
    }

    #[test]
    fn small_and_large_payloads_keep_order() {
        let mut o = Outbound::new(1 << 20);
        o.push_control(b"PONG\r\n");
        let small = Bytes::from_static(b"hi");
        o.push_msg(16, |b| b.extend_from_slice(b"MSG a 1 2\r\n"), &small)
            .unwrap();
        let large = Bytes::from(vec![b'x'; 5000]);
        o.push_msg(16, |b| b.extend_from_slice(b"MSG a 1 5000\r\n"), &large)
            .unwrap();
        o.push_control(b"PING\r\n");
        let pending = o.pending_bytes();
        let out = collect(&mut o);
        assert_eq!(out.len() as u64, pending);
        let mut want = b"PONG\r\nMSG a 1 2\r\nhi\r\nMSG a 1 5000\r\n".to_vec();
        want.extend(std::iter::repeat_n(b'x', 5000));
        want.extend_from_slice(b"\r\nPING\r\n");
        assert_eq!(out, want);
        assert!(o.is_empty());
    }

    #[test]
    fn slow_consumer_when_over_max_pending() {
        let mut o = Outbound::new(100);
        let p = Bytes::from(vec![0u8; 60]);
        o.push_msg(10, |b| b.extend_from_slice(b"MSG a 1 60\r\n"), &p)
            .unwrap();
        assert_eq!(
            o.push_msg(10, |b| b.extend_from_slice(b"MSG a 1 60\r\n"), &p),
            Err(PushError::SlowConsumer)
        );
        // Draining frees room again.
        collect(&mut o);
        assert!(o
            .push_msg(10, |b| b.extend_from_slice(b"MSG a 1 60\r\n"), &p)
            .is_ok());
    }

    #[test]
    fn template_pushes_match_push_msg() {
        let small = Bytes::from_static(b"hello");
        let large = Bytes::from(vec![b'y'; COPY_THRESHOLD + 1]);
        for (payload, inline) in [(&small, true), (&large, false)] {
            let mut t = MsgTemplate::default();
            t.fill(b"a.b", Some(b"r.1"), None, payload, inline);
            let mut old = Outbound::new(1 << 20);
            let mut new = Outbound::new(1 << 20);
            for sid in [&b"1"[..], b"22", b"333"] {
                old.push_msg(
                    8,
                    |b| {
                        crate::proto::client::encode_msg_header(
                            b,
                            b"a.b",
                            sid,
                            Some(b"r.1"),
                            payload.len(),
                        )
                    },
                    payload,
                )
                .unwrap();
                new.push_template(&mut t, sid, (!inline).then_some(payload))
                    .unwrap();
            }
            assert_eq!(old.pending_bytes(), new.pending_bytes());
            assert_eq!(collect(&mut old), collect(&mut new));
        }
        let mut t = MsgTemplate::default();
        t.fill(b"a", None, None, &[0; 60], true);
        let mut o = Outbound::new(100);
        o.push_template(&mut t, b"1", None).unwrap();
        assert_eq!(
            o.push_template(&mut t, b"1", None),
            Err(PushError::SlowConsumer)
        );
    }

    #[test]
    fn closed_refuses() {
        let mut o = Outbound::new(100);
        o.close();
        let p = Bytes::from_static(b"x");
        assert_eq!(o.push_msg(1, |_| {}, &p), Err(PushError::Closed));
        o.push_control(b"PING\r\n");
        assert!(o.is_empty());
    }
}
