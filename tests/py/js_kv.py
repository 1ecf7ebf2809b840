"""nats-py key-value buckets: js.create_key_value and the KeyValue API.

Usage: python3 js_kv.py nats://127.0.0.1:4222
Prints "checks: N" and "js_kv ok" on success; any failure raises (exit 1).
"""

import asyncio
import sys

import nats
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError

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
    except exc as e:
        check(True, what)
        return e
    raise AssertionError(f"{what}: no {exc.__name__}")


async def main(url: str) -> None:
    nc = await asyncio.wait_for(nats.connect(url, allow_reconnect=False, connect_timeout=STEP), STEP)
    js = nc.jetstream(timeout=STEP)
    try:
        step("create_key_value")
        kv = await js.create_key_value(bucket="py", history=5)
        st = await kv.status()
        check(st.bucket == "py" and st.history == 5, f"status {st}")
        same = await js.key_value("py")
        await expect(BucketNotFoundError, js.key_value("nobucket"), "missing bucket")

        step("put/get")
        r1 = await kv.put("a", b"1")
        e = await same.get("a")
        check(e.value == b"1" and e.revision == r1 and e.key == "a", f"get {e}")
        await expect(KeyNotFoundError, kv.get("missing"), "missing key")

        step("update with revision")
        r2 = await kv.update("a", b"2", last=r1)
        check(r2 > r1, "update revision grows")
        await expect(KeyWrongLastSequenceError, kv.update("a", b"3", last=r1), "stale revision")
        check((await kv.get("a")).value == b"2", "stale update changed nothing")

        step("create")
        await kv.create("b", b"new")
        await expect(KeyWrongLastSequenceError, kv.create("b", b"again"), "create on existing key")

        step("delete/purge")
        await kv.delete("a")
        # get() reports a delete marker as not found, carrying the marker's operation.
        e = await expect(KeyNotFoundError, kv.get("a"), "deleted key")
        check(e.op == "DEL", f"deleted key op {e.op}")
        await kv.create("a", b"back")
        check((await kv.get("a")).value == b"back", "create after delete")
        await kv.purge("b")
        e = await expect(KeyNotFoundError, kv.get("b"), "purged key")
        check(e.op == "PURGE", f"purged key op {e.op}")

        step("keys")
        await kv.put("c", b"x")
        # nats-py decides "no keys" from the watcher consumer's num_pending in its create reply;
        # nats-server 2.9.10 once answered 0 there with keys present (seen once in CI, gone on
        # rerun), so a NoKeysError gets one more try. A server that really lost the keys fails
        # the second call too.
        try:
            keys = sorted(await kv.keys())
        except NoKeysError:
            keys = sorted(await kv.keys())
        check(keys == ["a", "c"], f"keys {keys}")

        step("history")
        for v in (b"h1", b"h2", b"h3"):
            await kv.put("h", v)
        await kv.delete("h")
        hist = await kv.history("h")
        ops = [(e.value, e.operation) for e in hist]
        check(ops == [(b"h1", None), (b"h2", None), (b"h3", None), (b"", "DEL")], f"history {ops}")

        step("watch")
        w = await kv.watch("w.*")
        first = await w.updates(timeout=STEP)
        check(first is None, f"no initial values: {first}")
        await kv.put("w.x", b"1")
        await kv.put("other", b"ignored")
        await kv.delete("w.x")
        e = await w.updates(timeout=STEP)
        check(e.key == "w.x" and e.value == b"1", f"watched put {e}")
        e = await w.updates(timeout=STEP)
        check(e.key == "w.x" and e.operation == "DEL", f"watched delete {e}")
        await w.stop()
        wa = await kv.watchall(include_history=False)
        # The latest entry of every key, delete and purge markers included.
        want = [("a", None), ("b", "PURGE"), ("c", None), ("h", "DEL"), ("other", None), ("w.x", "DEL")]
        seen = []
        while len(seen) < len(want):
            e = await wa.updates(timeout=STEP)
            if e is None:
                # nats-py's "caught up" marker can come first: it asks for consumer info
                # right after subscribing, and if the deliveries are already in but its
                # callback has not counted them yet, it sees nothing pending and nothing
                # received (seen once against nats-server 2.9.10). The entries still follow.
                continue
            seen.append((e.key, e.operation))
        check(sorted(seen) == want, f"watchall initial {seen}")
        await wa.stop()

        step("delete bucket")
        check(await js.delete_key_value("py"), "bucket deleted")
        empty = await js.create_key_value(bucket="empty")
        await expect(NoKeysError, empty.keys(), "no keys")
    finally:
        await nc.close()
    print(f"checks: {CHECKS}")
    print("js_kv ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
