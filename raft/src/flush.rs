//! The log's fsync lane, and a leader's flush-ahead.
//!
//! # The lane
//! Every append's fsyncs run on one lane per log, in append order, on a blocking thread: what
//! queued while one ran is synced together next (one group commit of the log). Each item is
//! durable once its turn returns `Ok`, and [`Synced`] then moves to its last log id.
//!
//! # Flush-ahead (a leader's own entries)
//! openraft 0.9 awaits the log's `LogFlushed` callback inside its core task before it sends
//! the entries on to the followers, so the leader's fsync and theirs would run one after the
//! other. With flush-ahead on ([`Synced::set_ahead`]), an append of the leader's own new
//! entries reports them flushed as soon as the OS holds the bytes (a killed process loses
//! nothing; only a power loss can) and their fsync runs on the lane meanwhile, alongside the
//! followers'. Raft's commit then counts the leader among a quorum before its fsync returned,
//! so whoever promises durability on commit — the stream proposer's PubAck — also waits for
//! [`Synced`] to pass the entry's log id: the leader and the followers that made the quorum
//! have all synced it then.
//!
//! Log ids order by (term, leader, index), so a log id synced in a later term never vouches
//! for an entry of an earlier leader that a truncation replaced, nor the other way round.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use natsd_core::jetstream::store::{DiskError, SyncJob};
use tokio::sync::{mpsc, oneshot, watch};

use crate::types::{LogId, NodeId, Vote};

/// How far a group's log is known durable; shared by its log store and its [`RaftGroup`]
/// handle (see the module docs).
///
/// [`RaftGroup`]: crate::RaftGroup
#[derive(Debug)]
pub struct Synced {
    me: NodeId,
    ahead: AtomicBool,
    tx: watch::Sender<Option<LogId>>,
}

impl Synced {
    pub(crate) fn new(me: NodeId) -> Arc<Self> {
        Arc::new(Self {
            me,
            ahead: AtomicBool::new(false),
            tx: watch::Sender::new(None),
        })
    }

    /// Turns flush-ahead on or off for this group's future appends.
    pub fn set_ahead(&self, on: bool) {
        self.ahead.store(on, Ordering::Release);
    }

    /// The last log id known durable in this replica's log, watched.
    pub fn watch(&self) -> watch::Receiver<Option<LogId>> {
        self.tx.subscribe()
    }

    /// Waits until `log_id` is durable in this replica's log; false if the log stopped
    /// (a failed fsync) first.
    pub async fn wait(&self, log_id: LogId) -> bool {
        let mut rx = self.tx.subscribe();
        let reached = rx.wait_for(|s| *s >= Some(log_id)).await.is_ok();
        reached
    }

    /// Whether an append of entries with these log ids may report them flushed before their
    /// fsync: flush-ahead is on, this replica leads (its vote is committed for itself) and
    /// every entry is its own of this term.
    pub(crate) fn may_flush_ahead(&self, vote: Option<&Vote>, ids: &[LogId]) -> bool {
        let Some(v) = vote else { return false };
        self.ahead.load(Ordering::Acquire)
            && v.committed
            && v.leader_id.node_id == self.me
            && !ids.is_empty()
            && ids.iter().all(|l| l.leader_id == v.leader_id)
    }

    pub(crate) fn advance(&self, to: LogId) {
        self.tx.send_if_modified(|s| {
            let newer = *s < Some(to);
            if newer {
                *s = Some(to);
            }
            newer
        });
    }
}

/// One append's fsyncs, waiting their turn.
pub(crate) struct Item {
    pub(crate) jobs: Vec<SyncJob>,
    pub(crate) last: LogId,
    /// Told the outcome, unless the append flushed ahead.
    pub(crate) done: Option<oneshot::Sender<Result<(), DiskError>>>,
}

/// Starts a log's lane; `failed` is called once with the first failure, after which the lane
/// syncs nothing more (the store freezes on it).
pub(crate) fn lane(
    synced: Arc<Synced>,
    failed: Box<dyn Fn(&DiskError) + Send>,
) -> mpsc::UnboundedSender<Item> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Item>();
    tokio::spawn(async move {
        let mut broken: Option<DiskError> = None;
        while let Some(first) = rx.recv().await {
            let mut items = vec![first];
            while let Ok(more) = rx.try_recv() {
                items.push(more);
            }
            let outcome = match &broken {
                Some(e) => Err(e.clone()),
                None => {
                    let jobs: Vec<SyncJob> = items
                        .iter_mut()
                        .flat_map(|i| std::mem::take(&mut i.jobs))
                        .collect();
                    let r = tokio::task::spawn_blocking(move || {
                        jobs.into_iter().try_for_each(|job| job())
                    })
                    .await;
                    r.unwrap_or_else(|e| Err(DiskError::Io(format!("sync job: {e}"))))
                }
            };
            match &outcome {
                Ok(()) => {
                    if let Some(last) = items.last().map(|i| i.last) {
                        synced.advance(last);
                    }
                }
                Err(e) if broken.is_none() => {
                    failed(e);
                    broken = Some(e.clone());
                }
                Err(_) => {}
            }
            for item in items {
                if let Some(done) = item.done {
                    let _ = done.send(outcome.clone());
                }
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;

    use super::*;

    fn ids(term: u64, node: NodeId, n: u64) -> Vec<LogId> {
        (1..=n)
            .map(|i| LogId::new(CommittedLeaderId::new(term, node), i))
            .collect()
    }

    #[test]
    fn only_a_leaders_own_entries_of_its_term_flush_ahead() {
        let s = Synced::new(1);
        let leader = Vote::new_committed(3, 1);
        assert!(!s.may_flush_ahead(Some(&leader), &ids(3, 1, 2)), "off");
        s.set_ahead(true);
        assert!(s.may_flush_ahead(Some(&leader), &ids(3, 1, 2)));
        // A candidate (vote not committed), a follower, another leader's or an older
        // term's entries, no vote: every fsync is awaited.
        assert!(!s.may_flush_ahead(Some(&Vote::new(3, 1)), &ids(3, 1, 2)));
        let follower = Vote::new_committed(3, 2);
        assert!(!s.may_flush_ahead(Some(&follower), &ids(3, 2, 2)));
        assert!(!s.may_flush_ahead(Some(&leader), &ids(3, 2, 2)));
        assert!(!s.may_flush_ahead(Some(&leader), &ids(2, 1, 2)));
        assert!(!s.may_flush_ahead(None, &ids(3, 1, 2)));
        assert!(!s.may_flush_ahead(Some(&leader), &[]));
    }

    #[test]
    fn synced_only_moves_forward_in_log_id_order() {
        let s = Synced::new(1);
        let rx = s.watch();
        s.advance(LogId::new(CommittedLeaderId::new(2, 1), 10));
        // A later term's entry at a lower index is newer; an older term's is not.
        s.advance(LogId::new(CommittedLeaderId::new(3, 2), 5));
        s.advance(LogId::new(CommittedLeaderId::new(2, 1), 20));
        assert_eq!(
            *rx.borrow(),
            Some(LogId::new(CommittedLeaderId::new(3, 2), 5))
        );
    }
}
