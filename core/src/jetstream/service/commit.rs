//! Group commit: the streams written since the last commit are synced (inline, or on
//! another thread between [`JetStream::commit_begin`] and [`JetStream::commit_finish`]), then
//! the publishes the sync covered are acknowledged and handed to consumers.

use std::collections::BTreeMap;

use serde_json::json;

use super::publish::{dup_ack, stored_ack};
use super::{json_reply, Entry, JetStream};
use crate::jetstream::api::{err, ApiError};
use crate::jetstream::consumer::Delivery;
use crate::jetstream::store::{DiskError, SyncJob, UnixNanos};
use crate::jetstream::stream::store_error;

/// Hands what a commit made durable to the stream's consumers.
fn pump(e: &mut Entry, now: UnixNanos, out: &mut Vec<Delivery>) {
    let Entry { stream, consumers } = e;
    for c in consumers.values_mut() {
        out.extend(c.pump(stream.store.as_ref(), now).into_iter().map(|d| d.0));
    }
}

/// The fsyncs of one [`JetStream::commit_begin`], to run off the JetStream thread.
#[derive(Default)]
#[must_use = "a begun commit must be run and finished, or its acks never go out"]
pub struct CommitJobs {
    jobs: Vec<SyncJob>,
    /// Per stream: its name, the sequence the sync makes durable, and how many jobs are its.
    streams: Vec<(String, u64, usize)>,
}

impl std::fmt::Debug for CommitJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitJobs")
            .field("jobs", &self.jobs.len())
            .field("streams", &self.streams)
            .finish()
    }
}

impl CommitJobs {
    /// Runs every fsync, blocking; the outcome goes to [`JetStream::commit_finish`].
    pub fn run(self) -> CommitDone {
        CommitDone {
            results: self.jobs.into_iter().map(|job| job()).collect(),
            streams: self.streams,
        }
    }
}

/// What [`CommitJobs::run`] found.
#[derive(Debug)]
pub struct CommitDone {
    results: Vec<Result<(), DiskError>>,
    streams: Vec<(String, u64, usize)>,
}

impl JetStream {
    /// Group commit: syncs every stream written since the last call, then acknowledges the
    /// publishes the sync covered and hands new messages to consumers.
    pub fn commit(&mut self, now: UnixNanos) -> Vec<Delivery> {
        self.commit_and_source(now, true)
    }

    /// Releases acks without syncing: nats-server's `sync_interval` mode, where a power loss
    /// can lose acknowledged messages (the shell syncs on a timer with [`JetStream::commit`]).
    pub fn commit_unsynced(&mut self, now: UnixNanos) -> Vec<Delivery> {
        self.commit_and_source(now, false)
    }

    /// A commit, then mirrors and sources copy what it committed; what they stored is
    /// committed in turn (a few rounds, for chains of sources).
    fn commit_and_source(&mut self, now: UnixNanos, sync: bool) -> Vec<Delivery> {
        let mut out = self.commit_inner(now, sync);
        for _ in 0..4 {
            let (copies, stored) = self.pull_sources(now, sync);
            out.extend(copies);
            if !stored {
                break;
            }
            out.extend(self.commit_inner(now, sync));
        }
        out
    }

    /// Streams sourcing wrote to wait for the next commit.
    pub(crate) fn mark_dirty(&mut self, name: &str) {
        if !self.dirty.iter().any(|d| d == name) {
            self.dirty.push(name.to_owned());
        }
    }

    fn commit_inner(&mut self, now: UnixNanos, sync: bool) -> Vec<Delivery> {
        let names = self.names_to_commit(sync);
        if sync {
            self.save_moved_consumers();
        }
        let mut out = Vec::new();
        let mut synced: BTreeMap<String, Result<u64, ApiError>> = BTreeMap::new();
        for name in names {
            if let Some(e) = self.streams.get_mut(&name) {
                let r = if sync {
                    e.stream.store.sync().map_err(|x| store_error(&x))
                } else {
                    Ok(e.stream.store.state().last_seq)
                };
                synced.insert(name.clone(), r);
                pump(e, now, &mut out);
            }
        }
        self.release_acks(&synced, &mut out);
        out
    }

    /// The streams a commit covers: those written since the last one, and with a real sync
    /// also those acknowledged unsynced meanwhile (`sync_interval` mode).
    fn names_to_commit(&mut self, sync: bool) -> Vec<String> {
        let mut names = std::mem::take(&mut self.dirty);
        if sync {
            for n in std::mem::take(&mut self.unsynced) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        } else {
            for n in &names {
                if !self.unsynced.contains(n) {
                    self.unsynced.push(n.clone());
                }
            }
        }
        names
    }

