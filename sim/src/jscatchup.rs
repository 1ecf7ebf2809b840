//! Catch-up over turmoil's network: each host serves its replica's snapshot and store to peers
//! on [`CATCHUP_PORT`] (the `natsd-core` catch-up protocol, [`CatchupServer`]), and its repair
//! loop catches its replica up from the best peer it can reach ([`catch_up`]); see
//! [`jsgroup`](crate::jsgroup) for what happens around it.
//!
//! Frames are length-prefixed (`u32`). A connection carries a snapshot ask (the single byte
//! `P`, answered by the snapshot's bytes, or nothing from a replica that cannot serve) and
//! catch-up requests, each answered by its window of chunks. Every wait has a deadline: turmoil
//! TCP never retransmits across a partition, so a cut link shows as silence, which the
//! requester answers by asking again, then by giving the attempt up (the store keeps what it
//! wrote, and the next attempt resumes from there).

use std::io;
use std::time::Duration;

use natsd_core::jetstream::cluster::catchup::ChunkEnd;
use natsd_core::jetstream::cluster::{
    CatchupChunk, CatchupEvent, CatchupLimits, CatchupRequest, CatchupServer, ReplicatedStream,
};
use natsd_raft::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};
use turmoil::net::{TcpListener, TcpStream};

use crate::jscluster::host;
use crate::jsgroup::{lock, SharedReplica};

/// The port every host serves catch-ups on.
pub const CATCHUP_PORT: u16 = 7001;
const MAX_FRAME: u32 = 16 << 20;
const ASK_SNAPSHOT: &[u8] = b"P";
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const REPLY_TIMEOUT: Duration = Duration::from_millis(500);
/// Silences in a row after which an attempt is given up.
const MAX_SILENCES: u32 = 3;

/// The sim's limits: small chunks and windows, so a catch-up of the sim's hundred-odd messages
/// takes a dozen round trips and a fault can land in the middle of one.
pub fn limits() -> CatchupLimits {
    CatchupLimits {
        chunk_bytes: 1024,
        chunk_msgs: 4,
        window: 2,
        timeout: Duration::from_millis(400),
    }
}

async fn write_frame(s: &mut TcpStream, b: &[u8]) -> io::Result<()> {
    let len = u32::try_from(b.len()).map_err(|_| io::Error::other("frame too large"))?;
    s.write_u32(len).await?;
    s.write_all(b).await
}

async fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let n = s.read_u32().await?;
    if n > MAX_FRAME {
        return Err(io::Error::other(format!("frame of {n} bytes")));
    }
    let mut b = vec![0; n as usize];
    s.read_exact(&mut b).await?;
    Ok(b)
}

/// Serves peers' catch-ups from `replica` until the host stops. `damaged` says whether its
/// stream group's Raft log is damaged: such a replica does not serve.
pub async fn serve<D>(listener: TcpListener, replica: SharedReplica, damaged: D)
where
    D: Fn() -> bool + Clone + Send + 'static,
{
    while let Ok((s, _)) = listener.accept().await {
        let replica = replica.clone();
        let damaged = damaged.clone();
        tokio::spawn(async move {
            let _ = serve_conn(s, replica, damaged).await;
        });
    }
}

