use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::jetstream::api::{
    CreateConsumerRequest, ListRequest, MsgGetRequest, NextRequest, StreamConfig,
};

fn lenient<T: DeserializeOwned>(s: &str) -> Result<T, DecodeError> {
    from_slice(s.as_bytes(), Unknown::Ignore)
}

fn strict<T: DeserializeOwned>(s: &str) -> Result<T, DecodeError> {
    from_slice(s.as_bytes(), Unknown::Refuse)
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct Inner {
    src: String,
    n: i64,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Outer {
    #[serde(default)]
    name: String,
    #[serde(default = "minus_one")]
    max_msgs: i64,
    #[serde(default)]
    list: Vec<String>,
    #[serde(default)]
    inner: Option<Inner>,
    #[serde(default)]
    inners: Vec<Inner>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    flag: bool,
}

fn minus_one() -> i64 {
    -1
}

#[test]
fn null_fields_take_their_default() {
    let o: Outer = lenient(
        r#"{"name":null,"max_msgs":null,"list":null,"inner":null,"inners":null,
            "metadata":null,"flag":null}"#,
    )
    .unwrap();
    let absent: Outer = lenient("{}").unwrap();
    assert_eq!(o, absent);
    assert_eq!(
        o.max_msgs, -1,
        "the serde default, as if the key were absent"
    );
}

#[test]
fn null_elsewhere_is_the_zero_value() {
    let o: Outer =
        lenient(r#"{"list":["a",null],"inners":[null,{"src":null,"n":2}],"metadata":{"k":null}}"#)
            .unwrap();
    assert_eq!(o.list, ["a", ""]);
    assert_eq!(
        o.inners,
        [
            Inner::default(),
            Inner {
                src: "".into(),
                n: 2
            }
        ]
    );
    assert_eq!(o.metadata["k"], "");
    let n: Option<Outer> = lenient("null").unwrap();
    assert!(n.is_none());
}

#[test]
fn a_null_keeps_an_earlier_value_and_a_repeat_overwrites() {
    let o: Outer = lenient(r#"{"name":"a","name":null}"#).unwrap();
    assert_eq!(o.name, "a", "Go leaves the field alone on null");
    let o: Outer = lenient(r#"{"name":"a","NAME":"b"}"#).unwrap();
    assert_eq!(o.name, "b", "the last key wins, as in Go");
    let o: Outer = lenient(r#"{"Name":"b","name":"a"}"#).unwrap();
    assert_eq!(o.name, "a", "document order decides, not key order");
}

#[test]
fn keys_match_fields_without_case() {
    let o: Outer =
        lenient(r#"{"NAME":"s","Max_Msgs":5,"LIST":["x"],"Inner":{"SRC":"a","N":1},"fLaG":true}"#)
            .unwrap();
    assert_eq!(o.name, "s");
    assert_eq!(o.max_msgs, 5);
    assert_eq!(o.list, ["x"]);
    assert_eq!(
        o.inner,
        Some(Inner {
            src: "a".into(),
            n: 1
        })
    );
    assert!(o.flag);
    // Go folds the long s and the Kelvin sign onto s and k.
    let o: Outer = lenient("{\"\u{17f}rc\":1,\"name\":\"\u{212a}\"}").unwrap();
    assert_eq!(o.name, "\u{212a}", "values are not folded");
    let i: Inner = lenient("{\"\u{17f}rc\":\"x\"}").unwrap();
    assert_eq!(i.src, "x");
    // Other look-alikes do not match.
    let (i, unknown) = from_slice_reporting::<Inner>("{\"sr\u{e7}\":\"x\"}".as_bytes()).unwrap();
    assert_eq!(i.src, "");
    assert_eq!(unknown, ["sr\u{e7}"]);
}

#[test]
fn map_keys_stay_as_sent() {
    let o: Outer = lenient(r#"{"metadata":{"Key":"1","key":"2","KEY":"3"}}"#).unwrap();
    assert_eq!(o.metadata.len(), 3);
    assert_eq!(o.metadata["Key"], "1");
    let c: StreamConfig = lenient(r#"{"name":"S","Metadata":{"Owner":"x"}}"#).unwrap();
    assert_eq!(c.metadata["Owner"], "x");
}

#[test]
fn unknown_keys_ignored_or_refused() {
    let src = r#"{"name":"s","bogus":1,"inner":{"src":"a","nested_bogus":true}}"#;
    let o: Outer = lenient(src).unwrap();
    assert_eq!(o.name, "s");
    let (_, unknown) = from_slice_reporting::<Outer>(src.as_bytes()).unwrap();
    assert_eq!(unknown, ["bogus", "nested_bogus"]);
    let e = strict::<Outer>(src).unwrap_err();
    assert_eq!(e.to_string(), r#"json: unknown field "bogus""#);
    let e = strict::<Outer>(r#"{"inner":{"x\"y":1}}"#).unwrap_err();
    assert_eq!(e.to_string(), r#"json: unknown field "x\"y""#);
    // Map keys are never unknown.
    assert!(strict::<Outer>(r#"{"metadata":{"anything":"v"}}"#).is_ok());
}

#[test]
fn fields_nats_server_knows_are_not_unknown() {
    // nats-server 2.12 fields natsd does not act on.
    let c: StreamConfig = strict(
        r#"{"name":"S","no_ack":false,"allow_atomic":false,"consumer_limits":{},"pedantic":true}"#,
    )
    .unwrap();
    assert_eq!(c.name, "S");
    let r: CreateConsumerRequest = strict(
        r#"{"stream_name":"S","config":{"sample_freq":"","deliver_group":"q","direct":false},
            "pedantic":false}"#,
    )
    .unwrap();
    assert_eq!(r.stream_name, "S");
    let e = strict::<StreamConfig>(r#"{"name":"S","allow_everything":true}"#).unwrap_err();
    assert_eq!(e.to_string(), r#"json: unknown field "allow_everything""#);
}

#[test]
fn go_enums_refuse_null() {
    for (doc, want) in [
        (r#"{"retention":null}"#, r#"can not unmarshal "null""#),
        (r#"{"Storage":null}"#, r#"can not unmarshal "null""#),
        (r#"{"discard":null}"#, r#"can not unmarshal "null""#),
        (r#"{"compression":null}"#, "unknown compression algorithm"),
        (r#"{"persist_mode":null}"#, r#"can not unmarshal "null""#),
    ] {
        let e = lenient::<StreamConfig>(doc).unwrap_err();
        assert_eq!(e.to_string(), want, "{doc}");
    }
    for f in ["deliver_policy", "ack_policy", "replay_policy"] {
        let doc = format!(r#"{{"config":{{"{f}":null}}}}"#);
        let e = lenient::<CreateConsumerRequest>(&doc).unwrap_err();
        assert_eq!(e.to_string(), r#"can not unmarshal "null""#);
    }
    let e = lenient::<CreateConsumerRequest>(r#"{"action":null}"#).unwrap_err();
    assert_eq!(e.to_string(), "unknown consumer action: null");
    // Other strings take null as "not set".
    let r: CreateConsumerRequest =
        lenient(r#"{"stream_name":null,"config":{"durable_name":null,"filter_subject":null}}"#)
            .unwrap();
    assert!(r.config.unwrap().durable_name.is_none());
}

#[test]
fn numbers_are_as_strict_as_go() {
    // time.Duration and sizes: integers only, in range; no strings, fractions or exponents.
    for bad in [
        r#"{"max_msgs":"5"}"#,
        r#"{"max_msgs":1.5}"#,
        r#"{"max_msgs":1e9}"#,
        r#"{"max_msgs":9223372036854775808}"#,
        r#"{"flag":"true"}"#,
        r#"{"name":5}"#,
        r#"{"list":"a"}"#,
        r#"{"inner":[1,2]}"#,
        r#"{"metadata":[]}"#,
    ] {
        assert!(lenient::<Outer>(bad).is_err(), "{bad}");
    }
    assert!(lenient::<StreamConfig>(r#"{"max_age":"1s"}"#).is_err());
    let c: StreamConfig = lenient(r#"{"max_age":-1,"duplicate_window":120000000000}"#).unwrap();
    assert_eq!(c.max_age, -1);
    assert_eq!(c.duplicate_window, 120_000_000_000);
}

#[test]
fn documents_that_are_not_objects() {
    assert!(
        lenient::<Outer>("[]").is_err(),
        "Go refuses an array for a struct"
    );
    assert!(lenient::<Outer>("5").is_err());
    assert!(lenient::<Outer>("{} {}").is_err(), "one document only");
    let o: Outer = lenient(" null ").unwrap();
    assert_eq!(o.max_msgs, -1, "a null document is an empty one");
}

#[test]
fn jetstream_requests_with_client_nulls() {
    // What clients that send every optional field send.
    let n: NextRequest = lenient(
        r#"{"batch":10,"expires":null,"no_wait":null,"group":null,"min_pending":null,"id":null}"#,
    )
    .unwrap();
    assert_eq!(n.batch, 10);
    assert_eq!(n.expires, 0);
    let g: MsgGetRequest =
        lenient(r#"{"seq":null,"last_by_subj":"a","next_by_subj":null}"#).unwrap();
    assert_eq!(g.last_by_subj, "a");
    let l: ListRequest = lenient(r#"{"offset":null,"subject":null}"#).unwrap();
    assert_eq!((l.offset, l.subject), (0, None));
}

#[test]
fn api_strictness_is_scoped() {
    assert_eq!(api_unknown(), Unknown::Ignore);
    {
        let _s = ApiStrictness::enter(true);
        assert_eq!(api_unknown(), Unknown::Refuse);
        {
            let _l = ApiStrictness::enter(false);
            assert_eq!(api_unknown(), Unknown::Ignore);
        }
        assert_eq!(api_unknown(), Unknown::Refuse);
    }
    assert_eq!(api_unknown(), Unknown::Ignore);
}

#[test]
fn onto_defaults_like_a_filled_go_struct() {
    let base = [("flag", Value::Bool(true)), ("max_msgs", Value::from(7))];
    let o: Outer = from_slice_onto(b"null", &base, Unknown::Ignore).unwrap();
    assert!(o.flag);
    assert_eq!(o.max_msgs, 7);
    let o: Outer = from_slice_onto(
        br#"{"FLAG":false,"max_msgs":null,"flag":true,"Flag":false}"#,
        &base,
        Unknown::Ignore,
    )
    .unwrap();
    assert!(!o.flag, "the last key wins");
    assert_eq!(o.max_msgs, 7, "null leaves the starting value");
    assert!(from_slice_onto::<Outer>(b"5", &base, Unknown::Ignore).is_err());
    assert!(key_matches("MAX_Msgs", "max_msgs"));
    assert!(!key_matches("maxmsgs", "max_msgs"));
}

fn type_err<T: DeserializeOwned + fmt::Debug>(s: &str) -> String {
    lenient::<T>(s).unwrap_err().to_string()
}

#[test]
fn type_mismatches_in_go_words() {
    let cases = [
        (
            r#"{"max_msgs":"x"}"#,
            "json: cannot unmarshal string into Go struct field StreamConfig.max_msgs of type int64",
        ),
        (
            r#"{"max_msgs":true}"#,
            "json: cannot unmarshal bool into Go struct field StreamConfig.max_msgs of type int64",
        ),
        (
            r#"{"max_msgs":[1]}"#,
            "json: cannot unmarshal array into Go struct field StreamConfig.max_msgs of type int64",
        ),
        (
            r#"{"max_msg_size":2147483648}"#,
            "json: cannot unmarshal number 2147483648 into Go struct field StreamConfig.max_msg_size of type int32",
        ),
        (
            r#"{"name":5}"#,
            "json: cannot unmarshal number into Go struct field StreamConfig.name of type string",
        ),
        (
            r#"{"metadata":{"a":1}}"#,
            "json: cannot unmarshal number into Go struct field StreamConfig.metadata of type string",
        ),
        (
            r#"{"metadata":[]}"#,
            "json: cannot unmarshal array into Go struct field StreamConfig.metadata of type map[string]string",
        ),
        (
            r#"{"sources":[{"name":"a"},{"external":{"api":1}}]}"#,
            "json: cannot unmarshal number into Go struct field ExternalStream.sources.external.api of type string",
        ),
        (
            r#"{"mirror":"x"}"#,
            "json: cannot unmarshal string into Go struct field StreamConfig.mirror of type server.StreamSource",
        ),
        (
            r#"{"first_seq":-1}"#,
            "json: cannot unmarshal number -1 into Go struct field StreamConfig.first_seq of type uint64",
        ),
        (r#"{"retention":5}"#, r#"can not unmarshal "5""#),
        (r#"[1]"#, "json: cannot unmarshal array into Go value of type server.StreamConfig"),
    ];
    for (doc, want) in cases {
        assert_eq!(type_err::<StreamConfig>(doc), want, "{doc}");
    }
    assert_eq!(
        type_err::<CreateConsumerRequest>(r#"{"config":{"backoff":["1s"]}}"#),
        "json: cannot unmarshal string into Go struct field ConsumerConfig.config.backoff of type time.Duration"
    );
    assert_eq!(
        type_err::<CreateConsumerRequest>(r#"{"config":{"opt_start_time":5}}"#),
        "Time.UnmarshalJSON: input is not a JSON string"
    );
    assert_eq!(
        type_err::<MsgGetRequest>(r#"{"seq":1.5}"#),
        "json: cannot unmarshal number 1.5 into Go struct field MsgGetRequest.seq of type uint64"
    );
}

#[test]
fn invalid_utf8_becomes_one_replacement_per_byte() {
    let c: StreamConfig = from_slice(
        b"{\"name\":\"a\xffb\",\"description\":\"\xe2\x82x\"}",
        Unknown::Refuse,
    )
    .unwrap();
    assert_eq!(c.name, "a\u{fffd}b");
    assert_eq!(c.description.as_deref(), Some("\u{fffd}\u{fffd}x"));
    // Outside a string it is still not JSON.
    assert!(from_slice::<StreamConfig>(b"{\"name\":\"a\"\xff}", Unknown::Ignore).is_err());
}

#[test]
fn negative_durations_as_nats_server_takes_them() {
    use crate::jetstream::signed::NEGATIVE;
    let r: CreateConsumerRequest = lenient(
        r#"{"config":{"idle_heartbeat":-1,"inactive_threshold":-5,"max_expires":-1,"max_waiting":-1,
            "max_batch":-2,"max_bytes":-3,"priority_timeout":-4,"ack_wait":-5,"backoff":[1,-1]}}"#,
    )
    .unwrap();
    let c = r.config.unwrap();
    assert_eq!(
        (
            c.idle_heartbeat,
            c.inactive_threshold,
            c.max_expires,
            c.max_waiting
        ),
        (0, 0, 0, 0)
    );
    assert_eq!((c.max_batch, c.max_bytes, c.priority_timeout), (0, 0, 0));
    assert_eq!((c.ack_wait, c.backoff), (NEGATIVE, vec![1, NEGATIVE]));
    let s: StreamConfig = lenient(r#"{"duplicate_window":-1}"#).unwrap();
    assert_eq!(s.duplicate_window, NEGATIVE);
    // Past Go's int64 range: refused in Go's words.
    assert_eq!(
        type_err::<CreateConsumerRequest>(r#"{"config":{"ack_wait":9223372036854775808}}"#),
        "json: cannot unmarshal number 9223372036854775808 into Go struct field ConsumerConfig.config.ack_wait of type time.Duration"
    );
}
