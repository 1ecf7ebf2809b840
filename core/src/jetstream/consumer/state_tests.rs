//! Durable consumer state across restarts: file streams on a [`MemDisk`] that crashes, tears
//! and flips bits, with a virtual clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::state::{decode, encode, DeliveryState};
use super::Delivery;
use crate::jetstream::factory::DiskFactory;
use crate::jetstream::service::{JetStream, JsSettings};
use crate::jetstream::store::disk::{Disk, DiskError};
use crate::jetstream::store::{CrashMode, MemDisk, SyncPolicy};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;
const STATE: &str = "consumers/S/d.state";

fn js_with<D: Disk + Clone + Send + 'static>(disk: D) -> JetStream {
    let f = DiskFactory::new(move || disk.clone(), SyncPolicy::Always).with_block_size(4096);
    let settings = JsSettings {
        server_name: "S1".into(),
        ..JsSettings::default()
    };
    JetStream::new(settings, Box::new(f), 3)
}

fn api(js: &mut JetStream, subject: &str, req: Value, now: u64) -> Value {
    let payload = if req.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&req).unwrap()
    };
    let out = js.api(subject, Some("_INBOX.r"), &payload, now);
    serde_json::from_slice(&out[0].payload).unwrap()
}

/// A file stream `S` with `n` messages and a durable pull consumer `d` (`cfg` added).
fn setup(js: &mut JetStream, n: usize, cfg: Value) {
    assert!(try_setup(js, n, cfg));
}

/// [`setup`]; false if the stream or the consumer could not be created.
fn try_setup(js: &mut JetStream, n: usize, cfg: Value) -> bool {
    let v = api(
        js,
        "$JS.API.STREAM.CREATE.S",
        json!({"name": "S", "subjects": ["s.>"]}),
        T0,
    );
    if v.get("error").is_some() {
        return false;
    }
    for i in 0..n {
        js.publish("s.x", None, b"", i.to_string().as_bytes(), T0);
    }
    js.commit(T0);
    let mut c = json!({"durable_name": "d", "ack_policy": "explicit", "ack_wait": 30 * SEC});
    if let (Value::Object(c), Value::Object(e)) = (&mut c, cfg) {
        c.extend(e);
    }
    let v = api(
        js,
        "$JS.API.CONSUMER.CREATE.S.d",
        json!({"stream_name": "S", "config": c}),
        T0,
    );
    v.get("error").is_none()
}

/// Pulls up to `batch` messages (no wait), then commits as the worker does.
fn fetch(js: &mut JetStream, batch: u64, now: u64) -> Vec<Delivery> {
    let p = serde_json::to_vec(&json!({"batch": batch, "no_wait": true})).unwrap();
    let out = js.api("$JS.API.CONSUMER.MSG.NEXT.S.d", Some("_INBOX.p"), &p, now);
    js.commit(now);
    out.into_iter().filter(|d| d.reply.is_some()).collect()
}

fn ack(js: &mut JetStream, d: &Delivery, body: &str, now: u64) {
    js.ack(d.reply.as_deref().unwrap(), None, body.as_bytes(), now);
    js.commit(now);
}

/// Token `i` of a delivery's ack subject (4: delivery count, 5: stream sequence).
fn tok(d: &Delivery, i: usize) -> u64 {
    d.reply
        .as_deref()
        .unwrap()
        .split('.')
        .nth(i)
        .unwrap()
        .parse()
        .unwrap()
}

/// The parts of consumer info a restart must keep.
fn kept(js: &mut JetStream, now: u64) -> Value {
    let v = api(js, "$JS.API.CONSUMER.INFO.S.d", Value::Null, now);
    // The sequences, not `last_active`: like Go, a restart forgets when they last moved.
    let seqs =
        |s: &Value| json!({"consumer_seq": s["consumer_seq"], "stream_seq": s["stream_seq"]});
    json!([
        seqs(&v["delivered"]),
        seqs(&v["ack_floor"]),
        v["num_ack_pending"],
        v["num_redelivered"],
        v["num_pending"]
    ])
}

