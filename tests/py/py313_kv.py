"""nats-key-value (module nats.key_value): buckets, keys, revisions, history and watchers.
Usage and output: see py313_common.py."""

from datetime import timedelta

import nats.jetstream as jetstream
import nats.key_value as kvm
from nats.key_value import (
    BucketExistsError,
    BucketNotFoundError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValueConfig,
    KeyValueOp,
)

from py313_common import STEP, check, connect, expect, main, step, wait_until, within


async def open_bucket(url: str, **cfg):
    nc = await connect(url)
    js = jetstream.new(nc)
    kv = await within(kvm.create_key_value(js, KeyValueConfig(**cfg)), f"create bucket {cfg['bucket']}")
    return nc, js, kv


async def kv_basic(url: str) -> None:
    nc, js, kv = await open_bucket(url, bucket="cfg", history=5, ttl=timedelta(hours=1), description="settings")
    try:
        step("bucket status")
        st = await within(kv.status(), "status")
        check(st.bucket == "cfg" and st.history == 5, f"status {st.bucket} history {st.history}")
        check(st.ttl == timedelta(hours=1), f"ttl {st.ttl}")
        check(st.values == 0 and st.bytes == 0, f"empty {st.values} {st.bytes}")
        cfg = st.stream_info.config
        check(cfg.name == "KV_cfg" and cfg.subjects == ["$KV.cfg.>"], f"backing stream {cfg.name} {cfg.subjects}")
        check(cfg.max_msgs_per_subject == 5 and cfg.max_age == timedelta(hours=1), f"stream limits {cfg}")
        check(cfg.allow_rollup_hdrs and cfg.deny_delete and cfg.allow_direct, f"kv flags {cfg}")
        check(cfg.discard == "new", f"discard {cfg.discard}")

        step("bind, missing bucket, conflicting create")
        same = await within(kvm.key_value(js, "cfg"), "bind cfg")
        await expect(BucketNotFoundError, kvm.key_value(js, "nobucket"), "bind a missing bucket")
        await expect(BucketExistsError, kvm.create_key_value(js, KeyValueConfig(bucket="cfg", history=2)), "clash")

        step("put and get")
        r1 = await within(kv.put("a", b"1"), "put a")
        e = await within(same.get("a"), "get a")
        check(e.key == "a" and e.value == b"1" and e.revision == r1, f"entry {e}")
        check(e.operation == KeyValueOp.PUT and e.bucket == "cfg", f"entry {e}")
        await expect(KeyNotFoundError, kv.get("missing"), "get a missing key")
        r2 = await within(kv.put("dotted.key", b"d"), "put a dotted key")
        check(r2 == r1 + 1, f"revisions grow by one: {r1} {r2}")

        step("update with revision")
        r3 = await within(kv.update("a", b"2", r1), "update a at r1")
        check(r3 > r2, f"update revision {r3}")
        await expect(KeyExistsError, kv.update("a", b"3", r1), "update with a stale revision")
        check((await within(kv.get("a"), "get a")).value == b"2", "stale update changed nothing")

        step("get a revision")
        old = await within(kv.get("a", revision=r1), "get a at r1")
        check(old.value == b"1" and old.revision == r1, f"old revision {old}")
        await expect(KeyNotFoundError, kv.get("a", revision=r2), "revision of another key")

        step("create")
        rb = await within(kv.create("b", b"new"), "create b")
        await expect(KeyExistsError, kv.create("b", b"again"), "create an existing key")

        step("delete")
        await within(kv.delete("a"), "delete a")
        await expect(KeyNotFoundError, kv.get("a"), "get a deleted key")
        rc = await within(kv.create("a", b"back"), "create after delete")
        check((await within(kv.get("a"), "get a")).value == b"back", "create after delete")
        await expect(KeyExistsError, kv.delete("a", last_revision=rc - 1), "delete with a stale revision")
        await within(kv.delete("a", last_revision=rc), "delete with the current revision")

        step("purge")
        await within(kv.purge("b", last_revision=rb), "purge b")
        await expect(KeyNotFoundError, kv.get("b"), "get a purged key")
        info = await within(js.get_stream_info("KV_cfg", subjects_filter="$KV.cfg.b"), "b after purge")
        check(info.state.subjects == {"$KV.cfg.b": 1}, f"purge leaves one marker: {info.state.subjects}")

        step("status counts values")
        st = await within(kv.status(), "status")
        check(st.values > 0 and st.bytes > 0, f"status after writes {st.values} {st.bytes}")

        step("bucket names, list and delete")
        await within(kvm.create_key_value(js, KeyValueConfig(bucket="other", storage="memory")), "other bucket")
        names = sorted([n async for n in kvm.key_value_bucket_names(js)])
        check(names == ["cfg", "other"], f"bucket names {names}")
        statuses = [s async for s in kvm.key_value_buckets(js)]
        check(sorted(s.bucket for s in statuses) == ["cfg", "other"], f"buckets {statuses}")
        await within(kvm.delete_key_value(js, "other"), "delete bucket")
        await expect(BucketNotFoundError, kvm.key_value(js, "other"), "bind a deleted bucket")
        await expect(BucketNotFoundError, kvm.delete_key_value(js, "other"), "delete twice")

        step("update bucket")
        kv2 = await within(
            kvm.update_key_value(js, KeyValueConfig(bucket="cfg", history=10, ttl=timedelta(hours=1))), "update"
        )
        st = await within(kv2.status(), "status after update")
        check(st.history == 10, f"history after update {st.history}")
    finally:
        await nc.close()


