//! Subject syntax: validation and wildcard matching.
//!
//! Subjects are dot-separated tokens of bytes. `*` as a whole token matches exactly one token;
//! `>` as the whole last token matches one or more tokens. Whitespace is never part of a subject.
//! Matching works on bytes: nats-server does not require UTF-8 and neither do we.

/// The token separator.
pub const SEP: u8 = b'.';
/// Matches exactly one token.
pub const PWC: u8 = b'*';
/// Matches one or more trailing tokens.
pub const FWC: u8 = b'>';

/// Iterates over the tokens of a subject.
pub fn tokens(subject: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    subject.split(|b| *b == SEP)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// A valid subscription subject: non-empty tokens, no whitespace, `>` only as the last token.
pub fn is_valid_subject(subject: &[u8]) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut seen_fwc = false;
    for tok in tokens(subject) {
        if tok.is_empty() || seen_fwc {
            return false;
        }
        if tok.iter().any(|b| is_space(*b)) {
            return false;
        }
        if tok == [FWC] {
            seen_fwc = true;
        }
    }
    true
}

/// A valid publish subject: a valid subject with no wildcard tokens.
pub fn is_valid_literal_subject(subject: &[u8]) -> bool {
    is_valid_subject(subject) && is_literal(subject)
}

/// True when no token is a wildcard (`*` or `>` as a whole token).
pub fn is_literal(subject: &[u8]) -> bool {
    tokens(subject).all(|t| t != [PWC] && t != [FWC])
}

/// A valid queue group name: non-empty, no whitespace.
pub fn is_valid_queue(queue: &[u8]) -> bool {
    !queue.is_empty() && !queue.iter().any(|b| is_space(*b))
}

/// Does the literal `subject` match `pattern` (which may hold wildcards)?
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut pt = tokens(pattern);
    let mut st = tokens(subject);
    loop {
        match (pt.next(), st.next()) {
            (None, None) => return true,
            (Some(p), Some(_)) if p == [FWC] => return true,
            (Some(p), Some(s)) => {
                if p != [PWC] && p != s {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Can some literal subject match both patterns? (Used for permission overlap checks.)
pub fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let mut at = tokens(a);
    let mut bt = tokens(b);
    loop {
        match (at.next(), bt.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x == [FWC] || y == [FWC] {
                    return true;
                }
                if x != [PWC] && y != [PWC] && x != y {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Is every subject matched by `sub` also matched by `sup`?
pub fn is_subset(sub: &[u8], sup: &[u8]) -> bool {
    let mut it = tokens(sub);
    let mut pt = tokens(sup);
    loop {
        match (it.next(), pt.next()) {
            (None, None) => return true,
            (Some(_), Some(p)) if p == [FWC] => return true,
            (Some(s), Some(p)) => {
                if s == [FWC] {
                    return false;
                }
                if p == [PWC] {
                    continue;
                }
                if s == [PWC] || s != p {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        for ok in [
            "foo", "foo.bar", "foo.*", "foo.>", ">", "*", "*.*", "foo*.bar", "a.>",
        ] {
            assert!(is_valid_subject(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "foo.",
            ".foo",
            "foo..bar",
            "foo.>.bar",
            "foo bar",
            "foo\tbar",
            ">.a",
        ] {
            assert!(!is_valid_subject(bad.as_bytes()), "{bad}");
        }
        assert!(is_valid_literal_subject(b"foo.bar"));
        assert!(is_valid_literal_subject(b"foo*.bar"));
        assert!(!is_valid_literal_subject(b"foo.*"));
        assert!(!is_valid_literal_subject(b"foo.>"));
    }

    #[test]
    fn matching() {
        assert!(matches(b"foo.*", b"foo.bar"));
        assert!(!matches(b"foo.*", b"foo.bar.baz"));
        assert!(matches(b"foo.>", b"foo.bar.baz"));
        assert!(!matches(b"foo.>", b"foo"));
        assert!(matches(b">", b"foo"));
        assert!(matches(b"*.bar", b"foo.bar"));
        assert!(!matches(b"foo", b"foo.bar"));
        assert!(!matches(b"foo.bar", b"foo"));
    }

    #[test]
    fn overlap_and_subset() {
        assert!(overlaps(b"foo.*", b"*.bar"));
        assert!(overlaps(b"foo.>", b"foo.bar.baz"));
        assert!(!overlaps(b"foo.*", b"bar.*"));
        assert!(!overlaps(b"foo.*", b"foo.a.b"));
        assert!(!overlaps(b"foo", b"foo.>"));
        assert!(!overlaps(b"foo.>", b"foo"));
        assert!(overlaps(b"foo.>", b"*.bar"));
        assert!(is_subset(b"foo.bar", b"foo.*"));
        assert!(is_subset(b"foo.*", b"foo.>"));
        assert!(!is_subset(b"foo.>", b"foo.*"));
        assert!(!is_subset(b"foo.*", b"foo.bar"));
        assert!(is_subset(b"foo.>", b">"));
    }
}
