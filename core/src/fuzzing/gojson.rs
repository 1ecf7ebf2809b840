//! JetStream request JSON through the Go-rules decoder.
//!
//! Input format: one byte picks the request type, the rest is the request body.
//!
//! Checks: nothing panics; a request that decodes strictly decodes leniently to the same
//! value, and one refused only leniently does not exist (strictness adds nothing but the
//! unknown-field refusal); a stream or consumer config natsd would send back in an info reply
//! decodes strictly to itself.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Input;
use crate::gojson::{from_slice, DecodeError, Unknown};
use crate::jetstream::api::{
    CreateConsumerRequest, ListRequest, MsgDeleteRequest, MsgGetRequest, NextRequest, PurgeRequest,
    StreamConfig,
};

/// Fuzz entry point (see the module docs).
pub fn js_request_json(data: &[u8]) {
    let mut b = Input::new(data);
    let kind = b.below(7);
    let body = b.rest();
    match kind {
        0 => {
            if let Some(c) = both::<StreamConfig>(body) {
                round_trip(&c);
            }
        }
        1 => {
            if let Some(r) = both::<CreateConsumerRequest>(body) {
                if let Some(c) = r.config {
                    round_trip(&c);
                }
            }
        }
        2 => drop(both::<NextRequest>(body)),
        3 => drop(both::<MsgGetRequest>(body)),
        4 => drop(both::<MsgDeleteRequest>(body)),
        5 => drop(both::<PurgeRequest>(body)),
        _ => drop(both::<ListRequest>(body)),
    }
}

/// Decodes both ways and checks that they agree; the lenient value when there is one.
fn both<T: DeserializeOwned + Debug>(body: &[u8]) -> Option<T> {
    let lenient = from_slice::<T>(body, Unknown::Ignore);
    let strict = from_slice::<T>(body, Unknown::Refuse);
    match (&lenient, &strict) {
        (Ok(l), Ok(s)) => assert_eq!(
            format!("{l:?}"),
            format!("{s:?}"),
            "strictness changed a value"
        ),
        (Ok(_), Err(DecodeError::UnknownField(_))) | (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("refused only when strict, not for an unknown field: {e}"),
        (Err(e), Ok(_)) => panic!("refused only when lenient: {e}"),
    }
    lenient.ok()
}

/// What natsd encodes for a config must read back as the same config, strictly.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(c: &T) {
    let bytes = serde_json::to_vec(c).expect("a config encodes");
    let back: T = from_slice(&bytes, Unknown::Refuse).expect("natsd's own config JSON decodes");
    assert_eq!(&back, c, "config changed on a round trip");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_run() {
        js_request_json(
            b"\x00{\"Name\":\"S\",\"subjects\":[\"a\",null],\"max_msgs\":null,\"x\":1}",
        );
        js_request_json(b"\x01{\"stream_name\":\"S\",\"config\":{\"Durable_Name\":\"D\",\"ack_policy\":\"explicit\"}}");
        js_request_json(b"\x02{\"batch\":1,\"group\":null}");
        js_request_json(b"\x03[1,2]");
        js_request_json(b"\x06null");
        js_request_json(b"");
    }
}
