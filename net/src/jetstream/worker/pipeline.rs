//! Pipelined group commit: the fsyncs of one commit run on a thread of their own while the
//! worker goes on storing the next batch (see `JetStream::commit_begin`).
//!
//! One batch is in flight at a time; what arrives meanwhile is written to the OS and waits
//! for the next fsync, so a busy stream keeps the disk syncing back to back and acks go out
//! as each sync lands. Only the default (synced-before-ack) policy uses it, and only stores
//! whose disk defers syncs (`FsDisk`): the simulation's disk syncs inline, so a sim run
//! never starts this thread.

use std::sync::mpsc;

use natsd_core::jetstream::service::{CommitDone, CommitJobs};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// One commit's jobs, by account.
pub(super) type Batch = Vec<(String, CommitJobs)>;
/// Their outcome, by account.
pub(super) type Done = Vec<(String, CommitDone)>;

/// The thread that runs the fsyncs, and the way back to the worker.
pub(super) struct SyncThread {
    jobs: mpsc::Sender<Batch>,
    pub(super) done: UnboundedReceiver<Done>,
}

impl SyncThread {
    pub(super) fn spawn() -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Batch>();
        let (tx, done) = unbounded_channel();
        std::thread::Builder::new()
            .name("jetstream-sync".into())
            .spawn(move || run(&rx, &tx))?;
        Ok(Self { jobs, done })
    }

    /// Hands a batch over; gives it back if the thread is gone.
    pub(super) fn send(&self, batch: Batch) -> Result<(), Batch> {
        self.jobs.send(batch).map_err(|e| e.0)
    }
}

fn run(rx: &mpsc::Receiver<Batch>, tx: &UnboundedSender<Done>) {
    while let Ok(batch) = rx.recv() {
        if tx.send(run_inline(batch)).is_err() {
            return;
        }
    }
}

/// Runs a batch's fsyncs on the calling thread.
pub(super) fn run_inline(batch: Batch) -> Done {
    batch.into_iter().map(|(a, jobs)| (a, jobs.run())).collect()
}
