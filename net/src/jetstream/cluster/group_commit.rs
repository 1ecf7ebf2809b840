//! The group commit of a leading replica's proposer: what it proposes per batch and how
//! many Raft entries it keeps in flight.
//!
//! openraft 0.9 appends each `client_write` as its own log write, and the log store syncs
//! every write before it reports it (a PubAck waits for a quorum's sync). One entry per
//! message would cost each replica an fsync per message. So the proposer turns each batch
//! into as few entries as it can ([`coalesce`]: a run of message records becomes one
//! `Batch` entry), and keeps at most [`DEPTH`] entries in flight ([`InFlight`]): while they
//! commit, what arrives waits in its queue and becomes the next batch. Under load a batch
//! grows to whatever arrived during one commit; a lone publish still goes out at once.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use natsd_core::account::Account;
use natsd_core::jetstream::cluster::{MsgRecord, StreamEntry};
use natsd_raft::openraft::raft::ClientWriteResult;
use natsd_raft::{Synced, TypeConfig};
use tokio::sync::{mpsc, oneshot};

use super::super::answer_from_sink;
use super::replicas::{Op, Proposal, Reply};

/// Raft entries the proposer keeps in flight before it waits for the oldest to commit.
pub(super) const DEPTH: usize = 2;
/// Longest the proposer waits for an entry in flight to commit before it takes the next
/// batch anyway.
const SETTLE_MAX: std::time::Duration = std::time::Duration::from_millis(25);
/// Payload bytes past which a run of message records is split into another entry.
const COALESCE_BYTES: usize = 1 << 20;

/// Raft entries the proposer has in flight, oldest first, each with the answers that wait
/// for its commit and for this leader's own log to hold it synced (the log flushes ahead:
/// see `natsd_raft::Synced`; a quorum then holds it synced). Answers go out in log order; dropping it hands what is left to a task
/// that still answers each entry once it commits.
pub(super) struct InFlight {
    acc: Arc<Account>,
    synced: Arc<Synced>,
    entries: VecDeque<(Commit, Vec<Reply>)>,
}

/// Resolves once the entry is applied and synced here (true), or the write failed.
type Commit = Pin<Box<dyn Future<Output = bool> + Send>>;

impl InFlight {
    pub(super) fn new(acc: Arc<Account>, synced: Arc<Synced>) -> Self {
        Self {
            acc,
            synced,
            entries: VecDeque::new(),
        }
    }

    /// `commit` is what `client_write_ff` resolves with once the entry is applied.
    pub(super) fn push(
        &mut self,
        commit: oneshot::Receiver<ClientWriteResult<TypeConfig>>,
        answers: Vec<Reply>,
    ) {
        let synced = Arc::clone(&self.synced);
        let durable = async move {
            match commit.await {
                Ok(Ok(r)) => synced.wait(r.log_id).await,
                _ => false,
            }
        };
        self.entries.push_back((Box::pin(durable), answers));
    }

    fn answer(&self, committed: bool, answers: Vec<Reply>) {
        if committed {
            for (reply, body) in answers {
                answer_from_sink(&self.acc, reply.as_bytes(), &body);
            }
        }
    }

    /// Waits until at most `depth - 1` entries are in flight, answering each as it commits,
    /// but no longer than [`SETTLE_MAX`]: a group that lost its quorum commits nothing, and
    /// its proposer must still answer pull requests and run timers.
    pub(super) async fn settle(&mut self, depth: usize) {
        let deadline = tokio::time::Instant::now() + SETTLE_MAX;
        while self.entries.len() >= depth {
            let Some((commit, _)) = self.entries.front_mut() else {
                return;
            };
            let Ok(r) = tokio::time::timeout_at(deadline, commit).await else {
                return;
            };
            if let Some((_, answers)) = self.entries.pop_front() {
                self.answer(r, answers);
            }
        }
    }

    /// The next operation, answering commits while it waits; `None` once the queue closed.
    pub(super) async fn next_op(&mut self, rx: &mut mpsc::Receiver<Op>) -> Option<Op> {
        loop {
            let Some((commit, _)) = self.entries.front_mut() else {
                return rx.recv().await;
            };
            tokio::select! {
                biased;
                committed = commit => {
                    if let Some((_, answers)) = self.entries.pop_front() {
                        self.answer(committed, answers);
                    }
                }
                op = rx.recv() => return op,
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        if entries.is_empty() {
            return;
        }
        let acc = Arc::clone(&self.acc);
        // Outside a runtime (shutdown) nothing can be answered anyway.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for (commit, answers) in entries {
                    if commit.await {
                        for (reply, body) in answers {
                            answer_from_sink(&acc, reply.as_bytes(), &body);
                        }
                    }
                }
            });
        }
    }
}

