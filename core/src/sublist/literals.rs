//! The literal children of a trie level, keyed by token, laid out for memory: a level with
//! 100,000 children (`bench.subs.<i>`) and 100,000 levels with one child each
//! (`orders.<id>.status`) are both common, and both used to cost a few hundred bytes per
//! subscription more than the subscription itself.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Tokens up to this long are stored inside the key itself: no allocation per trie node for
/// the typical token (ids, names, numbers).
const INLINE_TOKEN: usize = 22;

/// Above this many children a level switches from a linear list to a hash map.
const FEW_MAX: usize = 8;

/// One token of a subscribed subject, as a map key. Hashes and compares as its bytes, so maps
/// keyed by it are looked up with a plain `&[u8]`.
#[derive(Debug)]
pub(super) enum Token {
    /// `len` bytes at the front of `bytes`.
    Inline { len: u8, bytes: [u8; INLINE_TOKEN] },
    /// A token too long to inline.
    Heap(Box<[u8]>),
}

impl Token {
    pub(super) fn new(tok: &[u8]) -> Self {
        match u8::try_from(tok.len()) {
            Ok(len) if tok.len() <= INLINE_TOKEN => {
                let mut bytes = [0; INLINE_TOKEN];
                bytes[..tok.len()].copy_from_slice(tok);
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(Box::from(tok)),
        }
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(b) => b,
        }
    }
}

impl Borrow<[u8]> for Token {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Token {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as `[u8]` does: lookups hash the borrowed slice.
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Token {}

/// Literal children of one level. Order never escapes: every walk sorts what it collects by
/// insertion sequence.
#[derive(Debug)]
pub(super) enum Literals<N> {
    /// Up to [`FEW_MAX`] children, searched linearly; sized exactly, since most levels of a
    /// large trie have one child.
    Few(Vec<(Token, N)>),
    /// Many children. Boxed so that the common small level stays small: the enum is 24 bytes
    /// instead of a `HashMap`'s 48, and only levels past [`FEW_MAX`] pay the extra allocation.
    #[allow(clippy::box_collection)]
    Many(Box<HashMap<Token, N>>),
}

impl<N> Default for Literals<N> {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

impl<N> Literals<N> {
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Few(v) => v.len(),
            Self::Many(m) => m.len(),
        }
    }

    pub(super) fn get(&self, tok: &[u8]) -> Option<&N> {
        match self {
            Self::Few(v) => v.iter().find(|(k, _)| k.as_bytes() == tok).map(|(_, n)| n),
            Self::Many(m) => m.get(tok),
        }
    }

    pub(super) fn get_mut(&mut self, tok: &[u8]) -> Option<&mut N> {
        match self {
            Self::Few(v) => v
                .iter_mut()
                .find(|(k, _)| k.as_bytes() == tok)
                .map(|(_, n)| n),
            Self::Many(m) => m.get_mut(tok),
        }
    }

    /// The child for `tok`, created with `make` if missing.
    pub(super) fn get_or_insert(&mut self, tok: &[u8], make: impl FnOnce() -> N) -> &mut N {
        if let Self::Few(v) = self {
            if v.len() >= FEW_MAX && !v.iter().any(|(k, _)| k.as_bytes() == tok) {
                let map: HashMap<Token, N> = std::mem::take(v).into_iter().collect();
                *self = Self::Many(Box::new(map));
            }
        }
        match self {
            Self::Few(v) => {
                let i = match v.iter().position(|(k, _)| k.as_bytes() == tok) {
                    Some(i) => i,
                    None => {
                        // Exact growth: a level's child list is rarely long (at most FEW_MAX).
                        v.reserve_exact(1);
                        v.push((Token::new(tok), make()));
                        v.len() - 1
                    }
                };
                &mut v[i].1
            }
            Self::Many(m) => {
                // Look up before inserting so the common case (child exists) does not build a
                // key.
                if !m.contains_key(tok) {
                    m.insert(Token::new(tok), make());
                }
                m.get_mut(tok)
                    .expect("literal child exists: it was inserted just above")
            }
        }
    }

    pub(super) fn remove(&mut self, tok: &[u8]) {
        match self {
            Self::Few(v) => {
                if let Some(i) = v.iter().position(|(k, _)| k.as_bytes() == tok) {
                    v.swap_remove(i);
                    v.shrink_to_fit();
                }
            }
            Self::Many(m) => {
                m.remove(tok);
            }
        }
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &N> {
        let (few, many) = match self {
            Self::Few(v) => (Some(v), None),
            Self::Many(m) => (None, Some(m)),
        };
        few.into_iter()
            .flatten()
            .map(|(_, n)| n)
            .chain(many.into_iter().flat_map(|m| m.values()))
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut N> {
        let (few, many) = match self {
            Self::Few(v) => (Some(v), None),
            Self::Many(m) => (None, Some(m)),
        };
        few.into_iter()
            .flatten()
            .map(|(_, n)| n)
            .chain(many.into_iter().flat_map(|m| m.values_mut()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_inline_up_to_the_limit_and_compare_as_bytes() {
        let short = Token::new(b"abc");
        assert!(matches!(short, Token::Inline { len: 3, .. }));
        assert_eq!(short.as_bytes(), b"abc");
        let edge = [b'x'; INLINE_TOKEN];
        assert!(matches!(Token::new(&edge), Token::Inline { .. }));
        let long = [b'y'; INLINE_TOKEN + 1];
        let heap = Token::new(&long);
        assert!(matches!(heap, Token::Heap(_)));
        assert_eq!(heap.as_bytes(), &long[..]);
        assert_eq!(size_of::<Token>(), 24);
    }

    #[test]
    fn switches_to_a_map_past_few_and_keeps_every_child() {
        let mut l: Literals<usize> = Literals::default();
        for i in 0..FEW_MAX * 3 {
            *l.get_or_insert(format!("t{i}").as_bytes(), || 0) += i;
            // Re-inserting finds the existing child.
            *l.get_or_insert(format!("t{i}").as_bytes(), || 1000) += 1;
        }
        assert!(matches!(l, Literals::Many(_)));
        assert_eq!(l.len(), FEW_MAX * 3);
        for i in 0..FEW_MAX * 3 {
            assert_eq!(l.get(format!("t{i}").as_bytes()), Some(&(i + 1)));
        }
        let mut sum: usize = l.values().sum();
        assert_eq!(sum, (0..FEW_MAX * 3).map(|i| i + 1).sum::<usize>());
        for v in l.values_mut() {
            *v = 1;
        }
        sum = l.values().sum();
        assert_eq!(sum, FEW_MAX * 3);
        l.remove(b"t0");
        assert_eq!(l.get(b"t0"), None);
        assert_eq!(l.len(), FEW_MAX * 3 - 1);

        let mut few: Literals<u8> = Literals::default();
        few.get_or_insert(b"a", || 1);
        few.get_or_insert(b"b", || 2);
        few.remove(b"a");
        assert!(matches!(&few, Literals::Few(v) if v.len() == 1));
        assert_eq!(few.get(b"b"), Some(&2));
        assert_eq!(few.get_mut(b"a"), None);
    }
}
