//! The route protocol parser: split invariance, as for the client parser.
//!
//! Input format: byte 0 picks the limits (small or generous control line and payload), byte 1
//! up to three cut points come from the next bytes, the rest is the route byte stream. Checks:
//! no panic; parsing the stream whole and parsing it in pieces give the same ops and stop at the
//! same error; after an error nothing more is parsed (the route is closed).

use bytes::BytesMut;

use super::Input;
use crate::proto::route::{RouteOp, RouteParser, RouteProtoError};

type Out = Vec<Result<RouteOp, RouteProtoError>>;

/// Parses until more bytes are needed or an error; true on error.
fn drain(p: &mut RouteParser, buf: &mut BytesMut, out: &mut Out) -> bool {
    // Every successful parse consumes input, so this bound only trips on a parser that stalls.
    for _ in 0..=buf.len() + 1 {
        match p.parse(buf) {
            Ok(Some(op)) => out.push(Ok(op)),
            Ok(None) => return false,
            Err(e) => {
                out.push(Err(e));
                return true;
            }
        }
    }
    panic!("route parser returned ops without consuming input");
}

fn feed(limits: (u32, u32), leaf: bool, input: &[u8], cuts: &[usize]) -> Out {
    let mut p = if leaf {
        crate::proto::leaf::parser(limits.0, limits.1, bytes::Bytes::from_static(b"ACC"))
    } else {
        RouteParser::new(limits.0, limits.1)
    };
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[from..cut]);
        from = cut;
        if drain(&mut p, &mut buf, &mut out) {
            break;
        }
    }
    out
}

/// Fuzz entry point: see the module docs for the input format.
pub fn route_parser(data: &[u8]) {
    split_invariance(data, false);
}

/// Fuzz entry point for the leaf-node protocol (the route parser in its leaf mode), with the
/// same input format and checks.
pub fn parse_leaf(data: &[u8]) {
    split_invariance(data, true);
}

fn split_invariance(data: &[u8], leaf: bool) {
    let mut b = Input::new(data);
    let limits = if b.byte() & 1 == 0 {
        (64, 64)
    } else {
        (4096, 1 << 20)
    };
    let ncuts = usize::from(b.below(4));
    let raw: Vec<u8> = (0..ncuts).map(|_| b.byte()).collect();
    let input = b.rest();
    let mut cuts: Vec<usize> = raw
        .iter()
        .map(|&c| usize::from(c) * input.len() / 256)
        .collect();
    cuts.sort_unstable();
    let whole = feed(limits, leaf, input, &[]);
    let pieces = feed(limits, leaf, input, &cuts);
    assert_eq!(whole, pieces, "route ops depend on how the stream was cut");
}

#[cfg(test)]
mod tests {
    use super::{parse_leaf, route_parser};

    #[test]
    fn leaf_stream_parses_the_same_whole_and_cut() {
        let mut input = vec![1u8, 3, 10, 90, 200];
        input.extend_from_slice(
            b"PING\r\nLS+ foo.bar\r\nLS+ q.* grp 3\r\nLMSG foo.bar + r grp 5\r\nhello\r\n\
              HMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nLS- foo.bar\r\nPONG\r\n",
        );
        parse_leaf(&input);
    }

    #[test]
    fn typical_stream_parses_the_same_whole_and_cut() {
        let mut input = vec![1u8, 3, 10, 90, 200];
        input.extend_from_slice(
            b"PING\r\nRS+ $G foo.bar\r\nRS+ $G q.* grp 3\r\nRMSG $G foo.bar reply 5\r\nhello\r\n\
              HMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nRS- $G foo.bar\r\nPONG\r\n",
        );
        route_parser(&input);
    }

    #[test]
    fn oversized_and_garbage_input_is_an_error_not_a_panic() {
        let mut input = vec![0u8, 2, 7, 7];
        input.extend_from_slice(b"RMSG $G a 999999999999999999999\r\nxx\r\n\x00\xff garbage");
        route_parser(&input);
    }
}
