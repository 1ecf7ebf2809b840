//! JetStream under power cuts: the real server on in-memory disks that crash, fill up and rot.
//!
//! Publishers store messages with PubAcks while the server host is cut off at seeded times
//! (its disk keeps only synced bytes, or a torn prefix of the rest) and, between those, its
//! disk may die at a seeded operation in the middle of a group commit. After the last
//! restart a verifier reads every sequence back. Every acknowledged message must be there,
//! intact, at its acknowledged sequence; nothing may appear that nobody published; sequences
//! must be dense from 1. Separate sweeps fill the disk (PubAck 10047, nothing acknowledged
//! lost) and flip a bit in a synced block (recovery reports it, the damaged message is never
//! served as data). A de-duplication sweep publishes with `Nats-Msg-Id`s and retries every
//! publish whose PubAck it did not see, with the same id, as a client does; its disk dies
//! right after a sync, before the PubAcks that sync released are sent, and every retry of a
//! message that was stored must be answered as a duplicate of it, never stored twice.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use natsd_core::jetstream::factory::DiskFactory;
use natsd_core::jetstream::store::{CrashMode, Disk, DiskError, MemDisk, SyncPolicy};
use natsd_core::rng::SplitMix64;
use natsd_sim::client::js::{ApiErr, PubAck, StoredMsg};
use natsd_sim::client::ClientError;
use natsd_sim::faults::FaultAction;
use natsd_sim::seeds::sweep;
use natsd_sim::{ClientCtx, Scenario, Turmoil};
use serde_json::json;

const OP_TIMEOUT: Duration = Duration::from_secs(1);
const STREAM: &str = "S";
/// Small blocks, so that runs cross block boundaries.
const BLOCK: u64 = 8 * 1024;
const PUBLISHERS: u64 = 3;
/// Pause between a publisher's PubAck and its next publish.
const PACE: Duration = Duration::from_millis(8);
/// Publishing stops here; every crash is over by then.
const PUB_UNTIL: Duration = Duration::from_secs(6);
/// The verifier reads everything back from here.
const VERIFY_AT: Duration = Duration::from_millis(6_500);

type Srv = natsd::Server<Turmoil>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// When the disk dies, as drawn at each boot.
#[derive(Debug, Default)]
struct DiskCtl {
    /// Mutating operations since boot.
    ops: u64,
    /// Die (power cut) at this operation.
    die_at: Option<u64>,
    dead: bool,
    mode: Option<CrashMode>,
    deaths: u32,
    /// Syncs since boot.
    syncs: u64,
    /// Complete this sync, then lose power before anything hears of it (Dedupe mode).
    die_after_sync: Option<u64>,
}

/// A [`MemDisk`] whose power can go at a chosen operation: what was not synced is lost (or
/// torn), and every later call fails until the host reboots. This puts crash points inside
/// a group commit, between an append and its sync, which a host crash between two turns of
/// the worker never reaches.
#[derive(Debug, Clone)]
struct CrashDisk {
    disk: MemDisk,
    ctl: Arc<Mutex<DiskCtl>>,
}

fn power_lost() -> DiskError {
    DiskError::Io("power lost".to_owned())
}

impl CrashDisk {
    fn write_op(&self) -> Result<(), DiskError> {
        let mut c = lock(&self.ctl);
        if c.dead {
            return Err(power_lost());
        }
        c.ops += 1;
        if c.die_at == Some(c.ops) {
            self.disk.crash(c.mode.unwrap_or(CrashMode::LoseUnsynced));
            c.dead = true;
            c.deaths += 1;
            return Err(power_lost());
        }
        Ok(())
    }

    fn read_op(&self) -> Result<(), DiskError> {
        if lock(&self.ctl).dead {
            return Err(power_lost());
        }
        Ok(())
    }
}

