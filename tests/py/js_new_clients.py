"""The new nats.py client family (nats-core, nats-jetstream, nats-key-value): connect,
streams, consumers, fetch, an ordered consumer and a key-value bucket.

Usage: python3 js_new_clients.py nats://127.0.0.1:4222
Prints "checks: N" and "js_new_clients ok" on success; any failure raises (exit 1).
"""

import asyncio
import sys

import nats.jetstream as jetstream
import nats.key_value as key_value
from nats.client import connect

STEP = 10.0
CHECKS = 0


def check(cond: bool, what: str) -> None:
    global CHECKS
    if not cond:
        raise AssertionError(what)
    CHECKS += 1


async def main(url: str) -> None:
    nc = await connect(url)
    js = jetstream.new(nc)
    info = await js.account_info()
    check(info.streams == 0, "no streams yet")
    await js.create_stream(name="T", subjects=["t.>"], storage="memory")
    await js.publish("t.a", b"1")
    await js.publish("t.b", b"2")
    si = await js.get_stream_info("T")
    check(si.state.messages == 2, "two messages stored")
    names = [n async for n in js.stream_names(subject="t.a")]
    check(names == ["T"], f"stream by subject: {names}")
    names = [n async for n in js.stream_names(subject="other")]
    check(names == [], f"no stream for another subject: {names}")
    listed = [s.config.name async for s in js.list_streams()]
    check(listed == ["T"], f"listed: {listed}")

    c = await js.create_consumer("T", name="C", durable_name="C", ack_policy="explicit")
    batch = await c.fetch(max_messages=2, max_wait=STEP)
    got = []
    async for m in batch:
        got.append(m.data)
        # Acknowledged and confirmed: nats-server handles plain acks after later requests.
        await m.double_ack(timeout=STEP)
    check(got == [b"1", b"2"], f"fetched {got}")
    ci = await js.get_consumer_info("T", "C")
    check(ci.num_pending == 0 and ci.num_ack_pending == 0, "all acknowledged")
    m = await js.get_message("T", 2)
    check(m.data == b"2", "message by sequence")

    o = await js.ordered_consumer("T")
    seen = []
    async for m in await o.messages():
        seen.append(m.data)
        if len(seen) == 2:
            break
    check(seen == [b"1", b"2"], f"ordered: {seen}")

    kv = await asyncio.wait_for(key_value.create_key_value(js, key_value.KeyValueConfig(bucket="b")), STEP)
    rev = await kv.put("k", b"v1")
    check(rev == 1, f"first revision {rev}")
    e = await kv.get("k")
    check(e.value == b"v1", "value read back")
    st = await kv.status()
    check(st.bucket == "b", "bucket status")
    async with await kv.watch("k") as it:
        async for e in it:
            check(e is not None and e.value == b"v1", "watch sees the value")
            break
    await nc.close()


asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
print(f"checks: {CHECKS}")
print("js_new_clients ok")
