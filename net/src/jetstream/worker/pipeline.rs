//! Pipelined group commit: the fsyncs of a commit run on a small pool of threads while the
//! worker goes on storing the next batch (see `JetStream::commit_begin`).
//!
//! More than one commit may be in flight, each on its own thread: file systems overlap
//! concurrent fsyncs (ext4 joins them into one journal commit). That lets the worker start
//! syncing the first part of a burst of publishes while it is still storing the rest,
//! instead of storing everything and then waiting, CPU idle, for one long sync. Every fsync
//! also costs CPU, so the worker keeps few in flight (two measured best on the project's
//! 2-core hosts; four was slower).
//!
//! Commits may finish out of order here; the worker finishes them in the order they began
//! (the stores require it), holding a result until every older one is in. Only the default
//! (synced-before-ack) policy uses the pool, and only stores whose disk defers syncs
//! (`FsDisk`): the simulation's disk syncs inline, so a sim run never starts a thread.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};

use natsd_core::jetstream::service::{CommitDone, CommitJobs};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// One commit's jobs, by account.
pub(super) type Batch = Vec<(String, CommitJobs)>;
/// Their outcome, by account.
pub(super) type Done = Vec<(String, CommitDone)>;

/// The threads that run the fsyncs, and the way back to the worker.
pub(super) struct SyncPool {
    jobs: mpsc::Sender<(u64, Batch)>,
    pub(super) done: UnboundedReceiver<(u64, Done)>,
    /// The id the next batch gets; ids count up from 0.
    next_id: u64,
    /// The oldest batch not yet handed back by [`SyncPool::take_finished`].
    next_finish: u64,
    /// Results that came in before an older batch's.
    early: BTreeMap<u64, Done>,
}

impl SyncPool {
    /// Starts `threads` sync threads (at least one must start).
    pub(super) fn spawn(threads: usize) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<(u64, Batch)>();
        let rx = Arc::new(Mutex::new(rx));
        let (tx, done) = unbounded_channel();
        let mut started = 0;
        let mut last_err = None;
        for i in 0..threads.max(1) {
            let (rx, tx) = (Arc::clone(&rx), tx.clone());
            match std::thread::Builder::new()
                .name(format!("jetstream-sync-{i}"))
                .spawn(move || run(&rx, &tx))
            {
                Ok(_) => started += 1,
                Err(e) => last_err = Some(e),
            }
        }
        if started == 0 {
            return Err(last_err.unwrap_or_else(|| std::io::Error::other("no sync thread")));
        }
        Ok(Self {
            jobs,
            done,
            next_id: 0,
            next_finish: 0,
            early: BTreeMap::new(),
        })
    }

    /// Batches handed over and not yet finished.
    pub(super) fn in_flight(&self) -> usize {
        (self.next_id - self.next_finish) as usize
    }

    /// Hands a batch over; gives it back if every thread is gone.
    pub(super) fn send(&mut self, batch: Batch) -> Result<(), Batch> {
        self.jobs.send((self.next_id, batch)).map_err(|e| (e.0).1)?;
        self.next_id += 1;
        Ok(())
    }

    /// Records a result from a thread.
    pub(super) fn record(&mut self, id: u64, done: Done) {
        self.early.insert(id, done);
    }

    /// The oldest batch's result, once it and every batch before it are done.
    pub(super) fn take_finished(&mut self) -> Option<Done> {
        let done = self.early.remove(&self.next_finish)?;
        self.next_finish += 1;
        Some(done)
    }
}

fn run(rx: &Mutex<mpsc::Receiver<(u64, Batch)>>, tx: &UnboundedSender<(u64, Done)>) {
    loop {
        // Holding the lock only while waiting: the next idle thread takes the next batch.
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((id, batch)) = next else {
            return;
        };
        if tx.send((id, run_inline(batch))).is_err() {
            return;
        }
    }
}

/// Runs a batch's fsyncs on the calling thread.
pub(super) fn run_inline(batch: Batch) -> Done {
    batch.into_iter().map(|(a, jobs)| (a, jobs.run())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results come back in the order batches were sent, whatever order they finish in.
    #[test]
    fn results_are_taken_in_send_order() {
        let mut p = SyncPool::spawn(2).unwrap();
        for _ in 0..3 {
            p.send(Vec::new()).unwrap();
        }
        assert_eq!(p.in_flight(), 3);
        p.record(2, Vec::new());
        p.record(1, Vec::new());
        assert!(p.take_finished().is_none(), "the oldest is not in yet");
        p.record(0, Vec::new());
        for left in [2, 1, 0] {
            assert!(p.take_finished().is_some());
            assert_eq!(p.in_flight(), left);
        }
        assert!(p.take_finished().is_none());
    }
}
