//! Message schedules through [`JetStream`] (Go 2.12, ADR-51).

use serde_json::{json, Value};

use super::super::api::rfc3339;
use super::super::service::JetStream;
use super::super::store::MemDisk;
use super::features_tests::{create, js_on, msgs, put, Msg, SEC, T0};

fn code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

fn stream(js: &mut JetStream) {
    let v = create(
        js,
        json!({"name": "S", "subjects": ["s.>"], "allow_msg_schedules": true,
               "allow_msg_ttl": true}),
    );
    assert_eq!(code(&v), 0, "{v}");
    assert_eq!(v["config"]["allow_msg_schedules"], true);
    assert_eq!(v["config"]["allow_rollup_hdrs"], true);
}

fn hdr(m: &Msg, name: &str) -> Option<String> {
    m.2.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn on(js: &JetStream, subj: &str) -> Vec<Msg> {
    msgs(js, "S").into_iter().filter(|m| m.1 == subj).collect()
}

#[test]
fn an_at_schedule_publishes_once_then_goes() {
    let disk = MemDisk::new(1);
    let mut js = js_on(&disk);
    stream(&mut js);
    let at = format!("@at {}", rfc3339(T0 + 5 * SEC));
    let a = put(
        &mut js,
        "s.sched",
        &[
            ("Nats-Schedule", &at),
            ("Nats-Schedule-Target", "s.out"),
            ("X", "1"),
        ],
        "hello",
        T0,
    )
    .unwrap();
    assert_eq!(a["seq"], 1, "{a}");
    assert_eq!(js.next_deadline(), Some(T0 + 5 * SEC));
    // Survives a restart: the timer is rebuilt from the store.
    drop(js);
    let mut js = js_on(&disk);
    assert_eq!(js.next_deadline(), Some(T0 + 5 * SEC));
    js.tick(T0 + 4 * SEC);
    assert!(on(&js, "s.out").is_empty());
    js.tick(T0 + 5 * SEC);
    js.commit(T0 + 5 * SEC);
    let out = on(&js, "s.out");
    assert_eq!(out.len(), 1, "{:?}", msgs(&js, "S"));
    assert_eq!(out[0].3, "hello");
    assert_eq!(hdr(&out[0], "Nats-Scheduler").as_deref(), Some("s.sched"));
    assert_eq!(hdr(&out[0], "Nats-Schedule-Next").as_deref(), Some("purge"));
    assert_eq!(hdr(&out[0], "X").as_deref(), Some("1"));
    assert_eq!(hdr(&out[0], "Nats-Schedule"), None);
    // The one-off schedule is gone, and nothing fires again.
    assert!(on(&js, "s.sched").is_empty());
    assert_eq!(js.next_deadline(), None);
}

#[test]
fn an_every_schedule_repeats_with_its_ttl() {
    let mut js = js_on(&MemDisk::new(2));
    stream(&mut js);
    put(
        &mut js,
        "s.tick",
        &[
            ("Nats-Schedule", "@every 2s"),
            ("Nats-Schedule-Target", "s.out"),
            ("Nats-Schedule-TTL", "1m"),
        ],
        "tick",
        T0,
    );
    js.tick(T0 + 2 * SEC);
    js.tick(T0 + 4 * SEC);
    js.commit(T0 + 4 * SEC);
    let out = on(&js, "s.out");
    assert_eq!(out.len(), 2, "{:?}", msgs(&js, "S"));
    assert_eq!(hdr(&out[0], "Nats-TTL").as_deref(), Some("1m"));
    assert_eq!(
        hdr(&out[0], "Nats-Schedule-Next"),
        Some(rfc3339(T0 + 4 * SEC))
    );
    assert_eq!(on(&js, "s.tick").len(), 1);
    assert_eq!(js.next_deadline(), Some(T0 + 6 * SEC));
}

#[test]
fn schedule_refusals() {
    let mut js = js_on(&MemDisk::new(3));
    create(&mut js, json!({"name": "P", "subjects": ["p.>"]}));
    let v = put(
        &mut js,
        "p.s",
        &[
            ("Nats-Schedule", "@every 1m"),
            ("Nats-Schedule-Target", "p.o"),
        ],
        "",
        T0,
    )
    .unwrap();
    assert_eq!(code(&v), 10188, "{v}");
    stream(&mut js);
    type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>, u64);
    let cases: [Case<'_>; 6] = [
        ("@every 100ms", "s.o", None, 10189),
        ("@cron", "s.o", None, 10189),
        ("@every 1m", "s.sched", None, 10190),
        ("@every 1m", "elsewhere", None, 10190),
        (
            "@every 1m",
            "s.o",
            Some(("Nats-Schedule-TTL", "soon")),
            10191,
        ),
        (
            "@every 1m",
            "s.o",
            Some(("Nats-Schedule-Rollup", "all")),
            10192,
        ),
    ];
    for (pattern, target, extra, want) in cases {
        let mut h = vec![("Nats-Schedule", pattern), ("Nats-Schedule-Target", target)];
        h.extend(extra);
        let v = put(&mut js, "s.sched", &h, "", T0).unwrap();
        assert_eq!(code(&v), want, "{h:?}: {v}");
    }
    // Config rules.
    create(&mut js, json!({"name": "O", "subjects": ["o"]}));
    let v = create(
        &mut js,
        json!({"name": "M", "mirror": {"name": "O"}, "allow_msg_schedules": true}),
    );
    assert_eq!(code(&v), 10186, "{v}");
    let v = create(
        &mut js,
        json!({"name": "Q", "sources": [{"name": "O"}], "allow_msg_schedules": true}),
    );
    assert_eq!(code(&v), 10187, "{v}");
}
