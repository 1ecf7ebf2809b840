//! `$JS.API.…` request handlers (Go: server/jetstream_api.go).

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::advisory::Action;
use super::api::{
    err, rfc3339, ApiError, CreateConsumerRequest, ListRequest, MsgDeleteRequest, MsgGetRequest,
    PurgeRequest, StreamConfig,
};
use super::consumer::{
    check_config as check_consumer, check_update, parse_next_request, parse_time, Consumer,
    Delivery,
};
use super::service::{error_body, json_reply, JetStream};
use super::store::{StoreError, StoredMsg, UnixNanos};
use super::stream::validate_name;
use crate::gojson;

const PREFIX: &str = "$JS.API.";

fn parse<T: DeserializeOwned + Default>(payload: &[u8]) -> Result<T, ApiError> {
    // Go: json.Unmarshal of `null` into a request struct leaves it zero, so it means "no
    // options" like an empty body.
    if payload.iter().all(u8::is_ascii_whitespace) || payload.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    decode(payload)
}

fn parse_required<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(err::bad_request());
    }
    decode(payload)
}

/// [`parse`] for the requests nats-server decodes with plain json.Unmarshal even when strict.
fn parse_lenient<T: DeserializeOwned + Default>(payload: &[u8]) -> Result<T, ApiError> {
    let _lenient = gojson::ApiStrictness::enter(false);
    parse(payload)
}

/// A request body read as nats-server reads it (Go: unmarshalRequest): Go's JSON rules, and
/// unknown fields refused when the API is strict.
pub(crate) fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ApiError> {
    gojson::from_slice(payload, gojson::api_unknown())
        .map_err(|e| err::invalid_json(&e.to_string()))
}

/// Standard base64 (message bodies in MSG.GET replies, as Go's `[]byte` JSON).
pub(crate) fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

/// 10010 (Go: JSClusterRequiredErr).
fn cluster_required() -> Result<Value, ApiError> {
    Err(ApiError::new(
        503,
        10010,
        "JetStream clustering support required",
    ))
}

fn with_type(t: &str, mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("type".to_owned(), json!(t));
    }
    v
}

fn ty(kind: &str) -> String {
    format!("io.nats.jetstream.api.v1.{kind}_response")
}

impl JetStream {
    /// Whether API requests with fields nats-server does not know are refused (nats-server's
    /// `jetstream { strict }`, on by default as in 2.12); pull requests and acks are never
    /// strict, as in nats-server.
    pub fn set_strict(&mut self, strict: bool) {
        self.strict = strict;
    }

    /// A request on `$JS.API.…`; answers go to `reply` (none: nothing is answered).
    pub fn api(
        &mut self,
        subj: &str,
        reply: Option<&str>,
        payload: &[u8],
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let Some(reply) = reply else {
            return Vec::new();
        };
        let Some(rest) = subj.strip_prefix(PREFIX) else {
            return Vec::new();
        };
        let t: Vec<&str> = rest.split('.').collect();
        // Pull requests and direct gets answer with messages, not API documents.
        match t.as_slice() {
            ["CONSUMER", "MSG", "NEXT", stream, consumer] => {
                return self.next(stream, consumer, reply, payload, now);
            }
            ["DIRECT", "GET", stream] => {
                let req = parse::<MsgGetRequest>(payload);
                return self.direct_get(stream, req, reply).into_iter().collect();
            }
            ["DIRECT", "GET", stream, ..] => {
                let subject = t[3..].join(".");
                let req = Ok(MsgGetRequest {
                    last_by_subj: subject,
                    ..MsgGetRequest::default()
                });
                return self.direct_get(stream, req, reply).into_iter().collect();
            }
            // Go: jsLeaderStepDownRequest / jsLeaderServerRemoveRequest return without an
            // answer when there is no meta group, i.e. on a server without a cluster.
            ["META", "LEADER", "STEPDOWN"] | ["SERVER", "REMOVE"] => return Vec::new(),
            _ => {}
        }
        // Go: unmarshalRequest decodes the API requests with DisallowUnknownFields when strict
        // (pull requests and direct gets above use plain json.Unmarshal).
        let strict = gojson::ApiStrictness::enter(self.strict);
        let (kind, r) = self.dispatch(&t, payload, now);
        drop(strict);
        // Go: apiDispatch answers only subjects it has a handler for; the rest get nothing.
        if kind == "unknown" {
            return Vec::new();
        }
        self.count_api(r.is_err());
        let body = match r {
            Ok(v) => with_type(&ty(kind), v),
            Err(e) => error_body(&ty(kind), &e),
        };
        let mut out = vec![json_reply(reply, &body)];
        // Advisories go after the reply; the API audit last (Go: sendAPIResponse).
        let audit = self.api_audit(subj, payload, &out[0].payload, None, now);
        out.append(&mut self.advisories);
        out.push(audit);
        // A snapshot's first window of chunks follows its reply.
        if let ["STREAM", "SNAPSHOT", _] = t.as_slice() {
            out.extend(self.pump_snapshots(now));
        }
        // A new (or reset) push consumer starts delivering right away.
        if let ["CONSUMER", "CREATE" | "DURABLE" | "RESET", ..] = t.as_slice() {
            let stream = if t[1] == "DURABLE" {
                t.get(3)
            } else {
                t.get(2)
            };
            if let Some(stream) = stream {
                out.extend(self.pump_stream(stream, now));
            }
        }
        out
    }

