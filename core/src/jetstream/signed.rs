//! Fields nats-server holds as signed integers (`time.Duration`, `int`) and natsd as unsigned
//! ones: what a negative value in a request becomes (Go 2.14: setConsumerConfigDefaults,
//! checkConsumerCfg, checkStreamCfg, not pedantic). Go's own range for these fields (`int64`,
//! see `gojson`) keeps every value a request can carry at or below `i64::MAX`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Stands for a negative value that the config check refuses with nats-server's error.
pub const NEGATIVE: u64 = u64::MAX;

/// An integer as sent, sign included.
struct Signed(i128);

impl<'de> Deserialize<'de> for Signed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Signed;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Signed, E> {
                Ok(Signed(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Signed, E> {
                Ok(Signed(v.into()))
            }
        }
        d.deserialize_i64(V)
    }
}

/// A negative value counts as 0 (Go: `idle_heartbeat`, `inactive_threshold`, `max_expires`,
/// `max_waiting`, `max_batch`, `max_bytes`, `priority_timeout`).
pub fn negative_is_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let Signed(v) = Signed::deserialize(d)?;
    Ok(u64::try_from(v).unwrap_or(0))
}

/// A negative value becomes [`NEGATIVE`], for the config check to refuse (Go: `ack_wait`,
/// `duplicate_window`).
pub fn negative_refused<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let Signed(v) = Signed::deserialize(d)?;
    Ok(u64::try_from(v).unwrap_or(NEGATIVE))
}

/// [`negative_refused`] for each element (Go: `backoff`).
pub fn negatives_refused<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    let v: Vec<Signed> = Vec::deserialize(d)?;
    Ok(v.into_iter()
        .map(|Signed(x)| u64::try_from(x).unwrap_or(NEGATIVE))
        .collect())
}
