//! The clustered `$JS.API` as pure functions: which server answers a request, and the JSON of
//! the answers built from the meta group's state or a stream's replica (Go:
//! server/jetstream_api.go and the `jsClustered*` handlers of jetstream_cluster.go).
//!
//! In a cluster every server hears every API request once (the account's `$JS.API.>`
//! subscription is route-visible) and exactly one answers ([`ApiOp::answered_by`]): the meta
//! leader for what changes or lists the meta group's state, the stream's leader for what
//! reads or changes one stream's messages. Nothing here does I/O or reads a clock.

use serde_json::{json, Value};

use super::meta::{MetaState, StreamAssignment};
use super::replica::ReplicatedStream;
use super::shapes::ClusterInfo;
use crate::jetstream::api::{
    err, rfc3339, ApiError, ConsumerConfig, CreateConsumerRequest, ListRequest, MsgGetRequest,
    PurgeRequest, StreamConfig,
};
use crate::jetstream::consumer::{check_config as check_consumer, Delivery};
use crate::jetstream::handlers::{base64, decode};
use crate::jetstream::limits::AccountLimits;
use crate::jetstream::store::{StoreError, StoredMsg, UnixNanos};
use crate::jetstream::stream::{check_config, validate_name};
use crate::subject;

/// Who answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// The meta group's leader.
    MetaLeader,
    /// The leader of the stream's Raft group (the meta leader when the stream is unknown).
    StreamLeader,
    /// Not served by the clustered API yet: nobody answers.
    Nobody,
}

/// A clustered API request, recognised by its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiOp {
    /// `$JS.API.INFO`.
    AccountInfo,
    /// `STREAM.CREATE.<stream>`.
    StreamCreate(String),
    /// `STREAM.UPDATE.<stream>`.
    StreamUpdate(String),
    /// `STREAM.DELETE.<stream>`.
    StreamDelete(String),
    /// `STREAM.NAMES`.
    StreamNames,
    /// `STREAM.LIST`.
    StreamList,
    /// `STREAM.INFO.<stream>`.
    StreamInfo(String),
    /// `STREAM.MSG.GET.<stream>`.
    MsgGet(String),
    /// `STREAM.MSG.DELETE.<stream>`.
    MsgDelete(String),
    /// `STREAM.PURGE.<stream>`.
    Purge(String),
    /// `STREAM.LEADER.STEPDOWN.<stream>`.
    StreamStepdown(String),
    /// `CONSUMER.CREATE.<stream>[.<name>[.<filter>]]` or `CONSUMER.DURABLE.CREATE.<stream>.<name>`.
    ConsumerCreate {
        /// Stream.
        stream: String,
        /// The name the subject gives, if any.
        name: Option<String>,
        /// The filter the subject gives, if any.
        filter: Option<String>,
    },
    /// `CONSUMER.DELETE.<stream>.<consumer>`.
    ConsumerDelete(String, String),
    /// `CONSUMER.INFO.<stream>.<consumer>`.
    ConsumerInfo(String, String),
    /// `CONSUMER.NAMES.<stream>`.
    ConsumerNames(String),
    /// `CONSUMER.LIST.<stream>`.
    ConsumerList(String),
    /// `CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request.
    MsgNext(String, String),
    /// `CONSUMER.LEADER.STEPDOWN.<stream>.<consumer>`: the stream's group steps down (a
    /// consumer's leader is its stream's leader).
    ConsumerStepdown(String, String),
    /// `DIRECT.GET.<stream>[.<subject>]`: answered with the message itself.
    DirectGet {
        /// Stream.
        stream: String,
        /// The subject whose last message is asked for, when the subject names one.
        last_by_subj: Option<String>,
    },
    /// Anything else (snapshots, direct gets, …): not served yet.
    Other,
}

