//! The client connection machine driven by fuzz bytes and a virtual clock.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::Input;
use crate::auth::{Authenticator, ConnType};
use crate::conf;
use crate::conn::{ClientConfig, ClientConn, ConnEvent};
use crate::proto::info::ServerInfo;
use crate::subject;

/// The raw key of the nkey user; fixed so that corpora can sign its nonce (see `@SIG@`).
const NKEY_RAW: [u8; 32] = [7; 32];

fn nkey_pair() -> &'static nkeys::KeyPair {
    static KP: OnceLock<nkeys::KeyPair> = OnceLock::new();
    KP.get_or_init(|| {
        nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, NKEY_RAW)
            .expect("32 raw bytes make a user key")
    })
}

/// Users in two accounts: password users with and without permissions, an nkey user, and a
/// user allowed only over WebSocket. `{extra}` adds top-level keys per mode.
const ACCOUNTS: &str = r#"
accounts {
  A {
    users = [
      { user: alice, password: apw, permissions: {
          publish: { allow: ["a.>", "_INBOX.>"], deny: ["a.secret"] }
          subscribe: { allow: ["a.>", "q.* grp", "r.>"], deny: ["a.deny.*", "r.x"] }
          allow_responses: true } }
      { nkey: @NKEY@, permissions: { publish: "n.>", subscribe: ["n.>", "_INBOX.>"] } }
      { user: web, password: wpw, allowed_connection_types: ["WEBSOCKET"] }
    ]
  }
  B { users = [ { user: bob, password: bpw, permissions: { subscribe: { deny: ">" } } } ] }
}
"#;

/// The configurations a fuzz input can pick (by the low two bits of its first byte).
fn config_text(mode: u8) -> String {
    let accounts = ACCOUNTS.replace("@NKEY@", &nkey_pair().public_key());
    match mode {
        0 => accounts,
        // No authentication at all.
        1 => String::new(),
        // Clients without credentials become bob.
        2 => format!("{accounts}\nno_auth_user: bob\n"),
        // A token with permissions.
        _ => "authorization { token: s3cr3t, timeout: 1, permissions: { publish: \"t.>\" } }"
            .to_owned(),
    }
}

fn client_config(mode: u8, small: bool) -> Arc<ClientConfig> {
    static CONFIGS: OnceLock<Vec<Arc<ClientConfig>>> = OnceLock::new();
    let all = CONFIGS.get_or_init(|| {
        let mut v = Vec::new();
        for small in [false, true] {
            for mode in 0..4 {
                v.push(Arc::new(build_config(mode, small)));
            }
        }
        v
    });
    Arc::clone(&all[usize::from(small) * 4 + usize::from(mode)])
}

fn build_config(mode: u8, small: bool) -> ClientConfig {
    let text = config_text(mode);
    let map = conf::parse(
        &text,
        Path::new("fuzz.conf"),
        &conf::NoIncludes,
        &conf::NoEnv,
    )
    .expect("fuzz config parses");
    let (mut opts, _) = conf::options_from_conf(&map).expect("fuzz config maps");
    if small {
        opts.max_payload = 64;
        opts.max_control_line = 64;
        opts.ping_interval = Duration::from_secs(1);
    }
    ClientConfig {
        info: ServerInfo {
            server_id: "NFUZZ".into(),
            server_name: "fuzz".into(),
            version: "2.9.10".into(),
            proto: 1,
            headers: true,
            max_payload: opts.max_payload,
            ..ServerInfo::default()
        },
        max_control_line: opts.max_control_line,
        max_payload: opts.max_payload,
        ping_interval: opts.ping_interval,
        ping_max: opts.ping_max,
        auth_timeout: opts.auth_timeout(),
        authenticator: Arc::new(Authenticator::new(&opts)),
    }
}

/// Raw URL-safe base64 without padding, as nkey clients send signatures.
fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Replaces every `from` in `data` with `to`.
fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// One step of the script decoded from the input.
enum Step {
    /// Bytes from the client.
    Data(Vec<u8>),
    /// Virtual time passes (zero: a spurious timer call).
    Advance(Duration),
}