    fn dispatch(
        &mut self,
        t: &[&str],
        payload: &[u8],
        now: UnixNanos,
    ) -> (&'static str, Result<Value, ApiError>) {
        match t {
            ["INFO"] => ("account_info", Ok(self.account_info())),
            ["STREAM", "CREATE", name] => {
                ("stream_create", self.api_stream_create(name, payload, now))
            }
            ["STREAM", "UPDATE", name] => {
                ("stream_update", self.api_stream_update(name, payload, now))
            }
            ["STREAM", "INFO", name] => ("stream_info", self.api_stream_info(name, payload, now)),
            ["STREAM", "DELETE", name] => (
                "stream_delete",
                self.delete_stream_advised(name, now)
                    .map(|()| json!({"success": true})),
            ),
            ["STREAM", "PURGE", name] => ("stream_purge", self.api_purge(name, payload)),
            ["STREAM", "SNAPSHOT", name] => {
                ("stream_snapshot", self.api_snapshot(name, payload, now))
            }
            ["STREAM", "RESTORE", name] => ("stream_restore", self.api_restore(name, payload, now)),
            ["STREAM", "NAMES"] => ("stream_names", self.api_stream_names(payload)),
            ["STREAM", "LIST"] => ("stream_list", self.api_stream_list(payload, now)),
            ["STREAM", "MSG", "GET", name] => ("stream_msg_get", self.api_msg_get(name, payload)),
            ["STREAM", "MSG", "DELETE", name] => {
                ("stream_msg_delete", self.api_msg_delete(name, payload))
            }
            ["CONSUMER", "CREATE", stream] => (
                "consumer_create",
                self.api_consumer_create(stream, None, None, payload, now),
            ),
            ["CONSUMER", "CREATE", stream, name] => (
                "consumer_create",
                self.api_consumer_create(stream, Some(name), None, payload, now),
            ),
            ["CONSUMER", "CREATE", stream, name, filter @ ..] => {
                let f = filter.join(".");
                (
                    "consumer_create",
                    self.api_consumer_create(stream, Some(name), Some(&f), payload, now),
                )
            }
            ["CONSUMER", "DURABLE", "CREATE", stream, name] => (
                "consumer_create",
                self.api_consumer_create(stream, Some(name), None, payload, now),
            ),
            ["CONSUMER", "INFO", stream, name] => {
                ("consumer_info", self.consumer_info(stream, name, now))
            }
            ["CONSUMER", "DELETE", stream, name] => (
                "consumer_delete",
                self.consumer_delete(stream, name).map(|()| {
                    let adv = self.consumer_advisory(stream, name, Action::Delete, now);
                    self.advisories.push(adv);
                    json!({"success": true})
                }),
            ),
            ["CONSUMER", "PAUSE", stream, name] => (
                "consumer_pause",
                self.consumer_pause(stream, name, payload, now),
            ),
            // Go 2.14: the reset subject is the consumer's own subscription, so a missing
            // stream or consumer leaves the request unanswered.
            ["CONSUMER", "RESET", stream, name] => {
                let exists = self
                    .streams
                    .get(*stream)
                    .is_some_and(|e| e.consumers.contains_key(*name));
                if !exists {
                    return ("unknown", Err(err::consumer_not_found()));
                }
                (
                    "consumer_reset",
                    self.consumer_reset(stream, name, payload, now),
                )
            }
            ["CONSUMER", "UNPIN", stream, name] => {
                ("consumer_unpin", self.consumer_unpin(stream, name, payload))
            }
            ["CONSUMER", "NAMES", stream] => (
                "consumer_names",
                self.consumer_list(stream, payload, now, false),
            ),
            ["CONSUMER", "LIST", stream] => (
                "consumer_list",
                self.consumer_list(stream, payload, now, true),
            ),
            // Go: the stream and consumer stepdown and peer-remove handlers answer this
            // before they look at the body or the stream: natsd runs without a cluster.
            ["STREAM", "LEADER", "STEPDOWN", _] => ("stream_leader_stepdown", cluster_required()),
            ["CONSUMER", "LEADER", "STEPDOWN", _, _] => {
                ("consumer_leader_stepdown", cluster_required())
            }
            ["STREAM", "PEER", "REMOVE", _] => ("stream_remove_peer", cluster_required()),
            _ => ("unknown", Err(ApiError::new(400, 10003, "bad request"))),
        }
    }

