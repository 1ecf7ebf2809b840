//! A minimal NATS client for load generation: a handshake, an incremental parser for what the
//! server sends, and helpers to build large batched writes.
//!
//! Deliberately tiny: no reconnects, no headers, no TLS. Everything the bench measures must be
//! the server's cost, so the client parses only what it needs (op boundaries, reply subject,
//! payload) and never copies a payload.

use std::io;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Read buffer size: large, so one read syscall carries thousands of small MSGs.
const READ_BUF: usize = 256 * 1024;
/// A control line longer than this is a broken stream, not a partial op.
const MAX_LINE: usize = 64 * 1024;

/// One op from the server, borrowing the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// `MSG` or `HMSG` (for `HMSG` the payload includes the header block).
    Msg {
        /// Subject the message was published to.
        subject: &'a [u8],
        /// Reply subject, if any.
        reply: Option<&'a [u8]>,
        /// Payload, without the trailing CRLF.
        payload: &'a [u8],
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `-ERR <text>`.
    Err(&'a [u8]),
    /// `INFO`, `+OK` or anything else the bench ignores.
    Other,
}

/// What the server sent and the bench has not parsed yet.
#[derive(Debug)]
pub(crate) struct Inbound {
    buf: BytesMut,
}

impl Default for Inbound {
    fn default() -> Self {
        Self {
            buf: BytesMut::with_capacity(READ_BUF),
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn parse_size(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

impl Inbound {
    /// Reads once from `rd`; end of stream is an error (the server closed on us).
    pub(crate) async fn fill<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < READ_BUF / 4 {
            self.buf.reserve(READ_BUF);
        }
        if rd.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    /// Calls `f` for every complete op in the buffer and drops them; a partial op stays.
    pub(crate) fn parse(&mut self, mut f: impl FnMut(Event<'_>)) -> io::Result<()> {
        let mut pos = 0;
        let buf = &self.buf[..];
        while pos < buf.len() {
            let rest = &buf[pos..];
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() > MAX_LINE {
                    return Err(invalid("control line too long"));
                }
                break;
            };
            let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
            if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
                let mut toks: [&[u8]; 6] = [&[]; 6];
                let mut n = 0;
                for t in line.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
                    if n == toks.len() {
                        return Err(invalid("too many MSG arguments"));
                    }
                    toks[n] = t;
                    n += 1;
                }
                // MSG subj sid [reply] size | HMSG subj sid [reply] hdr_size total_size
                let fixed = if toks[0] == b"MSG" { 4 } else { 5 };
                if n != fixed && n != fixed + 1 {
                    return Err(invalid("malformed MSG line"));
                }
                let len = parse_size(toks[n - 1]).ok_or_else(|| invalid("bad MSG size"))?;
                let start = nl + 1;
                if rest.len() < start + len + 2 {
                    break;
                }
                f(Event::Msg {
                    subject: toks[1],
                    reply: (n == fixed + 1).then_some(toks[3]),
                    payload: &rest[start..start + len],
                });
                pos += start + len + 2;
                continue;
            }
            let ev = match line {
                b"PING" => Event::Ping,
                b"PONG" => Event::Pong,
                _ if line.starts_with(b"-ERR") => Event::Err(line.get(5..).unwrap_or_default()),
                _ => Event::Other,
            };
            f(ev);
            pos += nl + 1;
        }
        self.buf.advance(pos);
        Ok(())
    }
}

/// Turns `-ERR` text into an error.
pub(crate) fn server_err(text: &[u8]) -> io::Error {
    io::Error::other(format!("server: -ERR {}", String::from_utf8_lossy(text)))
}

/// One client connection, split so a task can read while another writes.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Read side.
    pub(crate) rd: OwnedReadHalf,
    /// Write side.
    pub(crate) wr: OwnedWriteHalf,
    /// Unparsed input.
    pub(crate) inbound: Inbound,
}

/// `host:port` from `nats://host:port`, `host:port` or `nats://host` (port 4222).
pub(crate) fn socket_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = rest.trim_end_matches('/');
    let has_port = rest
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        rest.to_string()
    } else {
        format!("{rest}:4222")
    }
}

impl Conn {
    /// Connects, waits for INFO, sends CONNECT and completes a PING/PONG round trip.
    pub(crate) async fn connect(addr: &str, name: &str) -> io::Result<Self> {
        Self::connect_opts(addr, name, false).await
    }

    /// [`Conn::connect`] announcing header support (JetStream direct gets reply with headers).
    pub(crate) async fn connect_with_headers(addr: &str, name: &str) -> io::Result<Self> {
        Self::connect_opts(addr, name, true).await
    }

