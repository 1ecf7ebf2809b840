//! The one binary encoding for records and RPCs: bincode with variable-length integers.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest frame or record we decode: a bound so a corrupt length cannot ask for gigabytes.
/// Snapshots travel in chunks (openraft's `snapshot_max_chunk_size`), but a group's snapshot
/// file is one record, so the bound is generous.
pub(crate) const MAX_DECODE_BYTES: u64 = 1 << 30;

/// Encodes `value`. Only a type whose `Serialize` fails can make it fail; ours do not, but a
/// failure is reported rather than written as an empty record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::DefaultOptions::new()
        .serialize(value)
        .map_err(|e| e.to_string())
}

/// Decodes a value, or says why not.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::DefaultOptions::new()
        .with_limit(MAX_DECODE_BYTES)
        .deserialize(bytes)
        .map_err(|e| e.to_string())
}
