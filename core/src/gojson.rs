//! Request JSON read the way nats-server reads it: Go's `encoding/json` decoding into structs.
//!
//! Every JSON document a client sends to the server (JetStream API requests, pull requests,
//! ack options, system service requests, CONNECT) goes through [`from_slice`] or
//! [`from_value`], which feed serde's derived `Deserialize` impls through an adapter with Go's
//! rules rather than serde's:
//!
//! * `null` for a struct field means "not sent": the field keeps its default, as Go leaves the
//!   field untouched. Elsewhere (a list element, a map value, the whole document) `null` is
//!   the zero value of what was expected (`""`, `0`, `false`, an empty list or struct).
//!   Exception: the fields nats-server decodes with its own `UnmarshalJSON` (`retention`,
//!   `ack_policy`, ...) refuse `null`, as those methods do (see [`fields`]).
//! * Object keys match a struct's field names case-insensitively, an exact match first
//!   (Go: `encoding/json` field lookup); keys of maps (`metadata`) stay as sent.
//! * A repeated key overwrites the earlier one, as Go does, instead of serde's "duplicate
//!   field" error.
//! * A JSON array never decodes into a struct (serde would take it as a tuple).
//! * Unknown keys are ignored, or refused with Go's `json: unknown field "x"` when the caller
//!   asks for [`Unknown::Refuse`] (nats-server's strict JetStream API). Keys nats-server knows
//!   but natsd does not act on are never "unknown" (see [`fields`]).
//!
//! Numbers keep serde's types, which already agree with Go's here: an integer field takes an
//! integer literal in its range and nothing else (no `1.5`, no `1e9`, no `"5"`), and
//! `time.Duration` fields are integers of nanoseconds (nats-server takes no duration strings
//! in request JSON).
//!
//! A value that does not fit its field is refused in Go's words, `json: cannot unmarshal string
//! into Go struct field StreamConfig.max_msgs of type int64` (with Go's type names, see
//! `types`, and Go's ranges, so `max_msg_size` takes no more than an `int32`), or with the
//! error of the `UnmarshalJSON` of nats-server's enum types. Invalid UTF-8 in a string becomes
//! U+FFFD, one per byte, as in Go.
//!
//! Known differences from Go, none of which a client is known to rely on: a type mismatch is
//! reported before an unknown field that precedes it; Go goes on after a type mismatch and
//! reports the first, natsd stops at it; a field Go holds as a signed integer and natsd as an
//! unsigned one refuses a negative value (in Go's words, with Go's type) where Go takes it,
//! except the consumer's durations and counts and `duplicate_window`, which take it as
//! nats-server 2.14 does (see `jetstream::signed`); a number out of range is quoted as
//! serde reads it (`1e20` as `100000000000000000000.0`); a body of several concatenated documents is
//! refused (nats-server 2.12 decodes them one after the other into the same request); and a
//! `null` after a value for the same list, map or pointer field keeps the value, where Go
//! resets it.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

mod de;
pub mod fields;
mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// What to do with a key no field of the struct has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Skip it (Go's `json.Unmarshal`).
    Ignore,
    /// Fail with Go's `json: unknown field "x"` (Go's `Decoder.DisallowUnknownFields`).
    Refuse,
}

/// Why a request could not be decoded.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON, or the JSON does not fit the request's types.
    Json(serde_json::Error),
    /// A key no field matches, in [`Unknown::Refuse`] mode (the first one found).
    UnknownField(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => e.fmt(f),
            // Go: encoding/json decode.go, with DisallowUnknownFields.
            Self::UnknownField(k) => write!(f, "json: unknown field {}", go_quote(k)),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e)
    }
}

/// Decodes one JSON document (trailing whitespace only) with Go's rules.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8], unknown: Unknown) -> Result<T, DecodeError> {
    let json: de::Json = serde_json::from_slice(&go_utf8(bytes))?;
    decode(json, unknown)
}

