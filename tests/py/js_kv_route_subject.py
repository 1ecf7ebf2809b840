"""nats-py key-value reads through a server that is not the bucket's leader: the consumer
behind keys() and history() runs on another server, so its messages cross a route.

Usage: python3 js_kv_route_subject.py nats://a:a@127.0.0.1:4223
The bucket "pyk" holds k=v1, k=v2 and a.b-c_d=e/f=x (made by the calling test).
Prints "checks: N" and "js_kv_route_subject ok" on success; any failure raises (exit 1).
"""

import asyncio
import sys

import nats

STEP = 20.0
CHECKS = 0


def check(cond: bool, what: str) -> None:
    global CHECKS
    if not cond:
        raise AssertionError(what)
    CHECKS += 1


def step(name: str) -> None:
    print(f"step: {name}", file=sys.stderr, flush=True)


async def main(url: str) -> None:
    nc = await asyncio.wait_for(nats.connect(url, connect_timeout=STEP), STEP)
    js = nc.jetstream(timeout=STEP)
    try:
        kv = await js.key_value("pyk")
        step("keys")
        keys = sorted(await asyncio.wait_for(kv.keys(), STEP))
        check(keys == ["a.b-c_d=e/f", "k"], f"keys {keys}")
        step("history")
        hist = await asyncio.wait_for(kv.history("k"), STEP)
        check([e.key for e in hist] == ["k", "k"], f"history keys {hist}")
        check([e.value for e in hist] == [b"v1", b"v2"], f"history values {hist}")
    finally:
        await nc.close()
    print(f"checks: {CHECKS}")
    print("js_kv_route_subject ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
