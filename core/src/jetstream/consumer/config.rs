//! Consumer config: Go's defaults and validation (Go: server/consumer.go
//! setConsumerConfigDefaults + checkConsumerCfg), and the RFC 3339 times configs carry.

use super::super::api::{err, ApiError, ConsumerConfig};
use super::super::signed::NEGATIVE;
use super::super::store::UnixNanos;
use crate::subject;

/// Go's default ack wait (30s).
pub const DEFAULT_ACK_WAIT: u64 = 30_000_000_000;
/// Go's default max ack pending.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// Go's default max waiting pull requests.
pub const DEFAULT_MAX_WAITING: u64 = 512;
/// Go: JsDeleteWaitTimeDefault — an ephemeral without `inactive_threshold` goes after 5s.
pub const DEFAULT_EPHEMERAL_THRESHOLD: u64 = 5_000_000_000;

fn policy(t: String) -> ApiError {
    ApiError::new(400, 10094, t)
}

fn bad_start(dp: &str, start: &str) -> ApiError {
    policy(format!(
        "consumer delivery policy is deliver {dp}, but optional start {start} is also set"
    ))
}

fn not_set(dp: &str, what: &str) -> ApiError {
    policy(format!(
        "consumer delivery policy is deliver {dp}, but optional {what} is not set"
    ))
}

/// The filters a config names (`filter_subject` or `filter_subjects`); empty: everything.
pub fn filters_of(c: &ConsumerConfig) -> Vec<String> {
    if !c.filter_subjects.is_empty() {
        return c.filter_subjects.clone();
    }
    if c.filter_subject.is_empty() || c.filter_subject == ">" {
        return Vec::new();
    }
    vec![c.filter_subject.clone()]
}

/// Fills in Go's defaults and validates (Go: setConsumerConfigDefaults + checkConsumerCfg,
/// in Go's order so the first error reported is Go's).
pub fn check_config(
    mut c: ConsumerConfig,
    stream_subjects: &[String],
) -> Result<ConsumerConfig, ApiError> {
    let push = c.deliver_subject.is_some();
    if c.deliver_policy.is_empty() {
        c.deliver_policy = "all".to_owned();
    }
    if c.ack_policy.is_empty() {
        // Go: AckNone is the zero value, for pull consumers too (clients always send one).
        c.ack_policy = "none".to_owned();
    }
    if c.replay_policy.is_empty() {
        c.replay_policy = "instant".to_owned();
    }
    match c.ack_policy.as_str() {
        "none" | "all" | "explicit" | FLOW_CONTROL => {}
        _ => return Err(ApiError::new(400, 10181, "consumer ack policy invalid")),
    }
    match c.replay_policy.as_str() {
        "instant" | "original" => {}
        _ => return Err(ApiError::new(400, 10182, "consumer replay policy invalid")),
    }
    // Go 2.14: negative ack waits are refused (other negative durations count as 0, see
    // `signed`).
    if c.backoff.contains(&NEGATIVE) {
        return Err(ApiError::new(
            400,
            10184,
            "consumer backoff needs to be positive",
        ));
    }
    if c.ack_wait == NEGATIVE {
        return Err(ApiError::new(
            400,
            10183,
            "consumer ack wait needs to be positive",
        ));
    }
    let acks = c.ack_policy != "none";
    let ack_fc = c.ack_policy == FLOW_CONTROL;
    if !push && c.max_waiting == 0 {
        c.max_waiting = DEFAULT_MAX_WAITING;
    }
    // Go: only `explicit` and `all` get the default ack wait; `flow_control` has no timer.
    if c.ack_wait == 0 && acks && !ack_fc {
        c.ack_wait = DEFAULT_ACK_WAIT;
    }
    if c.max_deliver == 0 {
        c.max_deliver = -1;
    }
    if let Some(first) = c.backoff.first() {
        c.ack_wait = *first;
    }
    if acks && c.max_ack_pending == 0 {
        c.max_ack_pending = DEFAULT_MAX_ACK_PENDING;
    }
    if ack_fc {
        // Go (not pedantic): flow control on, heartbeats at the sourcing health interval.
        c.flow_control = true;
        c.idle_heartbeat = FLOW_CONTROL_HEARTBEAT;
        check_ack_flow_control(&c)?;
    }
    if !c.backoff.is_empty() && c.max_deliver <= c.backoff.len() as i64 {
        return Err(ApiError::new(
            400,
            10116,
            "max deliver is required to be > length of backoff values",
        ));
    }
    if let Some(d) = &c.deliver_subject {
        if d.contains(['*', '>']) {
            return Err(ApiError::new(
                400,
                10079,
                "consumer deliver subject has wildcards",
            ));
        }
        if !subject::is_valid_literal_subject(d.as_bytes()) {
            return Err(ApiError::new(
                400,
                10112,
                "invalid push consumer deliver subject",
            ));
        }
        if c.max_waiting != 0 {
            return Err(ApiError::new(
                400,
                10080,
                "consumer in push mode can not set max waiting",
            ));
        }
        if c.max_ack_pending > 0 && !acks {
            return Err(ApiError::new(
                400,
                10082,
                "consumer requires ack policy for max ack pending",
            ));
        }
        if c.idle_heartbeat > 0 && c.idle_heartbeat < 100_000_000 {
            return Err(ApiError::new(
                400,
                10083,
                "consumer idle heartbeat needs to be >= 100ms",
            ));
        }
    } else {
        if c.rate_limit_bps > 0 {
            return Err(ApiError::new(
                400,
                10086,
                "consumer in pull mode can not have rate limit set",
            ));
        }
        if c.idle_heartbeat > 0 {
            return Err(ApiError::new(
                400,
                10088,
                "consumer idle heartbeat requires a push based consumer",
            ));
        }
        if c.flow_control {
            return Err(ApiError::new(
                400,
                10089,
                "consumer flow control requires a push based consumer",
            ));
        }
        if c.max_expires != 0 && c.max_expires < 1_000_000 {
            return Err(ApiError::new(
                400,
                10115,
                "consumer max request expires needs to be >= 1ms",
            ));
        }
    }
    check_filters(&c)?;
    check_start(&c)?;
    if c.flow_control && c.idle_heartbeat == 0 {
        return Err(ApiError::new(
            400,
            10108,
            "consumer with flow control also needs heartbeats",
        ));
    }
    if let Some(p) = &c.pause_until {
        parse_time(p).ok_or_else(|| err::invalid_json("bad pause_until time"))?;
    }
    if c.durable_name.is_none() && c.inactive_threshold == 0 {
        c.inactive_threshold = DEFAULT_EPHEMERAL_THRESHOLD;
    }
    super::priority::check(&mut c)?;
    filter_subset(&c, stream_subjects)?;
    Ok(c)
}