impl ApiOp {
    /// Recognises `rest`, the subject after `$JS.API.`.
    pub fn parse(rest: &str) -> Self {
        let t: Vec<&str> = rest.split('.').collect();
        let s = |x: &&str| (*x).to_owned();
        match t.as_slice() {
            ["INFO"] => Self::AccountInfo,
            ["STREAM", "CREATE", n] => Self::StreamCreate(s(n)),
            ["STREAM", "UPDATE", n] => Self::StreamUpdate(s(n)),
            ["STREAM", "DELETE", n] => Self::StreamDelete(s(n)),
            ["STREAM", "NAMES"] => Self::StreamNames,
            ["STREAM", "LIST"] => Self::StreamList,
            ["STREAM", "INFO", n] => Self::StreamInfo(s(n)),
            ["STREAM", "MSG", "GET", n] => Self::MsgGet(s(n)),
            ["STREAM", "MSG", "DELETE", n] => Self::MsgDelete(s(n)),
            ["STREAM", "PURGE", n] => Self::Purge(s(n)),
            ["STREAM", "LEADER", "STEPDOWN", n] => Self::StreamStepdown(s(n)),
            ["CONSUMER", "CREATE", st] => Self::ConsumerCreate {
                stream: s(st),
                name: None,
                filter: None,
            },
            ["CONSUMER", "CREATE", st, n] | ["CONSUMER", "DURABLE", "CREATE", st, n] => {
                Self::ConsumerCreate {
                    stream: s(st),
                    name: Some(s(n)),
                    filter: None,
                }
            }
            ["CONSUMER", "CREATE", st, n, f @ ..] => Self::ConsumerCreate {
                stream: s(st),
                name: Some(s(n)),
                filter: Some(f.join(".")),
            },
            ["CONSUMER", "DELETE", st, c] => Self::ConsumerDelete(s(st), s(c)),
            ["CONSUMER", "INFO", st, c] => Self::ConsumerInfo(s(st), s(c)),
            ["CONSUMER", "NAMES", st] => Self::ConsumerNames(s(st)),
            ["CONSUMER", "LIST", st] => Self::ConsumerList(s(st)),
            ["CONSUMER", "MSG", "NEXT", st, c] => Self::MsgNext(s(st), s(c)),
            ["CONSUMER", "LEADER", "STEPDOWN", st, c] => Self::ConsumerStepdown(s(st), s(c)),
            ["DIRECT", "GET", st] => Self::DirectGet {
                stream: s(st),
                last_by_subj: None,
            },
            ["DIRECT", "GET", st, subj @ ..] => Self::DirectGet {
                stream: s(st),
                last_by_subj: Some(subj.join(".")),
            },
            _ => Self::Other,
        }
    }

    /// Who answers it.
    pub fn answered_by(&self) -> Answerer {
        match self {
            Self::AccountInfo
            | Self::StreamCreate(_)
            | Self::StreamUpdate(_)
            | Self::StreamDelete(_)
            | Self::StreamNames
            | Self::StreamList
            | Self::ConsumerCreate { .. }
            | Self::ConsumerDelete(..)
            | Self::ConsumerNames(_)
            | Self::ConsumerList(_) => Answerer::MetaLeader,
            Self::ConsumerInfo(..)
            | Self::MsgNext(..)
            | Self::ConsumerStepdown(..)
            | Self::DirectGet { .. } => Answerer::StreamLeader,
            Self::StreamInfo(_)
            | Self::MsgGet(_)
            | Self::MsgDelete(_)
            | Self::Purge(_)
            | Self::StreamStepdown(_) => Answerer::StreamLeader,
            Self::Other => Answerer::Nobody,
        }
    }

    /// The stream it names, if any.
    pub fn stream(&self) -> Option<&str> {
        match self {
            Self::StreamCreate(n)
            | Self::StreamUpdate(n)
            | Self::StreamDelete(n)
            | Self::StreamInfo(n)
            | Self::MsgGet(n)
            | Self::MsgDelete(n)
            | Self::Purge(n)
            | Self::StreamStepdown(n)
            | Self::ConsumerDelete(n, _)
            | Self::ConsumerInfo(n, _)
            | Self::ConsumerNames(n)
            | Self::ConsumerList(n)
            | Self::MsgNext(n, _)
            | Self::ConsumerStepdown(n, _) => Some(n),
            Self::ConsumerCreate { stream, .. } | Self::DirectGet { stream, .. } => Some(stream),
            Self::AccountInfo | Self::StreamNames | Self::StreamList | Self::Other => None,
        }
    }

    /// The response's `type`.
    pub fn response_type(&self) -> String {
        let kind = match self {
            Self::AccountInfo => "account_info",
            Self::StreamCreate(_) => "stream_create",
            Self::StreamUpdate(_) => "stream_update",
            Self::StreamDelete(_) => "stream_delete",
            Self::StreamNames => "stream_names",
            Self::StreamList => "stream_list",
            Self::StreamInfo(_) => "stream_info",
            Self::MsgGet(_) => "stream_msg_get",
            Self::MsgDelete(_) => "stream_msg_delete",
            Self::Purge(_) => "stream_purge",
            Self::StreamStepdown(_) => "stream_leader_stepdown",
            Self::ConsumerCreate { .. } => "consumer_create",
            Self::ConsumerDelete(..) => "consumer_delete",
            Self::ConsumerInfo(..) => "consumer_info",
            Self::ConsumerNames(_) => "consumer_names",
            Self::ConsumerList(_) => "consumer_list",
            Self::ConsumerStepdown(..) => "consumer_leader_stepdown",
            Self::MsgNext(..) | Self::DirectGet { .. } | Self::Other => "unknown",
        };
        format!("io.nats.jetstream.api.v1.{kind}_response")
    }

