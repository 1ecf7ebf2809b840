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

/// What a [`RecordingLink`] was sent: subject, reply, queue groups.
type Sent = (Vec<u8>, Option<Vec<u8>>, Vec<Vec<u8>>);

/// A route or leaf link that keeps what it is sent.
#[derive(Debug)]
struct RecordingLink {
    id: u64,
    leaf: bool,
    sent: Mutex<Vec<Sent>>,
    flush: AtomicBool,
}

impl RecordingLink {
    fn new(id: u64, leaf: bool) -> Arc<Self> {
        Arc::new(Self {
            id,
            leaf,
            sent: Mutex::new(Vec::new()),
            flush: AtomicBool::new(false),
        })
    }

    fn take(&self) -> Vec<Sent> {
        std::mem::take(&mut *lock(&self.sent))
    }
}

impl RouteSink for RecordingLink {
    fn route_id(&self) -> u64 {
        self.id
    }
    fn send_msg(&self, _account: &str, m: &Message<'_>, queues: &[&[u8]]) -> bool {
        lock(&self.sent).push((
            m.subject.to_vec(),
            m.reply.map(<[u8]>::to_vec),
            queues.iter().map(|q| q.to_vec()).collect(),
        ));
        true
    }
    fn flush_flag(&self) -> &AtomicBool {
        &self.flush
    }
    fn wake(&self) {}
    fn is_leaf(&self) -> bool {
        self.leaf
    }
}

/// Interest of `link` in `subject` (in `queue`, standing for one member).
fn link_interest(
    acc: &Account,
    link: &Arc<RecordingLink>,
    subject: &'static [u8],
    queue: Option<&'static [u8]>,
) {
    let route: Arc<dyn RouteSink> = Arc::clone(link) as Arc<dyn RouteSink>;
    let sub = SubRef(Arc::new(Subscription::new(
        Bytes::from_static(subject),
        queue.map(Bytes::from_static),
        SubTarget::Route {
            route,
            weight: AtomicU32::new(1),
        },
    )));
    acc.sublist.insert(subject, queue, sub).unwrap();
}

/// A local client subscribed to `subject` as sid `1`.
fn local_subscriber(acc: &Arc<Account>, subject: &'static [u8]) -> Arc<ClientShared> {
    let c = ClientShared::new(7, 64 << 20, Arc::new(CountWakes::default()));
    subscribe(
        acc,
        &c,
        Bytes::from_static(b"1"),
        Bytes::from_static(subject),
        None,
        0,
    )
    .unwrap();
    c
}

/// Everything queued for `c`, as text.
fn written(c: &ClientShared) -> String {
    let mut out = Vec::new();
    c.drain_outbound(&mut out);
    out.iter().map(|b| String::from_utf8_lossy(b)).collect()
}

/// Runs `f` with a publisher that has no client.
fn with_publisher<R>(f: impl FnOnce(&mut Publisher<'_>) -> R) -> R {
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
    f(&mut p)
}

fn msg<'a>(subject: &'a [u8], reply: Option<&'a [u8]>, payload: &'a Bytes) -> Message<'a> {
    Message {
        subject,
        reply,
        headers: None,
        payload,
        shared: Some(payload),
    }
}

const ACK: &[u8] = b"$JS.ACK.KV_b.c.1.7.7.1700000000000000000.0";