#[test]
fn encoding_round_trips_and_stays_compact() {
    let s = DeliveryState {
        next_sseq: 1001,
        cseq: 1200,
        last_sseq: 1000,
        floor_sseq: 10,
        floor_cseq: 12,
        pending: (11..1000).map(|s| (s, s + 2, T0 + (s % 7) * SEC)).collect(),
        deliveries: (11..1000).map(|s| (s, 1 + s % 3)).collect(),
        redeliver: vec![15, 12, 900],
        redelivered: 77,
    };
    let b = encode(&s);
    assert_eq!(decode(&b).unwrap(), s);
    // Deltas keep ~1000 outstanding messages well under 10 bytes each.
    assert!(b.len() < 10_000, "{} bytes", b.len());
    assert_eq!(
        decode(&encode(&DeliveryState::default())).unwrap(),
        DeliveryState::default()
    );
    // Every flipped bit and every cut is caught, never a panic.
    for bit in 0..(b.len().min(64) * 8) {
        let mut x = b.clone();
        x[bit / 8] ^= 1 << (bit % 8);
        assert!(decode(&x).is_err(), "bit {bit}");
    }
    for len in 0..b.len() {
        assert!(decode(&b[..len]).is_err(), "cut at {len}");
    }
}

#[test]
fn restart_keeps_delivered_pending_and_delivery_counts() {
    let disk = MemDisk::new(11);
    let mut js = js_with(disk.clone());
    setup(&mut js, 10, json!({}));
    let got = fetch(&mut js, 10, T0 + SEC);
    assert_eq!(got.len(), 10);
    for d in &got[..4] {
        ack(&mut js, d, "", T0 + SEC);
    }
    let before = kept(&mut js, T0 + SEC);
    assert_eq!(before[2], 6, "{before}");
    drop(js);
    disk.crash(CrashMode::LoseUnsynced);

    let mut js = js_with(disk.clone());
    assert!(js.damaged_consumers().is_empty());
    assert_eq!(kept(&mut js, T0 + 2 * SEC), before);
    // The ack timers kept their start: nothing is due 20s after the delivery…
    js.tick(T0 + 21 * SEC);
    assert!(fetch(&mut js, 10, T0 + 21 * SEC).is_empty());
    // …and all six are due once ack_wait (30s) has passed, as second deliveries.
    js.tick(T0 + 31 * SEC);
    let again = fetch(&mut js, 10, T0 + 31 * SEC);
    let seqs: Vec<u64> = again.iter().map(|d| tok(d, 5)).collect();
    assert_eq!(seqs, [5, 6, 7, 8, 9, 10]);
    assert!(again.iter().all(|d| tok(d, 4) == 2));
    let after = kept(&mut js, T0 + 31 * SEC);
    // Redeliveries take new consumer sequences, as in nats-server.
    assert_eq!(
        after[0],
        json!({"consumer_seq": 16, "stream_seq": 10}),
        "{after}"
    );
    assert_eq!(after[3], 6, "{after}");
}

#[test]
fn a_nak_and_a_clean_restart_survive() {
    let disk = MemDisk::new(12);
    let mut js = js_with(disk.clone());
    setup(&mut js, 3, json!({}));
    let got = fetch(&mut js, 3, T0);
    ack(&mut js, &got[1], "-NAK", T0);
    let before = kept(&mut js, T0);
    drop(js);
    // A clean stop: nothing is lost either way.
    let mut js = js_with(disk.clone());
    assert_eq!(kept(&mut js, T0), before);
    // The NAKed message comes back at once, long before its ack_wait.
    let again = fetch(&mut js, 3, T0 + SEC);
    assert_eq!(
        again
            .iter()
            .map(|d| (tok(d, 5), tok(d, 4)))
            .collect::<Vec<_>>(),
        [(2, 2)]
    );
}

