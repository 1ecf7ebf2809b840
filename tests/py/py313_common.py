"""Shared driver for the scenario scripts of the nats-core / nats-jetstream / nats-key-value
clients (Python 3.13; modules nats.client, nats.jetstream, nats.key_value).

Each script maps scenario names to `async def scenario(url)` and calls `main(SCENARIOS)`.
Usage: python3.13 <script> nats://127.0.0.1:4222 <scenario>
On success it prints "checks: N" and "<scenario> ok" and exits 0. On failure it prints
"FAILED in step '<step>': <error>" (and the traceback) to stderr and exits 1, so the Rust test
that runs it can say which step broke.

Nothing here sleeps for timing: every wait is for a condition, bounded by a deadline.
"""

import asyncio
import sys
import time
import traceback

# Bound for one step (one request, one expected message, one condition).
STEP = 10.0

_checks = 0
_step = "start"


def step(name: str) -> None:
    """Names the step that runs next; a failure reports the last name given."""
    global _step
    _step = name
    print(f"step: {name}", file=sys.stderr, flush=True)


def check(cond: bool, what: str) -> None:
    global _checks
    if not cond:
        raise AssertionError(what)
    _checks += 1


async def within(aw, what: str, timeout: float = STEP):
    """Awaits `aw` for at most `timeout` seconds; a timeout fails with `what`."""
    try:
        return await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for: {what}") from None


async def expect(exc, aw, what: str, timeout: float = STEP):
    """Awaits `aw`, which must raise `exc`; returns the exception."""
    try:
        got = await asyncio.wait_for(aw, timeout)
    except exc as e:
        check(True, what)
        return e
    except asyncio.TimeoutError:
        raise AssertionError(f"{what}: timed out after {timeout}s instead of raising {exc}") from None
    raise AssertionError(f"{what}: expected {exc}, got result {got!r}")


async def wait_until(probe, what: str, timeout: float = STEP):
    """Re-evaluates `await probe()` until it returns a truthy value; returns that value.

    For server-side state that a fire-and-forget publish (an ack, a nak) changes: there is no
    reply to wait for, so the state is polled. The pause between probes only paces the poll;
    the wait itself ends at the condition or the deadline.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = await within(probe(), what)
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what} (last: {last!r})")
        await asyncio.sleep(0.02)


async def collect(sub, n: int, what: str, timeout: float = STEP) -> list:
    """The next `n` messages of a nats.client subscription."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{what}: got {len(out)} of {n} messages within {timeout}s")
        try:
            out.append(await sub.next(timeout=left))
        except asyncio.TimeoutError:
            raise AssertionError(f"{what}: got {len(out)} of {n} messages within {timeout}s") from None
    return out


async def connect(url: str, **opts):
    from nats.client import connect as nats_connect

    if _step == "start":
        step("connect")
    return await within(nats_connect(url, timeout=STEP, allow_reconnect=False, **opts), f"connect to {url}")


def main(scenarios: dict) -> None:
    if len(sys.argv) != 3 or sys.argv[2] not in scenarios:
        print(f"usage: {sys.argv[0]} URL {{{'|'.join(scenarios)}}}", file=sys.stderr)
        sys.exit(2)
    url, name = sys.argv[1], sys.argv[2]
    try:
        asyncio.run(scenarios[name](url))
    except BaseException as e:  # noqa: BLE001 - every failure is reported the same way
        traceback.print_exc()
        print(f"FAILED in step '{_step}': {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"checks: {_checks}")
    print(f"{name} ok", flush=True)