#[test]
fn a_consumer_delivery_crosses_routes_and_leaf_links_with_its_stored_subject() {
    let acc = Account::new("A");
    let (route, leaf) = (RecordingLink::new(1, false), RecordingLink::new(2, true));
    link_interest(&acc, &route, b"dlv", None);
    link_interest(&acc, &leaf, b"dlv", None);
    let local = local_subscriber(&acc, b"dlv");
    let payload = Bytes::from_static(b"v");
    let stored = &b"$KV.b.a-b_c=d/e.f"[..];
    let n = with_publisher(|p| deliver_as(&acc, p, b"dlv", &msg(stored, Some(ACK), &payload)));
    assert_eq!(n, 3);
    // Here: the stored subject, the plain ack reply.
    assert_eq!(
        written(&local),
        format!(
            "MSG $KV.b.a-b_c=d/e.f 1 {} 1\r\nv\r\n",
            String::from_utf8_lossy(ACK)
        )
    );
    // Across a link: the deliver subject, the stored one after the reply's `@`.
    let mut encoded = ACK.to_vec();
    encoded.extend_from_slice(b"@$KV.b.a-b_c=d/e.f");
    let want = vec![(b"dlv".to_vec(), Some(encoded), Vec::new())];
    assert_eq!(route.take(), want);
    assert_eq!(leaf.take(), want);

    // Without a reply there is nothing to carry it in: the deliver subject crosses alone.
    with_publisher(|p| deliver_as(&acc, p, b"dlv", &msg(stored, None, &payload)));
    assert_eq!(route.take(), vec![(b"dlv".to_vec(), None, Vec::new())]);
    assert!(written(&local).starts_with("MSG $KV.b.a-b_c=d/e.f 1 1\r\n"));
}

#[test]
fn a_deliver_group_member_on_another_server_gets_the_stored_subject_too() {
    let acc = Account::new("A");
    let route = RecordingLink::new(1, false);
    link_interest(&acc, &route, b"dlv", Some(b"workers"));
    let payload = Bytes::from_static(b"v");
    let n = with_publisher(|p| deliver_as(&acc, p, b"dlv", &msg(b"orders.1", Some(ACK), &payload)));
    assert_eq!(n, 1);
    let mut encoded = ACK.to_vec();
    encoded.extend_from_slice(b"@orders.1");
    assert_eq!(
        route.take(),
        vec![(b"dlv".to_vec(), Some(encoded), vec![b"workers".to_vec()])]
    );
}

#[test]
fn a_routed_delivery_shows_the_stored_subject_and_goes_on_to_leaves_as_it_came() {
    let acc = Account::new("A");
    let (route, leaf) = (RecordingLink::new(1, false), RecordingLink::new(2, true));
    link_interest(&acc, &route, b"dlv", None);
    link_interest(&acc, &leaf, b"dlv", None);
    let local = local_subscriber(&acc, b"dlv");
    let payload = Bytes::from_static(b"v");
    let mut arrived = ACK.to_vec();
    arrived.extend_from_slice(b"@$KV.b.a-b_c=d/e.f");
    let n =
        with_publisher(|p| deliver_routed(&acc, p, &msg(b"dlv", Some(&arrived), &payload), &[]));
    assert_eq!(n, 2);
    assert_eq!(
        written(&local),
        format!(
            "MSG $KV.b.a-b_c=d/e.f 1 {} 1\r\nv\r\n",
            String::from_utf8_lossy(ACK)
        )
    );
    // The leaf link's server takes the suffix off itself; never back to a route.
    assert_eq!(
        leaf.take(),
        vec![(b"dlv".to_vec(), Some(arrived), Vec::new())]
    );
    assert!(route.take().is_empty());
}

#[test]
fn a_routed_reply_without_a_stored_subject_is_left_alone() {
    let acc = Account::new("A");
    let local = local_subscriber(&acc, b"dlv");
    let payload = Bytes::from_static(b"v");
    // A plain ack reply, an `@` with nothing after it, and an `@` outside JetStream's acks
    // all reach the subscriber as they came (Go: only a `$JS.ACK.` reply with a non-empty
    // part after its last `@` is split).
    for reply in [
        ACK.to_vec(),
        [ACK, b"@"].concat(),
        b"_INBOX.abc@orders.1".to_vec(),
    ] {
        with_publisher(|p| deliver_routed(&acc, p, &msg(b"dlv", Some(&reply), &payload), &[]));
        assert_eq!(
            written(&local),
            format!("MSG dlv 1 {} 1\r\nv\r\n", String::from_utf8_lossy(&reply))
        );
    }
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