async def kv_ttl(url: str) -> None:
    nc, js, kv = await open_bucket(url, bucket="short", history=1, ttl=timedelta(seconds=1), storage="memory")
    try:
        step("status shows the ttl")
        st = await within(kv.status(), "status")
        check(st.ttl == timedelta(seconds=1), f"ttl {st.ttl}")

        step("history 1 keeps only the latest value")
        # In a bucket without a TTL: on a loaded machine a second may pass between the puts
        # and the status.
        one = await within(kvm.create_key_value(js, KeyValueConfig(bucket="one", storage="memory")), "bucket")
        for v in (b"1", b"2", b"3"):
            await within(one.put("k", v), "put k")
        st = await within(one.status(), "status")
        check(st.values == 1 and st.history == 1, f"values with history 1: {st.values}")
        check((await within(one.get("k"), "get k")).value == b"3", "latest value kept")

        step("values expire after the ttl")
        await within(kv.put("gone", b"soon"), "put gone")

        async def expired() -> bool:
            try:
                await kv.get("gone")
                return False
            except KeyNotFoundError:
                return True

        await wait_until(expired, "value expired", timeout=STEP)
        st = await within(kv.status(), "status")
        check(st.values == 0, f"all values expired: {st.values}")
    finally:
        await nc.close()


async def kv_keys_history(url: str) -> None:
    nc, js, kv = await open_bucket(url, bucket="hist", history=3, storage="memory")
    try:
        step("keys of an empty bucket")
        keys = [k async for k in await within(kv.keys(), "keys of an empty bucket")]
        check(keys == [], f"no keys {keys}")

        step("keys skip deleted and purged keys")
        for k in ("a", "b", "c", "d.x", "d.y"):
            await within(kv.put(k, k.encode()), f"put {k}")
        await within(kv.delete("b"), "delete b")
        await within(kv.purge("c"), "purge c")
        keys = sorted([k async for k in await within(kv.keys(), "keys")])
        check(keys == ["a", "d.x", "d.y"], f"keys {keys}")
        keys = sorted([k async for k in await within(kv.keys("d.*"), "keys d.*")])
        check(keys == ["d.x", "d.y"], f"filtered keys {keys}")

        step("history of a key, capped by the bucket's history")
        for v in (b"a2", b"a3", b"a4"):
            await within(kv.put("a", v), "put a")
        hist = [e async for e in await within(kv.history("a"), "history a")]
        check([e.value for e in hist] == [b"a2", b"a3", b"a4"], f"history a {[e.value for e in hist]}")
        check([e.delta for e in hist] == [2, 1, 0], f"deltas {[e.delta for e in hist]}")
        check(all(e.operation == KeyValueOp.PUT for e in hist), "history ops")
        revs = [e.revision for e in hist]
        check(revs == sorted(revs), f"revisions ascend {revs}")

        step("history records the delete marker")
        hist = [e async for e in await within(kv.history("b"), "history b")]
        check([e.operation for e in hist] == [KeyValueOp.PUT, KeyValueOp.DELETE], f"history b {hist}")
        hist = [e async for e in await within(kv.history("c"), "history c")]
        check([e.operation for e in hist] == [KeyValueOp.PURGE], f"purge leaves only its marker: {hist}")
        hist = [e async for e in await within(kv.history("never"), "history of an unknown key")]
        check(hist == [], f"unknown key history {hist}")
    finally:
        await nc.close()


async def _no_consumers(js, stream: str) -> bool:
    return [n async for n in js.consumer_names(stream)] == []


async def next_entry(w, what: str):
    return await within(w.__anext__(), what)


