//! The outbound side of a server-to-server link (a route, a leaf node): control lines and
//! small payloads go into one buffer, large payloads are queued by reference, and what is
//! pending is bounded, with the stall gate of [`crate::outbound`] held past half the bound.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::outbound::StallGate;

/// Payloads up to this size are copied into the control-line buffer rather than queued as
/// their own chunk: one write instead of three for small messages.
pub const INLINE_PAYLOAD_MAX: usize = 512;

/// Bytes waiting for the peer of one link.
#[derive(Debug, Default)]
pub struct LinkOut {
    /// Bytes not yet chunked; chunks wait in `queue`.
    buf: BytesMut,
    queue: VecDeque<Bytes>,
    queued: usize,
    /// Producers feeding this link wait on it while its queue is more than half full.
    gate: Arc<StallGate>,
}

impl LinkOut {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            buf: BytesMut::with_capacity(1024),
            ..Self::default()
        }
    }

    /// The buffer encoders write control lines into.
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends a message part: copied when small, else queued as its own chunk (by
    /// reference when `shared` holds the same bytes refcounted).
    pub fn put_part(&mut self, part: &[u8], shared: Option<&Bytes>) {
        if part.len() <= INLINE_PAYLOAD_MAX {
            self.buf.extend_from_slice(part);
            return;
        }
        self.flush_buf();
        self.queued += part.len();
        let chunk = match shared {
            Some(b) if b.len() == part.len() => {
                debug_assert_eq!(&b[..], part);
                b.clone()
            }
            _ => Bytes::copy_from_slice(part),
        };
        self.queue.push_back(chunk);
    }

    /// Bytes pending for the peer.
    pub fn pending_bytes(&self) -> usize {
        self.queued + self.buf.len()
    }

    /// The gate producers feeding this link wait on.
    pub fn gate(&self) -> &Arc<StallGate> {
        &self.gate
    }

    /// Whether more than `max` bytes are pending (the link is a slow consumer). Past half of
    /// `max` the gate holds producers back (Go: client.go queueOutbound).
    pub fn over(&self, max: usize) -> bool {
        let (pending, max) = (self.pending_bytes() as u64, max as u64);
        if pending > max {
            return true;
        }
        if pending > max / 2 {
            self.gate
                .hold_for(crate::outbound::stall_duration(pending, max));
        }
        false
    }

    /// Drops everything pending (a link closed without flushing) and releases the gate.
    pub fn discard(&mut self) {
        self.buf.clear();
        self.queue.clear();
        self.queued = 0;
        self.gate.release();
    }

    fn flush_buf(&mut self) {
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            self.queued += chunk.len();
            self.queue.push_back(chunk);
        }
    }

    /// The next chunk for the peer; `None` (and the gate released) once the writer took
    /// everything.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.flush_buf();
        let Some(chunk) = self.queue.pop_front() else {
            self.gate.release();
            return None;
        };
        debug_assert!(self.queued >= chunk.len());
        self.queued -= chunk.len();
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_parts_are_copied_large_ones_queued_by_reference() {
        let mut out = LinkOut::new();
        out.buf().extend_from_slice(b"LMSG a 600\r\n");
        let big = Bytes::from(vec![7u8; 600]);
        out.put_part(&big, Some(&big));
        out.put_part(b"\r\n", None);
        assert_eq!(out.pending_bytes(), 12 + 600 + 2);
        let chunks: Vec<Bytes> = std::iter::from_fn(|| out.poll_transmit()).collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), big.as_ptr(), "queued without a copy");
        assert_eq!(out.pending_bytes(), 0);
    }

    #[test]
    fn bound_and_discard() {
        let mut out = LinkOut::new();
        out.put_part(&[0u8; 100], None);
        assert!(!out.over(1000));
        assert!(!out.over(150), "past half only holds producers back");
        assert!(out.over(99));
        out.discard();
        assert_eq!((out.pending_bytes(), out.poll_transmit()), (0, None));
    }
}