    fn account_info(&self) -> Value {
        let (memory, storage) = self.usage();
        let (total, errors) = self.api_stats();
        let mut v = json!({
            "memory": memory,
            "storage": storage,
            "streams": self.num_streams(),
            "consumers": self.num_consumers(),
            "limits": self.account_limits(),
            "api": {"total": total, "errors": errors},
            // nats-server 2.10 fields: async-nats (0.46 and later) cannot parse account
            // info without them.
            "reserved_memory": 0,
            "reserved_storage": 0,
        });
        if let Some(d) = &self.settings.domain {
            v["domain"] = json!(d);
        }
        v
    }

    fn stream_config_for(name: &str, payload: &[u8]) -> Result<StreamConfig, ApiError> {
        validate_name(name, err::stream_name_path_separators)?;
        let mut cfg: StreamConfig = parse_required(payload)?;
        if cfg.name.is_empty() {
            cfg.name = name.to_owned();
        }
        if cfg.name != name {
            return Err(err::stream_mismatch());
        }
        Ok(cfg)
    }

    fn api_stream_create(
        &mut self,
        name: &str,
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        let cfg = Self::stream_config_for(name, payload)?;
        // Go: jsStreamCreateRequest refuses these two before it looks any further.
        if cfg.sealed {
            return Err(err::stream_invalid_config(
                "stream configuration for create can not be sealed",
            ));
        }
        if cfg.mirror_direct && cfg.mirror.is_none() {
            return Err(err::stream_invalid_config(
                "stream has no mirror but does have mirror direct",
            ));
        }
        self.check_stream_create(&cfg)?;
        let created = self.create_stream(cfg, now)?;
        let mut v = self.stream_info(name, now)?;
        v["did_create"] = json!(created);
        Ok(v)
    }

    fn api_stream_update(
        &mut self,
        name: &str,
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        let cfg = Self::stream_config_for(name, payload)?;
        self.update_stream(cfg)?;
        let adv = self.stream_advisory(name, Action::Modify, now);
        self.advisories.push(adv);
        self.stream_info_with_domain(name, now)
    }