    /// `{"type": …, …v}`, or `{"type": …, "error": …}`.
    pub fn body(&self, r: Result<Value, ApiError>) -> Value {
        let t = self.response_type();
        match r {
            Ok(mut v) => {
                if let Value::Object(m) = &mut v {
                    m.insert("type".to_owned(), json!(t));
                }
                v
            }
            Err(e) => json!({"type": t, "error": e}),
        }
    }
}

fn parse_or_default<T: serde::de::DeserializeOwned + Default>(p: &[u8]) -> Result<T, ApiError> {
    if p.iter().all(u8::is_ascii_whitespace) || p.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    decode(p)
}

/// The config of a `STREAM.CREATE`/`UPDATE` request, checked and with defaults filled in as
/// on one server, `num_replicas` kept (placement checks it against the cluster).
pub fn request_config(name: &str, payload: &[u8], create: bool) -> Result<StreamConfig, ApiError> {
    validate_name(name, err::stream_name_path_separators)?;
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(err::bad_request());
    }
    let mut cfg: StreamConfig = decode(payload)?;
    if cfg.name.is_empty() {
        cfg.name = name.to_owned();
    }
    if cfg.name != name {
        return Err(err::stream_mismatch());
    }
    if create && cfg.sealed {
        return Err(err::stream_invalid_config(
            "stream configuration for create can not be sealed",
        ));
    }
    if cfg.mirror_direct && cfg.mirror.is_none() {
        return Err(err::stream_invalid_config(
            "stream has no mirror but does have mirror direct",
        ));
    }
    // The single-server check refuses more than one replica; the cluster allows up to five
    // (placement's `check_replicas`).
    let replicas = cfg.num_replicas;
    if replicas > 1 {
        cfg.num_replicas = 1;
    }
    let mut cfg = check_config(cfg)?;
    if replicas > 1 {
        cfg.num_replicas = replicas;
    }
    Ok(cfg)
}

/// Stream info of a replica this server holds (its leader's view), `cluster` included.
pub fn replica_info(rs: &ReplicatedStream, cluster: &ClusterInfo, now: UnixNanos) -> Value {
    let s = &rs.stream;
    let mut v = json!({
        "config": s.config,
        "created": rfc3339(s.created),
        "state": s.state_json(rs.consumers.len()),
        "cluster": cluster,
        "ts": rfc3339(now),
    });
    s.sourcing_info(&mut v, now);
    v
}

/// Stream info from an assignment alone (a new stream, or one this server holds no replica
/// of): the config and an empty state.
pub fn assigned_info(sa: &StreamAssignment, cluster: &ClusterInfo, now: UnixNanos) -> Value {
    let zero = rfc3339(0);
    json!({
        "config": sa.config,
        "created": rfc3339(sa.created),
        "state": {
            "messages": 0, "bytes": 0, "first_seq": 0, "first_ts": zero,
            "last_seq": 0, "last_ts": zero, "consumer_count": 0,
        },
        "cluster": cluster,
        "ts": rfc3339(now),
    })
}

/// The account's streams a names or list request asks for, in name order (Go:
/// filteredStreams over the assignments).
fn filtered<'a>(
    meta: &'a MetaState,
    account: &str,
    req: &ListRequest,
) -> Vec<&'a StreamAssignment> {
    let want = req.subject.as_deref().unwrap_or_default();
    meta.streams(account)
        .map(|r| &r.assignment)
        .filter(|sa| {
            want.is_empty()
                || sa
                    .config
                    .subjects
                    .iter()
                    .any(|x| subject::overlaps(x.as_bytes(), want.as_bytes()))
        })
        .collect()
}

