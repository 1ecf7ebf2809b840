//! Account and server JetStream limits (Go: server/jetstream.go `JetStreamAccountLimits`,
//! checkLimits / checkBytesLimits / limitsExceeded, jetstream_api.go
//! jsNonClusteredStreamLimitsCheck, consumer.go max consumers and max ack pending).
//!
//! An account's limits come from `accounts { A { jetstream { … } } }`; the server's from the
//! `jetstream { max_memory_store, max_file_store }` block ([`super::service::JsSettings`]).
//! Stream `max_bytes` values are *reserved* against both when a stream is created or grows its
//! `max_bytes`; stored bytes are checked on every publish.

use serde::{Deserialize, Serialize};

use super::api::{ApiError, ConsumerConfig, StreamConfig};
use super::service::JetStream;
use crate::options::{Options, GLOBAL_ACCOUNT};

/// The default system account name (Go: `DEFAULT_SYSTEM_ACCOUNT`).
const DEFAULT_SYSTEM_ACCOUNT: &str = "$SYS";

/// Go's default `max_ack_pending` for consumers that ack (`JsDefaultMaxAckPending`).
const DEFAULT_MAX_ACK_PENDING: i64 = 1000;

/// One account's JetStream limits, in the JSON shape of `$JS.API.INFO`'s `limits`
/// (Go: `JetStreamAccountLimits`). `-1` is unlimited; [`Default`] is Go's dynamic limits:
/// everything unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimits {
    /// Memory-storage bytes (`max_mem`).
    pub max_memory: i64,
    /// File-storage bytes (`max_file`, `max_store`).
    pub max_storage: i64,
    /// Streams.
    pub max_streams: i64,
    /// Consumers per stream (Go counts them per stream, not per account).
    pub max_consumers: i64,
    /// Largest `max_ack_pending` a consumer may ask for; also its default.
    pub max_ack_pending: i64,
    /// Largest `max_bytes` of one memory stream (0 or -1: no limit).
    pub memory_max_stream_bytes: i64,
    /// Largest `max_bytes` of one file stream (0 or -1: no limit).
    pub storage_max_stream_bytes: i64,
    /// Streams must set `max_bytes`.
    pub max_bytes_required: bool,
}

impl Default for AccountLimits {
    fn default() -> Self {
        Self {
            max_memory: -1,
            max_storage: -1,
            max_streams: -1,
            max_consumers: -1,
            max_ack_pending: -1,
            memory_max_stream_bytes: -1,
            storage_max_stream_bytes: -1,
            max_bytes_required: false,
        }
    }
}

/// What the server's other JetStream accounts hold and reserve, so one account's JetStream can
/// enforce the server-wide `max_memory_store` / `max_file_store` (the shell sums it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerUsage {
    /// Memory bytes stored.
    pub memory: u64,
    /// File bytes stored.
    pub storage: u64,
    /// Memory bytes reserved by streams' `max_bytes`.
    pub reserved_memory: u64,
    /// File bytes reserved by streams' `max_bytes`.
    pub reserved_storage: u64,
}

/// Which accounts get JetStream and with what limits (Go: enableJetStreamAccounts,
/// configJetStream). Empty when the server has JetStream off. With no accounts configured
/// (besides the system account) the global account `$G` gets it with unlimited limits;
/// otherwise only the accounts whose config has `jetstream` enabled. The system account never.
pub fn jetstream_accounts(o: &Options) -> Vec<(String, AccountLimits)> {
    if o.jetstream.is_none() {
        return Vec::new();
    }
    let system = o
        .system_account
        .as_deref()
        .unwrap_or(DEFAULT_SYSTEM_ACCOUNT);
    let others: Vec<_> = o.accounts.iter().filter(|a| a.name != system).collect();
    if others.is_empty() {
        return vec![(GLOBAL_ACCOUNT.to_owned(), AccountLimits::default())];
    }
    others
        .into_iter()
        .filter_map(|a| a.jetstream.map(|l| (a.name.clone(), l)))
        .collect()
}

/// The server's JetStream capacity an account's limits are checked against when it gets
/// JetStream: the configured `max_memory_store`/`max_file_store` and what streams' `max_bytes`
/// reserve so far across every account. natsd treats an unset server limit as unlimited
/// (nats-server would compare with its dynamic default: 75% of RAM, 1 TB of disk).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerCapacity {
    /// `max_memory_store`.
    pub max_memory: Option<u64>,
    /// `max_file_store`.
    pub max_file: Option<u64>,
    /// Memory bytes reserved by streams.
    pub reserved_memory: u64,
    /// File bytes reserved by streams.
    pub reserved_storage: u64,
}

/// The limited part of an account's limits: (memory, file); unlimited (`-1`) counts nothing.
fn limited(l: &AccountLimits) -> (i64, i64) {
    (l.max_memory.max(0), l.max_storage.max(0))
}