    async fn connect_opts(addr: &str, name: &str, headers: bool) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (rd, wr) = stream.into_split();
        let mut c = Self {
            rd,
            wr,
            inbound: Inbound::default(),
        };
        let mut got_info = false;
        while !got_info {
            c.inbound.fill(&mut c.rd).await?;
            let mut err = None;
            c.inbound.parse(|ev| match ev {
                Event::Other => got_info = true,
                Event::Err(t) => err = Some(server_err(t)),
                _ => {}
            })?;
            if let Some(e) = err {
                return Err(e);
            }
        }
        let connect = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\
             \"name\":\"{name}\",\"lang\":\"rust\",\"version\":\"natsd-bench\",\"protocol\":1,\
             \"echo\":true,\"headers\":{headers},\"no_responders\":false}}\r\nPING\r\n"
        );
        c.wr.write_all(connect.as_bytes()).await?;
        c.wait_pongs(1).await?;
        Ok(c)
    }

    /// Reads until `n` PONGs arrived; messages that arrive meanwhile are ignored.
    pub(crate) async fn wait_pongs(&mut self, mut n: usize) -> io::Result<()> {
        while n > 0 {
            n = n.saturating_sub(self.read_pongs().await?);
        }
        Ok(())
    }

    /// One read; returns how many PONGs it carried. Server PINGs are answered.
    pub(crate) async fn read_pongs(&mut self) -> io::Result<usize> {
        self.inbound.fill(&mut self.rd).await?;
        let (mut pongs, mut pings, mut err) = (0, 0, None);
        self.inbound.parse(|ev| match ev {
            Event::Pong => pongs += 1,
            Event::Ping => pings += 1,
            Event::Err(t) => err = Some(server_err(t)),
            _ => {}
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        for _ in 0..pings {
            self.wr.write_all(b"PONG\r\n").await?;
        }
        Ok(pongs)
    }

    /// Sends a PING and waits for its PONG: everything written before has been processed.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.wr.write_all(b"PING\r\n").await?;
        self.wait_pongs(1).await
    }
}

/// Appends `PUB <subject> [reply] <len>\r\n<payload>\r\n`.
pub(crate) fn put_pub(out: &mut BytesMut, subject: &[u8], reply: Option<&[u8]>, payload: &[u8]) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject);
    out.extend_from_slice(b" ");
    if let Some(r) = reply {
        out.extend_from_slice(r);
        out.extend_from_slice(b" ");
    }
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[u8]) -> (Vec<String>, usize) {
        let mut inb = Inbound::default();
        inb.buf.extend_from_slice(input);
        let mut out = Vec::new();
        inb.parse(|ev| out.push(format!("{ev:?}"))).unwrap();
        (out, inb.buf.len())
    }

    const STREAM: &[u8] = b"INFO {\"x\":1}\r\nMSG a.b 1 5\r\nhello\r\nPING\r\n\
        MSG a.c 22 _INBOX.x 3\r\nabc\r\nHMSG h 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n+OK\r\n\
        -ERR 'Authorization Violation'\r\n";

    #[test]
    fn parses_every_op_and_keeps_partial_tail_at_every_split() {
        let (whole, left) = events(STREAM);
        assert_eq!(left, 0);
        assert_eq!(whole.len(), 8);
        assert!(whole[1].contains("payload: [104, 101, 108, 108, 111]"));
        assert!(whole[3].contains("reply: Some([95,"));
        assert_eq!(
            whole[7],
            format!("{:?}", Event::Err(b"'Authorization Violation'"))
        );
        for split in 0..STREAM.len() {
            let mut inb = Inbound::default();
            let mut got = Vec::new();
            inb.buf.extend_from_slice(&STREAM[..split]);
            inb.parse(|ev| got.push(format!("{ev:?}"))).unwrap();
            inb.buf.extend_from_slice(&STREAM[split..]);
            inb.parse(|ev| got.push(format!("{ev:?}"))).unwrap();
            assert_eq!(got, whole, "split at {split}");
            assert!(inb.buf.is_empty());
        }
    }

    #[test]
    fn rejects_garbage_sizes_and_overlong_lines() {
        let mut inb = Inbound::default();
        inb.buf.extend_from_slice(b"MSG a 1 x\r\n");
        assert!(inb.parse(|_| {}).is_err());
        let mut inb = Inbound::default();
        inb.buf.extend_from_slice(&vec![b'A'; MAX_LINE + 1]);
        assert!(inb.parse(|_| {}).is_err());
    }

    #[test]
    fn urls_become_socket_addresses() {
        assert_eq!(socket_addr("nats://127.0.0.1:4333"), "127.0.0.1:4333");
        assert_eq!(socket_addr("localhost"), "localhost:4222");
        assert_eq!(socket_addr("nats://u:p@h:1/"), "h:1");
        assert_eq!(socket_addr("[::1]:5"), "[::1]:5");
    }

    #[test]
    fn pub_ops_are_well_formed() {
        let mut b = BytesMut::new();
        put_pub(&mut b, b"s", Some(b"r"), b"xy");
        put_pub(&mut b, b"t", None, b"");
        assert_eq!(&b[..], b"PUB s r 2\r\nxy\r\nPUB t 0\r\n\r\n");
    }
}