async fn serve_conn(
    mut s: TcpStream,
    replica: SharedReplica,
    damaged: impl Fn() -> bool,
) -> io::Result<()> {
    loop {
        let frame = read_frame(&mut s).await?;
        if frame == ASK_SNAPSHOT {
            let snap = if damaged() {
                None
            } else {
                lock(&replica).serve_snapshot()
            };
            write_frame(&mut s, &snap.unwrap_or_default()).await?;
            continue;
        }
        let Ok(req) = CatchupRequest::decode(&frame) else {
            return Ok(());
        };
        let id = req.id;
        let mut srv = CatchupServer::new(req, limits());
        loop {
            let (chunk, last) = {
                let r = lock(&replica);
                if r.trouble.is_some() {
                    // Its store is not to be trusted any more: end the request there.
                    let failed = CatchupChunk {
                        id,
                        records: Vec::new(),
                        end: ChunkEnd::Failed("source in trouble".into()),
                    };
                    (Some(failed), true)
                } else {
                    (srv.poll_chunk(r.rs().stream.store.as_ref()), false)
                }
            };
            let Some(chunk) = chunk else { break };
            write_frame(&mut s, &chunk.encode()).await?;
            if last {
                break;
            }
        }
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Asks peer `id` for its snapshot; the connection stays open for the catch-up.
async fn ask_snapshot(id: NodeId) -> Option<(TcpStream, Vec<u8>)> {
    let addr = format!("{}:{CATCHUP_PORT}", host(id));
    let mut s = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    timeout(REPLY_TIMEOUT, write_frame(&mut s, ASK_SNAPSHOT))
        .await
        .ok()?
        .ok()?;
    let snap = timeout(REPLY_TIMEOUT, read_frame(&mut s))
        .await
        .ok()?
        .ok()?;
    (!snap.is_empty()).then_some((s, snap))
}

/// One catch-up attempt of `me`'s replica (in trouble) from the reachable healthy peer that
/// applied the most: `Ok(Some(how))` once rebuilt, `Ok(None)` when no peer could serve or
/// the replica no longer needs it, `Err` when the attempt failed part-way.
pub async fn catch_up(
    me: NodeId,
    ids: &[NodeId],
    replica: &SharedReplica,
) -> Result<Option<String>, String> {
    let started = Instant::now();
    let (trusted, epoch) = {
        let r = lock(replica);
        (r.trusted, r.epoch)
    };
    let mut best: Option<(u64, NodeId, TcpStream, Vec<u8>)> = None;
    for &id in ids.iter().filter(|&&i| i != me) {
        let Some((s, snap)) = ask_snapshot(id).await else {
            continue;
        };
        let Ok(info) = ReplicatedStream::snapshot_info(&snap) else {
            continue;
        };
        if info.applied >= trusted && best.as_ref().is_none_or(|b| info.applied > b.0) {
            best = Some((info.applied, id, s, snap));
        }
    }
    let Some((_, peer, mut s, snap)) = best else {
        return Ok(None);
    };
    let stale = |r: &crate::jsgroup::Replica| r.epoch != epoch || r.trouble.is_none();
    let (mut store, mut c) = {
        let mut r = lock(replica);
        if stale(&r) {
            return Ok(None);
        }
        r.begin_catchup(now(), &snap, limits())?
    };
    // What an earlier, cut attempt left: checked against the peer, then completed.
    let kept = store.state().last_seq;
    let mut silences = 0;
    loop {
        match c.poll_event() {
            Some(CatchupEvent::Done) => {
                let mut r = lock(replica);
                if stale(&r) {
                    return Ok(None);
                }
                r.finish_catchup(store, &snap)?;
                return Ok(Some(format!(
                    "caught up from n{peer} through {} ({kept} kept) in {} requests, {:?}",
                    c.next_seq() - 1,
                    c.requests(),
                    started.elapsed()
                )));
            }
            Some(CatchupEvent::Diverged { seq }) => {
                lock(replica).discard_catchup(store);
                return Err(format!(
                    "from n{peer}: the store differs at {seq}, set aside"
                ));
            }
            Some(ev) => return Err(format!("from n{peer}: {ev:?}")),
            None => {}
        }
        if silences >= MAX_SILENCES {
            return Err(format!(
                "from n{peer}: no answer, {} written so far",
                c.next_seq() - 1
            ));
        }
        while let Some(req) = c.poll_transmit() {
            match timeout(REPLY_TIMEOUT, write_frame(&mut s, &req)).await {
                Ok(Ok(())) => {}
                _ => return Err(format!("from n{peer}: request not sent")),
            }
        }
        let deadline = c
            .poll_timeout()
            .map_or_else(|| Instant::now() + REPLY_TIMEOUT, Instant::from_std);
        match timeout_at(deadline, read_frame(&mut s)).await {
            Ok(Ok(frame)) => {
                silences = 0;
                c.handle_chunk(now(), store.as_mut(), &frame);
                // Durable as it goes, so an attempt cut by a crash resumes from here.
                if let Err(e) = store.sync() {
                    return Err(format!("catch-up store sync: {e}"));
                }
            }
            Ok(Err(e)) => return Err(format!("from n{peer}: {e}")),
            Err(_) => {
                silences += 1;
                c.handle_timeout(now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use natsd_core::jetstream::store::MemDisk;

    use super::*;
    use crate::jsgroup::{Replica, CREATED};
    use crate::transport::fixed_epoch;

    /// A partition in the middle of a catch-up cuts it; the next attempt checks what the first
    /// wrote and completes it, and the replica ends with the peer's messages.
    #[test]
    fn a_catch_up_cut_by_a_partition_resumes_and_completes() {
        let mut sim = turmoil::Builder::new()
            .rng_seed(7)
            .epoch(fixed_epoch())
            .simulation_duration(Duration::from_secs(60))
            .tick_duration(Duration::from_millis(1))
            .tcp_capacity(4096)
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(Duration::from_millis(5))
            .build();
        let source = Replica::open(MemDisk::new(1));
        {
            let mut s = lock(&source);
            for i in 0..300u64 {
                let body = format!("message {i} {}", "x".repeat(40));
                s.rs_mut()
                    .leader_publish("s.x", &[], body.as_bytes(), CREATED + i)
                    .expect("publish");
            }
            for seq in [5, 6, 7, 150, 300] {
                s.rs_mut().leader_delete(seq);
            }
        }
        let target = Replica::open(MemDisk::new(2));
        lock(&target).fail_for_test("lost its store".into());
        let src = Arc::clone(&source);
        sim.host("n1", move || {
            let src = Arc::clone(&src);
            async move {
                let l = TcpListener::bind(("0.0.0.0", CATCHUP_PORT)).await?;
                serve(l, src, || false).await;
                Ok(())
            }
        });
        let attempts: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tgt, log) = (Arc::clone(&target), Arc::clone(&attempts));
        sim.client("n2", async move {
            loop {
                let out = catch_up(2, &[1, 2], &tgt).await;
                lock(&log).push(format!("{out:?} at {:?}", turmoil::sim_elapsed()));
                if matches!(out, Ok(Some(_))) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        // Cut the link once the first chunks have arrived, repair it a while later.
        let mut cut = false;
        let mut repaired = false;
        while !sim.step().expect("sim runs") {
            let t = sim.elapsed();
            if !cut && t >= Duration::from_millis(40) {
                sim.partition("n1", "n2");
                cut = true;
            }
            if !repaired && t >= Duration::from_secs(3) {
                sim.repair("n1", "n2");
                repaired = true;
            }
        }
        let log = lock(&attempts).clone();
        assert!(
            log.len() >= 2,
            "the partition cut the first attempt: {log:?}"
        );
        // Cut after some chunks: what they brought is kept for the next attempt to check.
        assert!(log[0].contains("written so far"), "{log:?}");
        assert!(!log[0].contains(" 0 written"), "{log:?}");
        assert!(
            log.last().is_some_and(|l| l.starts_with("Ok(Some")),
            "{log:?}"
        );
        let t = lock(&target);
        assert!(t.trouble.is_none());
        assert_eq!(t.messages(), lock(&source).messages());
        assert_eq!(
            t.rs().stream.store.state(),
            lock(&source).rs().stream.store.state()
        );
    }
}