/// The batch's proposals as Raft commands: runs of consecutive message records become one
/// `Batch` entry (bounded by [`COALESCE_BYTES`]), so a batch of publishes costs one log
/// append and one fsync per replica instead of one each per message. Every other entry keeps its own command, in order.
pub(super) fn coalesce(proposals: Vec<Proposal>) -> Vec<(Vec<u8>, Vec<Reply>)> {
    let mut out = Vec::new();
    let mut run: Vec<MsgRecord> = Vec::new();
    let mut run_bytes = 0;
    let mut run_answers = Vec::new();
    let flush = |run: &mut Vec<MsgRecord>,
                 answers: &mut Vec<Reply>,
                 out: &mut Vec<(Vec<u8>, Vec<Reply>)>| {
        let entry = match run.len() {
            0 => return,
            1 => StreamEntry::Msg(run.remove(0)),
            _ => StreamEntry::Batch(std::mem::take(run)),
        };
        out.push((entry.encode(), std::mem::take(answers)));
    };
    for (entry, answer) in proposals {
        match entry {
            StreamEntry::Msg(m) => {
                let size = m.subject.len() + m.headers.len() + m.payload.len();
                let follows = run.last().is_none_or(|l| l.seq + 1 == m.seq);
                if !follows || (!run.is_empty() && run_bytes + size > COALESCE_BYTES) {
                    flush(&mut run, &mut run_answers, &mut out);
                    run_bytes = 0;
                }
                run_bytes += size;
                run.push(m);
                run_answers.extend(answer);
            }
            other => {
                flush(&mut run, &mut run_answers, &mut out);
                run_bytes = 0;
                out.push((other.encode(), answer.into_iter().collect()));
            }
        }
    }
    flush(&mut run, &mut run_answers, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn msg(seq: u64, payload: usize) -> StreamEntry {
        StreamEntry::Msg(MsgRecord {
            seq,
            ts: 1_000 + seq,
            subject: "orders.new".to_owned(),
            headers: Bytes::new(),
            payload: Bytes::from(vec![b'x'; payload]),
            rollup: None,
            sourced: false,
        })
    }

    fn record(e: StreamEntry) -> MsgRecord {
        match e {
            StreamEntry::Msg(m) => m,
            other => panic!("not a message: {other:?}"),
        }
    }

    fn ack(n: u64) -> Option<Reply> {
        Some((
            format!("_INBOX.{n}"),
            format!("{{\"seq\":{n}}}").into_bytes(),
        ))
    }

    fn decoded(out: &[(Vec<u8>, Vec<Reply>)]) -> Vec<StreamEntry> {
        out.iter()
            .map(|(b, _)| StreamEntry::decode(b).expect("decodes"))
            .collect()
    }

    #[test]
    fn consecutive_messages_become_one_batch_entry_with_every_answer_in_order() {
        let out = coalesce(vec![
            (msg(1, 8), ack(1)),
            (msg(2, 8), None),
            (msg(3, 8), ack(3)),
        ]);
        assert_eq!(out.len(), 1);
        let want = StreamEntry::Batch(vec![
            record(msg(1, 8)),
            record(msg(2, 8)),
            record(msg(3, 8)),
        ]);
        assert_eq!(decoded(&out), vec![want]);
        let replies: Vec<&str> = out[0].1.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(replies, ["_INBOX.1", "_INBOX.3"]);
    }

    #[test]
    fn a_lone_message_stays_a_message_entry() {
        let out = coalesce(vec![(msg(7, 8), ack(7))]);
        assert_eq!(decoded(&out), vec![msg(7, 8)]);
        assert_eq!(out[0].1, vec![ack(7).unwrap()]);
    }

    #[test]
    fn other_entries_and_sequence_gaps_end_a_run_and_keep_their_order() {
        let delete = StreamEntry::Delete {
            last_seq: 2,
            seq: 1,
        };
        let out = coalesce(vec![
            (msg(1, 8), ack(1)),
            (msg(2, 8), ack(2)),
            (delete.clone(), ack(100)),
            (msg(3, 8), ack(3)),
            (msg(5, 8), ack(5)),
        ]);
        let batch = StreamEntry::Batch(vec![record(msg(1, 8)), record(msg(2, 8))]);
        assert_eq!(decoded(&out), vec![batch, delete, msg(3, 8), msg(5, 8)]);
        let answers: Vec<usize> = out.iter().map(|o| o.1.len()).collect();
        assert_eq!(answers, [2, 1, 1, 1]);
    }

    #[test]
    fn a_run_past_the_byte_bound_is_split() {
        let big = COALESCE_BYTES / 2 + 1;
        let out = coalesce(vec![
            (msg(1, big), ack(1)),
            (msg(2, big), ack(2)),
            (msg(3, 8), ack(3)),
        ]);
        let second = StreamEntry::Batch(vec![record(msg(2, big)), record(msg(3, 8))]);
        assert_eq!(decoded(&out), vec![msg(1, big), second]);
    }

    #[test]
    fn nothing_proposed_is_no_command() {
        assert!(coalesce(Vec::new()).is_empty());
    }
}
