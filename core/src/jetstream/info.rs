//! `$JS.API.STREAM.INFO.<stream>` with a request body: per-subject message counts
//! (`subjects_filter`), paged by `offset` (Go: server/jetstream_api.go jsStreamInfoRequest).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::api::ApiError;
use super::service::JetStream;
use super::store::UnixNanos;

/// Most subjects one info response lists (Go: `JSMaxSubjectDetails`); a client pages through
/// the rest with `offset`.
pub(crate) const MAX_SUBJECT_DETAILS: usize = 100_000;

/// The optional STREAM.INFO request body (Go: `JSApiStreamInfoRequest`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InfoRequest {
    /// Which subjects to count; empty: no `state.subjects` at all. (Clients send `null` for
    /// the fields they leave unset; the request decoder takes that as absent, as Go does.)
    subjects_filter: String,
    /// Subjects to skip, in sorted order.
    offset: i64,
    /// List the interior deletes in `state.deleted`.
    deleted_details: bool,
}

impl JetStream {
    /// Stream info, plus the subject counts and paging fields the request asked for.
    pub(crate) fn api_stream_info(
        &self,
        name: &str,
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        let req: InfoRequest = if payload.iter().all(u8::is_ascii_whitespace) {
            InfoRequest::default()
        } else {
            // Go's json.Unmarshal takes `null` as "nothing asked for" (async-nats sends it).
            super::handlers::decode::<Option<InfoRequest>>(payload)?.unwrap_or_default()
        };
        let mut info = self.stream_info_with_domain(name, now)?;
        // Go embeds ApiPaged in the info response, so the three fields are always there (0
        // unless a subjects filter matched something).
        let (mut total, mut offset, mut limit) = (0, 0, 0);
        if !req.subjects_filter.is_empty() {
            let totals = self
                .stream_store(name)?
                .subjects_totals(&req.subjects_filter);
            if !totals.is_empty() {
                total = totals.len();
                offset = usize::try_from(req.offset).unwrap_or(0).min(totals.len());
                let page: Map<String, Value> = totals
                    .into_iter()
                    .skip(offset)
                    .take(MAX_SUBJECT_DETAILS)
                    .map(|(s, n)| (s, Value::from(n)))
                    .collect();
                if !page.is_empty() {
                    info["state"]["subjects"] = Value::Object(page);
                }
                limit = MAX_SUBJECT_DETAILS;
            }
        }
        if req.deleted_details {
            // Go: omitempty, so a stream without interior deletes has no `deleted` at all.
            let deleted = self.stream_store(name)?.deleted_seqs();
            if !deleted.is_empty() {
                info["state"]["deleted"] = deleted.into();
            }
        }
        info["total"] = total.into();
        info["offset"] = offset.into();
        info["limit"] = limit.into();
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::factory::DiskFactory;
    use super::super::service::{JetStream, JsSettings};
    use super::super::store::{MemDisk, SyncPolicy};

    const T0: u64 = 1_700_000_000_000_000_000;

    fn api(js: &mut JetStream, subject: &str, payload: &str) -> Value {
        let out = js.api(subject, Some("_INBOX.r"), payload.as_bytes(), T0);
        serde_json::from_slice(&out[0].payload).unwrap()
    }

    fn kv_stream() -> JetStream {
        let disk = MemDisk::new(1);
        let f = DiskFactory::new(move || disk.clone(), SyncPolicy::Always);
        let mut js = JetStream::new(JsSettings::default(), Box::new(f), 1);
        let cfg = json!({"name": "KV_b", "subjects": ["$KV.b.>"], "storage": "memory"});
        api(&mut js, "$JS.API.STREAM.CREATE.KV_b", &cfg.to_string());
        for k in ["x", "x", "y", "z.1", "x"] {
            js.publish(&format!("$KV.b.{k}"), None, b"", b"v", T0);
        }
        js.commit(T0);
        js
    }

    #[test]
    fn subjects_filter_counts_and_pages() {
        let mut js = kv_stream();
        let info = |js: &mut JetStream, body: &str| api(js, "$JS.API.STREAM.INFO.KV_b", body);

        let v = info(&mut js, "");
        assert_eq!(v["type"], "io.nats.jetstream.api.v1.stream_info_response");
        assert_eq!(v["state"]["num_subjects"], 3);
        assert!(v["state"].get("subjects").is_none());
        assert_eq!(
            (&v["total"], &v["offset"], &v["limit"]),
            (&json!(0), &json!(0), &json!(0))
        );

        let v = info(&mut js, r#"{"subjects_filter":"$KV.b.>"}"#);
        assert_eq!(
            v["state"]["subjects"],
            json!({"$KV.b.x": 3, "$KV.b.y": 1, "$KV.b.z.1": 1})
        );
        assert_eq!(
            (&v["total"], &v["offset"], &v["limit"]),
            (&json!(3), &json!(0), &json!(100_000))
        );

        let v = info(&mut js, r#"{"subjects_filter":"$KV.b.*","offset":1}"#);
        assert_eq!(v["state"]["subjects"], json!({"$KV.b.y": 1}));
        assert_eq!((&v["total"], &v["offset"]), (&json!(2), &json!(1)));

        // Past the end: no subjects, the offset clamped to the total.
        let v = info(&mut js, r#"{"subjects_filter":">","offset":9}"#);
        assert!(v["state"].get("subjects").is_none());
        assert_eq!((&v["total"], &v["offset"]), (&json!(3), &json!(3)));

        let v = info(&mut js, r#"{"subjects_filter":"nope"}"#);
        assert!(v["state"].get("subjects").is_none());
        assert_eq!(v["total"], 0);

        let v = info(&mut js, "null");
        assert_eq!(v["state"]["messages"], 5);
        let v = info(
            &mut js,
            r#"{"deleted_details":false,"subjects_filter":null,"offset":null}"#,
        );
        assert_eq!(v["state"]["messages"], 5, "{v}");
        let v = info(&mut js, "{not json");
        assert_eq!(v["error"]["err_code"], 10025);
        let v = api(
            &mut js,
            "$JS.API.STREAM.INFO.NOPE",
            r#"{"subjects_filter":">"}"#,
        );
        assert_eq!(v["error"]["err_code"], 10059);
    }

    #[test]
    fn deleted_details_list_the_interior_deletes() {
        let mut js = kv_stream();
        let info = |js: &mut JetStream, body: &str| api(js, "$JS.API.STREAM.INFO.KV_b", body);
        let v = info(&mut js, r#"{"deleted_details":true}"#);
        assert!(v["state"].get("deleted").is_none(), "none yet: {v}");
        for seq in [2, 4] {
            let body = json!({ "seq": seq }).to_string();
            let d = api(&mut js, "$JS.API.STREAM.MSG.DELETE.KV_b", &body);
            assert_eq!(d["success"], true, "{d}");
        }
        let v = info(&mut js, r#"{"deleted_details":true}"#);
        assert_eq!(v["state"]["deleted"], json!([2, 4]), "{v}");
        assert_eq!(v["state"]["num_deleted"], 2);
        let v = info(&mut js, r#"{"deleted_details":false}"#);
        assert!(v["state"].get("deleted").is_none(), "{v}");
    }

    #[test]
    fn an_untouched_stream_starts_at_zero() {
        let disk = MemDisk::new(1);
        let f = DiskFactory::new(move || disk.clone(), SyncPolicy::Always);
        let mut js = JetStream::new(JsSettings::default(), Box::new(f), 1);
        let first_seq = |js: &mut JetStream, name: &str, cfg: Value| {
            let v = api(
                js,
                &format!("$JS.API.STREAM.CREATE.{name}"),
                &cfg.to_string(),
            );
            (
                v["state"]["first_seq"].clone(),
                v["state"]["last_seq"].clone(),
            )
        };
        // Go: a new store's state is zeroed; a configured first_seq says where it starts.
        let fresh = first_seq(&mut js, "A", json!({"name": "A", "subjects": ["a"]}));
        assert_eq!(fresh, (json!(0), json!(0)));
        let set = json!({"name": "B", "subjects": ["b"], "first_seq": 10});
        assert_eq!(first_seq(&mut js, "B", set), (json!(10), json!(9)));
        js.publish("a", None, b"", b"v", T0);
        js.commit(T0);
        let v = api(&mut js, "$JS.API.STREAM.INFO.A", "");
        assert_eq!(
            (&v["state"]["first_seq"], &v["state"]["last_seq"]),
            (&json!(1), &json!(1))
        );
    }
}