/// The document with each byte that is not part of valid UTF-8 replaced by U+FFFD, one
/// replacement per byte, as Go's decoder does in strings (Go: encoding/json unquote, which
/// takes `utf8.DecodeRune`'s one-byte `RuneError`); outside strings such a byte is a syntax
/// error either way.
fn go_utf8(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if std::str::from_utf8(bytes).is_ok() {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                rest = &bad[1..];
            }
        }
    }
    std::borrow::Cow::Owned(out.into_bytes())
}

/// Decodes an already parsed document with Go's rules.
pub fn from_value<T: DeserializeOwned>(value: Value, unknown: Unknown) -> Result<T, DecodeError> {
    decode(value.into(), unknown)
}

fn decode<T: DeserializeOwned>(json: de::Json, unknown: Unknown) -> Result<T, DecodeError> {
    let unknowns = RefCell::new(Vec::new());
    let t = T::deserialize(de::De::new(json, &unknowns))?;
    match (unknown, unknowns.into_inner().into_iter().next()) {
        (Unknown::Refuse, Some(k)) => Err(DecodeError::UnknownField(k)),
        _ => Ok(t),
    }
}

/// Decodes onto `base`, the field values Go's struct holds before decoding (a struct literal
/// such as nats-server's `defaultOpts`): the document's fields overwrite them, and a `null`
/// document or field leaves them as they are (Go: json.Unmarshal into a filled struct).
pub fn from_slice_onto<T: DeserializeOwned>(
    bytes: &[u8],
    base: &[(&str, Value)],
    unknown: Unknown,
) -> Result<T, DecodeError> {
    let base = base
        .iter()
        .map(|(k, v)| ((*k).to_owned(), de::Json::from(v.clone())));
    let json = match serde_json::from_slice(&go_utf8(bytes))? {
        de::Json::Null => de::Json::Object(base.collect()),
        de::Json::Object(m) => de::Json::Object(base.chain(m).collect()),
        other => other,
    };
    decode(json, unknown)
}

/// Whether an object key names the (ASCII) struct field `field` for Go's decoder: equal, or
/// equal without case.
pub fn key_matches(key: &str, field: &str) -> bool {
    de::resolve(key, &[field]).is_some()
}

/// Like [`from_slice`] with unknown keys ignored, also returning those keys in document order
/// (for tests and diagnostics).
pub fn from_slice_reporting<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, Vec<String>), DecodeError> {
    let json: de::Json = serde_json::from_slice(&go_utf8(bytes))?;
    let unknowns = RefCell::new(Vec::new());
    let t = T::deserialize(de::De::new(json, &unknowns))?;
    Ok((t, unknowns.into_inner()))
}

thread_local! {
    /// The strictness of the JetStream API call being handled on this thread.
    static API_STRICT: Cell<bool> = const { Cell::new(false) };
}

/// Sets how the JetStream API call being handled decodes its request, until dropped.
///
/// The JetStream machine enters one at the start of each API call with its `strict` setting,
/// so the request decoders spread over the handlers (stream, consumer, snapshot, info) need no
/// extra argument: a machine handles one call at a time on one thread, and the guard restores
/// the previous value, so nested or interleaved machines on a thread do not leak into each
/// other.
#[derive(Debug)]
#[must_use = "the setting lasts only while the guard lives"]
pub struct ApiStrictness {
    previous: bool,
}

impl ApiStrictness {
    /// Makes [`api_unknown`] answer per `strict` until the guard drops.
    pub fn enter(strict: bool) -> Self {
        Self {
            previous: API_STRICT.with(|s| s.replace(strict)),
        }
    }
}

impl Drop for ApiStrictness {
    fn drop(&mut self) {
        API_STRICT.with(|s| s.set(self.previous));
    }
}

/// How a JetStream API request decodes unknown keys in the call being handled (ignored
/// outside one).
pub fn api_unknown() -> Unknown {
    if API_STRICT.with(Cell::get) {
        Unknown::Refuse
    } else {
        Unknown::Ignore
    }
}

/// Go's `%q` of a string, close enough for field names: quoted, with `"` and `\` escaped and
/// control characters as `\xNN` or the usual escapes.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
