//! The pipelined group commit (`commit_begin` / `CommitJobs::run` / `commit_finish`) over a
//! [`MemDisk`] whose fsyncs come back as jobs, as the production disk's do.

use serde_json::{json, Value};

use super::consumer::Delivery;
use super::factory::DiskFactory;
use super::service::{JetStream, JsSettings};
use super::store::{CrashMode, Disk, DiskError, DiskOp, MemDisk, SyncJob, SyncPolicy};

const T0: u64 = 1_700_000_000_000_000_000;

/// A [`MemDisk`] that defers its fsyncs to a job, like `FsDisk`.
#[derive(Debug, Clone)]
struct Deferred(MemDisk);

impl Disk for Deferred {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        self.0.create(path)
    }
    fn append(&mut self, path: &str, data: &[u8]) -> Result<u64, DiskError> {
        self.0.append(path, data)
    }
    fn read_at(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        self.0.read_at(path, offset, len)
    }
    fn len(&self, path: &str) -> Result<u64, DiskError> {
        self.0.len(path)
    }
    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        self.0.sync(path)
    }
    fn sync_later(&mut self, path: &str) -> Result<Option<SyncJob>, DiskError> {
        let (mut disk, path) = (self.0.clone(), path.to_owned());
        Ok(Some(Box::new(move || disk.sync(&path))))
    }
    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.0.truncate(path, len)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.0.rename(from, to)
    }
    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.0.remove(path)
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, DiskError> {
        self.0.list(dir)
    }
}

fn js_on(disk: &MemDisk) -> JetStream {
    let d = Deferred(disk.clone());
    let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always).with_block_size(4096);
    JetStream::new(
        JsSettings {
            server_name: "S1".into(),
            ..JsSettings::default()
        },
        Box::new(f),
        1,
    )
}

fn body(d: &Delivery) -> Value {
    serde_json::from_slice(&d.payload).unwrap()
}

fn api(js: &mut JetStream, subject: &str, req: &Value) -> Value {
    let out = js.api(
        subject,
        Some("_INBOX.r"),
        &serde_json::to_vec(req).unwrap(),
        T0,
    );
    body(&out[0])
}

fn publish(js: &mut JetStream, n: usize, tag: &str) {
    for i in 0..n {
        let out = js.publish(
            "ev.a",
            Some("_INBOX.ack"),
            b"",
            format!("{tag}{i}").as_bytes(),
            T0,
        );
        assert!(out.is_empty(), "no ack before the sync");
    }
}

fn acked(out: &[Delivery]) -> Vec<u64> {
    out.iter()
        .filter(|d| d.subject == "_INBOX.ack")
        .filter_map(|d| body(d)["seq"].as_u64())
        .collect()
}

#[test]
fn acks_wait_for_the_jobs_and_cover_only_what_they_synced() {
    let disk = MemDisk::new(4);
    let mut js = js_on(&disk);
    api(
        &mut js,
        "$JS.API.STREAM.CREATE.EV",
        &json!({"name": "EV", "subjects": ["ev.>"]}),
    );
    publish(&mut js, 3, "a");
    let (out, jobs) = js.commit_begin(T0);
    assert!(acked(&out).is_empty());
    let jobs = jobs.expect("the file store defers its fsync");
    // Stored while the fsync runs: not covered by it.
    publish(&mut js, 2, "b");
    let done = std::thread::spawn(move || jobs.run()).join().unwrap();
    assert_eq!(acked(&js.commit_finish(T0, done)), [1, 2, 3]);
    let (out, jobs) = js.commit_begin(T0);
    assert!(acked(&out).is_empty());
    assert_eq!(acked(&js.commit_finish(T0, jobs.unwrap().run())), [4, 5]);
    // Nothing written since: nothing to sync.
    let (out, jobs) = js.commit_begin(T0);
    assert!(out.is_empty() && jobs.is_none());
}

/// Power lost while the jobs run: nothing of the batch was acknowledged, and what an earlier
/// finished batch acknowledged survives.
#[test]
fn a_crash_in_flight_loses_nothing_acknowledged() {
    let disk = MemDisk::new(5);
    let mut js = js_on(&disk);
    api(
        &mut js,
        "$JS.API.STREAM.CREATE.EV",
        &json!({"name": "EV", "subjects": ["ev.>"]}),
    );
    publish(&mut js, 4, "a");
    let (_, jobs) = js.commit_begin(T0);
    assert_eq!(
        acked(&js.commit_finish(T0, jobs.unwrap().run())),
        [1, 2, 3, 4]
    );
    publish(&mut js, 4, "b");
    let (out, _jobs_never_run) = js.commit_begin(T0);
    assert!(acked(&out).is_empty());
    drop(js);
    disk.crash(CrashMode::Torn);
    let js = js_on(&disk);
    let store = &js.stream("EV").unwrap().store;
    for seq in 1..=4 {
        assert_eq!(
            store.load_msg(seq).unwrap().payload,
            format!("a{}", seq - 1).as_bytes()
        );
    }
}