/// Go 2.14 (ADR-60): the ack policy a durable mirror or source reads through. It acks like
/// `all`, but only from the sourcing stream's flow-control replies, never by `$JS.ACK`.
pub const FLOW_CONTROL: &str = "flow_control";
/// Go: `sourceHealthHB`, the only heartbeat `flow_control` takes (1s).
pub const FLOW_CONTROL_HEARTBEAT: u64 = 1_000_000_000;

/// Go: checkConsumerCfg, the `AckFlowControl` block (in its order).
fn check_ack_flow_control(c: &ConsumerConfig) -> Result<(), ApiError> {
    if c.deliver_subject.is_none() {
        return Err(ApiError::new(
            400,
            10218,
            "flow control ack policy requires a push based consumer",
        ));
    }
    if !c.flow_control {
        return Err(ApiError::new(
            400,
            10219,
            "flow control ack policy requires flow control",
        ));
    }
    if c.idle_heartbeat != FLOW_CONTROL_HEARTBEAT {
        return Err(err::stream_invalid_config(
            "flow control ack policy heartbeat needs to be 1s",
        ));
    }
    if c.max_ack_pending <= 0 {
        return Err(ApiError::new(
            400,
            10220,
            "flow control ack policy requires max ack pending",
        ));
    }
    if c.ack_wait != 0 || !c.backoff.is_empty() {
        return Err(ApiError::new(
            400,
            10221,
            "flow control ack policy requires unset ack wait",
        ));
    }
    if c.max_deliver > 0 {
        return Err(ApiError::new(
            400,
            10222,
            "flow control ack policy requires unset max deliver",
        ));
    }
    Ok(())
}

