//! The JetStream requests the sim needs, on top of [`Client`]: stream create and info,
//! publish with a PubAck, and reading messages back by sequence (pipelined, so a check of a
//! few thousand messages costs little sim time). JSON is read with `serde_json` directly:
//! nothing here shares code with the server.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::{Client, ClientError, Reply};

/// A JetStream API error (`{"error": {...}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErr {
    /// HTTP-like status.
    pub code: u64,
    /// JetStream error code (`err_code`, e.g. 10047).
    pub err_code: u64,
    /// Text.
    pub description: String,
}

impl ApiErr {
    /// The error of a JSON reply, if it is one.
    pub fn of(v: &Value) -> Option<Self> {
        let e = v.get("error")?;
        Some(Self {
            code: e["code"].as_u64().unwrap_or(0),
            err_code: e["err_code"].as_u64().unwrap_or(0),
            description: e["description"].as_str().unwrap_or("").to_owned(),
        })
    }
}

/// The answer to a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubAck {
    /// Stored (and, with natsd's default sync policy, durable).
    Ok {
        /// Stream name.
        stream: String,
        /// Assigned sequence (the original's, for a duplicate).
        seq: u64,
        /// Answered as a duplicate of an earlier publish with the same `Nats-Msg-Id`.
        duplicate: bool,
    },
    /// Refused.
    Err(ApiErr),
    /// No stream listens on the subject (or JetStream is down).
    NoResponders,
}

/// A message read back with `STREAM.MSG.GET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMsg {
    /// Its sequence, as the server reports it.
    pub seq: u64,
    /// Subject.
    pub subject: String,
    /// Body.
    pub data: Vec<u8>,
}

fn b64_val(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Standard base64 with optional padding; `None` when malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        acc = (acc << 6) | b64_val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn json(m: &super::Msg) -> Result<Value, ClientError> {
    serde_json::from_slice(&m.payload)
        .map_err(|e| ClientError::Proto(format!("JetStream reply is not JSON: {e}")))
}

/// Reads a `STREAM.MSG.GET` reply: the message, or the API error.
fn parse_get(v: &Value) -> Result<Result<StoredMsg, ApiErr>, ClientError> {
    if let Some(e) = ApiErr::of(v) {
        return Ok(Err(e));
    }
    let m = &v["message"];
    let data = base64_decode(m["data"].as_str().unwrap_or(""))
        .ok_or_else(|| ClientError::Proto(format!("bad base64 in {v}")))?;
    Ok(Ok(StoredMsg {
        seq: m["seq"].as_u64().unwrap_or(0),
        subject: m["subject"].as_str().unwrap_or("").to_owned(),
        data,
    }))
}

impl Client {
    /// A JetStream API request with a JSON body; `None` on no responders.
    pub async fn js_request(
        &mut self,
        subject: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Option<Value>, ClientError> {
        match self
            .request(subject, body.to_string().as_bytes(), timeout)
            .await?
        {
            Reply::Msg(m) => json(&m).map(Some),
            Reply::NoResponders => Ok(None),
        }
    }

    /// Creates stream `cfg.name` (or finds it already there with the same config).
    pub async fn js_create_stream(
        &mut self,
        cfg: &Value,
        timeout: Duration,
    ) -> Result<Option<Result<Value, ApiErr>>, ClientError> {
        let name = cfg["name"].as_str().unwrap_or("");
        let r = self
            .js_request(&format!("$JS.API.STREAM.CREATE.{name}"), cfg, timeout)
            .await?;
        Ok(r.map(|v| ApiErr::of(&v).map_or(Ok(v), Err)))
    }

    /// `STREAM.INFO`: the reply, or the API error.
    pub async fn js_stream_info(
        &mut self,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Result<Value, ApiErr>>, ClientError> {
        let r = self
            .js_request(
                &format!("$JS.API.STREAM.INFO.{name}"),
                &Value::Object(Default::default()),
                timeout,
            )
            .await?;
        Ok(r.map(|v| ApiErr::of(&v).map_or(Ok(v), Err)))
    }

    /// Publishes and waits for the PubAck.
    pub async fn js_publish(
        &mut self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<PubAck, ClientError> {
        self.js_publish_with_id(subject, None, payload, timeout)
            .await
    }

    /// Publishes with an optional `Nats-Msg-Id` and waits for the PubAck.
    pub async fn js_publish_with_id(
        &mut self,
        subject: &str,
        msg_id: Option<&str>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<PubAck, ClientError> {
        let hdr = msg_id.map(|id| format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n"));
        let reply = self
            .request_with_headers(subject, hdr.as_deref().map(str::as_bytes), payload, timeout)
            .await?;
        let m = match reply {
            Reply::Msg(m) => m,
            Reply::NoResponders => return Ok(PubAck::NoResponders),
        };
        let v = json(&m)?;
        if let Some(e) = ApiErr::of(&v) {
            return Ok(PubAck::Err(e));
        }
        match (v["stream"].as_str(), v["seq"].as_u64()) {
            (Some(stream), Some(seq)) => Ok(PubAck::Ok {
                stream: stream.to_owned(),
                seq,
                duplicate: v["duplicate"].as_bool().unwrap_or(false),
            }),
            _ => Err(ClientError::Proto(format!("not a PubAck: {v}"))),
        }
    }

    /// Reads messages `seqs` of `stream` with `STREAM.MSG.GET`, `window` requests in flight
    /// at a time. Every sequence gets an answer or the call fails.
    pub async fn js_get_msgs(
        &mut self,
        stream: &str,
        seqs: &[u64],
        window: usize,
        timeout: Duration,
    ) -> Result<BTreeMap<u64, Result<StoredMsg, ApiErr>>, ClientError> {
        let prefix = format!("_JSGET.{}.{}", self.name, self.epoch);
        let sid = self
            .subscribe(&format!("{prefix}.*"), None, timeout)
            .await?;
        let subject = format!("$JS.API.STREAM.MSG.GET.{stream}");
        let mut out = BTreeMap::new();
        for chunk in seqs.chunks(window.max(1)) {
            for seq in chunk {
                let body = format!("{{\"seq\":{seq}}}");
                self.publish_with_reply(
                    &subject,
                    Some(&format!("{prefix}.{seq}")),
                    body.as_bytes(),
                    timeout,
                )
                .await?;
            }
            let deadline = Instant::now() + timeout;
            let mut left = chunk.len();
            while left > 0 {
                let wait = deadline.saturating_duration_since(Instant::now());
                let Some(m) = self.next_msg(wait).await? else {
                    return Err(ClientError::Timeout);
                };
                let Some(seq) = m
                    .subject
                    .strip_prefix(&format!("{prefix}."))
                    .and_then(|s| s.parse::<u64>().ok())
                else {
                    continue;
                };
                if m.sid == sid && chunk.contains(&seq) && !out.contains_key(&seq) {
                    out.insert(seq, parse_get(&json(&m)?)?);
                    left -= 1;
                }
            }
        }
        self.unsubscribe(sid, None, timeout).await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a$b").is_none());
    }
}
