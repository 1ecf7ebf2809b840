//! A `MSG`/`HMSG` encoded once per publish and reused for every receiving subscription.
//!
//! Receivers of one message differ only in their sid, so the encoding is kept as
//! `MSG <subject> ` | sid | ` [reply ]<len>\r\n` (HMSG adds the header length and the header
//! block), and a small payload and its closing CRLF follow. Only the sid is swapped between
//! receivers, and often not even that: clients number their sids from 1, so subscribers of one
//! subject on different connections tend to share them. Queueing the message to one more
//! receiver is then one memcpy under its queue's lock, with no number formatting. The bytes are exactly what [`super::encode_msg_header`] /
//! [`super::encode_hmsg_header`] followed by the payload and CRLF would produce.

use bytes::BytesMut;

/// One message's encoding with a gap for the sid; see the module docs.
#[derive(Debug, Default)]
pub struct MsgTemplate {
    /// `head`, the last receiver's sid, then `tail`, back to back.
    buf: Vec<u8>,
    /// Where `head` ends and the sid starts.
    sid_at: usize,
    /// Length of the sid now in `buf`.
    sid_len: usize,
    /// `tail` ends with the payload and CRLF (else the payload is queued by reference and the
    /// caller adds the CRLF after it).
    payload_inline: bool,
    filled: bool,
}

impl MsgTemplate {
    /// Encodes a message. `payload_inline`: append the payload (and its CRLF) to the tail.
    pub fn fill(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
        payload_inline: bool,
    ) {
        let b = &mut self.buf;
        b.clear();
        let hlen = headers.map_or(0, <[u8]>::len);
        let inline_len = if payload_inline { payload.len() + 2 } else { 0 };
        b.reserve(subject.len() + reply.map_or(0, <[u8]>::len) + hlen + inline_len + 32);
        b.extend_from_slice(if headers.is_some() { b"HMSG " } else { b"MSG " });
        b.extend_from_slice(subject);
        b.push(b' ');
        self.sid_at = b.len();
        self.sid_len = 0;
        b.push(b' ');
        if let Some(r) = reply {
            b.extend_from_slice(r);
            b.push(b' ');
        }
        if let Some(h) = headers {
            put_decimal(b, h.len());
            b.push(b' ');
            put_decimal(b, h.len() + payload.len());
            b.extend_from_slice(b"\r\n");
            b.extend_from_slice(h);
        } else {
            put_decimal(b, payload.len());
            b.extend_from_slice(b"\r\n");
        }
        if payload_inline {
            b.extend_from_slice(payload);
            b.extend_from_slice(b"\r\n");
        }
        self.payload_inline = payload_inline;
        self.filled = true;
    }

    /// Forgets the message (the buffer is kept for the next one).
    pub fn reset(&mut self) {
        self.filled = false;
    }

    /// Has [`Self::fill`] run since the last [`Self::reset`]?
    #[inline]
    pub fn is_filled(&self) -> bool {
        self.filled
    }

    /// `MSG <subject> ` (or `HMSG`): what goes before the sid.
    pub fn head(&self) -> &[u8] {
        &self.buf[..self.sid_at]
    }

    /// What goes after the sid: the rest of the control line, the header block, and when
    /// [`Self::payload_inline`] the payload and its CRLF.
    pub fn tail(&self) -> &[u8] {
        &self.buf[self.sid_at + self.sid_len..]
    }

    /// Bytes [`Self::write_to`] writes for `sid`.
    #[inline]
    pub fn encoded_len(&self, sid: &[u8]) -> usize {
        self.buf.len() - self.sid_len + sid.len()
    }

    /// Is the payload (and its CRLF) part of [`Self::tail`]?
    #[inline]
    pub fn payload_inline(&self) -> bool {
        self.payload_inline
    }

    /// Writes the whole encoding for one sid (header, payload and CRLF only when inline).
    #[inline]
    pub fn write_to(&mut self, out: &mut BytesMut, sid: &[u8]) {
        let at = self.sid_at..self.sid_at + self.sid_len;
        if self.buf[at.clone()] != *sid {
            self.buf.splice(at, sid.iter().copied());
            self.sid_len = sid.len();
        }
        out.extend_from_slice(&self.buf);
    }
}

fn put_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::client::{encode_hmsg_header, encode_msg_header};
    use proptest::prelude::*;

    fn old_encoding(
        subject: &[u8],
        sid: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = BytesMut::new();
        match headers {
            None => encode_msg_header(&mut out, subject, sid, reply, payload.len()),
            Some(h) => {
                encode_hmsg_header(
                    &mut out,
                    subject,
                    sid,
                    reply,
                    h.len(),
                    h.len() + payload.len(),
                );
                out.extend_from_slice(h);
            }
        }
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
        out.to_vec()
    }

    fn token() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(b"abcXYZ09._-$>*".to_vec()), 1..40)
    }

    proptest! {
        #[test]
        fn byte_identical_to_the_per_receiver_encoder(
            subject in token(),
            sids in proptest::collection::vec(token(), 1..5),
            reply in proptest::option::of(token()),
            headers in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            payload in proptest::collection::vec(any::<u8>(), 0..5000),
            inline in any::<bool>(),
        ) {
            let mut t = MsgTemplate::default();
            // Reuse across fills must not leak the previous message.
            t.fill(b"previous.subject.that.is.long", Some(b"r"), Some(b"NATS/1.0\r\n\r\n"), b"zz", true);
            t.fill(&subject, reply.as_deref(), headers.as_deref(), &payload, inline);
            prop_assert!(t.is_filled());
            // Forwards then backwards: the cached sid is both kept and swapped.
            for sid in sids.iter().chain(sids.iter().rev()) {
                let mut got = BytesMut::new();
                t.write_to(&mut got, sid);
                if !inline {
                    got.extend_from_slice(&payload);
                    got.extend_from_slice(b"\r\n");
                }
                let want = old_encoding(&subject, sid, reply.as_deref(), headers.as_deref(), &payload);
                prop_assert_eq!(&got[..], &want[..]);
            }
        }
    }

    #[test]
    fn shapes() {
        let mut t = MsgTemplate::default();
        assert!(!t.is_filled());
        t.fill(b"foo", None, None, b"hi", true);
        let mut out = BytesMut::new();
        t.write_to(&mut out, b"12");
        assert_eq!(&out[..], b"MSG foo 12 2\r\nhi\r\n");
        t.fill(
            b"foo",
            Some(b"_INBOX.1"),
            Some(b"NATS/1.0\r\n\r\n"),
            b"",
            false,
        );
        out.clear();
        t.write_to(&mut out, b"1");
        assert_eq!(&out[..], b"HMSG foo 1 _INBOX.1 12 12\r\nNATS/1.0\r\n\r\n");
        assert!(!t.payload_inline());
        t.reset();
        assert!(!t.is_filled());
    }
}
