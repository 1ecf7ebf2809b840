"""nats-py smoke test: connect, pub/sub, request/reply, headers.

Usage: python3 smoke.py nats://127.0.0.1:4222
Exits 0 and prints "smoke ok" on success; any failure raises (exit 1).
"""

import asyncio
import sys

import nats

STEP = 10.0


def step(name: str) -> None:
    print(f"step: {name}", file=sys.stderr, flush=True)


async def main(url: str) -> None:
    step("connect")
    nc = await asyncio.wait_for(nats.connect(url, allow_reconnect=False, connect_timeout=STEP), STEP)
    other = await asyncio.wait_for(nats.connect(url, allow_reconnect=False, connect_timeout=STEP), STEP)
    try:
        step("pub/sub")
        sub = await nc.subscribe("smoke.greet")
        await nc.flush(timeout=STEP)
        await other.publish("smoke.greet", b"hello")
        await other.flush(timeout=STEP)
        msg = await sub.next_msg(timeout=STEP)
        assert msg.subject == "smoke.greet", msg.subject
        assert msg.data == b"hello", msg.data

        step("request/reply")
        async def upper(m):
            await m.respond(m.data.upper())

        await nc.subscribe("smoke.upper", cb=upper)
        await nc.flush(timeout=STEP)
        resp = await other.request("smoke.upper", b"shout", timeout=STEP)
        assert resp.data == b"SHOUT", resp.data

        step("headers")
        hsub = await nc.subscribe("smoke.hdr")
        await nc.flush(timeout=STEP)
        await other.publish("smoke.hdr", b"body", headers={"X-Test": "yes", "X-Other": "1"})
        await other.flush(timeout=STEP)
        hmsg = await hsub.next_msg(timeout=STEP)
        assert hmsg.data == b"body", hmsg.data
        assert hmsg.headers is not None and hmsg.headers.get("X-Test") == "yes", hmsg.headers
        assert hmsg.headers.get("X-Other") == "1", hmsg.headers

        step("no responders")
        try:
            await other.request("smoke.nobody", b"?", timeout=STEP)
            raise AssertionError("request without responders succeeded")
        except nats.errors.NoRespondersError:
            pass
    finally:
        await other.close()
        await nc.close()
    print("smoke ok")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: smoke.py <server url>")
    asyncio.run(main(sys.argv[1]))
