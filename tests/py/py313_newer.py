"""Features of nats-server 2.10 and 2.11 that the Python 3.13 clients use: multiple consumer
filter subjects, metadata, compression, consumer pause, per-message TTL and subject delete
markers. nats-server 2.9.10 lacks them, so these scenarios run against natsd only.
Usage and output: see py313_common.py."""

import time
from datetime import timedelta

import nats.jetstream as jetstream
import nats.key_value as kvm
from nats.key_value import KeyNotFoundError, KeyValueConfig, KeyValueOp

from py313_common import STEP, check, connect, main, step, wait_until, within


async def multi_filter(url: str) -> None:
    nc = await connect(url)
    js = jetstream.new(nc)
    try:
        step("stream and a consumer with two filter subjects (2.10)")
        stream = await within(js.create_stream(name="MF", subjects=["mf.>"], storage="memory"), "create MF")
        for subj in ("mf.a", "mf.b", "mf.c", "mf.a", "mf.c", "mf.b"):
            await within(js.publish(subj, subj.encode()), f"publish {subj}")
        c = await within(
            stream.create_consumer(name="ab", ack_policy="none", filter_subjects=["mf.a", "mf.b"]), "create ab"
        )
        check(c.info.config.filter_subjects == ["mf.a", "mf.b"], f"filter_subjects {c.info.config}")
        check(c.info.num_pending == 4, f"num_pending {c.info.num_pending}")
        msgs = [m async for m in await c.fetch(max_messages=10, max_wait=0.5)]
        check([m.subject for m in msgs] == ["mf.a", "mf.b", "mf.a", "mf.b"], f"filtered {[m.subject for m in msgs]}")

        step("ordered consumer with two filter subjects")
        oc = await within(stream.ordered_consumer(filter_subjects=["mf.b", "mf.c"]), "ordered b+c")
        msgs = [m async for m in await oc.fetch(max_messages=4, max_wait=STEP)]
        check([m.subject for m in msgs] == ["mf.b", "mf.c", "mf.c", "mf.b"], f"ordered {[m.subject for m in msgs]}")
        await within(oc.close(), "close ordered")

        step("KV watch of several key patterns")
        kv = await within(kvm.create_key_value(js, KeyValueConfig(bucket="mf", storage="memory")), "bucket")
        for k in ("x.1", "y", "z"):
            await within(kv.put(k, k.encode()), f"put {k}")
        w = await within(kv.watch_filtered(["x.*", "y"]), "watch x.* and y")
        keys = sorted([e.key async for e in w.values()])
        check(keys == ["x.1", "y"], f"initial keys {keys}")
        await within(kv.put("z", b"z2"), "put outside")
        await within(kv.put("y", b"y2"), "put inside")
        e = await within(w.__anext__(), "live update of y")
        check(e.key == "y" and e.value == b"y2", f"live {e}")
        await within(w.stop(), "stop")
    finally:
        await nc.close()


async def metadata_compression(url: str) -> None:
    nc = await connect(url)
    js = jetstream.new(nc)
    try:
        step("stream metadata and s2 compression (2.10)")
        stream = await within(
            js.create_stream(
                name="META", subjects=["meta.>"], metadata={"team": "shop", "tier": "gold"}, compression="s2"
            ),
            "create META",
        )
        cfg = stream.info.config
        check(cfg.metadata is not None and cfg.metadata.get("team") == "shop", f"metadata {cfg.metadata}")
        check(cfg.compression == "s2", f"compression {cfg.compression}")
        await within(js.publish("meta.x", b"y" * 1000), "publish")
        m = await within(stream.get_message(1), "get back")
        check(m.data == b"y" * 1000, "compressed message reads back")

        step("consumer metadata")
        c = await within(stream.create_consumer(name="mc", metadata={"owner": "billing"}), "create mc")
        check(c.info.config.metadata is not None and c.info.config.metadata.get("owner") == "billing", "metadata")

        step("KV bucket metadata and compression")
        kv = await within(
            kvm.create_key_value(js, KeyValueConfig(bucket="mk", metadata={"k": "v"}, compression=True)), "bucket"
        )
        st = await within(kv.status(), "status")
        check(st.compressed, f"compressed {st.compressed}")
        check(st.metadata is not None and st.metadata.get("k") == "v", f"bucket metadata {st.metadata}")
    finally:
        await nc.close()


