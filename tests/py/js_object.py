"""nats-py object store: js.create_object_store and the ObjectStore API.

Usage: python3 js_object.py nats://127.0.0.1:4222
Prints "checks: N" and "js_object ok" on success; any failure raises (exit 1).
"""

import asyncio
import sys

import nats
from nats.js import api
from nats.js.errors import NotFoundError, ObjectNotFoundError

STEP = 10.0
CHECKS = 0


def check(cond: bool, what: str) -> None:
    global CHECKS
    if not cond:
        raise AssertionError(what)
    CHECKS += 1


def step(name: str) -> None:
    print(f"step: {name}", file=sys.stderr, flush=True)


async def expect(exc, coro, what: str) -> None:
    try:
        await coro
    except exc:
        check(True, what)
        return
    raise AssertionError(f"{what}: no {exc.__name__}")


def pattern(n: int) -> bytes:
    return bytes(((i * 31) ^ (i >> 9)) & 0xFF for i in range(n))


async def main(url: str) -> None:
    nc = await asyncio.wait_for(nats.connect(url, allow_reconnect=False, connect_timeout=STEP), STEP)
    js = nc.jetstream(timeout=STEP)
    try:
        step("create_object_store")
        obs = await js.create_object_store("pyobj")
        await expect(NotFoundError, obs.list(), "empty list")

        step("put multi-chunk")
        data = pattern(300 * 1024)
        info = await obs.put("big.bin", data)
        check(info.size == len(data) and info.chunks == 3, f"put info {info}")
        res = await obs.get("big.bin")
        check(res.data == data, "bytes read back equal")
        check(res.info.digest == info.digest, "digest kept")

        step("info")
        await obs.put("small.txt", b"hello")
        i = await obs.get_info("small.txt")
        check(i.name == "small.txt" and i.size == 5 and i.bucket == "pyobj", f"info {i}")
        await expect(ObjectNotFoundError, obs.get_info("nope"), "missing object")

        step("list")
        names = sorted(o.name for o in await obs.list())
        check(names == ["big.bin", "small.txt"], f"list {names}")

        step("replace")
        info2 = await obs.put("big.bin", b"short now")
        check(info2.chunks == 1, f"replaced {info2}")
        check((await obs.get("big.bin")).data == b"short now", "replaced bytes")

        step("delete")
        await obs.delete("small.txt")
        await expect(ObjectNotFoundError, obs.get("small.txt"), "deleted object")
        gone = await obs.get_info("small.txt", show_deleted=True)
        check(gone.deleted, "deleted marker kept")
        names = sorted(o.name for o in await obs.list(ignore_deletes=True))
        check(names == ["big.bin"], f"list after delete {names}")

        step("watch")
        w = await obs.watch(updates_only=True)
        await obs.put("watched", b"w")
        e = await w.updates(timeout=STEP)
        check(e.name == "watched" and e.size == 1, f"watched put {e}")
        await obs.delete("watched")
        e = await w.updates(timeout=STEP)
        check(e.name == "watched" and e.deleted, f"watched delete {e}")
        await w.stop()

        step("update_meta")
        # Same name only: nats-py 2.16's rename checks the old name and always refuses.
        await obs.put("doc.txt", b"body")
        await obs.update_meta("doc.txt", api.ObjectMeta(name="doc.txt", description="described"))
        i = await obs.get_info("doc.txt")
        check(i.description == "described", f"updated info {i}")
        check((await obs.get("doc.txt")).data == b"body", "bytes kept")

        step("status/seal")
        st = await obs.status()
        check(st.bucket == "pyobj" and not st.sealed, f"status {st}")
        await obs.seal()
        check((await obs.status()).sealed, "sealed")
        check((await obs.get("big.bin")).data == b"short now", "readable after seal")
    finally:
        await nc.close()
    print(f"checks: {CHECKS}")
    print("js_object ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