/// What an update of an existing consumer may not change (Go: checkNewConsumerConfig, in
/// its order). `bound`: the current deliver subject has a listener.
pub fn check_update(
    old: &ConsumerConfig,
    new: &ConsumerConfig,
    bound: bool,
) -> Result<(), ApiError> {
    if old == new {
        return Ok(());
    }
    let fixed = |what: &str| Err(err::consumer_create(&format!("{what} can not be updated")));
    if old.deliver_policy != new.deliver_policy {
        return fixed("deliver policy");
    }
    if old.mem_storage != new.mem_storage {
        return fixed("storage type");
    }
    if old.opt_start_seq != new.opt_start_seq {
        return fixed("start sequence");
    }
    let start = |c: &ConsumerConfig| c.opt_start_time.as_deref().and_then(parse_time);
    if start(old) != start(new) {
        return fixed("start time");
    }
    if old.ack_policy != new.ack_policy {
        return fixed("ack policy");
    }
    if old.replay_policy != new.replay_policy {
        return fixed("replay policy");
    }
    if old.idle_heartbeat != new.idle_heartbeat {
        return fixed("heart beats");
    }
    if old.flow_control != new.flow_control {
        return fixed("flow control");
    }
    if old.deliver_subject != new.deliver_subject {
        if old.deliver_subject.is_none() {
            return Err(err::consumer_create(
                "can not update pull consumer to push based",
            ));
        }
        if new.deliver_subject.is_none() {
            return Err(err::consumer_create(
                "can not update push consumer to pull based",
            ));
        }
        if bound {
            return Err(err::consumer_name_exist());
        }
    }
    if old.max_waiting != new.max_waiting {
        return fixed("max waiting");
    }
    Ok(())
}

/// Go 2.10: one of `filter_subject`/`filter_subjects`, none empty, none overlapping.
fn check_filters(c: &ConsumerConfig) -> Result<(), ApiError> {
    if !c.filter_subject.is_empty() && !c.filter_subjects.is_empty() {
        return Err(ApiError::new(
            400,
            10136,
            "consumer cannot have both FilterSubject and FilterSubjects specified",
        ));
    }
    if c.filter_subjects.iter().any(String::is_empty) {
        return Err(ApiError::new(
            400,
            10139,
            "consumer filter in FilterSubjects cannot be empty",
        ));
    }
    let fs = filters_of(c);
    for (i, a) in fs.iter().enumerate() {
        if !subject::is_valid_subject(a.as_bytes()) {
            return Err(err::stream_invalid_config("invalid subject"));
        }
        for (j, b) in fs.iter().enumerate() {
            if i != j && subject::is_subset(a.as_bytes(), b.as_bytes()) {
                return Err(ApiError::new(
                    400,
                    10138,
                    "consumer subject filters cannot overlap",
                ));
            }
        }
    }
    Ok(())
}

/// Go: the deliver policy and its optional start position must agree.
fn check_start(c: &ConsumerConfig) -> Result<(), ApiError> {
    let seq = c.opt_start_seq > 0;
    let time = c.opt_start_time.is_some();
    let (dp, name) = match c.deliver_policy.as_str() {
        "all" => ("all", "all"),
        "last" => ("last", "last"),
        "new" => ("new", "new"),
        "last_per_subject" => ("last_per_subject", "last per subject"),
        "by_start_sequence" => ("by_start_sequence", "by start sequence"),
        "by_start_time" => ("by_start_time", "by start time"),
        _ => return Err(policy("invalid deliver policy".to_owned())),
    };
    match dp {
        "by_start_sequence" => {
            if !seq {
                return Err(not_set(name, "start sequence"));
            }
            if time {
                return Err(bad_start(name, "time"));
            }
        }
        "by_start_time" => {
            if !time {
                return Err(not_set(name, "start time"));
            }
            if seq {
                return Err(bad_start(name, "start sequence"));
            }
        }
        _ => {
            if seq {
                return Err(bad_start(name, "sequence"));
            }
            if time {
                return Err(bad_start(name, "time"));
            }
            if dp == "last_per_subject" && filters_of(c).is_empty() {
                return Err(not_set(name, "filter subject"));
            }
        }
    }
    if let Some(t) = &c.opt_start_time {
        parse_time(t).ok_or_else(|| err::invalid_json("bad opt_start_time"))?;
    }
    Ok(())
}

