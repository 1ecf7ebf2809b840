//! The config rules of the nats-server 2.12 stream options (Go: stream.go checkStreamCfg and
//! the update check): counters, atomic batches, message schedules and `persist_mode`.

use super::super::api::{err, ApiError, StreamConfig};
use super::counter;

/// 10186.
fn mirror_with_schedules() -> ApiError {
    ApiError::new(400, 10186, "stream mirrors can not also schedule messages")
}
/// 10187.
fn source_with_schedules() -> ApiError {
    ApiError::new(400, 10187, "stream source can not also schedule messages")
}
/// 10198.
fn mirror_with_atomic() -> ApiError {
    ApiError::new(
        400,
        10198,
        "stream mirrors can not also use atomic publishing",
    )
}

/// Is `persist_mode` the default (absent, `""` or `default`)? Such a config does not echo it.
#[allow(clippy::ptr_arg)] // serde's skip_serializing_if hands over the field as it is
pub fn persist_mode_is_default(m: &String) -> bool {
    m.is_empty() || m == "default"
}

/// Does this stream acknowledge before the sync (`persist_mode: async`)?
pub(crate) fn persist_async(c: &StreamConfig) -> bool {
    c.persist_mode == "async"
}

/// Checks and normalises the 2.12 options of a new config.
pub(super) fn check(c: &mut StreamConfig) -> Result<(), ApiError> {
    let bad = |t: &str| Err(err::stream_invalid_config(t));
    match c.persist_mode.as_str() {
        "" | "default" => c.persist_mode.clear(),
        "async" => {
            if c.storage != "file" {
                return bad("async persist mode is only supported on file storage");
            }
            if c.num_replicas > 1 {
                return bad("async persist mode is not supported on replicated streams");
            }
            if c.allow_atomic {
                return bad("async persist mode is not supported with atomic batch publish");
            }
        }
        _ => return Err(err::bad_request()),
    }
    if c.allow_msg_counter {
        if c.discard == "new" {
            return bad("counter stream cannot use discard new");
        }
        if c.allow_msg_ttl {
            return bad("counter stream cannot use message TTLs");
        }
        if c.allow_msg_schedules {
            return bad("counter stream cannot use message schedules");
        }
        if c.retention != "limits" {
            return bad("counter stream can only use limits retention");
        }
    }
    if c.allow_msg_schedules {
        if c.discard == "new" {
            return bad("message scheduling cannot use discard new");
        }
        // Go (not pedantic): schedules roll up their subject, so roll-ups are switched on.
        c.allow_rollup_hdrs = true;
        c.deny_purge = false;
    }
    if c.mirror.is_some() {
        if c.allow_msg_counter {
            return Err(counter::mirror_with_counters());
        }
        if c.allow_atomic {
            return Err(mirror_with_atomic());
        }
        if c.allow_msg_schedules {
            return Err(mirror_with_schedules());
        }
    }
    if !c.sources.is_empty() && c.allow_msg_schedules {
        return Err(source_with_schedules());
    }
    Ok(())
}

/// What an update may not change among the 2.12 options.
pub(super) fn check_update(old: &StreamConfig, c: &StreamConfig) -> Result<(), ApiError> {
    let bad = |t: &str| Err(err::stream_invalid_config(t));
    if c.allow_msg_counter != old.allow_msg_counter {
        return bad("stream configuration update can not change message counter setting");
    }
    if old.allow_msg_schedules && !c.allow_msg_schedules {
        return bad("message schedules can not be disabled");
    }
    if persist_async(old) != persist_async(c) {
        return bad("stream configuration update can not change persist mode");
    }
    Ok(())
}
