//! The subscription index: a trie of subject tokens with a match cache.
