//! Replies across clusters: nats-server 2.9.10's `_GR_.<cluster hash>.<server hash>.<reply>`
//! mapping, and the small encoders the gateway commands need.
//!
//! A request leaving for another cluster carries a reply subject prefixed with the hashes of
//! the cluster and server it left from. An answer published on such a subject goes straight
//! back to that cluster's gateway, whatever the interest (Go: sendMsgToGateways,
//! `directSend`), and the origin server strips the prefix before delivering it (Go:
//! handleGatewayReply).

use sha2::{Digest, Sha256};

/// Go: gateway.go gwReplyPrefix.
pub const GW_REPLY_PREFIX: &[u8] = b"_GR_.";
/// Go: gwHashLen.
pub const GW_HASH_LEN: usize = 6;
/// Where the reply proper starts: prefix, two hashes, two dots.
const SUBJECT_OFFSET: usize = GW_REPLY_PREFIX.len() + 2 * (GW_HASH_LEN + 1);

/// Six base-62 characters from the SHA-256 of `name` (Go: getGWHash, getHashSize).
pub fn gw_hash(name: &str) -> [u8; GW_HASH_LEN] {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let sum = Sha256::digest(name.as_bytes());
    let mut out = [0u8; GW_HASH_LEN];
    for (o, b) in out.iter_mut().zip(sum.iter()) {
        *o = DIGITS[usize::from(*b % 62)];
    }
    out
}

/// This server's reply prefix and what it needs to read others'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPrefix {
    /// `_GR_.<hash of our cluster>.<hash of our server id>.`
    prefix: Vec<u8>,
}

impl ReplyPrefix {
    /// The prefix of server `server_id` in cluster `cluster`.
    pub fn new(cluster: &str, server_id: &str) -> Self {
        let mut prefix = GW_REPLY_PREFIX.to_vec();
        prefix.extend_from_slice(&gw_hash(cluster));
        prefix.push(b'.');
        prefix.extend_from_slice(&gw_hash(server_id));
        prefix.push(b'.');
        Self { prefix }
    }

    /// The whole prefix, `_GR_.ccccc.ssssss.`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.prefix
    }

    /// Our cluster's hash.
    pub fn cluster_hash(&self) -> &[u8] {
        &self.prefix[GW_REPLY_PREFIX.len()..GW_REPLY_PREFIX.len() + GW_HASH_LEN]
    }

    /// Our server's hash.
    pub fn server_hash(&self) -> &[u8] {
        let at = GW_REPLY_PREFIX.len() + GW_HASH_LEN + 1;
        &self.prefix[at..at + GW_HASH_LEN]
    }

    /// `reply` as it leaves for another cluster: prefixed, unless it already is (a reply
    /// that crossed before keeps its origin).
    pub fn map(&self, reply: &[u8]) -> Vec<u8> {
        if is_routed_reply(reply) {
            return reply.to_vec();
        }
        let mut v = Vec::with_capacity(self.prefix.len() + reply.len());
        v.extend_from_slice(&self.prefix);
        v.extend_from_slice(reply);
        v
    }
}

/// Whether `subject` is a mapped reply (Go: isGWRoutedReply).
pub fn is_routed_reply(subject: &[u8]) -> bool {
    subject.len() > SUBJECT_OFFSET && subject.starts_with(GW_REPLY_PREFIX)
}

/// The parts of a mapped reply: (cluster hash, server hash, original subject).
pub fn split_routed_reply(subject: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    if !is_routed_reply(subject) {
        return None;
    }
    let c = GW_REPLY_PREFIX.len();
    let s = c + GW_HASH_LEN + 1;
    Some((
        &subject[c..c + GW_HASH_LEN],
        &subject[s..s + GW_HASH_LEN],
        &subject[SUBJECT_OFFSET..],
    ))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64, as Go's JSON writes a `[]byte` (`gateway_cmd_payload`).
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                s.push(char::from(B64[(n >> shift) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Decodes standard base64 (padding optional); `None` if malformed.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for ch in s.bytes() {
        let v = B64.iter().position(|&b| b == ch)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