#[test]
fn max_deliver_counts_deliveries_made_before_a_restart() {
    let disk = MemDisk::new(13);
    let mut js = js_with(disk.clone());
    setup(&mut js, 1, json!({"max_deliver": 2, "ack_wait": SEC}));
    assert_eq!(tok(&fetch(&mut js, 1, T0)[0], 4), 1);
    drop(js);
    disk.crash(CrashMode::LoseUnsynced);
    let mut js = js_with(disk.clone());
    js.tick(T0 + 2 * SEC);
    let second = fetch(&mut js, 1, T0 + 2 * SEC);
    assert_eq!(tok(&second[0], 4), 2);
    drop(js);
    disk.crash(CrashMode::LoseUnsynced);
    let mut js = js_with(disk.clone());
    js.tick(T0 + 4 * SEC);
    assert!(
        fetch(&mut js, 1, T0 + 4 * SEC).is_empty(),
        "a third delivery"
    );
    let events = js.take_consumer_events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            super::ConsumerEvent::MaxDeliveries {
                stream_seq: 1,
                deliveries: 2,
                ..
            }
        )),
        "{events:?}"
    );
}

#[test]
fn a_damaged_state_file_is_reported_and_the_floor_kept() {
    for damage in 0..3 {
        let disk = MemDisk::new(14);
        let mut js = js_with(disk.clone());
        setup(&mut js, 6, json!({}));
        let got = fetch(&mut js, 6, T0);
        ack(&mut js, &got[0], "", T0);
        ack(&mut js, &got[1], "", T0);
        drop(js);
        let len = disk.contents(STATE).unwrap().len() as u64;
        match damage {
            0 => disk.flip_bit(STATE, len * 4).unwrap(),
            1 => disk.truncate_file(STATE, len / 2).unwrap(),
            _ => {
                let mut d = disk.clone();
                d.create(STATE).unwrap();
                d.append(STATE, b"\0\0\0\0\0\0\0\0\0").unwrap();
                d.sync(STATE).unwrap();
            }
        }
        let mut js = js_with(disk.clone());
        let dmg = js.damaged_consumers().to_vec();
        assert_eq!(dmg.len(), 1, "damage {damage}");
        assert_eq!((dmg[0].0.as_str(), dmg[0].1.as_str()), ("S", "d"));
        // Back at the floor of the meta: 1 and 2 acknowledged, 3.. delivered again as new.
        let v = kept(&mut js, T0);
        assert_eq!(v[1], json!({"consumer_seq": 2, "stream_seq": 2}), "{v}");
        let again = fetch(&mut js, 10, T0);
        let seqs: Vec<u64> = again.iter().map(|d| tok(d, 5)).collect();
        assert_eq!(seqs, [3, 4, 5, 6], "damage {damage}");
    }
}

#[test]
fn deleting_a_durable_forgets_its_state() {
    let disk = MemDisk::new(15);
    let mut js = js_with(disk.clone());
    setup(&mut js, 2, json!({}));
    fetch(&mut js, 2, T0);
    assert!(disk.contents(STATE).is_some());
    let v = api(&mut js, "$JS.API.CONSUMER.DELETE.S.d", Value::Null, T0);
    assert_eq!(v["success"], true);
    assert!(disk.contents(STATE).is_none());
    // A new durable of that name starts afresh.
    let v = api(
        &mut js,
        "$JS.API.CONSUMER.CREATE.S.d",
        json!({"stream_name": "S", "config": {"durable_name": "d", "ack_policy": "explicit"}}),
        T0,
    );
    assert_eq!(v["delivered"]["consumer_seq"], 0, "{v}");
}

/// A [`MemDisk`] that loses power after a set number of operations: from then on every call
/// fails, as nothing more reaches the device.
#[derive(Clone)]
struct CrashAt {
    disk: MemDisk,
    left: Arc<AtomicU64>,
}