/// `STREAM.NAMES` from the meta group's state.
pub fn stream_names(meta: &MetaState, account: &str, payload: &[u8]) -> Result<Value, ApiError> {
    let req: ListRequest = parse_or_default(payload)?;
    let all = filtered(meta, account, &req);
    let page: Vec<&str> = all
        .iter()
        .skip(req.offset)
        .take(1024)
        .map(|sa| sa.config.name.as_str())
        .collect();
    let streams = if page.is_empty() {
        Value::Null
    } else {
        json!(page)
    };
    Ok(json!({"total": all.len(), "offset": req.offset, "limit": 1024, "streams": streams}))
}

/// One page of a `STREAM.LIST` or `CONSUMER.LIST`: which assets it shows, by name. Their
/// info is gathered from each stream's leader afterwards (Go: jsClusteredStreamListRequest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// How many assets the request matches.
    pub total: usize,
    /// The request's offset.
    pub offset: usize,
    /// The names on this page, in name order.
    pub names: Vec<String>,
}

/// How many infos one list page holds (Go: JSApiListLimit).
pub const LIST_LIMIT: usize = 256;

/// The page of a `STREAM.LIST` request.
pub fn stream_list_page(
    meta: &MetaState,
    account: &str,
    payload: &[u8],
) -> Result<ListPage, ApiError> {
    let req: ListRequest = parse_or_default(payload)?;
    let all = filtered(meta, account, &req);
    Ok(ListPage {
        total: all.len(),
        offset: req.offset,
        names: all
            .iter()
            .skip(req.offset)
            .take(LIST_LIMIT)
            .map(|sa| sa.config.name.clone())
            .collect(),
    })
}

/// The page of a `CONSUMER.LIST` request. An unknown stream lists nothing (nats-server 2.9
/// answers a clustered list so, not with 10059).
pub fn consumer_list_page(
    meta: &MetaState,
    account: &str,
    stream: &str,
    payload: &[u8],
) -> Result<ListPage, ApiError> {
    let req: ListRequest = parse_or_default(payload)?;
    let Some(rec) = meta.stream(account, stream) else {
        return Ok(ListPage {
            total: 0,
            offset: req.offset,
            names: Vec::new(),
        });
    };
    Ok(ListPage {
        total: rec.consumers.len(),
        offset: req.offset,
        names: rec
            .consumers
            .keys()
            .skip(req.offset)
            .take(LIST_LIMIT)
            .cloned()
            .collect(),
    })
}

/// A list answer: `key` (`"streams"` or `"consumers"`) holds the infos found, in the page's
/// order; `missing` names the assets whose leader did not answer in time (Go: omitted when
/// empty).
pub fn list_answer(
    key: &str,
    page: &ListPage,
    mut found: std::collections::BTreeMap<String, Value>,
) -> Value {
    let mut infos = Vec::new();
    let mut missing = Vec::new();
    for n in &page.names {
        match found.remove(n) {
            Some(v) => infos.push(v),
            None => missing.push(n.clone()),
        }
    }
    let mut v = json!({
        "total": page.total, "offset": page.offset, "limit": LIST_LIMIT, key: infos,
    });
    if !missing.is_empty() {
        v["missing"] = json!(missing);
    }
    v
}

/// `$JS.API.INFO` in a cluster: the account's streams and consumers as the meta group knows
/// them, its usage as summed by the caller.
pub fn account_info(
    meta: &MetaState,
    account: &str,
    limits: AccountLimits,
    memory: u64,
    storage: u64,
    api: (u64, u64),
) -> Value {
    let streams = meta.streams(account).count();
    let consumers: usize = meta.streams(account).map(|r| r.consumers.len()).sum();
    json!({
        "memory": memory,
        "storage": storage,
        "streams": streams,
        "consumers": consumers,
        "limits": limits,
        "api": {"total": api.0, "errors": api.1},
        "reserved_memory": 0,
        "reserved_storage": 0,
    })
}

/// `STREAM.MSG.GET` on the leader's replica.
pub fn msg_get(rs: &ReplicatedStream, payload: &[u8]) -> Result<Value, ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(err::bad_request());
    }
    let req: MsgGetRequest = decode(payload)?;
    let m = lookup(rs, &req)?;
    let mut msg = json!({"subject": m.subject, "seq": m.seq, "time": rfc3339(m.ts)});
    if !m.headers.is_empty() {
        msg["hdrs"] = json!(base64(&m.headers));
    }
    if !m.payload.is_empty() {
        msg["data"] = json!(base64(&m.payload));
    }
    Ok(json!({ "message": msg }))
}