/// Go 2.9: a filter must be within the stream's subjects.
fn filter_subset(c: &ConsumerConfig, stream_subjects: &[String]) -> Result<(), ApiError> {
    for f in filters_of(c) {
        let ok = stream_subjects.iter().any(|s| {
            subject::is_subset(f.as_bytes(), s.as_bytes())
                || subject::overlaps(f.as_bytes(), s.as_bytes())
        });
        if !ok {
            return Err(err::filter_not_subset());
        }
    }
    Ok(())
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 time (`2024-01-02T03:04:05.123Z`, or with a `+hh:mm` offset) to Unix
/// nanoseconds; Go's zero time and anything before 1970 give 0.
pub fn parse_time(s: &str) -> Option<UnixNanos> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = f[..n].parse::<i64>().ok()? * 10i64.pow(9 - n as u32);
        rest = &f[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(&o[..1], "+" | "-") && &o[3..4] == ":" => {
            let v = o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    // Before 1970 (Go's zero time) is 0; past 2554 saturates.
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    Some(u64::try_from(ns.max(0)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: serde_json::Value) -> ConsumerConfig {
        serde_json::from_value(v).unwrap()
    }

    fn check(v: serde_json::Value) -> Result<ConsumerConfig, ApiError> {
        check_config(cfg(v), &["orders.>".to_owned()])
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000_123_000_000)
        );
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2999-01-01T00:00:00Z"), Some(u64::MAX));
        let ns = 1_700_000_000_123_456_789;
        assert_eq!(parse_time(&super::super::super::api::rfc3339(ns)), Some(ns));
    }

    #[test]
    fn deliver_policy_errors_are_gos() {
        let e = check(serde_json::json!({"deliver_policy": "by_start_time"})).unwrap_err();
        assert_eq!(e.err_code, 10094);
        assert_eq!(
            e.description,
            "consumer delivery policy is deliver by start time, but optional start time is not set"
        );
        let e =
            check(serde_json::json!({"deliver_policy": "all", "opt_start_seq": 3})).unwrap_err();
        assert_eq!(
            e.description,
            "consumer delivery policy is deliver all, but optional start sequence is also set"
        );
        let e = check(serde_json::json!({"deliver_policy": "last_per_subject"})).unwrap_err();
        assert_eq!(
            e.description,
            "consumer delivery policy is deliver last per subject, but optional filter subject is not set"
        );
        let ok = check(serde_json::json!({
            "deliver_policy": "by_start_time", "opt_start_time": "2024-01-01T00:00:00Z"
        }));
        assert!(ok.is_ok());
    }

    #[test]
    fn backoff_needs_max_deliver() {
        let e = check(serde_json::json!({"backoff": [1_000_000_000u64, 2_000_000_000u64]}))
            .unwrap_err();
        assert_eq!(e.err_code, 10116);
        let c = check(serde_json::json!({
            "backoff": [1_000_000_000u64, 2_000_000_000u64], "max_deliver": 3
        }))
        .unwrap();
        assert_eq!(c.ack_wait, 1_000_000_000);
    }

    #[test]
    fn filters_and_push_pull_rules() {
        let e = check(
            serde_json::json!({"filter_subject": "orders.a", "filter_subjects": ["orders.b"]}),
        )
        .unwrap_err();
        assert_eq!(e.err_code, 10136);
        let e =
            check(serde_json::json!({"filter_subjects": ["orders.>", "orders.a"]})).unwrap_err();
        assert_eq!(e.err_code, 10138);
        let e = check(serde_json::json!({"filter_subjects": [""]})).unwrap_err();
        assert_eq!(e.err_code, 10139);
        let e = check(serde_json::json!({"rate_limit_bps": 100})).unwrap_err();
        assert_eq!(e.err_code, 10086);
        let e = check(serde_json::json!({"deliver_subject": "d", "max_waiting": 3})).unwrap_err();
        assert_eq!(e.err_code, 10080);
        let e = check(serde_json::json!({"deliver_subject": "d.*"})).unwrap_err();
        assert_eq!(e.err_code, 10079);
        let c = check(serde_json::json!({"deliver_subject": "d"})).unwrap();
        assert_eq!(c.ack_wait, 0, "Go leaves ack_wait unset with ack none");
        assert_eq!(c.inactive_threshold, DEFAULT_EPHEMERAL_THRESHOLD);
        let c = check(serde_json::json!({"durable_name": "D"})).unwrap();
        assert_eq!(c.inactive_threshold, 0);
    }
}