/// Go: jetStream.sufficientResources (standalone server) — may an account take `adding`
/// more bytes of limits (its limits when it gets JetStream; new minus old when its limits
/// change) next to the accounts that already have JetStream (`enabled`)? Memory is checked
/// before file, the streams' reservations before the other accounts' limits: an account's
/// limits must fit beside both. Err: 10028 or 10047.
pub fn sufficient_resources(
    cap: &ServerCapacity,
    enabled: &[AccountLimits],
    adding: &AccountLimits,
) -> Result<(), ApiError> {
    let (add_mem, add_file) = limited(adding);
    let fits = |used: i64, add: i64, max: Option<u64>| {
        max.is_none_or(|m| used.saturating_add(add) <= as_i64(m))
    };
    if !fits(as_i64(cap.reserved_memory), add_mem, cap.max_memory) {
        return Err(memory_exceeded());
    }
    if !fits(as_i64(cap.reserved_storage), add_file, cap.max_file) {
        return Err(storage_exceeded());
    }
    let (mem, file) = enabled
        .iter()
        .map(limited)
        .fold((0i64, 0i64), |(m, f), (a, b)| {
            (m.saturating_add(a), f.saturating_add(b))
        });
    if !fits(mem, add_mem, cap.max_memory) {
        return Err(memory_exceeded());
    }
    if !fits(file, add_file, cap.max_file) {
        return Err(storage_exceeded());
    }
    Ok(())
}

/// What an account whose limits go from `old` to `new` adds, for [`sufficient_resources`]
/// with `enabled` still holding `old` (Go: diffCheckedLimits): only the memory and file
/// limits count; a shrinking limit adds nothing.
pub fn limits_growth(old: &AccountLimits, new: &AccountLimits) -> AccountLimits {
    AccountLimits {
        max_memory: new.max_memory.saturating_sub(old.max_memory),
        max_storage: new.max_storage.saturating_sub(old.max_storage),
        ..AccountLimits::default()
    }
}

/// 10002.
pub fn account_resources_exceeded() -> ApiError {
    ApiError::new(400, 10002, "resource limits exceeded for account")
}
/// 10023.
pub fn insufficient_resources() -> ApiError {
    ApiError::new(503, 10023, "insufficient resources")
}
/// 10026.
pub fn max_consumers_reached() -> ApiError {
    ApiError::new(400, 10026, "maximum consumers limit reached")
}
/// 10027.
pub fn max_streams_reached() -> ApiError {
    ApiError::new(400, 10027, "maximum number of streams reached")
}
/// 10028.
pub fn memory_exceeded() -> ApiError {
    ApiError::new(500, 10028, "insufficient memory resources available")
}
/// 10047.
pub fn storage_exceeded() -> ApiError {
    ApiError::new(500, 10047, "insufficient storage resources available")
}
/// 10113.
pub fn max_bytes_required() -> ApiError {
    ApiError::new(
        400,
        10113,
        "account requires a stream config to have max bytes set",
    )
}
/// 10121.
pub fn max_ack_pending_excess(limit: i64) -> ApiError {
    ApiError::new(
        400,
        10121,
        format!("consumer max ack pending exceeds system limit of {limit}"),
    )
}
/// 10122.
pub fn max_stream_bytes_exceeded() -> ApiError {
    ApiError::new(
        400,
        10122,
        "stream max bytes exceeds account limit max stream bytes",
    )
}