fn lookup(rs: &ReplicatedStream, req: &MsgGetRequest) -> Result<StoredMsg, ApiError> {
    let store = rs.stream.store.as_ref();
    let r = if !req.last_by_subj.is_empty() {
        store.load_last_msg(&req.last_by_subj)
    } else if !req.next_by_subj.is_empty() {
        store.load_next_msg(&req.next_by_subj, req.seq)
    } else if req.seq > 0 {
        store.load_msg(req.seq)
    } else {
        return Err(err::bad_request());
    };
    r.map_err(|e| match e {
        StoreError::NotFound | StoreError::Eof => err::no_message_found(),
        e => err::store_failed(&e.to_string()),
    })
}

/// `DIRECT.GET` on the leader: the message with its stream headers, or a status; nothing
/// when the stream does not allow direct gets (Go answers only from its direct subscription).
pub fn direct_get(
    rs: &ReplicatedStream,
    last_by_subj: Option<&str>,
    payload: &[u8],
    reply: &str,
) -> Option<Delivery> {
    let name = &rs.stream.config.name;
    if !rs.stream.config.allow_direct {
        return None;
    }
    let req = match last_by_subj {
        Some(subj) => Ok(MsgGetRequest {
            last_by_subj: subj.to_owned(),
            ..MsgGetRequest::default()
        }),
        None => parse_or_default::<MsgGetRequest>(payload),
    };
    let Ok(req) = req else {
        return Some(Delivery::status(reply, "408 Bad Request", &[]));
    };
    let m = match lookup(rs, &req) {
        Ok(m) => m,
        Err(e) if e.err_code == 10003 => {
            return Some(Delivery::status(reply, "408 Empty Request", &[]));
        }
        Err(_) => return Some(Delivery::status(reply, "404 Message Not Found", &[])),
    };
    let mut h = if m.headers.is_empty() {
        "NATS/1.0\r\n".to_owned()
    } else {
        let s = String::from_utf8_lossy(&m.headers).into_owned();
        s.trim_end_matches("\r\n").to_owned() + "\r\n"
    };
    h.push_str(&format!(
        "Nats-Stream: {name}\r\nNats-Subject: {}\r\nNats-Sequence: {}\r\nNats-Time-Stamp: {}\r\n\r\n",
        m.subject,
        m.seq,
        rfc3339(m.ts)
    ));
    Some(Delivery {
        subject: reply.to_owned(),
        reply: None,
        headers: h.into_bytes(),
        payload: m.payload.to_vec(),
        shown_subject: None,
    })
}

/// `STREAM.MSG.DELETE`: the sequence to remove, after the config's refusals.
pub fn msg_delete_seq(rs: &ReplicatedStream, payload: &[u8]) -> Result<u64, ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(err::bad_request());
    }
    let req: crate::jetstream::api::MsgDeleteRequest = decode(payload)?;
    let c = &rs.stream.config;
    if c.deny_delete {
        return Err(ApiError::new(400, 10057, "message delete not permitted"));
    }
    if c.sealed {
        return Err(err::sealed());
    }
    if rs.stream.store.load_msg(req.seq).is_err() {
        return Err(err::msg_delete_failed("no message found"));
    }
    Ok(req.seq)
}

/// `STREAM.PURGE`: the request, after the config's refusals.
pub fn purge_request(rs: &ReplicatedStream, payload: &[u8]) -> Result<PurgeRequest, ApiError> {
    let req: PurgeRequest = parse_or_default(payload)?;
    let c = &rs.stream.config;
    if c.deny_purge {
        return Err(ApiError::new(400, 10110, "stream purge not permitted"));
    }
    if c.sealed {
        return Err(err::sealed());
    }
    Ok(req)
}