impl Disk for CrashDisk {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        self.write_op()?;
        self.disk.create(path)
    }
    fn append(&mut self, path: &str, data: &[u8]) -> Result<u64, DiskError> {
        self.write_op()?;
        self.disk.append(path, data)
    }
    fn read_at(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        self.read_op()?;
        self.disk.read_at(path, offset, len)
    }
    fn len(&self, path: &str) -> Result<u64, DiskError> {
        self.read_op()?;
        self.disk.len(path)
    }
    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        let die_after = {
            let mut c = lock(&self.ctl);
            if c.dead {
                return Err(power_lost());
            }
            c.syncs += 1;
            c.die_after_sync == Some(c.syncs)
        };
        if die_after {
            // The data reaches the disk, then the power goes before the server hears of it:
            // the PubAcks this sync would release are never sent.
            let synced = self.disk.sync(path);
            let mut c = lock(&self.ctl);
            self.disk.crash(c.mode.unwrap_or(CrashMode::LoseUnsynced));
            c.dead = true;
            c.deaths += 1;
            synced?;
            return Err(power_lost());
        }
        self.write_op()?;
        self.disk.sync(path)
    }
    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.write_op()?;
        self.disk.truncate(path, len)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.write_op()?;
        self.disk.rename(from, to)
    }
    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.write_op()?;
        self.disk.remove(path)
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, DiskError> {
        self.read_op()?;
        self.disk.list(dir)
    }
}

/// What the run varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Host crashes and disk deaths.
    Crash,
    /// The disk fills up for a while (no disk deaths).
    NoSpace,
    /// A bit of a synced block flips while the host is down.
    BitFlip,
    /// Publishes carry `Nats-Msg-Id`s and are retried until acknowledged; the disk dies
    /// between a sync and its PubAcks.
    Dedupe,
}

/// What the publishers saw.
#[derive(Debug, Default)]
struct PubLog {
    /// Every payload sent, with its subject.
    sent: BTreeMap<String, String>,
    /// Acknowledged: payload → sequence.
    acked: BTreeMap<String, u64>,
    /// PubAck errors by `err_code`.
    errors: BTreeMap<u64, u64>,
    /// Acks received after the disk had room again (NoSpace mode).
    acked_after_space: u64,
    /// Publishes sent again, same id, after no PubAck came (Dedupe mode).
    retries: u64,
    /// PubAcks that said `duplicate` (Dedupe mode).
    duplicates: u64,
}

/// What the verifier read back.
#[derive(Debug, Default)]
struct Readback {
    done: bool,
    first_seq: u64,
    last_seq: u64,
    messages: u64,
    msgs: BTreeMap<u64, Result<StoredMsg, ApiErr>>,
    damage: Vec<natsd::StreamDamage>,
}

/// Shared between the server hook, the clients and the checks (all on turmoil's one thread).
#[derive(Default)]
struct World {
    log: RefCell<PubLog>,
    read: RefCell<Readback>,
    server: RefCell<Weak<Srv>>,
    boots: Cell<u32>,
    /// A bit was flipped (BitFlip mode).
    flipped: Cell<bool>,
    /// Set once the disk was made small (NoSpace mode), cleared when it grows back.
    full: Cell<bool>,
}

/// Draws the host crashes of a run: 1 to 3, apart, all over before [`PUB_UNTIL`].
fn crash_points(rng: &mut SplitMix64, mode: Mode) -> Vec<(Duration, Duration)> {
    if mode == Mode::BitFlip {
        let at = Duration::from_millis(2_000 + rng.below(1_500));
        return vec![(at, at + Duration::from_millis(300))];
    }
    let n = 1 + rng.below(3);
    let slot = 5_000 / n;
    (0..n)
        .map(|i| {
            let start = 300 + i * slot + rng.below(slot / 2);
            let down = 100 + rng.below(500);
            (
                Duration::from_millis(start),
                Duration::from_millis(start + down),
            )
        })
        .collect()
}

