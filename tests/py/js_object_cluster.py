"""nats-py object store on a replicated bucket: put through one server, read through another.

Usage: python3 js_object_cluster.py nats://a:a@127.0.0.1:4222 nats://a:a@127.0.0.1:4223
Prints "checks: N" and "js_object_cluster ok" on success; any failure raises (exit 1).
"""

import asyncio
import sys

import nats
from nats.js.errors import ObjectNotFoundError

STEP = 20.0
CHECKS = 0


def check(cond: bool, what: str) -> None:
    global CHECKS
    if not cond:
        raise AssertionError(what)
    CHECKS += 1


def step(name: str) -> None:
    print(f"step: {name}", file=sys.stderr, flush=True)


def pattern(n: int) -> bytes:
    return bytes(((i * 31) ^ (i >> 9)) & 0xFF for i in range(n))


async def main(url1: str, url2: str) -> None:
    nc1 = await asyncio.wait_for(nats.connect(url1, connect_timeout=STEP), STEP)
    nc2 = await asyncio.wait_for(nats.connect(url2, connect_timeout=STEP), STEP)
    js1 = nc1.jetstream(timeout=STEP)
    js2 = nc2.jetstream(timeout=STEP)
    try:
        step("create_object_store replicas=3")
        obs = await js1.create_object_store("pyrep", replicas=3)
        si = await js1.stream_info("OBJ_pyrep")
        check(si.config.num_replicas == 3, f"replicas {si.config.num_replicas}")

        step("put 1 MiB")
        data = pattern(1024 * 1024)
        info = await obs.put("big.bin", data)
        check(info.size == len(data) and info.chunks == 8, f"put info {info}")
        await obs.put("small.txt", b"hello")

        step("read through another server")
        other = await js2.object_store("pyrep")
        res = await other.get("big.bin")
        check(res.data == data, "bytes read back equal")
        check(res.info.digest == info.digest, "digest kept")
        names = sorted(o.name for o in await other.list())
        check(names == ["big.bin", "small.txt"], f"list {names}")

        step("replace and delete")
        await other.put("big.bin", b"short")
        res = await obs.get("big.bin")
        check(res.data == b"short", "replaced object read back")
        await other.delete("small.txt")
        try:
            await obs.get("small.txt")
            check(False, "deleted object still there")
        except ObjectNotFoundError:
            check(True, "deleted object gone")
        names = sorted(o.name for o in await obs.list(ignore_deletes=True))
        check(names == ["big.bin"], f"list after delete {names}")
    finally:
        await nc1.close()
        await nc2.close()
    print(f"checks: {CHECKS}")
    print("js_object_cluster ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