/// Splits the stream at `0xFF a` markers: `a == 0xFF` is a literal `0xFF` byte, `a < 0x80`
/// advances the clock by `a × 20 ms`, larger `a` by `(a − 0x7F) × 5 s`.
fn script(stream: &[u8]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut data = Vec::new();
    let mut it = stream.iter();
    while let Some(&c) = it.next() {
        if c != 0xFF {
            data.push(c);
            continue;
        }
        let a = it.next().copied().unwrap_or(0);
        if a == 0xFF {
            data.push(0xFF);
            continue;
        }
        if !data.is_empty() {
            steps.push(Step::Data(std::mem::take(&mut data)));
        }
        steps.push(Step::Advance(if a < 0x80 {
            Duration::from_millis(20 * u64::from(a))
        } else {
            Duration::from_secs(5 * u64::from(a - 0x7F))
        }));
    }
    if !data.is_empty() {
        steps.push(Step::Data(data));
    }
    steps
}

/// Drives one connection and checks the driving rule's invariants as it goes.
struct Driver {
    conn: ClientConn,
    now: Instant,
    auth_required: bool,
    connected: bool,
    closed: bool,
    last_deadline: Option<Instant>,
    wire: Vec<u8>,
}

impl Driver {
    /// Drains every output after a `handle_*` call and checks what came out.
    fn drain(&mut self) {
        while let Some(t) = self.conn.poll_transmit() {
            assert!(!t.is_empty(), "empty transmit");
            assert!(
                !self.closed,
                "transmit after the Closed event was drained: {t:?}"
            );
            self.wire.extend_from_slice(&t);
        }
        while let Some(ev) = self.conn.poll_event() {
            assert!(!self.closed, "event after Closed: {ev:?}");
            self.check_event(ev);
        }
        let deadline = self.conn.poll_timeout().map(|(t, _)| t);
        match (self.last_deadline, deadline) {
            (Some(old), Some(new)) => assert!(new >= old, "poll_timeout went backwards"),
            (None, Some(_)) => panic!("a timer re-armed after closing"),
            _ => {}
        }
        assert_eq!(deadline.is_none(), self.conn.is_closed());
        self.last_deadline = deadline;
    }

    fn check_event(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::Connected { .. } => {
                assert!(!self.connected, "a second Connected");
                self.connected = true;
            }
            ConnEvent::Subscribe {
                subject: subj,
                queue,
                ..
            } => {
                assert!(!self.auth_required || self.connected, "SUB before CONNECT");
                assert!(subject::is_valid_subject(&subj), "invalid subject {subj:?}");
                assert!(queue.as_deref().is_none_or(subject::is_valid_queue));
                if let Some(p) = self.conn.permissions() {
                    assert!(
                        p.can_subscribe(&subj, queue.as_deref()),
                        "denied SUB passed"
                    );
                }
            }
            ConnEvent::Unsubscribe { .. } | ConnEvent::Publish(_) => {
                assert!(!self.auth_required || self.connected, "op before CONNECT");
            }
            ConnEvent::Closed(_) => self.closed = true,
        }
    }

    fn input(&mut self, buf: &mut BytesMut) {
        // Each call that returns true consumed an op, so this bound is never reached unless the
        // machine stops making progress.
        for _ in 0..=buf.len() + 1 {
            let again = self.conn.handle_input(self.now, buf);
            self.drain();
            if !again {
                return;
            }
        }
        panic!("handle_input asks to be called again without consuming input");
    }

    /// Lets `d` pass, firing every timer that falls due on the way, as a driver would.
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        if d.is_zero() {
            // Spurious or early calls must do nothing.
            let due = self.conn.poll_timeout().is_some_and(|(t, _)| t <= self.now);
            let before = self.wire.len();
            self.conn.handle_timeout(self.now);
            self.drain();
            if !due {
                assert_eq!(
                    self.wire.len(),
                    before,
                    "an early timer call sent something"
                );
            }
            return;
        }
        for _ in 0..100_000 {
            let Some((t, _)) = self.conn.poll_timeout() else {
                break;
            };
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.conn.handle_timeout(self.now);
            self.drain();
            if let Some((next, _)) = self.conn.poll_timeout() {
                assert!(next > self.now, "a fired timer did not move on");
            }
        }
        self.now = target;
    }
}

