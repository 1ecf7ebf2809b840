"""Connect, publish/subscribe and request/reply with the nats-core client (`nats.client`).

Usage: core_smoke.py URL. Prints "core smoke ok" on success; any failure raises.
"""

import asyncio
import sys

import nats.client


async def main(url: str) -> None:
    nc = await nats.client.connect(url, timeout=5.0, allow_reconnect=False)
    info = nc.server_info
    assert info is not None and info.go_version, f"no go version in {info!r}"

    sub = await nc.subscribe("core.smoke")
    await nc.flush(timeout=5.0)
    await nc.publish("core.smoke", b"hello")
    msg = await sub.next(timeout=5.0)
    assert msg.data == b"hello", msg

    async def respond() -> None:
        req = await svc.next(timeout=5.0)
        await nc.publish(req.reply, b"pong:" + req.data)

    svc = await nc.subscribe("core.svc")
    await nc.flush(timeout=5.0)
    responder = asyncio.create_task(respond())
    reply = await nc.request("core.svc", b"ping", timeout=5.0)
    await responder
    assert reply.data == b"pong:ping", reply

    await nc.close()
    print("core smoke ok")


asyncio.run(main(sys.argv[1]))