/// A consumer create request checked as on one server against the stream's config (Go:
/// jsConsumerCreateRequest): the consumer's name (`ephemeral` names one without), its config
/// with defaults filled in, and the action (`""`, `"create"` or `"update"`).
pub fn consumer_request(
    op_name: Option<&str>,
    op_filter: Option<&str>,
    payload: &[u8],
    stream: &StreamConfig,
    ephemeral: impl FnOnce() -> String,
) -> Result<(String, ConsumerConfig, String), ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(err::bad_request());
    }
    let req: CreateConsumerRequest = decode(payload)?;
    if !matches!(req.action.as_str(), "" | "create" | "update") {
        return Err(err::invalid_json(&format!(
            "unknown consumer action: {:?}",
            req.action
        )));
    }
    if !req.stream_name.is_empty() && req.stream_name != stream.name {
        return Err(err::stream_mismatch());
    }
    let mut cfg = req.config.ok_or_else(err::consumer_config_required)?;
    if let Some(n) = op_name {
        let differs = |x: &Option<String>| x.as_deref().is_some_and(|x| x != n);
        if differs(&cfg.durable_name) || differs(&cfg.name) {
            return Err(err::durable_name_mismatch());
        }
        if cfg.name.is_none() {
            cfg.name = Some(n.to_owned());
        }
    }
    if op_filter.is_some_and(|f| f != cfg.filter_subject) {
        return Err(err::filter_mismatch());
    }
    if let (Some(d), None) = (&cfg.durable_name, &cfg.name) {
        cfg.name = Some(d.clone());
    }
    let name = match &cfg.name {
        Some(n) if n.contains(['/', '\\']) => return Err(err::consumer_name_path_separators()),
        Some(n) if n.is_empty() || n.contains(['.', '*', '>', ' ']) => {
            return Err(ApiError::new(
                400,
                10103,
                "durable name can not contain '.', '*', '>'",
            ))
        }
        Some(n) => n.clone(),
        None => ephemeral(),
    };
    cfg.name = Some(name.clone());
    let cfg = check_consumer(cfg, &stream.subjects)?;
    crate::jetstream::retention::check_config(stream, &cfg)?;
    Ok((name, cfg, req.action))
}

/// `CONSUMER.NAMES` from the meta group's state.
pub fn consumer_names(
    meta: &MetaState,
    account: &str,
    stream: &str,
    payload: &[u8],
) -> Result<Value, ApiError> {
    let req: ListRequest = parse_or_default(payload)?;
    let rec = meta
        .stream(account, stream)
        .ok_or_else(err::stream_not_found)?;
    let page: Vec<&String> = rec.consumers.keys().skip(req.offset).take(1024).collect();
    Ok(json!({
        "total": rec.consumers.len(), "offset": req.offset, "limit": 1024, "consumers": page,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_names_what_no_leader_answered_for_as_missing() {
        let page = ListPage {
            total: 3,
            offset: 0,
            names: vec!["A".into(), "B".into(), "C".into()],
        };
        let found = [
            ("A".to_owned(), json!({"n": "A"})),
            ("C".to_owned(), json!({"n": "C"})),
        ];
        let v = list_answer("streams", &page, found.into_iter().collect());
        assert_eq!(v["streams"], json!([{"n": "A"}, {"n": "C"}]));
        assert_eq!(v["missing"], json!(["B"]));
        assert_eq!(v["total"], 3);
        assert_eq!(v["limit"], 256);
        let all = page.names.iter().map(|n| (n.clone(), json!({})));
        let v = list_answer("consumers", &page, all.collect());
        assert!(v.get("missing").is_none(), "{v}");
        assert_eq!(v["consumers"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn every_request_has_one_answerer() {
        assert_eq!(ApiOp::parse("INFO").answered_by(), Answerer::MetaLeader);
        assert_eq!(
            ApiOp::parse("STREAM.CREATE.S"),
            ApiOp::StreamCreate("S".into())
        );
        assert_eq!(
            ApiOp::parse("STREAM.INFO.S").answered_by(),
            Answerer::StreamLeader
        );
        assert_eq!(ApiOp::parse("STREAM.MSG.GET.S").stream(), Some("S"));
        let sd = ApiOp::parse("CONSUMER.LEADER.STEPDOWN.S.C");
        assert_eq!(sd, ApiOp::ConsumerStepdown("S".into(), "C".into()));
        assert_eq!(sd.answered_by(), Answerer::StreamLeader);
        assert_eq!(
            sd.response_type(),
            "io.nats.jetstream.api.v1.consumer_leader_stepdown_response"
        );
        assert_eq!(
            ApiOp::parse("STREAM.SNAPSHOT.S").answered_by(),
            Answerer::Nobody
        );
        assert_eq!(
            ApiOp::parse("STREAM.NAMES").response_type(),
            "io.nats.jetstream.api.v1.stream_names_response"
        );
    }

    #[test]
    fn a_create_keeps_its_replicas_and_gets_the_defaults() {
        let cfg = request_config("S", br#"{"name":"S","num_replicas":3}"#, true).unwrap();
        assert_eq!(cfg.num_replicas, 3);
        assert_eq!(cfg.subjects, vec!["S".to_owned()]);
        assert_eq!(
            request_config("S", br#"{"name":"T"}"#, true).unwrap_err(),
            err::stream_mismatch()
        );
        assert_eq!(
            request_config("S", b"", true).unwrap_err(),
            err::bad_request()
        );
    }
}