/// Prepares the server at each boot: the power cut of the previous life, the next disk death,
/// a bit flip (BitFlip mode), the store factory, and a handle for the verifier.
fn boot(
    server: &Arc<Srv>,
    world: &World,
    disk: &CrashDisk,
    rng: &RefCell<SplitMix64>,
    mode: Mode,
    lives: u32,
) {
    let boot = world.boots.get();
    world.boots.set(boot + 1);
    let mut rng = rng.borrow_mut();
    {
        let mut c = lock(&disk.ctl);
        if boot > 0 && !c.dead {
            disk.disk.crash(c.mode.unwrap_or(CrashMode::LoseUnsynced));
        }
        c.dead = false;
        c.ops = 0;
        c.syncs = 0;
        c.mode = Some(if rng.below(2) == 0 {
            CrashMode::LoseUnsynced
        } else {
            CrashMode::Torn
        });
        // Half of the lives that end in a host crash see the disk die first, somewhere in its
        // first few thousand writes (a publish is an append, a group commit one sync per
        // stream). The last life keeps its disk: the verifier reads through it.
        let ends_in_crash = boot + 1 < lives;
        c.die_at = (mode == Mode::Crash && ends_in_crash && rng.below(2) == 0)
            .then(|| 1 + rng.below(1_500));
        // Early in the life (a group commit is a sync or two), so that it always comes.
        c.die_after_sync = (mode == Mode::Dedupe && ends_in_crash).then(|| 1 + rng.below(40));
    }
    if mode == Mode::BitFlip && boot == 1 {
        world.flipped.set(flip_a_synced_bit(&disk.disk, &mut rng));
    }
    *world.server.borrow_mut() = Arc::downgrade(server);
    let d = disk.clone();
    server.set_store_factory(Arc::new(move |_account: &str| {
        let d = d.clone();
        Box::new(DiskFactory::new(move || d.clone(), SyncPolicy::Always).with_block_size(BLOCK))
    }));
}

/// Flips one bit of a sealed block of the stream (not the newest); false if there is none.
///
/// Not the newest block: a damaged last record there looks exactly like a torn write, which
/// recovery cuts off without a report (nats-server's file store does the same). A flip in
/// data that later records vouch for is what recovery can and must report.
fn flip_a_synced_bit(disk: &MemDisk, rng: &mut SplitMix64) -> bool {
    let mut blocks: Vec<String> = disk
        .paths()
        .into_iter()
        .filter(|p| p.starts_with(&format!("streams/{STREAM}/")) && p.ends_with(".blk"))
        .filter(|p| disk.synced_len(p).unwrap_or(0) > 0)
        .collect();
    // Zero-padded numbers: the last path is the newest block.
    blocks.pop();
    if blocks.is_empty() {
        return false;
    }
    let path = &blocks[rng.below(blocks.len() as u64) as usize];
    let len = disk.synced_len(path).unwrap_or(0);
    let bit = rng.below(len * 8);
    if std::env::var_os("NATS_SIM_VERBOSE").is_some() {
        eprintln!("flipping bit {bit} (byte {} of {len}) of {path}", bit / 8);
    }
    disk.flip_bit(path, bit).is_ok()
}

async fn create_stream(ctx: &mut ClientCtx, epoch: &mut u32) -> Result<(), String> {
    let opts = ctx.opts("n1");
    while ctx.now() < PUB_UNTIL {
        let Ok(mut c) = ctx.connect_retry(&opts, epoch, PUB_UNTIL).await else {
            continue;
        };
        // The window outlasts the run: every retry falls inside it.
        let cfg = json!({"name": STREAM, "subjects": ["s.>"], "storage": "file",
                         "duplicate_window": 600_000_000_000u64});
        match c.js_create_stream(&cfg, OP_TIMEOUT).await {
            Ok(Some(Ok(_))) => return Ok(()),
            Ok(Some(Err(e))) if e.err_code == 10058 => return Ok(()),
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => c.close(&format!("create: {e}")),
        }
    }
    Err("stream never created".to_owned())
}