    fn api_purge(&mut self, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
        let req: PurgeRequest = parse(payload)?;
        let e = self.store_of(name)?;
        if e.stream.config.deny_purge {
            return Err(ApiError::new(400, 10110, "stream purge not permitted"));
        }
        if e.stream.config.sealed {
            return Err(err::sealed());
        }
        let store = &mut e.stream.store;
        let r = if req.filter.is_empty() && req.seq == 0 && req.keep == 0 {
            store.purge()
        } else if req.filter.is_empty() && req.keep == 0 {
            store.compact(req.seq)
        } else {
            store.purge_ex(&req.filter, req.keep, req.seq)
        };
        let purged = r.map_err(|x| err::purge_failed(&x.to_string()))?;
        let _ = store.sync();
        for c in e.consumers.values_mut() {
            c.recount(e.stream.store.as_ref());
        }
        Ok(json!({"success": true, "purged": purged}))
    }

    /// The streams a names or list request asks for, in name order: with a `subject`, those
    /// with a subject that collides with it (Go: filteredStreams, SubjectsCollide).
    fn filtered_stream_names(&self, req: &ListRequest) -> Vec<String> {
        let want = req.subject.as_deref().unwrap_or_default();
        self.stream_names()
            .filter(|n| {
                want.is_empty()
                    || self.stream(n).is_some_and(|s| {
                        s.config
                            .subjects
                            .iter()
                            .any(|x| crate::subject::overlaps(x.as_bytes(), want.as_bytes()))
                    })
            })
            .cloned()
            .collect()
    }

    fn api_stream_names(&self, payload: &[u8]) -> Result<Value, ApiError> {
        let req: ListRequest = parse(payload)?;
        let names = self.filtered_stream_names(&req);
        let total = names.len();
        let page: Vec<String> = names.into_iter().skip(req.offset).take(1024).collect();
        // Go: the names are a nil slice until one is added, so none is `null`.
        let streams = if page.is_empty() {
            Value::Null
        } else {
            json!(page)
        };
        Ok(json!({"total": total, "offset": req.offset, "limit": 1024, "streams": streams}))
    }

    fn api_stream_list(&self, payload: &[u8], now: UnixNanos) -> Result<Value, ApiError> {
        let req: ListRequest = parse(payload)?;
        let names = self.filtered_stream_names(&req);
        let total = names.len();
        let page: Vec<Value> = names
            .iter()
            .skip(req.offset)
            .take(256)
            .filter_map(|n| self.stream_info_with_domain(n, now).ok())
            .collect();
        Ok(json!({"total": total, "offset": req.offset, "limit": 256, "streams": page}))
    }

    /// Stream info with the `domain` Go adds to info, list and update replies (not to a
    /// create reply).
    pub(crate) fn stream_info_with_domain(
        &self,
        name: &str,
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        let mut v = self.stream_info(name, now)?;
        if let Some(d) = &self.settings.domain {
            v["domain"] = json!(d);
        }
        Ok(v)
    }

