"""nats-py through a leaf link: `nc.jetstream(domain=...)` on one side reaches the other
side's JetStream (stream create, publish, pull fetch and ack). Usage: leaf_domain.py URL DOMAIN.
Waits for the link by polling with a deadline; prints "leaf domain ok" at the end."""

import asyncio
import sys
import time

import nats
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

DEADLINE = 20.0


async def until(what, step):
    """Calls `step` until it returns without a no-responders or timeout error."""
    end = time.monotonic() + DEADLINE
    while True:
        try:
            return await step()
        except (NoRespondersError, NatsTimeout, asyncio.TimeoutError) as e:
            if time.monotonic() > end:
                raise AssertionError(f"{what}: not within {DEADLINE}s: {e!r}")
            await asyncio.sleep(0.05)


async def main(url, domain):
    nc = await nats.connect(url)
    js = nc.jetstream(domain=domain)
    info = await until("account info", lambda: js.account_info())
    assert info.domain == domain, info
    await js.add_stream(name="PY", subjects=["py.>"], storage="memory")
    ack = await until("publish", lambda: js.publish("py.1", b"one"))
    assert (ack.stream, ack.seq, ack.domain) == ("PY", 1, domain), ack
    psub = await js.pull_subscribe("py.>", durable="D", stream="PY")
    msgs = await psub.fetch(1, timeout=5)
    assert [(m.subject, m.data) for m in msgs] == [("py.1", b"one")], msgs
    await msgs[0].ack_sync()
    ci = await js.consumer_info("PY", "D")
    assert (ci.num_ack_pending, ci.delivered.stream_seq) == (0, 1), ci
    await nc.close()
    print("leaf domain ok")


asyncio.run(main(sys.argv[1], sys.argv[2]))