    /// Group commit with the fsyncs on another thread (pipelining: this thread goes on
    /// storing the next batch while the disk works). Streams whose store syncs at once
    /// (memory, or a disk without deferred syncs) are committed here exactly as by
    /// [`JetStream::commit`]; the others' acks and consumer deliveries wait for
    /// [`JetStream::commit_finish`] with the outcome of [`CommitJobs::run`]. At most one
    /// batch may be in flight: begin the next only after finishing this one.
    pub fn commit_begin(&mut self, now: UnixNanos) -> (Vec<Delivery>, Option<CommitJobs>) {
        let names = self.names_to_commit(true);
        self.save_moved_consumers();
        let mut out = Vec::new();
        let mut synced: BTreeMap<String, Result<u64, ApiError>> = BTreeMap::new();
        let mut batch = CommitJobs::default();
        for name in names {
            let Some(e) = self.streams.get_mut(&name) else {
                continue;
            };
            match e.stream.store.begin_sync() {
                Ok((through, jobs)) if !jobs.is_empty() => {
                    batch.streams.push((name, through, jobs.len()));
                    batch.jobs.extend(jobs);
                }
                r => {
                    synced.insert(name, r.map(|(t, _)| t).map_err(|x| store_error(&x)));
                    pump(e, now, &mut out);
                }
            }
        }
        self.release_acks(&synced, &mut out);
        let (copies, _) = self.pull_sources(now, true);
        out.extend(copies);
        (out, (!batch.jobs.is_empty()).then_some(batch))
    }

    /// Completes a [`JetStream::commit_begin`]: the streams it synced acknowledge what the
    /// sync covered and hand it to their consumers; a failed fsync answers their publishes
    /// with the error (and the store stays frozen).
    pub fn commit_finish(&mut self, now: UnixNanos, done: CommitDone) -> Vec<Delivery> {
        let mut out = Vec::new();
        let mut synced: BTreeMap<String, Result<u64, ApiError>> = BTreeMap::new();
        let mut results = done.results.into_iter();
        for (name, through, n) in done.streams {
            let mut outcome = Ok(());
            for r in results.by_ref().take(n) {
                if outcome.is_ok() {
                    outcome = r;
                }
            }
            // A stream deleted meanwhile: its publishes were answered by the deletion.
            let Some(e) = self.streams.get_mut(&name) else {
                continue;
            };
            let r = e
                .stream
                .store
                .finish_sync(through, outcome)
                .map_err(|x| store_error(&x));
            synced.insert(name, r);
            pump(e, now, &mut out);
        }
        self.release_acks(&synced, &mut out);
        let (copies, _) = self.pull_sources(now, true);
        out.extend(copies);
        out
    }

    /// Acknowledges the publishes a sync covered (`synced` by stream; a stream not in it is
    /// judged by what its store says is durable), answers errors, keeps the rest waiting.
    fn release_acks(
        &mut self,
        synced: &BTreeMap<String, Result<u64, ApiError>>,
        out: &mut Vec<Delivery>,
    ) {
        let domain = self.settings.domain.clone();
        let mut keep = Vec::new();
        for a in std::mem::take(&mut self.acks) {
            let through = match synced.get(&a.stream) {
                Some(Ok(t)) => *t,
                Some(Err(e)) => {
                    out.push(json_reply(&a.reply, &json!({"error": e})));
                    continue;
                }
                None => match self.streams.get(&a.stream) {
                    Some(e) => e.stream.store.synced_through(),
                    None => {
                        out.push(json_reply(
                            &a.reply,
                            &json!({"error": err::stream_not_found()}),
                        ));
                        continue;
                    }
                },
            };
            if through >= a.seq && a.duplicate {
                out.push(dup_ack(&a.reply, &a.stream, a.seq, domain.as_deref()));
            } else if through >= a.seq {
                out.push(stored_ack(a, domain.as_deref()));
            } else {
                keep.push(a);
            }
        }
        self.acks = keep;
    }

    /// Records the durable consumers whose state or ack floor changed (once per group
    /// commit; see `consumer::state`).
    fn save_moved_consumers(&mut self) {
        let moved = std::mem::take(&mut self.moved);
        self.save_consumer_states(moved);
    }

    /// Was anything stored since the last commit began?
    pub fn has_uncommitted(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// How many publishes wait for a sync to be acknowledged.
    pub fn pending_acks(&self) -> usize {
        self.acks.len()
    }

    /// Are publishes waiting for a sync?
    pub fn has_pending_acks(&self) -> bool {
        !self.acks.is_empty() || !self.dirty.is_empty()
    }
}