/// Checks that the server → client stream is whole lines of the ops this machine sends.
fn check_wire(wire: &[u8], nonce: &str) {
    let mut lines = wire.split_inclusive(|&c| c == b'\n');
    let info = lines.next().expect("INFO is sent at once");
    let json = info
        .strip_prefix(b"INFO ")
        .and_then(|j| j.strip_suffix(b" \r\n"))
        .expect("INFO line");
    let info: ServerInfo = serde_json::from_slice(json).expect("INFO JSON");
    assert_eq!(info.nonce, nonce);
    for line in lines {
        assert!(line.ends_with(b"\r\n"), "unterminated line {line:?}");
        let ok = [b"PING\r\n" as &[u8], b"PONG\r\n", b"+OK\r\n"].contains(&line)
            || (line.starts_with(b"-ERR '") && line.ends_with(b"'\r\n"));
        assert!(ok, "unexpected line {:?}", String::from_utf8_lossy(line));
    }
}

/// `conn_machine`: a client's bytes into a [`ClientConn`], with virtual time.
///
/// Format: byte 0 picks the configuration (bits 0–1: password/nkey users in accounts, no
/// authentication, `no_auth_user`, token; bit 2: small limits and a 1 s ping interval; bit 3:
/// a WebSocket connection), byte 1 seeds the connection. The rest is what the client sends,
/// cut into reads by `0xFF a` markers that also advance time (see `script`). `@NKEY@` in a
/// read becomes the nkey user's public key and `@SIG@` its signature of this connection's nonce.
///
/// Checks: no panic; every output drained after every call; `poll_timeout` never goes
/// backwards, moves on once fired, and is `None` exactly once closed; nothing comes out after
/// the `Closed` event; no op gets through before CONNECT when authentication is required; a
/// subscription that passes is allowed by the user's permissions; the bytes sent are whole
/// INFO/PING/PONG/+OK/-ERR lines.
pub fn conn_machine(start: Instant, data: &[u8]) {
    let mut b = Input::new(data);
    let flags = b.byte();
    let seed = b.byte();
    let cfg = client_config(flags & 3, flags & 4 != 0);
    let conn_type = if flags & 8 != 0 {
        ConnType::Websocket
    } else {
        ConnType::Standard
    };
    let auth_required = cfg.authenticator.auth_required();
    let conn = ClientConn::new(start, 1, cfg, "127.0.0.1", conn_type, u64::from(seed));
    let nonce = conn.nonce().to_owned();
    // Signing is slow next to everything else here: only sign when the input asks for it.
    let sig = if data.windows(5).any(|w| w == b"@SIG@") {
        b64url(
            &nkey_pair()
                .sign(nonce.as_bytes())
                .expect("signing with a seed key"),
        )
    } else {
        String::new()
    };
    let mut d = Driver {
        last_deadline: conn.poll_timeout().map(|(t, _)| t),
        conn,
        now: start,
        auth_required,
        connected: false,
        closed: false,
        wire: Vec::new(),
    };
    d.drain();
    let mut buf = BytesMut::new();
    for step in script(b.rest()) {
        match step {
            Step::Data(bytes) => {
                let bytes = replace(&bytes, b"@NKEY@", nkey_pair().public_key().as_bytes());
                let bytes = replace(&bytes, b"@SIG@", sig.as_bytes());
                buf.extend_from_slice(&bytes);
                d.input(&mut buf);
            }
            Step::Advance(t) => d.advance(t),
        }
    }
    check_wire(&d.wire, &nonce);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_builds() {
        for small in [false, true] {
            for mode in 0..4 {
                let c = client_config(mode, small);
                assert_eq!(c.authenticator.auth_required(), mode != 1);
            }
        }
    }

    #[test]
    fn b64url_matches_known_values() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }
}