async def kv_watch(url: str) -> None:
    nc, js, kv = await open_bucket(url, bucket="w", history=5, storage="memory")
    try:
        step("watch an empty bucket: the initial values are done at once")
        empty = await within(kv.watch_all(), "watch_all on an empty bucket")
        check(empty.at_eod(), "no initial values")

        step("live update reaches the empty-bucket watcher")
        await within(kv.put("first", b"1"), "put first")
        e = await next_entry(empty, "live update on the empty-bucket watcher")
        check(e.key == "first" and e.value == b"1" and e.operation == KeyValueOp.PUT, f"live {e}")
        await within(empty.stop(), "stop")

        step("watch_all: latest value per key, then the initial-values marker")
        await within(kv.put("a", b"a1"), "put a")
        await within(kv.put("a", b"a2"), "put a again")
        await within(kv.put("b.x", b"bx"), "put b.x")
        await within(kv.delete("first"), "delete first")
        w = await within(kv.watch_all(), "watch_all")
        check(not w.at_eod(), "initial values pending")
        initial = [e async for e in w.values()]
        check(w.at_eod(), "initial values done")
        got = sorted((e.key, e.value, e.operation) for e in initial)
        check(
            got == [("a", b"a2", KeyValueOp.PUT), ("b.x", b"bx", KeyValueOp.PUT), ("first", b"", KeyValueOp.DELETE)],
            f"initial values {got}",
        )
        check(initial[-1].delta == 0, f"last initial value has delta 0: {initial[-1]}")

        step("watch_all: live put, delete and purge")
        r = await within(kv.put("c", b"c1"), "put c")
        e = await next_entry(w, "live put")
        check((e.key, e.value, e.revision, e.operation) == ("c", b"c1", r, KeyValueOp.PUT), f"live put {e}")
        await within(kv.delete("a"), "delete a")
        e = await next_entry(w, "live delete")
        check((e.key, e.operation) == ("a", KeyValueOp.DELETE), f"live delete {e}")
        await within(kv.purge("b.x"), "purge b.x")
        e = await next_entry(w, "live purge")
        check((e.key, e.operation) == ("b.x", KeyValueOp.PURGE), f"live purge {e}")

        step("filtered watch")
        f = await within(kv.watch("d.*"), "watch d.*")
        check(f.at_eod(), "nothing under d.* yet")
        await within(kv.put("other", b"o"), "put outside the filter")
        await within(kv.put("d.1", b"d1"), "put d.1")
        e = await next_entry(f, "filtered live update")
        check(e.key == "d.1" and e.value == b"d1", f"filtered watch got {e}")
        e = await next_entry(w, "watch_all sees other")
        check(e.key == "other", f"watch_all {e}")
        e = await next_entry(w, "watch_all sees d.1")
        check(e.key == "d.1", f"watch_all {e}")

        step("include_history, ignore_deletes, updates_only, meta_only")
        h = await within(kv.watch("a", include_history=True), "watch a with history")
        got = [(e.value, e.operation) async for e in h.values()]
        check(got == [(b"a1", KeyValueOp.PUT), (b"a2", KeyValueOp.PUT), (b"", KeyValueOp.DELETE)], f"history {got}")
        nd = await within(kv.watch_all(ignore_deletes=True), "watch ignoring deletes")
        keys = sorted([e.key async for e in nd.values()])
        check(keys == ["c", "d.1", "other"], f"live keys without deletes {keys}")
        up = await within(kv.watch_all(updates_only=True), "updates only")
        check(up.at_eod(), "updates-only watcher has no initial values")
        meta = await within(kv.watch("c", meta_only=True), "meta only")
        e = await next_entry(meta, "meta-only initial value")
        check(e.key == "c" and e.value == b"", f"meta only {e}")
        await within(kv.put("c", b"c2"), "put c again")
        e = await next_entry(up, "updates-only live update")
        check(e.key == "c" and e.value == b"c2", f"updates only {e}")

        step("resume from a revision")
        rs = await within(kv.watch_all(resume_from_revision=r), "resume from the revision of c1")
        e = await next_entry(rs, "first resumed entry")
        check(e.key == "c" and e.revision == r, f"resumed {e}")

        for x in (w, f, h, nd, up, meta, rs):
            await within(x.stop(), "stop watcher")
        await wait_until(lambda: _no_consumers(js, "KV_w"), "watchers' consumers deleted")
    finally:
        await nc.close()


SCENARIOS = {
    "kv_basic": kv_basic,
    "kv_ttl": kv_ttl,
    "kv_keys_history": kv_keys_history,
    "kv_watch": kv_watch,
}

if __name__ == "__main__":
    main(SCENARIOS)