impl CrashAt {
    fn tick(&self) -> Result<(), DiskError> {
        let ok = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if ok {
            Ok(())
        } else {
            Err(DiskError::Io("power lost".into()))
        }
    }
}

impl Disk for CrashAt {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        self.tick()?;
        self.disk.create(path)
    }
    fn append(&mut self, path: &str, data: &[u8]) -> Result<u64, DiskError> {
        self.tick()?;
        self.disk.append(path, data)
    }
    fn read_at(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        self.disk.read_at(path, offset, len)
    }
    fn len(&self, path: &str) -> Result<u64, DiskError> {
        self.disk.len(path)
    }
    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        self.tick()?;
        self.disk.sync(path)
    }
    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.tick()?;
        self.disk.truncate(path, len)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.tick()?;
        self.disk.rename(from, to)
    }
    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.tick()?;
        self.disk.remove(path)
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, DiskError> {
        self.disk.list(dir)
    }
}

/// Power fails at every disk operation in turn while a durable fetches, acks and NAKs; after a
/// torn crash the state file is never damaged (it is replaced atomically), and the durable
/// comes back in a state some commit had reached (or, before its first state write, at its
/// floor), never ahead of what it did.
#[test]
fn crash_at_every_disk_operation() {
    let run = |budget: u64, seed: u64| -> (MemDisk, Vec<Value>) {
        let disk = MemDisk::new(seed);
        let at = CrashAt {
            disk: disk.clone(),
            left: Arc::new(AtomicU64::new(budget)),
        };
        let mut js = js_with(at);
        let mut seen = Vec::new();
        try_setup(&mut js, 6, json!({}));
        seen.push(kept(&mut js, T0));
        let got = fetch(&mut js, 4, T0);
        seen.push(kept(&mut js, T0));
        for (i, d) in got.iter().enumerate() {
            ack(&mut js, d, if i == 2 { "-NAK" } else { "" }, T0);
            seen.push(kept(&mut js, T0));
        }
        fetch(&mut js, 4, T0 + SEC);
        seen.push(kept(&mut js, T0 + SEC));
        drop(js);
        (disk, seen)
    };
    // How many operations the whole run takes without a crash.
    let total = {
        let at = CrashAt {
            disk: MemDisk::new(1),
            left: Arc::new(AtomicU64::new(u64::MAX)),
        };
        let left = at.left.clone();
        let mut js = js_with(at);
        setup(&mut js, 6, json!({}));
        let got = fetch(&mut js, 4, T0);
        for (i, d) in got.iter().enumerate() {
            ack(&mut js, d, if i == 2 { "-NAK" } else { "" }, T0);
        }
        fetch(&mut js, 4, T0 + SEC);
        u64::MAX - left.load(Ordering::SeqCst)
    };
    assert!(total > 20, "{total} operations");
    let mut restored = 0;
    for budget in 0..=total {
        let (disk, seen) = run(budget, 100 + budget);
        disk.crash(CrashMode::Torn);
        let mut js = js_with(disk.clone());
        assert!(js.damaged_consumers().is_empty(), "budget {budget}");
        let v = api(&mut js, "$JS.API.CONSUMER.INFO.S.d", Value::Null, T0 + SEC);
        if v.get("error").is_some() {
            continue; // the crash came before the consumer was created
        }
        restored += 1;
        let k = kept(&mut js, T0 + SEC);
        let floor = k[1]["stream_seq"].as_u64().unwrap();
        let at_floor = k[0]["stream_seq"].as_u64().unwrap() == floor && k[2] == 0;
        assert!(
            at_floor || seen.iter().any(|s| (0..4).all(|i| s[i] == k[i])),
            "budget {budget}: {k} is no state the consumer was in: {seen:?}"
        );
        // It keeps serving.
        js.tick(T0 + 60 * SEC);
        fetch(&mut js, 10, T0 + 60 * SEC);
    }
    assert!(restored > 0);
}