async def consumer_pause(url: str) -> None:
    nc = await connect(url)
    js = jetstream.new(nc)
    try:
        step("pause a consumer (2.11)")
        stream = await within(js.create_stream(name="P", subjects=["p.>"], storage="memory"), "create P")
        await within(stream.create_consumer(name="pc", durable_name="pc", ack_policy="explicit"), "create pc")
        await within(stream.pause_consumer("pc", time.time() + 3600), "pause for an hour")
        info = await within(stream.get_consumer_info("pc"), "info while paused")
        check(info.paused is True, f"paused {info.paused}")
        check(info.pause_remaining is not None and info.pause_remaining > timedelta(minutes=30), "remaining")

        step("a paused consumer delivers nothing")
        await within(js.publish("p.1", b"held"), "publish")
        c = await within(stream.get_consumer("pc"), "get pc")
        msgs = [m async for m in await c.fetch(max_messages=1, max_wait=0.5)]
        check(msgs == [], f"paused consumer delivered {msgs}")
        # The client ends a fetch at its own deadline, a moment before the server expires the
        # pull; a pull still waiting on the server at resume would take the message.
        await wait_until(
            lambda: _no_waiting(stream, "pc"), "the expired pull is gone from the server"
        )

        step("resume")
        await within(stream.resume_consumer("pc"), "resume")
        info = await within(stream.get_consumer_info("pc"), "info after resume")
        check(not info.paused, f"paused after resume {info.paused}")
        m = await within(c.next(max_wait=STEP), "message after resume")
        check(m.data == b"held", f"after resume {m.data}")
    finally:
        await nc.close()


async def _no_waiting(stream, name: str) -> bool:
    return (await stream.get_consumer_info(name)).num_waiting == 0


async def kv_marker_ttl(url: str) -> None:
    nc = await connect(url)
    js = jetstream.new(nc)
    try:
        step("bucket with limit marker TTL (2.11: per-message TTL, subject delete markers)")
        kv = await within(
            kvm.create_key_value(
                js, KeyValueConfig(bucket="mt", storage="memory", history=3, limit_marker_ttl=timedelta(seconds=2))
            ),
            "create bucket",
        )
        st = await within(kv.status(), "status")
        check(st.limit_marker_ttl == timedelta(seconds=2), f"limit_marker_ttl {st.limit_marker_ttl}")
        check(st.stream_info.config.allow_msg_ttl is True, "allow_msg_ttl on the backing stream")

        step("a key created with a TTL expires on its own")
        # Long enough to read the key back on a loaded machine, short enough to wait out.
        await within(kv.create("short", b"v", ttl=timedelta(seconds=3)), "create with ttl")
        await within(kv.put("keep", b"k"), "put without ttl")
        check((await within(kv.get("short"), "get before expiry")).value == b"v", "value before expiry")

        async def expired() -> bool:
            try:
                await kv.get("short")
                return False
            except KeyNotFoundError:
                return True

        await wait_until(expired, "key with a 3s TTL expired", timeout=STEP)
        check((await within(kv.get("keep"), "other key")).value == b"k", "other key stays")

        step("purge with a marker TTL")
        await within(kv.purge("keep", ttl=timedelta(seconds=5)), "purge with ttl")
        hist = [e async for e in await within(kv.history("keep"), "history after purge")]
        check([e.operation for e in hist] == [KeyValueOp.PURGE], f"purge marker {hist}")
    finally:
        await nc.close()


SCENARIOS = {
    "multi_filter": multi_filter,
    "metadata_compression": metadata_compression,
    "consumer_pause": consumer_pause,
    "kv_marker_ttl": kv_marker_ttl,
}

if __name__ == "__main__":
    main(SCENARIOS)
