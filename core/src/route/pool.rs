//! Route pooling and pinned accounts (nats-server 2.10 semantics).
//!
//! With `cluster { pool_size: N }` two servers keep N route connections between them instead of
//! one, and every account's traffic (interest and messages) uses the one connection its name
//! hashes to, so one account's messages stay in order. `cluster { accounts: [A] }` gives account
//! A a connection of its own (a *pinned* route); on it the account name is left out of `RS+`,
//! `RS-`, `RMSG` and `HMSG`. A peer that announces no pool size (nats-server 2.9.10, or
//! `pool_size: -1`) gets a single route carrying every account, as before.
//!
//! The handshake: the acceptor sends its INFO at once (with `route_pool_size`); a pooled
//! solicitor holds its INFO back until the acceptor's arrives, picks a free slot, and sends its
//! INFO with `route_pool_idx` set to it. A solicitor of a pinned route sends its INFO at once
//! with `route_account`. Go: server/route.go createRoute, addRoute, computeRoutePoolIdx.

use super::RouteInfo;

/// The pool slot of `account` among `pool_size` connections: 32-bit FNV-1a of the name,
/// modulo the size (what nats-server 2.10 computes, so that both ends agree).
pub fn pool_index(pool_size: usize, account: &[u8]) -> usize {
    if pool_size <= 1 {
        return 0;
    }
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let h = account
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u32::from(b)).wrapping_mul(PRIME));
    (h % pool_size as u32) as usize
}

/// What a route connection is, once both INFOs are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolRole {
    /// The only route to this peer; it carries every account.
    Single,
    /// One connection of a pool. `Some(i)`: the peer (which dialed) chose slot `i`; `None`:
    /// we dialed and choose a free slot now.
    Pooled(Option<usize>),
    /// The dedicated route of one account.
    Pinned(String),
}

