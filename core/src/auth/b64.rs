//! The two base64 alphabets nonces and nkey signatures travel in.
//!
//! Small enough to keep in-house rather than pull a crate into the core for it.

const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes `input` with the URL-safe alphabet and no padding (Go's `base64.RawURLEncoding`).
pub(crate) fn encode_url_raw(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(URL_ALPHABET[idx as usize]));
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Alphabet {
    Url,
    Std,
}

fn value(alpha: Alphabet, c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' if matches!(alpha, Alphabet::Url) => 62,
        b'_' if matches!(alpha, Alphabet::Url) => 63,
        b'+' if matches!(alpha, Alphabet::Std) => 62,
        b'/' if matches!(alpha, Alphabet::Std) => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes without padding; `None` on any character outside the alphabet or a bad length.
fn decode_raw(alpha: Alphabet, input: &[u8]) -> Option<Vec<u8>> {
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    for chunk in input.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(alpha, *c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
        // Go's decoder is strict about the unused low bits of a final partial group; so are we,
        // so that one signature has exactly one accepted spelling.
        let unused = match chunk.len() {
            2 => n & 0xffff,
            3 => n & 0xff,
            _ => 0,
        };
        if unused != 0 {
            return None;
        }
    }
    Some(out)
}

/// Decodes URL-safe base64 without padding (Go's `base64.RawURLEncoding`).
pub(crate) fn decode_url_raw(input: &[u8]) -> Option<Vec<u8>> {
    decode_raw(Alphabet::Url, input)
}

/// Decodes standard base64 with mandatory padding (Go's `base64.StdEncoding`).
pub(crate) fn decode_std(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() % 4 != 0 {
        return None;
    }
    let pad = input.iter().rev().take_while(|c| **c == b'=').count();
    if pad > 2 {
        return None;
    }
    decode_raw(Alphabet::Std, &input[..input.len() - pad])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_raw_round_trips_every_length() {
        let data: Vec<u8> = (0u8..=255).collect();
        for n in 0..40 {
            let enc = encode_url_raw(&data[..n]);
            assert!(!enc.contains('='));
            assert_eq!(decode_url_raw(enc.as_bytes()).as_deref(), Some(&data[..n]));
        }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(encode_url_raw(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode_url_raw(b"fo"), "Zm8");
        assert_eq!(encode_url_raw(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode_std(b"Zm8=").as_deref(), Some(&b"fo"[..]));
        assert_eq!(decode_std(b"+/8=").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(decode_std(b"Zm8"), None, "std needs padding");
        assert_eq!(decode_url_raw(b"Zm8="), None, "raw takes no padding");
        assert_eq!(decode_url_raw(b"+/8"), None, "wrong alphabet");
        assert_eq!(decode_url_raw(b"Zm9"), None, "non-zero trailing bits");
        assert_eq!(decode_url_raw(b"Z"), None);
    }
}