    fn lookup_msg(&self, name: &str, req: &MsgGetRequest) -> Result<StoredMsg, ApiError> {
        let store = self.stream_store(name)?;
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

    fn api_msg_get(&mut self, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
        let req: MsgGetRequest = parse_required(payload)?;
        let m = self.lookup_msg(name, &req)?;
        let mut msg = json!({
            "subject": m.subject, "seq": m.seq, "time": rfc3339(m.ts),
        });
        if !m.headers.is_empty() {
            msg["hdrs"] = json!(base64(&m.headers));
        }
        if !m.payload.is_empty() {
            msg["data"] = json!(base64(&m.payload));
        }
        Ok(json!({ "message": msg }))
    }

    fn api_msg_delete(&mut self, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
        let req: MsgDeleteRequest = parse_required(payload)?;
        let e = self.store_of(name)?;
        if e.stream.config.deny_delete {
            return Err(ApiError::new(400, 10057, "message delete not permitted"));
        }
        if e.stream.config.sealed {
            return Err(err::sealed());
        }
        match e.stream.store.remove_msg(req.seq) {
            Ok(true) => {
                let _ = e.stream.store.sync();
                for c in e.consumers.values_mut() {
                    c.recount(e.stream.store.as_ref());
                }
                Ok(json!({"success": true}))
            }
            Ok(false) | Err(StoreError::NotFound | StoreError::Eof) => {
                Err(err::msg_delete_failed("no message found"))
            }
            Err(x) => Err(err::msg_delete_failed(&x.to_string())),
        }
    }

    /// Go: processDirectGetRequest — the message itself with `Nats-*` headers, or a status.
    /// No answer at all without the stream or without `allow_direct`.
    // Go: server/stream.go subscribeToDirect — the direct-get subscription exists only for a
    // stream that allows it, so such a request reaches no one and the requester times out.
    fn direct_get(
        &mut self,
        name: &str,
        req: Result<MsgGetRequest, ApiError>,
        reply: &str,
    ) -> Option<Delivery> {
        let s = self.stream(name)?;
        if !s.config.allow_direct {
            return None;
        }
        let Ok(req) = req else {
            return Some(Delivery::status(reply, "408 Bad Request", &[]));
        };
        let m = match self.lookup_msg(name, &req) {
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

    fn api_consumer_create(
        &mut self,
        stream: &str,
        name: Option<&str>,
        filter: Option<&str>,
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        let req: CreateConsumerRequest = parse_required(payload)?;
        // Go 2.10: the action is `""` (create or update), `"create"` or `"update"`.
        if !matches!(req.action.as_str(), "" | "create" | "update") {
            return Err(err::invalid_json(&format!(
                "unknown consumer action: {:?}",
                req.action
            )));
        }
        if !req.stream_name.is_empty() && req.stream_name != stream {
            return Err(err::stream_mismatch());
        }
        let mut cfg = req.config.ok_or_else(err::consumer_config_required)?;
        if let Some(n) = name {
            if let Some(d) = &cfg.durable_name {
                if d != n {
                    return Err(err::durable_name_mismatch());
                }
            }
            if let Some(x) = &cfg.name {
                if x != n {
                    return Err(err::durable_name_mismatch());
                }
            }
            if cfg.name.is_none() {
                cfg.name = Some(n.to_owned());
            }
        }
        if let Some(f) = filter {
            if f != cfg.filter_subject {
                return Err(err::filter_mismatch());
            }
        }
        if let (Some(d), None) = (&cfg.durable_name, &cfg.name) {
            cfg.name = Some(d.clone());
        }
        let cname = match &cfg.name {
            Some(n) => {
                if n.contains(['/', '\\']) {
                    return Err(err::consumer_name_path_separators());
                }
                if n.is_empty() || n.contains(['.', '*', '>', ' ']) {
                    return Err(ApiError::new(
                        400,
                        10103,
                        "durable name can not contain '.', '*', '>'",
                    ));
                }
                n.clone()
            }
            None => self.ephemeral_name(),
        };
        cfg.name = Some(cname.clone());
        let subjects = self
            .stream(stream)
            .ok_or_else(err::stream_not_found)?
            .config
            .subjects
            .clone();
        let asked_ack_pending = cfg.max_ack_pending;
        let mut cfg = check_consumer(cfg, &subjects)?;
        self.apply_ack_pending_limit(asked_ack_pending, &mut cfg)?;
        // Whether the current deliver subject of a consumer being updated has a listener
        // (an update may move a push consumer only while nobody is bound to it).
        let old_bound = self
            .streams
            .get(stream)
            .and_then(|e| e.consumers.get(&cname))
            .and_then(|c| c.config.deliver_subject.as_deref())
            .is_some_and(|d| self.has_interest(d));
        let e = self.store_of(stream)?;
        super::retention::check_config(&e.stream.config, &cfg)?;
        if let Some(existing) = e.consumers.get(&cname) {
            // Go 2.10: `create` is idempotent for the same config only.
            if req.action == "create" && existing.config != cfg {
                return Err(err::consumer_already_exists());
            }
            check_update(&existing.config, &cfg, old_bound)?;
            let super::service::Entry { stream, consumers } = e;
            let c = consumers
                .get_mut(&cname)
                .ok_or_else(err::consumer_not_found)?;
            c.update_config(cfg);
            // A filter may have changed.
            c.recount(stream.store.as_ref());
            return Ok(c.info(now));
        }
        if req.action == "update" {
            return Err(err::consumer_does_not_exist());
        }
        self.check_consumer_count(stream)?;
        let e = self.store_of(stream)?;
        super::retention::check_new_consumer(&e.stream.config, &e.consumers, &cfg)?;
        let bound = cfg
            .deliver_subject
            .as_deref()
            .is_some_and(|d| self.has_interest(d));
        let e = self.store_of(stream)?;
        let mut c = Consumer::new(
            cname.clone(),
            stream.to_owned(),
            cfg,
            e.stream.store.as_ref(),
            now,
        );
        if bound {
            c.set_active(true, now);
        }
        let info = c.info(now);
        e.consumers.insert(cname.clone(), c);
        if let Err(x) = self.save_consumer(stream, &cname) {
            if let Ok(e) = self.store_of(stream) {
                e.consumers.remove(&cname);
            }
            return Err(x);
        }
        let adv = self.consumer_advisory(stream, &cname, Action::Create, now);
        self.advisories.push(adv);
        Ok(info)
    }

    fn consumer_info(
        &mut self,
        stream: &str,
        name: &str,
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        let e = self.store_of(stream)?;
        let c = e
            .consumers
            .get_mut(name)
            .ok_or_else(err::consumer_not_found)?;
        // Go: consumer info first ends the pull requests that expired (processWaiting), so
        // their 408s go out and `num_waiting` leaves them out.
        let expired = c.expire_waiting_now(now);
        let info = c.info(now);
        self.advisories.extend(expired);
        Ok(info)
    }

    fn consumer_delete(&mut self, stream: &str, name: &str) -> Result<(), ApiError> {
        let e = self.store_of(stream)?;
        let mut gone = e
            .consumers
            .remove(name)
            .ok_or_else(err::consumer_not_found)?;
        super::retention::consumer_removed(e, &gone);
        // Sent after the reply, with the advisories.
        let released = gone.release_waiting();
        self.advisories.extend(released);
        self.forget_consumer(stream, name);
        Ok(())
    }

    /// Go 2.11: `$JS.API.CONSUMER.UNPIN.<stream>.<consumer>` with `{"group": g}` drops the
    /// pin of a pinned-client consumer; the next request without an id gets a new one.
    fn consumer_unpin(
        &mut self,
        stream: &str,
        name: &str,
        payload: &[u8],
    ) -> Result<Value, ApiError> {
        #[derive(Default, serde::Deserialize)]
        #[serde(default)]
        struct UnpinRequest {
            group: String,
        }
        // Go: jsConsumerUnpinRequest uses json.Unmarshal, never strict.
        let req: UnpinRequest = parse_lenient(payload)?;
        if req.group.is_empty() {
            return Err(err::invalid_json("consumer group not specified"));
        }
        let e = self.store_of(stream)?;
        let c = e
            .consumers
            .get_mut(name)
            .ok_or_else(err::consumer_not_found)?;
        if !c.unpin(&req.group) {
            return Err(ApiError::new(
                400,
                10160,
                "Provided priority group does not exist for this consumer",
            ));
        }
        Ok(json!({}))
    }

    /// Go 2.14: `$JS.API.CONSUMER.RESET.<stream>.<consumer>` with `{"seq": n}` (or nothing:
    /// back to the ack floor); the answer is the consumer info plus `reset_seq`.
    fn consumer_reset(
        &mut self,
        stream: &str,
        name: &str,
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        #[derive(Default, serde::Deserialize)]
        #[serde(default)]
        struct ResetRequest {
            seq: u64,
        }
        let req: ResetRequest = parse(payload)?;
        let e = self.store_of(stream)?;
        let super::service::Entry {
            stream: st,
            consumers,
        } = e;
        let c = consumers
            .get_mut(name)
            .ok_or_else(err::consumer_not_found)?;
        let (start, old_floor) = c.reset(req.seq, st.store.as_ref())?;
        super::retention::settle(e);
        super::retention::floor_moved(e, old_floor, start - 1);
        let c = e
            .consumers
            .get_mut(name)
            .ok_or_else(err::consumer_not_found)?;
        c.recount(e.stream.store.as_ref());
        let mut v = c.info(now);
        v["reset_seq"] = json!(start);
        let _ = self.save_consumer(stream, name);
        Ok(v)
    }

    /// Go 2.11: `$JS.API.CONSUMER.PAUSE.<stream>.<consumer>` with `{"pause_until": time}`;
    /// no time (or a past one) resumes.
    fn consumer_pause(
        &mut self,
        stream: &str,
        name: &str,
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        #[derive(Default, serde::Deserialize)]
        #[serde(default)]
        struct PauseRequest {
            pause_until: Option<String>,
        }
        let req: PauseRequest = parse(payload)?;
        let until = match req.pause_until.as_deref() {
            None | Some("") => 0,
            Some(t) => parse_time(t).ok_or_else(|| err::invalid_json("bad pause_until"))?,
        };
        let e = self.store_of(stream)?;
        let c = e
            .consumers
            .get_mut(name)
            .ok_or_else(err::consumer_not_found)?;
        c.set_pause(until);
        let _ = self.save_consumer(stream, name);
        let mut v = json!({"paused": now < until, "pause_until": rfc3339(until)});
        if now < until {
            v["pause_remaining"] = json!(until - now);
        }
        Ok(v)
    }

    fn consumer_list(
        &mut self,
        stream: &str,
        payload: &[u8],
        now: UnixNanos,
        full: bool,
    ) -> Result<Value, ApiError> {
        let req: ListRequest = parse(payload)?;
        let e = self.store_of(stream)?;
        let total = e.consumers.len();
        let mut expired = Vec::new();
        let list: Vec<Value> = if full {
            // As for one consumer's info: expired pull requests end first.
            e.consumers
                .values_mut()
                .skip(req.offset)
                .take(256)
                .map(|c| {
                    expired.extend(c.expire_waiting_now(now));
                    c.info(now)
                })
                .collect()
        } else {
            let page = e.consumers.values().skip(req.offset);
            page.take(1024).map(|c| json!(c.name)).collect()
        };
        self.advisories.extend(expired);
        let limit = if full { 256 } else { 1024 };
        Ok(json!({"total": total, "offset": req.offset, "limit": limit, "consumers": list}))
    }

    fn next(
        &mut self,
        stream: &str,
        consumer: &str,
        reply: &str,
        payload: &[u8],
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let req = match parse_next_request(payload) {
            Ok(r) => r,
            Err(status) => return vec![Delivery::status(reply, &status, &[])],
        };
        let Ok(e) = self.store_of(stream) else {
            return vec![Delivery::status(reply, "404 No Messages", &[])];
        };
        let super::service::Entry { stream, consumers } = e;
        let Some(c) = consumers.get_mut(consumer) else {
            return vec![Delivery::status(reply, "404 No Messages", &[])];
        };
        c.on_next(reply, &req, stream.store.as_ref(), now)
            .into_iter()
            .map(|d| d.0)
            .collect()
    }

    /// `+NXT <request>` on an ack subject: the rest is a pull request answered on `reply`.
    pub(crate) fn ack_next(
        &mut self,
        ack_subject: &str,
        reply: &str,
        body: &[u8],
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let t: Vec<&str> = ack_subject.split('.').collect();
        let (Some(stream), Some(consumer)) = (t.get(2), t.get(3)) else {
            return Vec::new();
        };
        let rest = body.trim_ascii().strip_prefix(b"+NXT").unwrap_or_default();
        self.next(stream, consumer, reply, rest, now)
    }
}