/// Publishes unique payloads with PubAcks until [`PUB_UNTIL`], reconnecting as needed.
async fn publisher(
    mut ctx: ClientCtx,
    k: u64,
    world: Rc<World>,
    disk: CrashDisk,
    mode: Mode,
) -> Result<(), String> {
    let mut epoch = 0;
    if k == 0 {
        create_stream(&mut ctx, &mut epoch).await?;
    }
    let opts = ctx.opts("n1");
    let subject = format!("s.{k}");
    let (mut n, mut last_seq, mut acks) = (0u64, 0u64, 0u64);
    // Dedupe mode: the payload (also its Nats-Msg-Id) still waiting for its PubAck.
    let mut unacked: Option<String> = None;
    while ctx.now() < PUB_UNTIL {
        let Ok(mut c) = ctx.connect_retry(&opts, &mut epoch, PUB_UNTIL).await else {
            break;
        };
        while ctx.now() < PUB_UNTIL {
            let payload = match unacked.take() {
                Some(p) => {
                    world.log.borrow_mut().retries += 1;
                    p
                }
                None => {
                    n += 1;
                    format!("p{k}-{n}")
                }
            };
            world
                .log
                .borrow_mut()
                .sent
                .insert(payload.clone(), subject.clone());
            let id = (mode == Mode::Dedupe).then_some(payload.as_str());
            let r = c
                .js_publish_with_id(&subject, id, payload.as_bytes(), OP_TIMEOUT)
                .await;
            if mode == Mode::Dedupe && !matches!(r, Ok(PubAck::Ok { .. })) {
                // No PubAck seen: the next publish is this one again, with the same id.
                unacked = Some(payload.clone());
            }
            match r {
                Ok(PubAck::Ok {
                    stream,
                    seq,
                    duplicate,
                }) => {
                    if stream != STREAM || seq <= last_seq {
                        return Err(format!(
                            "{payload}: ack {stream}/{seq} after seq {last_seq} on this publisher"
                        ));
                    }
                    last_seq = seq;
                    acks += 1;
                    let mut log = world.log.borrow_mut();
                    if let Some(other) = log.acked.iter().find(|(_, s)| **s == seq) {
                        return Err(format!("{payload} and {} both acked as seq {seq}", other.0));
                    }
                    log.acked.insert(payload, seq);
                    log.duplicates += u64::from(duplicate);
                    if !world.full.get() && log.errors.contains_key(&10047) {
                        log.acked_after_space += 1;
                    }
                }
                Ok(PubAck::Err(e)) => {
                    *world.log.borrow_mut().errors.entry(e.err_code).or_default() += 1;
                    if e.err_code == 10047 && world.full.get() {
                        // The disk is full and said so: give it room again.
                        disk.disk.set_capacity(None);
                        world.full.set(false);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(PubAck::NoResponders) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(ClientError::Timeout) => {
                    c.close("publish timeout");
                    break;
                }
                Err(e) => {
                    c.close(&format!("publish: {e}"));
                    break;
                }
            }
            // Paced: enough to batch commits across publishers, few enough to check quickly.
            tokio::time::sleep(PACE).await;
            if mode == Mode::NoSpace && k == 0 && acks == 40 && !world.full.get() {
                // Leave room for a few more messages only.
                disk.disk.set_capacity(Some(disk.disk.used() + 1_500));
                world.full.set(true);
            }
        }
    }
    Ok(())
}

/// Reads the whole stream back once everything is quiet.
async fn verifier(mut ctx: ClientCtx, world: Rc<World>) -> Result<(), String> {
    ctx.sleep_until(VERIFY_AT).await;
    let opts = ctx.opts("n1");
    let mut epoch = 0;
    let until = VERIFY_AT + Duration::from_secs(5);
    let mut c = ctx
        .connect_retry(&opts, &mut epoch, until)
        .await
        .map_err(|e| format!("verifier: {e}"))?;
    let info = loop {
        match c.js_stream_info(STREAM, OP_TIMEOUT).await {
            Ok(Some(Ok(v))) => break v,
            Ok(other) if ctx.now() >= until => return Err(format!("stream info: {other:?}")),
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(format!("stream info: {e}")),
        }
    };
    let st = &info["state"];
    let (first, last) = (
        st["first_seq"].as_u64().unwrap_or(0),
        st["last_seq"].as_u64().unwrap_or(0),
    );
    let seqs: Vec<u64> = (1..=last).collect();
    let msgs = c
        .js_get_msgs(STREAM, &seqs, 64, Duration::from_secs(3))
        .await
        .map_err(|e| format!("reading back: {e}"))?;
    let damage = world
        .server
        .borrow()
        .upgrade()
        .map(|s| s.jetstream_damage())
        .unwrap_or_default();
    *world.read.borrow_mut() = Readback {
        done: true,
        first_seq: first,
        last_seq: last,
        messages: st["messages"].as_u64().unwrap_or(0),
        msgs,
        damage,
    };
    c.close("verified");
    Ok(())
}

/// The checks of one run.
fn check(world: &World, mode: Mode) -> Result<(), String> {
    let log = world.log.borrow();
    let read = world.read.borrow();
    if !read.done {
        return Err("the verifier did not finish".to_owned());
    }
    if log.acked.is_empty() {
        return Err("nothing was acknowledged".to_owned());
    }
    // No phantoms, each payload at most once, reported sequence = asked sequence.
    let mut seen = BTreeSet::new();
    let mut served = 0u64;
    for (seq, r) in &read.msgs {
        let Ok(m) = r else { continue };
        served += 1;
        let payload = String::from_utf8_lossy(&m.data).into_owned();
        if m.seq != *seq {
            return Err(format!("asked for seq {seq}, got {}", m.seq));
        }
        match log.sent.get(&payload) {
            Some(subj) if *subj == m.subject => {}
            _ => {
                return Err(format!(
                    "seq {seq}: phantom message {:?} on {}",
                    m.data, m.subject
                ))
            }
        }
        if !seen.insert(payload.clone()) {
            return Err(format!("{payload} stored twice"));
        }
    }
    // Every acknowledged message intact at its sequence, unless recovery reported it lost.
    let lost_reported: u64 = read.damage.iter().map(|d| d.lost_msgs).sum();
    let mut lost = Vec::new();
    for (payload, seq) in &log.acked {
        match read.msgs.get(seq) {
            Some(Ok(m)) if m.data == payload.as_bytes() => {}
            Some(Ok(m)) => {
                return Err(format!(
                    "acked {payload} at seq {seq}, but it holds {:?}",
                    String::from_utf8_lossy(&m.data)
                ))
            }
            other if lost.len() < 5 => lost.push(format!("{payload}@{seq}: {other:?}")),
            _ => lost.push(String::new()),
        }
    }
    match mode {
        Mode::BitFlip => {
            if !world.flipped.get() {
                return Err("no sealed block to flip a bit in".to_owned());
            }
            if read.damage.is_empty() {
                return Err("a flipped bit went unreported".to_owned());
            }
            if lost.len() as u64 > lost_reported {
                return Err(format!(
                    "{} acked messages missing, {lost_reported} reported lost: {lost:?}",
                    lost.len()
                ));
            }
        }
        Mode::Crash | Mode::NoSpace | Mode::Dedupe => {
            if !lost.is_empty() {
                return Err(format!(
                    "{} acknowledged messages lost, first: {:?}",
                    lost.len(),
                    &lost[..lost.len().min(5)]
                ));
            }
            if !read.damage.is_empty() {
                return Err(format!("damage after clean power cuts: {:?}", read.damage));
            }
            // Dense sequences from 1: a crash loses only an unsynced tail.
            if read.first_seq != 1 || read.messages != read.last_seq || served != read.last_seq {
                return Err(format!(
                    "sequences not dense: first {} last {} messages {} served {served}",
                    read.first_seq, read.last_seq, read.messages
                ));
            }
        }
    }
    if mode == Mode::Dedupe && world.boots.get() > 1 && log.duplicates == 0 {
        // Each power cut came right after a sync, so some message was stored whose PubAck
        // never went out, and its publisher's retry must have been answered as a duplicate.
        return Err(format!(
            "no retry was answered as a duplicate ({} retries)",
            log.retries
        ));
    }
    if mode == Mode::NoSpace {
        if log.errors.get(&10047).copied().unwrap_or(0) == 0 {
            return Err(format!(
                "no PubAck 10047 from a full disk: {:?}",
                log.errors
            ));
        }
        if log.acked_after_space == 0 {
            return Err("nothing acknowledged once the disk had room again".to_owned());
        }
    }
    Ok(())
}

/// Totals over a sweep, printed at its end.
#[derive(Debug, Default)]
struct Totals {
    seeds: u64,
    host_crashes: u64,
    disk_deaths: u64,
    acked: u64,
    served: u64,
    errors: BTreeMap<u64, u64>,
    damaged: u64,
    retries: u64,
    duplicates: u64,
}

/// Runs one seed; returns the trace hash.
fn run(seed: u64, mode: Mode, totals: &mut Totals) -> Result<u64, String> {
    let mut rng = SplitMix64::new(seed ^ 0x6a65_7473_7472_6561);
    let crashes = crash_points(&mut rng, mode);
    let world = Rc::new(World::default());
    let disk = CrashDisk {
        disk: MemDisk::new(rng.next_u64()),
        ctl: Arc::new(Mutex::new(DiskCtl::default())),
    };
    let boot_rng = RefCell::new(rng.fork());
    let mut sc = Scenario::new("jetstream", seed)
        .server("n1", {
            let mut o = Scenario::default_server_options();
            o.jetstream = Some(Default::default());
            o
        })
        .duration(Duration::from_secs(30));
    {
        let lives = crashes.len() as u32 + 1;
        let (w, d) = (Rc::clone(&world), disk.clone());
        sc = sc.server_setup("n1", move |s| boot(s, &w, &d, &boot_rng, mode, lives));
    }
    for k in 0..PUBLISHERS {
        let (w, d) = (Rc::clone(&world), disk.clone());
        sc = sc.client(&format!("p{k}"), move |ctx| publisher(ctx, k, w, d, mode));
    }
    let w = Rc::clone(&world);
    sc = sc.client("verify", move |ctx| verifier(ctx, w));
    for (down, up) in &crashes {
        sc = sc
            .fault_at(*down, FaultAction::Crash("n1".to_owned()))
            .fault_at(*up, FaultAction::Bounce("n1".to_owned()));
    }
    let outcome = sc.run()?;
    check(&world, mode)?;
    let log = world.log.borrow();
    let read = world.read.borrow();
    totals.seeds += 1;
    totals.host_crashes += crashes.len() as u64;
    totals.disk_deaths += u64::from(lock(&disk.ctl).deaths);
    totals.acked += log.acked.len() as u64;
    totals.served += read.msgs.values().filter(|r| r.is_ok()).count() as u64;
    for (k, v) in &log.errors {
        *totals.errors.entry(*k).or_default() += v;
    }
    totals.damaged += read.damage.iter().map(|d| d.lost_msgs).sum::<u64>();
    totals.retries += log.retries;
    totals.duplicates += log.duplicates;
    Ok(outcome.hash)
}

fn sweep_mode(test: &str, seeds: usize, mode: Mode) {
    let mut totals = Totals::default();
    sweep(module_path!(), test, seeds, |seed| {
        run(seed, mode, &mut totals).map(drop)
    });
    eprintln!("{test}: {totals:?}");
}

#[test]
fn crash_sweep_loses_no_acknowledged_message() {
    sweep_mode("crash_sweep_loses_no_acknowledged_message", 8, Mode::Crash);
}

#[test]
fn retries_after_a_crash_between_sync_and_ack_are_duplicates() {
    sweep_mode(
        "retries_after_a_crash_between_sync_and_ack_are_duplicates",
        4,
        Mode::Dedupe,
    );
}

#[test]
fn full_disk_answers_10047_and_loses_nothing_acknowledged() {
    sweep_mode(
        "full_disk_answers_10047_and_loses_nothing_acknowledged",
        2,
        Mode::NoSpace,
    );
}

#[test]
fn flipped_bit_is_reported_and_never_served() {
    sweep_mode("flipped_bit_is_reported_and_never_served", 3, Mode::BitFlip);
}

#[test]
fn a_seed_replays_exactly() {
    // The worker is a task on the host's runtime and the disks are seeded: the same seed
    // gives the same trace, crashes and disk deaths included.
    sweep(module_path!(), "a_seed_replays_exactly", 1, |seed| {
        for mode in [Mode::Crash, Mode::Dedupe] {
            let (mut t1, mut t2) = (Totals::default(), Totals::default());
            let h1 = run(seed, mode, &mut t1)?;
            let h2 = run(seed, mode, &mut t2)?;
            if h1 != h2
                || t1.acked != t2.acked
                || t1.disk_deaths != t2.disk_deaths
                || t1.duplicates != t2.duplicates
            {
                return Err(format!(
                    "{mode:?}: two runs differ: {h1:016x} {t1:?} / {h2:016x} {t2:?}"
                ));
            }
        }
        Ok(())
    });
}