/// Decides what a route connection is from our pool size (`0`: pooling off), the account we
/// dialed it for (`solicited_account`), who dialed, and the peer's first INFO. `Err` holds the
/// `-ERR` text to send before closing (Go: addRoute's protocol violations).
pub fn negotiate(
    our_pool_size: usize,
    solicited: bool,
    solicited_account: Option<&str>,
    info: &RouteInfo,
) -> Result<PoolRole, String> {
    let account = if solicited {
        solicited_account.map(str::to_owned)
    } else {
        Some(info.route_account.clone()).filter(|a| !a.is_empty())
    };
    if info.route_pool_size <= 0 || our_pool_size == 0 {
        return match account {
            Some(a) => Err(format!(
                "Not possible to have a dedicated route for account {a:?} between those servers"
            )),
            None => Ok(PoolRole::Single),
        };
    }
    if info.route_pool_size as usize != our_pool_size {
        return Err(format!(
            "Mismatch route pool size: {} vs {}",
            our_pool_size, info.route_pool_size
        ));
    }
    if solicited {
        if info.route_pool_idx != 0 {
            return Err(format!(
                "Route pool index should not be set but is set to {}",
                info.route_pool_idx
            ));
        }
    } else if info.route_pool_idx < 0 || info.route_pool_idx as usize >= our_pool_size {
        return Err(format!(
            "Invalid route pool index: {} - pool size is {}",
            info.route_pool_idx, info.route_pool_size
        ));
    }
    Ok(match account {
        Some(a) => PoolRole::Pinned(a),
        None if solicited => PoolRole::Pooled(None),
        None => PoolRole::Pooled(Some(info.route_pool_idx as usize)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(size: i32, idx: i32, account: &str) -> RouteInfo {
        RouteInfo {
            route_pool_size: size,
            route_pool_idx: idx,
            route_account: account.to_owned(),
            ..RouteInfo::default()
        }
    }

    #[test]
    fn fnv1a_index() {
        // FNV-1a 32 reference values: "" → 0x811c9dc5, "a" → 0xe40c292c, "$G" → 0x2a5b4a4c…
        assert_eq!(pool_index(0, b"$G"), 0);
        assert_eq!(pool_index(1, b"$G"), 0);
        let fnv = |s: &[u8]| {
            s.iter().fold(0x811c_9dc5u32, |h, &b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            })
        };
        assert_eq!(fnv(b""), 0x811c_9dc5);
        assert_eq!(fnv(b"a"), 0xe40c_292c);
        assert_eq!(fnv(b"foobar"), 0xbf9c_f968);
        assert_eq!(pool_index(3, b"a"), (0xe40c_292cu32 % 3) as usize);
        assert_eq!(pool_index(7, b"foobar"), (0xbf9c_f968u32 % 7) as usize);
        for n in 2..10 {
            for acc in [&b"$G"[..], b"$SYS", b"A", b"B", b"some.account"] {
                assert!(pool_index(n, acc) < n);
            }
        }
        // Different accounts spread over the slots.
        let slots: std::collections::BTreeSet<_> = (0..50)
            .map(|i| pool_index(3, format!("acc{i}").as_bytes()))
            .collect();
        assert_eq!(slots.len(), 3);
    }

    #[test]
    fn old_peer_or_pooling_off_is_single() {
        assert_eq!(
            negotiate(3, true, None, &info(0, 0, "")),
            Ok(PoolRole::Single)
        );
        assert_eq!(
            negotiate(3, false, None, &info(0, 0, "")),
            Ok(PoolRole::Single)
        );
        assert_eq!(
            negotiate(0, false, None, &info(3, 1, "")),
            Ok(PoolRole::Single)
        );
        let e = negotiate(3, true, Some("A"), &info(0, 0, "")).unwrap_err();
        assert!(e.contains("dedicated route for account \"A\""), "{e}");
        assert!(negotiate(0, false, None, &info(3, 0, "A")).is_err());
    }

    #[test]
    fn pooled_slots() {
        assert_eq!(
            negotiate(3, true, None, &info(3, 0, "")),
            Ok(PoolRole::Pooled(None))
        );
        assert_eq!(
            negotiate(3, false, None, &info(3, 2, "")),
            Ok(PoolRole::Pooled(Some(2)))
        );
        assert_eq!(
            negotiate(3, false, None, &info(3, 3, "")).unwrap_err(),
            "Invalid route pool index: 3 - pool size is 3"
        );
        assert_eq!(
            negotiate(3, true, None, &info(3, 1, "")).unwrap_err(),
            "Route pool index should not be set but is set to 1"
        );
        assert_eq!(
            negotiate(3, false, None, &info(2, 0, "")).unwrap_err(),
            "Mismatch route pool size: 3 vs 2"
        );
    }

    #[test]
    fn pinned() {
        assert_eq!(
            negotiate(3, true, Some("A"), &info(3, 0, "")),
            Ok(PoolRole::Pinned("A".into()))
        );
        assert_eq!(
            negotiate(3, false, None, &info(3, 0, "B")),
            Ok(PoolRole::Pinned("B".into()))
        );
    }

    #[test]
    fn pinned_route_ops_leave_the_account_out() {
        use crate::proto::route::{self as proto, RouteOp, RouteParser};
        use bytes::{Bytes, BytesMut};
        let mut p = RouteParser::new(4096, 1 << 20);
        p.set_account(Bytes::from_static(b"A"));
        let mut buf = BytesMut::from(
            &b"RS+ foo.>\r\nRS+ q.x grp 3\r\nRS- foo.>\r\nRMSG foo.bar _INBOX.1 2\r\nhi\r\nHMSG h + r g1 12 14\r\nNATS/1.0\r\n\r\nok\r\n"[..],
        );
        let mut ops = Vec::new();
        while let Some(op) = p.parse(&mut buf).unwrap() {
            ops.push(op);
        }
        assert_eq!(ops.len(), 5);
        match &ops[0] {
            RouteOp::Sub(s) => {
                assert_eq!((&s.account[..], &s.subject[..]), (&b"A"[..], &b"foo.>"[..]))
            }
            o => panic!("{o:?}"),
        }
        match &ops[1] {
            RouteOp::Sub(s) => {
                assert_eq!(s.queue.as_deref(), Some(&b"grp"[..]));
                assert_eq!(s.weight, 3);
            }
            o => panic!("{o:?}"),
        }
        match &ops[2] {
            RouteOp::Unsub(u) => assert_eq!(&u.account[..], b"A"),
            o => panic!("{o:?}"),
        }
        match &ops[3] {
            RouteOp::Msg(m) => {
                assert_eq!(&m.account[..], b"A");
                assert_eq!(m.reply.as_deref(), Some(&b"_INBOX.1"[..]));
                assert_eq!(&m.payload[..], b"hi");
            }
            o => panic!("{o:?}"),
        }
        match &ops[4] {
            RouteOp::Msg(m) => assert_eq!(m.queues, [Bytes::from_static(b"g1")]),
            o => panic!("{o:?}"),
        }
        // The encoders leave an empty account out.
        let mut out = BytesMut::new();
        proto::encode_sub(&mut out, b"", b"foo", Some((b"q", 2)));
        proto::encode_unsub(&mut out, b"", b"foo", None);
        assert_eq!(&out[..], b"RS+ foo q 2\r\nRS- foo\r\n");
    }

    #[test]
    fn pooled_dialer_holds_its_info() {
        use crate::route::{RouteConfig, RouteConn, RouteRole};
        use std::sync::Arc;
        use std::time::{Duration, Instant};
        let cfg = |pool: i32| {
            Arc::new(RouteConfig {
                info: RouteInfo {
                    server_id: "S1".into(),
                    cluster: "c".into(),
                    route_pool_size: pool,
                    ..RouteInfo::default()
                },
                max_control_line: 4096,
                max_payload: 1 << 20,
                max_pending: 1 << 20,
                ping_interval: Duration::from_secs(60),
                ping_max: 2,
                auth_timeout: Duration::from_secs(2),
                authorizer: None,
            })
        };
        #[allow(clippy::disallowed_methods)] // a starting instant for the machine
        let now = Instant::now();
        let solicit = || RouteRole::Solicited {
            user: None,
            pass: None,
        };
        let drain = |c: &mut RouteConn| {
            let mut v = Vec::new();
            while let Some(b) = c.poll_transmit() {
                v.extend_from_slice(&b);
            }
            String::from_utf8(v).unwrap()
        };
        // Pooled dialer: CONNECT only, then the INFO with the slot.
        let mut c = RouteConn::new(now, 1, cfg(3), solicit(), 7);
        let first = drain(&mut c);
        assert!(
            first.starts_with("CONNECT ") && !first.contains("INFO "),
            "{first}"
        );
        c.send_pool_info(2);
        let info = drain(&mut c);
        assert!(
            info.contains("\"route_pool_size\":3") && info.contains("\"route_pool_idx\":2"),
            "{info}"
        );
        // Pinned dialer: INFO at once with the account; ops without it.
        let mut c = RouteConn::with_pool(now, 2, cfg(3), solicit(), 7, Some("A".into()));
        let first = drain(&mut c);
        assert!(first.contains("\"route_account\":\"A\""), "{first}");
        c.send_sub(b"A", b"x", None);
        assert_eq!(drain(&mut c), "RS+ x\r\n");
        // Acceptor and pool-less dialer: INFO at once.
        let mut c = RouteConn::new(now, 3, cfg(3), RouteRole::Accepted, 7);
        assert!(drain(&mut c).starts_with("INFO "));
        let mut c = RouteConn::new(now, 4, cfg(0), solicit(), 7);
        let s = drain(&mut c);
        assert!(s.contains("INFO ") && !s.contains("route_pool"), "{s}");
    }
}
