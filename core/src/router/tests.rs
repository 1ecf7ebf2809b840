//! The publish path's batch bookkeeping (wake-ups, the producer's read-ahead signal) and which
//! routes and leaf links a message may be forwarded to.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::*;
use crate::outbound::READ_AHEAD_BYTES;

#[derive(Debug, Default)]
struct CountWakes(AtomicUsize);

impl Notifier for CountWakes {
    fn notify_write(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn notify_close(&self) {}
}

/// Publishes `count` messages of `size` bytes on `subject` as one batch of `from`.
fn publish_batch(
    acc: &Arc<Account>,
    from: &Arc<ClientShared>,
    pending: &mut PendingFlush,
    subject: &[u8],
    size: usize,
    count: usize,
) {
    let mut rng = SplitMix64::new(1);
    let payload = Bytes::from(vec![b'x'; size]);
    for _ in 0..count {
        let mut p = Publisher {
            client: Some(from),
            rng: &mut rng,
            now: Instant::now(),
            pending,
            cache: None,
            transient: false,
        };
        let m = Message {
            subject,
            reply: None,
            headers: None,
            payload: &payload,
            shared: Some(&payload),
        };
        publish(acc, &mut p, &m);
    }
}

#[test]
fn writers_behind_once_a_receiver_holds_more_than_the_read_ahead() {
    let acc = Account::new("A");
    let wakes = Arc::new(CountWakes::default());
    let sub = ClientShared::new(2, 64 << 20, wakes.clone());
    subscribe(
        &acc,
        &sub,
        Bytes::from_static(b"1"),
        Bytes::from_static(b"s"),
        None,
        0,
    )
    .unwrap();
    let from = ClientShared::new(1, 64 << 20, Arc::new(CountWakes::default()));
    let mut pending = PendingFlush::default();

    // One read's worth: below the bound, so the producer reads on.
    publish_batch(&acc, &from, &mut pending, b"s", 16, 1000);
    assert!(sub.queued_bytes() < READ_AHEAD_BYTES);
    let stall = pending.flush_and_take_stall();
    assert!(stall.is_empty() && !stall.writers_behind());
    assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "one wake-up per batch");

    // The writer has not run: the next batch leaves it past the bound.
    publish_batch(&acc, &from, &mut pending, b"s", 16, 4000);
    assert!(sub.queued_bytes() > READ_AHEAD_BYTES);
    let stall = pending.flush_and_take_stall();
    assert!(
        stall.writers_behind(),
        "the producer lets the writer run first"
    );
    assert!(
        stall.is_empty(),
        "far below half of max_pending: no gate, no wait"
    );

    // The writer took everything: the flag is not carried into later batches.
    sub.drain_outbound(&mut Vec::new());
    publish_batch(&acc, &from, &mut pending, b"s", 16, 10);
    let stall = pending.flush_and_take_stall();
    assert!(!stall.writers_behind());
}

#[test]
fn writers_behind_survives_absorb() {
    let mut a = Stall::default();
    let mut b = Stall::default();
    b.note_writer_behind();
    a.absorb(b);
    assert!(a.writers_behind());
    assert!(a.is_empty());
}

/// A route or leaf link that counts what it is sent.
#[derive(Debug)]
struct CountingLink {
    id: u64,
    leaf: bool,
    spoke: bool,
    gateway: bool,
    sent: AtomicUsize,
    flush: AtomicBool,
}

impl RouteSink for CountingLink {
    fn route_id(&self) -> u64 {
        self.id
    }
    fn send_msg(&self, _account: &str, _m: &Message<'_>, _queues: &[&[u8]]) -> bool {
        self.sent.fetch_add(1, Ordering::Relaxed);
        true
    }
    fn flush_flag(&self) -> &AtomicBool {
        &self.flush
    }
    fn wake(&self) {}
    fn is_leaf(&self) -> bool {
        self.leaf
    }
    fn is_spoke_leaf(&self) -> bool {
        self.spoke
    }
    fn is_gateway(&self) -> bool {
        self.gateway
    }
}

/// One account with interest in `s` from a route (id 1), a leaf link whose hub we are (id 2)
/// and a leaf link we dialed (id 3).
fn links_with_interest() -> (Arc<Account>, [Arc<CountingLink>; 3]) {
    let acc = Account::new("A");
    let links = [(1, false, false), (2, true, false), (3, true, true)].map(|(id, leaf, spoke)| {
        Arc::new(CountingLink {
            id,
            leaf,
            spoke,
            gateway: false,
            sent: AtomicUsize::new(0),
            flush: Default::default(),
        })
    });
    for l in &links {
        let route: Arc<dyn RouteSink> = Arc::clone(l) as Arc<dyn RouteSink>;
        let sub = SubRef(Arc::new(Subscription::new(
            Bytes::from_static(b"s"),
            None,
            SubTarget::Route {
                route,
                weight: AtomicU32::new(0),
            },
        )));
        acc.sublist.insert(b"s", None, sub).unwrap();
    }
    (acc, links)
}

/// Which of the three links get a message coming from `source`.
fn reached_from(
    source: impl FnOnce(&Arc<Account>, &mut Publisher<'_>, &Message<'_>),
) -> [usize; 3] {
    let (acc, links) = links_with_interest();
    let mut rng = SplitMix64::new(1);
    let mut pending = PendingFlush::default();
    let mut p = Publisher {
        client: None,
        rng: &mut rng,
        now: Instant::now(),
        pending: &mut pending,
        cache: None,
        transient: false,
    };
    let payload = Bytes::from_static(b"x");
    let m = Message {
        subject: b"s",
        reply: None,
        headers: None,
        payload: &payload,
        shared: Some(&payload),
    };
    source(&acc, &mut p, &m);
    links.map(|l| l.sent.load(Ordering::Relaxed))
}