fn is_memory(cfg: &StreamConfig) -> bool {
    cfg.storage == "memory"
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl JetStream {
    /// Sets this account's limits (the shell, from [`jetstream_accounts`]).
    pub fn set_account_limits(&mut self, limits: AccountLimits) {
        self.limits = limits;
    }

    /// This account's limits.
    pub fn account_limits(&self) -> AccountLimits {
        self.limits
    }

    /// Tells this account what the server's other JetStream accounts hold and reserve.
    pub fn set_other_usage(&mut self, u: ServerUsage) {
        self.others = u;
    }

    /// Bytes this account's streams reserve through `max_bytes`: (memory, file).
    pub fn reserved(&self) -> (u64, u64) {
        let (mut mem, mut file) = (0u64, 0u64);
        for e in self.streams.values() {
            let c = &e.stream.config;
            if c.max_bytes > 0 {
                let b = c.max_bytes.unsigned_abs() * c.num_replicas.max(1).unsigned_abs();
                if is_memory(c) {
                    mem += b;
                } else {
                    file += b;
                }
            }
        }
        (mem, file)
    }

    /// Go: tieredReservation — what the account's other streams of the same storage reserve.
    fn account_reservation(&self, cfg: &StreamConfig) -> i64 {
        self.streams
            .values()
            .map(|e| &e.stream.config)
            .filter(|c| c.max_bytes > 0 && c.storage == cfg.storage && c.name != cfg.name)
            .map(|c| c.num_replicas.max(1).saturating_mul(c.max_bytes))
            .sum()
    }

    /// Go: checkLimits + checkBytesLimits with the server check on (`checkAllLimits`).
    fn check_all_limits(
        &self,
        cfg: &StreamConfig,
        add_bytes: i64,
        current: i64,
    ) -> Result<(), ApiError> {
        let l = &self.limits;
        if cfg.max_consumers > 0 && l.max_consumers > 0 && cfg.max_consumers > l.max_consumers {
            return Err(max_consumers_reached());
        }
        let add = if add_bytes < 0 { 1 } else { add_bytes };
        let total = add.saturating_mul(cfg.num_replicas.max(1));
        let (my_mem, my_file) = self.reserved();
        let (acc_max, srv_max, srv_reserved, error): (_, _, _, fn() -> ApiError) = if is_memory(cfg)
        {
            let r = my_mem + self.others.reserved_memory;
            (l.max_memory, self.settings.max_memory, r, memory_exceeded)
        } else {
            let r = my_file + self.others.reserved_storage;
            (l.max_storage, self.settings.max_file, r, storage_exceeded)
        };
        if acc_max >= 0 && current.saturating_add(total) > acc_max {
            return Err(error());
        }
        if let Some(max) = srv_max {
            if as_i64(srv_reserved).saturating_add(add) > as_i64(max) {
                return Err(error());
            }
        }
        Ok(())
    }

    /// Go: jsNonClusteredStreamLimitsCheck — before a stream is created. Note that Go counts
    /// streams before it looks for an identical existing one, so even an idempotent create
    /// fails at the limit.
    pub(crate) fn check_stream_create(&self, cfg: &StreamConfig) -> Result<(), ApiError> {
        let max = self.limits.max_streams;
        if max > 0 && as_i64(self.streams.len() as u64) >= max {
            return Err(max_streams_reached());
        }
        self.check_all_limits(cfg, cfg.max_bytes, self.account_reservation(cfg))
    }

    /// Go: checkStreamCfg's `max_bytes` rules (create and update).
    pub(crate) fn check_stream_bytes(&self, cfg: &StreamConfig) -> Result<(), ApiError> {
        let l = &self.limits;
        let limit = if is_memory(cfg) {
            l.memory_max_stream_bytes
        } else {
            l.storage_max_stream_bytes
        };
        if l.max_bytes_required && cfg.max_bytes <= 0 {
            return Err(max_bytes_required());
        }
        if limit > 0 && cfg.max_bytes > limit {
            return Err(max_stream_bytes_exceeded());
        }
        Ok(())
    }

    /// Go: stream.go jsa.configUpdateCheck — only the growth of `max_bytes` is reserved.
    pub(crate) fn check_stream_update(
        &self,
        old: &StreamConfig,
        cfg: &StreamConfig,
    ) -> Result<(), ApiError> {
        self.check_stream_bytes(cfg)?;
        let diff = cfg.max_bytes.saturating_sub(old.max_bytes).max(0);
        let reserved = self
            .account_reservation(cfg)
            .saturating_add(old.num_replicas.max(1).saturating_mul(old.max_bytes));
        self.check_all_limits(cfg, diff, reserved)
    }

    /// Go: addConsumer's limit — a stream's `max_consumers`, or the account's if smaller.
    pub(crate) fn check_consumer_count(&self, stream: &str) -> Result<(), ApiError> {
        let Some(e) = self.streams.get(stream) else {
            return Ok(());
        };
        let acc = self.limits.max_consumers;
        let mut max = e.stream.config.max_consumers;
        if max <= 0 || (acc > 0 && acc < max) {
            max = acc;
        }
        if max > 0 && as_i64(e.consumers.len() as u64) >= max {
            return Err(max_consumers_reached());
        }
        Ok(())
    }

    /// Go: setConsumerConfigDefaults + checkConsumerCfg for the account's `max_ack_pending`.
    /// `asked` is the value the request carried (0: none); `cfg` has natsd's defaults filled.
    pub(crate) fn apply_ack_pending_limit(
        &self,
        asked: i64,
        cfg: &mut ConsumerConfig,
    ) -> Result<(), ApiError> {
        let acc = self.limits.max_ack_pending;
        if acc <= 0 {
            return Ok(());
        }
        if asked == 0 && cfg.ack_policy != "none" && acc < DEFAULT_MAX_ACK_PENDING {
            cfg.max_ack_pending = acc;
        }
        if cfg.max_ack_pending > acc {
            return Err(max_ack_pending_excess(acc));
        }
        Ok(())
    }

    /// Go: processJetStreamMsg's server check before storing (`js.limitsExceeded`): the
    /// server already holds more than its limit of this storage kind.
    pub(crate) fn server_full(&self, memory: bool) -> bool {
        let (max, used) = if memory {
            (self.settings.max_memory, self.others.memory)
        } else {
            (self.settings.max_file, self.others.storage)
        };
        let Some(max) = max else {
            return false;
        };
        let (mem, file) = self.usage();
        used + if memory { mem } else { file } > max
    }

    /// Go: jsa.limitsExceeded after storing: the account holds more than its limit.
    pub(crate) fn account_over(&self, memory: bool) -> bool {
        let l = &self.limits;
        let (stream_max, max) = if memory {
            (l.memory_max_stream_bytes, l.max_memory)
        } else {
            (l.storage_max_stream_bytes, l.max_storage)
        };
        if stream_max <= 0 && max < 0 {
            return false;
        }
        let (mem, file) = self.usage();
        let total = as_i64(if memory { mem } else { file });
        (stream_max > 0 && total > stream_max) || (max >= 0 && total > max)
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
