"""nats-py key-value store on a memory bucket of three replicas: put through one server, read
through another.

Usage: python3 js_kv_memory_cluster.py nats://a:a@127.0.0.1:4222 nats://a:a@127.0.0.1:4223
Prints "checks: N" and "js_kv_memory_cluster ok" on success; any failure raises (exit 1).
"""

import asyncio
import sys

import nats
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError

STEP = 20.0
CHECKS = 0


def check(cond: bool, what: str) -> None:
    global CHECKS
    if not cond:
        raise AssertionError(what)
    CHECKS += 1


def step(name: str) -> None:
    print(f"step: {name}", file=sys.stderr, flush=True)


async def main(url1: str, url2: str) -> None:
    nc1 = await asyncio.wait_for(nats.connect(url1, connect_timeout=STEP), STEP)
    nc2 = await asyncio.wait_for(nats.connect(url2, connect_timeout=STEP), STEP)
    js1 = nc1.jetstream(timeout=STEP)
    js2 = nc2.jetstream(timeout=STEP)
    try:
        step("create_key_value storage=memory replicas=3")
        kv = await js1.create_key_value(
            KeyValueConfig(
                bucket="pymem", storage=StorageType.MEMORY, replicas=3, history=3
            )
        )
        si = await js1.stream_info("KV_pymem")
        check(si.config.num_replicas == 3, f"replicas {si.config.num_replicas}")
        check(si.config.storage == StorageType.MEMORY, f"storage {si.config.storage}")

        step("put and read through another server")
        await kv.put("a", b"1")
        rev = await kv.put("a", b"2")
        await kv.put("b", b"x")
        other = await js2.key_value("pymem")
        e = await other.get("a")
        check(e.value == b"2" and e.revision == rev, f"entry {e}")
        hist = [x.value for x in await other.history("a")]
        check(hist == [b"1", b"2"], f"history {hist}")

        step("delete")
        await other.delete("b")
        try:
            await kv.get("b")
            check(False, "deleted key still there")
        except KeyNotFoundError:
            check(True, "deleted key gone")
        st = await kv.status()
        check(st.values == 4, f"values {st.values}")
    finally:
        await nc1.close()
        await nc2.close()
    print(f"checks: {CHECKS}")
    print("js_kv_memory_cluster ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