#[test]
fn a_leaf_cluster_node_neither_routes_what_its_hub_sent_nor_sends_routed_messages_up() {
    // From the hub, over the link we dialed: not to routes (each node of a leaf cluster has
    // its own link and got its copy from the hub), but on to the leaves below us.
    let spoke = LeafOrigin { id: 3, spoke: true };
    assert_eq!(
        reached_from(|a, p, m| {
            deliver_from_leaf(a, p, m, spoke, &[]);
        }),
        [0, 1, 0]
    );
    // From a leaf below us: everywhere but back.
    let below = LeafOrigin {
        id: 2,
        spoke: false,
    };
    assert_eq!(
        reached_from(|a, p, m| {
            deliver_from_leaf(a, p, m, below, &[]);
        }),
        [1, 0, 1]
    );
    // From a route: down to our leaves, not up to our hub (the origin node sent it there).
    assert_eq!(
        reached_from(|a, p, m| {
            deliver_routed(a, p, m, &[]);
        }),
        [0, 1, 0]
    );
    // A local publish goes everywhere.
    assert_eq!(
        reached_from(|a, p, m| {
            publish(a, p, m);
        }),
        [1, 1, 1]
    );
}

fn link(id: u64, leaf: bool, gateway: bool) -> Arc<CountingLink> {
    Arc::new(CountingLink {
        id,
        leaf,
        spoke: false,
        gateway,
        sent: AtomicUsize::new(0),
        flush: Default::default(),
    })
}

fn add_interest(acc: &Account, l: &Arc<CountingLink>, queue: Option<&'static [u8]>) {
    let route: Arc<dyn RouteSink> = Arc::clone(l) as Arc<dyn RouteSink>;
    let sub = SubRef(Arc::new(Subscription::new(
        Bytes::from_static(b"s"),
        queue.map(Bytes::from_static),
        SubTarget::Route {
            route,
            weight: AtomicU32::new(1),
        },
    )));
    acc.sublist.insert(b"s", queue, sub).unwrap();
}

/// Sends `n` messages on `s` from `source`.
fn send_n(
    acc: &Arc<Account>,
    n: usize,
    source: impl Fn(&Arc<Account>, &mut Publisher<'_>, &Message<'_>),
) {
    let mut rng = SplitMix64::new(7);
    let mut pending = PendingFlush::default();
    let payload = Bytes::from_static(b"x");
    for _ in 0..n {
        let mut p = Publisher {
            client: None,
            rng: &mut rng,
            now: Instant::now(),
            pending: &mut pending,
            cache: None,
            transient: false,
        };
        let m = Message {
            subject: b"s",
            reply: None,
            headers: None,
            payload: &payload,
            shared: Some(&payload),
        };
        source(acc, &mut p, &m);
    }
}

#[test]
fn gateways_get_local_publishes_only_and_never_pass_one_on() {
    // A route (1), a gateway (2) and a leaf link whose hub we are (3), each with interest.
    let acc = Account::new("A");
    let links = [
        link(1, false, false),
        link(2, false, true),
        link(3, true, false),
    ];
    for l in &links {
        add_interest(&acc, l, None);
    }
    let counts = |links: &[Arc<CountingLink>; 3]| {
        links.each_ref().map(|l| l.sent.swap(0, Ordering::Relaxed))
    };
    send_n(&acc, 1, |a, p, m| {
        publish(a, p, m);
    });
    assert_eq!(counts(&links), [1, 1, 1]);
    // From a route: the origin server sends to the gateways itself.
    send_n(&acc, 1, |a, p, m| {
        deliver_routed(a, p, m, &[]);
    });
    assert_eq!(counts(&links), [0, 0, 1]);
    // From a gateway: to routes and leaf links, never to another gateway.
    send_n(&acc, 1, |a, p, m| {
        deliver_from_gateway(a, p, m, &[]);
    });
    assert_eq!(counts(&links), [1, 0, 1]);
}

#[test]
fn a_queue_group_is_served_by_its_own_cluster_first() {
    let acc = Account::new("A");
    let (route, gateway) = (link(1, false, false), link(2, false, true));
    add_interest(&acc, &gateway, Some(b"q"));
    // Only another cluster has a member: it gets every message.
    send_n(&acc, 10, |a, p, m| {
        publish(a, p, m);
    });
    assert_eq!(gateway.sent.swap(0, Ordering::Relaxed), 10);
    // A member over a route counts as local: the gateway gets none.
    add_interest(&acc, &route, Some(b"q"));
    send_n(&acc, 50, |a, p, m| {
        publish(a, p, m);
    });
    assert_eq!(
        (
            route.sent.load(Ordering::Relaxed),
            gateway.sent.load(Ordering::Relaxed)
        ),
        (50, 0)
    );
    // A message from another cluster names the group it is for; it goes to our member.
    let q = [Bytes::from_static(b"q")];
    send_n(&acc, 5, |a, p, m| {
        deliver_from_gateway(a, p, m, &q);
    });
    assert_eq!(
        (
            route.sent.load(Ordering::Relaxed),
            gateway.sent.load(Ordering::Relaxed)
        ),
        (55, 0)
    );
}