/// A failed fsync answers the batch's publishes with an error and freezes the stream.
#[test]
fn a_failed_job_answers_errors() {
    let disk = MemDisk::new(6);
    let mut js = js_on(&disk);
    api(
        &mut js,
        "$JS.API.STREAM.CREATE.EV",
        &json!({"name": "EV", "subjects": ["ev.>"]}),
    );
    publish(&mut js, 2, "a");
    let (_, jobs) = js.commit_begin(T0);
    disk.fail_next(DiskOp::Sync, DiskError::Io("EIO".into()));
    let out = js.commit_finish(T0, jobs.unwrap().run());
    assert_eq!(out.len(), 2);
    for d in &out {
        assert!(
            body(d)["error"]["err_code"].as_u64().is_some(),
            "{:?}",
            body(d)
        );
    }
    let out = js.publish("ev.a", Some("_INBOX.ack"), b"", b"late", T0);
    let (more, _) = js.commit_begin(T0);
    let answers: Vec<Value> = out.iter().chain(&more).map(body).collect();
    assert!(
        answers.iter().any(|v| v["error"].is_object()),
        "a frozen stream refuses: {answers:?}"
    );
}

/// Consumers see a batch only once its fsync is done.
#[test]
fn consumers_get_messages_after_the_sync() {
    let disk = MemDisk::new(7);
    let mut js = js_on(&disk);
    api(
        &mut js,
        "$JS.API.STREAM.CREATE.EV",
        &json!({"name": "EV", "subjects": ["ev.>"]}),
    );
    let v = api(
        &mut js,
        "$JS.API.CONSUMER.CREATE.EV.P",
        &json!({"stream_name": "EV", "config": {"durable_name": "P",
                "deliver_subject": "push.p", "ack_policy": "none"}}),
    );
    assert!(v["error"].is_null(), "{v}");
    js.set_push_active("EV", "P", true, T0);
    publish(&mut js, 3, "a");
    let (out, jobs) = js.commit_begin(T0);
    assert!(
        !out.iter().any(|d| d.subject == "push.p"),
        "delivered before the sync"
    );
    let out = js.commit_finish(T0, jobs.unwrap().run());
    assert_eq!(out.iter().filter(|d| d.subject == "push.p").count(), 3);
}

/// Two commits in flight finish in order, each acknowledging what it covered.
#[test]
fn two_batches_in_flight_finish_in_order() {
    let disk = MemDisk::new(8);
    let mut js = js_on(&disk);
    api(
        &mut js,
        "$JS.API.STREAM.CREATE.EV",
        &json!({"name": "EV", "subjects": ["ev.>"]}),
    );
    publish(&mut js, 2, "a");
    let (_, first) = js.commit_begin(T0);
    publish(&mut js, 3, "b");
    let (out, second) = js.commit_begin(T0);
    assert!(acked(&out).is_empty());
    let (first, second) = (first.unwrap().run(), second.unwrap().run());
    assert_eq!(acked(&js.commit_finish(T0, first)), [1, 2]);
    assert_eq!(acked(&js.commit_finish(T0, second)), [3, 4, 5]);
    // Every block is clean again: a crash now keeps all five.
    drop(js);
    disk.crash(CrashMode::LoseUnsynced);
    let js = js_on(&disk);
    assert_eq!(js.stream("EV").unwrap().store.state().msgs, 5);
}

/// Two commits in flight, the older one's fsync fails: the newer one's publishes come after
/// a hole the disk may have lost, so they are refused too, even though their own fsync
/// (which may not see the older failure, as Linux reports one only once) succeeded.
#[test]
fn a_failed_older_sync_refuses_the_newer_batch() {
    let disk = MemDisk::new(9);
    let mut js = js_on(&disk);
    api(
        &mut js,
        "$JS.API.STREAM.CREATE.EV",
        &json!({"name": "EV", "subjects": ["ev.>"]}),
    );
    publish(&mut js, 2, "a");
    let (_, first) = js.commit_begin(T0);
    publish(&mut js, 3, "b");
    let (_, second) = js.commit_begin(T0);
    disk.fail_next(DiskOp::Sync, DiskError::Io("EIO".into()));
    let first = first.unwrap().run();
    let second = second.unwrap().run();
    // The failure answers every publish still waiting, the newer batch's too.
    let out = js.commit_finish(T0, first);
    assert_eq!(out.len(), 5);
    for d in &out {
        assert!(
            body(d)["error"]["err_code"].as_u64().is_some(),
            "{:?}",
            body(d)
        );
    }
    let out = js.commit_finish(T0, second);
    assert!(
        acked(&out).is_empty(),
        "acked after a failed sync: {:?}",
        acked(&out)
    );
    assert!(js.stream("EV").unwrap().store.synced_through() < 3);
}
