//! The one binary encoding for records and RPCs: bincode with variable-length integers.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest frame or record we decode: a bound so a corrupt length cannot ask for gigabytes.
pub(crate) const MAX_DECODE_BYTES: u64 = 256 << 20;

fn options() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_DECODE_BYTES)
}

/// Encodes `value`. Our types always encode (no maps with non-string keys issues in bincode).
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain data to a Vec cannot fail except past the size limit, which no record or
    // RPC we build reaches; an empty vector then fails the peer's decode, which is an RPC error.
    options().serialize(value).unwrap_or_default()
}

/// Decodes a value, or says why not.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    options().deserialize(bytes).map_err(|e| e.to_string())
}
