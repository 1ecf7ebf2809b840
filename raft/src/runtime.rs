//! [`SeededRuntime`]: openraft's tokio runtime with a seeded random source.
//!
//! openraft draws its randomness (the election timeout, once per node in 0.9) from
//! `AsyncRuntime::thread_rng`. Under turmoil every simulated host runs on the test's thread, so a
//! thread-local generator seeded from the run's seed makes the whole cluster run replayable: one
//! seed, one trace. Everything else is tokio's, unchanged.
//!
//! Call [`seed_thread_rng`] at the start of each run (it resets the generator). A thread that was
//! never seeded (a tokio worker in production) draws its seed from the process seed set with
//! [`set_process_seed`] plus a per-thread counter, so threads do not share one sequence.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use natsd_core::rng::SplitMix64;
use openraft::async_runtime::TokioOneShotSender;
use openraft::{AsyncRuntime, OptionalSend, TokioInstant};

static PROCESS_SEED: AtomicU64 = AtomicU64::new(0x6E61_7473_642D_7261); // "natsd-ra"
static THREADS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RNG: RefCell<Option<SplitMix64>> = const { RefCell::new(None) };
}

/// Seeds (and resets) the calling thread's generator: the sim calls it before each run.
pub fn seed_thread_rng(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = Some(SplitMix64::new(seed)));
}

/// Sets the seed that threads never given their own seed derive theirs from. Production calls it
/// once at startup with the server seed (which it logs).
pub fn set_process_seed(seed: u64) {
    PROCESS_SEED.store(seed, Ordering::Relaxed);
}

fn next_u64() -> u64 {
    RNG.with(|r| {
        let mut r = r.borrow_mut();
        let rng = r.get_or_insert_with(|| {
            let n = THREADS.fetch_add(1, Ordering::Relaxed);
            let mut parent = SplitMix64::new(PROCESS_SEED.load(Ordering::Relaxed) ^ n);
            parent.fork()
        });
        rng.next_u64()
    })
}

/// A handle on the calling thread's seeded generator (openraft's `ThreadLocalRng`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SeededRng;

impl rand_core06::RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        (next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            chunk.copy_from_slice(&next_u64().to_le_bytes()[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core06::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// openraft's tokio runtime, except that `thread_rng` is [`SeededRng`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeededRuntime;

impl AsyncRuntime for SeededRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = tokio::time::error::Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = tokio::time::Timeout<T>;
    type ThreadLocalRng = SeededRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;
    type OneshotReceiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::task::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        tokio::time::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        tokio::time::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        SeededRng
    }

    fn oneshot<T: OptionalSend>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (TokioOneShotSender(tx), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core06::RngCore;

    #[test]
    fn reseeding_replays_the_sequence() {
        seed_thread_rng(7);
        let a: Vec<u64> = (0..4).map(|_| SeededRng.next_u64()).collect();
        seed_thread_rng(7);
        let b: Vec<u64> = (0..4).map(|_| SeededRng.next_u64()).collect();
        assert_eq!(a, b);
        seed_thread_rng(8);
        assert_ne!(a[0], SeededRng.next_u64());
    }
}
