"""nats-jetstream (module nats.jetstream): pull consumers, the ordered consumer, consumer
management and acknowledgements. Usage and output: see py313_common.py."""

import asyncio
import time
from datetime import timedelta

import nats.jetstream as jetstream
from nats.jetstream import ConsumerNotFoundError, StreamNotFoundError

from py313_common import STEP, check, connect, expect, main, step, wait_until, within


async def setup(url: str, n: int, subject: str = "jobs.a"):
    nc = await connect(url)
    js = jetstream.new(nc)
    stream = await within(js.create_stream(name="JOBS", subjects=["jobs.>"], storage="memory"), "create JOBS")
    for i in range(1, n + 1):
        await within(js.publish(subject, f"job{i}".encode(), headers={"X-Job": str(i)}), f"publish job{i}")
    return nc, js, stream


async def fetch_all(batch) -> list:
    return [m async for m in batch]


async def info_of(stream, name: str):
    return await within(stream.get_consumer_info(name), f"consumer info {name}")


async def pull_fetch(url: str) -> None:
    nc, js, stream = await setup(url, 10)
    try:
        step("create durable pull consumer")
        c = await within(
            stream.create_consumer(name="worker", durable_name="worker", ack_policy="explicit"), "create worker"
        )
        check(c.name == "worker" and c.stream_name == "JOBS", f"consumer {c.name} on {c.stream_name}")
        check(c.info.config.ack_policy == "explicit", f"ack policy {c.info.config.ack_policy}")
        check(c.info.num_pending == 10, f"num_pending {c.info.num_pending}")

        step("fetch a batch of 4")
        msgs = await within(fetch_all(await c.fetch(max_messages=4, max_wait=STEP)), "fetch 4")
        check([m.data for m in msgs] == [b"job1", b"job2", b"job3", b"job4"], f"batch {[m.data for m in msgs]}")
        md = msgs[0].metadata
        check(md.stream == "JOBS" and md.consumer == "worker", f"metadata {md}")
        check(md.sequence.stream == 1 and md.sequence.consumer == 1, f"sequence {md.sequence}")
        check(md.num_delivered == 1 and md.num_pending == 9, f"delivered/pending {md}")
        check(msgs[3].metadata.num_pending == 6, f"pending on the 4th {msgs[3].metadata}")
        check(msgs[1].headers.get("X-Job") == "2", f"headers {msgs[1].headers}")
        check(msgs[0].subject == "jobs.a", f"subject {msgs[0].subject}")
        for m in msgs:
            await m.ack()

        step("acks move the ack floor")
        info = await wait_until(
            lambda: _floor_at(stream, "worker", 4), "ack floor reaches stream sequence 4"
        )
        check(info.num_ack_pending == 0 and info.delivered["stream_seq"] == 4, f"info {info}")

        step("fetch more than is left: the batch ends at expiry")
        started = time.monotonic()
        batch = await c.fetch(max_messages=10, max_wait=1.0)
        msgs = await within(fetch_all(batch), "fetch 10 with 1s expiry")
        check([m.data for m in msgs] == [f"job{i}".encode() for i in range(5, 11)], f"rest {len(msgs)}")
        check(batch.error is None, f"batch error {batch.error}")
        check(time.monotonic() - started < 1.0 + STEP, "fetch ended near its expiry")
        await asyncio.gather(*(m.double_ack(timeout=STEP) for m in msgs))
        info = await info_of(stream, "worker")
        check(info.ack_floor["stream_seq"] == 10 and info.num_ack_pending == 0, f"all acked: {info}")

        step("fetch with expiry on an empty consumer returns nothing")
        msgs = await within(fetch_all(await c.fetch(max_messages=3, max_wait=0.5)), "empty fetch")
        check(msgs == [], f"empty fetch got {msgs}")

        step("fetch_nowait on an empty consumer returns at once")
        msgs = await within(fetch_all(await c.fetch_nowait(max_messages=5)), "empty fetch_nowait")
        check(msgs == [], f"fetch_nowait got {msgs}")

        step("fetch_nowait returns what is there")
        # The client ends a fetch at its own deadline, a moment before the server expires the
        # pull; a pull still waiting on the server would take the messages published next.
        await wait_until(lambda: _no_waiting(stream, "worker"), "expired pulls gone from the server")
        for i in range(11, 14):
            await within(js.publish("jobs.a", f"job{i}".encode()), "publish")
        msgs = await within(fetch_all(await c.fetch_nowait(max_messages=5)), "fetch_nowait 3 of 5")
        check([m.data for m in msgs] == [b"job11", b"job12", b"job13"], f"nowait {[m.data for m in msgs]}")
        for m in msgs:
            await m.double_ack(timeout=STEP)

        step("fetch by bytes")
        for i in range(3):
            await within(js.publish("jobs.a", b"x" * 100), "publish 100 bytes")
        msgs = await within(fetch_all(await c.fetch(max_bytes=250, max_wait=1.0)), "fetch 250 bytes")
        check(1 <= len(msgs) <= 2, f"max_bytes 250 gave {len(msgs)} messages of 100 bytes")

        step("a waiting pull gets a message published after it")
        c2 = await within(stream.create_consumer(name="late", ack_policy="none", deliver_policy="new"), "late")
        batch = await c2.fetch(max_messages=1, max_wait=STEP)
        # The pull request is on its way before the publish; the server holds it until data comes.
        await within(nc.flush(timeout=STEP), "flush the pull request")
        await within(js.publish("jobs.b", b"late"), "publish late")
        msgs = await within(fetch_all(batch), "waiting pull")
        check([m.data for m in msgs] == [b"late"], f"late pull {msgs}")
    finally:
        await nc.close()


async def _no_waiting(stream, name: str) -> bool:
    return (await stream.get_consumer_info(name)).num_waiting == 0


async def _floor_at(stream, name: str, seq: int):
    info = await stream.get_consumer_info(name)
    return info if info.ack_floor["stream_seq"] >= seq else None


async def next_acks(url: str) -> None:
    nc, js, stream = await setup(url, 4)
    try:
        step("consumer with ack wait and max deliver")
        c = await within(
            stream.create_consumer(
                name="acks",
                durable_name="acks",
                ack_policy="explicit",
                ack_wait=timedelta(seconds=30),
                max_deliver=5,
                # One message in flight: a pull that reaches the server before a nak or term
                # has been applied waits for it instead of getting the next message.
                max_ack_pending=1,
            ),
            "create acks",
        )
        check(c.info.config.ack_wait == timedelta(seconds=30), f"ack_wait {c.info.config.ack_wait}")
        check(c.info.config.max_deliver == 5, f"max_deliver {c.info.config.max_deliver}")

        step("next, then nak: redelivered at once")
        m = await within(c.next(max_wait=STEP), "next job1")
        check(m.data == b"job1" and m.metadata.num_delivered == 1, f"first {m.data} {m.metadata}")
        await m.nak()
        m = await within(c.next(max_wait=STEP), "redelivery of job1")
        check(m.data == b"job1" and m.metadata.num_delivered == 2, f"redelivered {m.data} {m.metadata}")
        check(m.metadata.sequence.consumer == 2 and m.metadata.sequence.stream == 1, f"seqs {m.metadata.sequence}")
        info = await info_of(stream, "acks")
        check(info.num_redelivered == 1, f"num_redelivered {info.num_redelivered}")

        step("in progress keeps the message pending, then ack")
        await m.in_progress()
        info = await info_of(stream, "acks")
        check(info.num_ack_pending == 1, f"ack pending during work {info.num_ack_pending}")
        await within(m.double_ack(timeout=STEP), "double ack job1")
        info = await info_of(stream, "acks")
        check(info.num_ack_pending == 0 and info.ack_floor["stream_seq"] == 1, f"after ack {info}")

        step("term: never redelivered")
        m = await within(c.next(max_wait=STEP), "next job2")
        check(m.data == b"job2", f"job2 {m.data}")
        await m.term()
        m = await within(c.next(max_wait=STEP), "next after term")
        check(m.data == b"job3" and m.metadata.num_delivered == 1, f"after term {m.data} {m.metadata}")
        await within(m.double_ack(timeout=STEP), "ack job3")
        info = await wait_until(lambda: _floor_at(stream, "acks", 3), "ack floor passes the termed job2")
        check(info.num_ack_pending == 0, f"after term and ack {info}")

        step("nak with delay")
        m = await within(c.next(max_wait=STEP), "next job4")
        await m.nak_with_delay(0.2)
        m = await within(c.next(max_wait=STEP), "job4 after delayed nak")
        check(m.data == b"job4" and m.metadata.num_delivered == 2, f"delayed redelivery {m.metadata}")
        await within(m.double_ack(timeout=STEP), "ack job4")

        step("next on an empty consumer times out")
        await expect(asyncio.TimeoutError, c.next(max_wait=0.5), "next with nothing to deliver")

        step("ack policy none and all")
        none = await within(stream.create_consumer(name="none", ack_policy="none"), "ack none")
        msgs = [m async for m in await none.fetch(max_messages=4, max_wait=STEP)]
        check(len(msgs) == 4, f"ack none fetch {len(msgs)}")
        info = await info_of(stream, "none")
        check(info.num_ack_pending == 0 and info.ack_floor["stream_seq"] == 4, f"ack none {info}")
        every = await within(stream.create_consumer(name="all", ack_policy="all"), "ack all")
        msgs = [m async for m in await every.fetch(max_messages=4, max_wait=STEP)]
        check(len(msgs) == 4, f"ack all fetch {len(msgs)}")
        await within(msgs[2].double_ack(timeout=STEP), "ack the third")
        info = await info_of(stream, "all")
        check(info.ack_floor["stream_seq"] == 3 and info.num_ack_pending == 1, f"ack all {info}")
    finally:
        await nc.close()


async def consume_loop(url: str) -> None:
    nc, js, stream = await setup(url, 30)
    try:
        step("consume with a pull stream")
        c = await within(stream.create_consumer(name="loop", ack_policy="explicit"), "create loop")
        msgs = await c.messages(max_messages=10, max_wait=5.0)
        got = []
        it = msgs.__aiter__()
        while len(got) < 30:
            m = await within(it.__anext__(), f"message {len(got) + 1} of the first 30")
            got.append(m.data)
            await m.ack()
        check(got == [f"job{i}".encode() for i in range(1, 31)], "first 30 in order")

        step("messages published while consuming arrive")
        for i in range(31, 46):
            await within(js.publish("jobs.b", f"job{i}".encode()), "publish while consuming")
        while len(got) < 45:
            m = await within(it.__anext__(), f"message {len(got) + 1} of 45")
            got.append(m.data)
            await m.ack()
        check(got[30:] == [f"job{i}".encode() for i in range(31, 46)], "live messages in order")

        step("stop")
        await within(msgs.stop(), "stop the pull stream")
        check(not msgs.is_active, "stopped")
        info = await wait_until(lambda: _floor_at(stream, "loop", 45), "all 45 acked")
        check(info.num_pending == 0 and info.num_ack_pending == 0, f"after loop {info}")
    finally:
        await nc.close()


async def ordered(url: str) -> None:
    nc, js, stream = await setup(url, 20)
    try:
        step("ordered consumer fetch")
        oc = await within(stream.ordered_consumer(), "ordered consumer")
        msgs = [m async for m in await oc.fetch(max_messages=5, max_wait=STEP)]
        check([m.data for m in msgs] == [f"job{i}".encode() for i in range(1, 6)], "first five")
        check(oc.info.config.ack_policy == "none", f"ack policy {oc.info.config.ack_policy}")
        check(oc.info.config.mem_storage is True, f"mem_storage {oc.info.config.mem_storage}")
        first = oc.name

        step("next continues where fetch stopped (a new server-side consumer)")
        m = await within(oc.next(max_wait=STEP), "ordered next")
        check(m.data == b"job6", f"next {m.data}")
        check(oc.name != first, f"recreated consumer {oc.name}")
        await wait_until(lambda: _gone(stream, first), "previous ordered consumer deleted")

        step("messages() delivers everything in order")
        # A fresh ordered consumer: nats-jetstream 0.3.0 does not carry the position of next()
        # over into messages() on the same ordered consumer.
        await within(oc.close(), "close the fetching ordered consumer")
        oc = await within(stream.ordered_consumer(), "second ordered consumer")
        ms = await oc.messages()
        it = ms.__aiter__()
        got = []
        for _ in range(1, 21):
            got.append((await within(it.__anext__(), "ordered message")).data)
        check(got == [f"job{i}".encode() for i in range(1, 21)], f"ordered stream {got}")

        step("deleting the server-side consumer: the ordered consumer recreates it")
        await within(stream.delete_consumer(oc.name), "delete the underlying consumer")
        for i in range(21, 24):
            await within(js.publish("jobs.a", f"job{i}".encode()), "publish after delete")
        got = [(await within(it.__anext__(), "message after recreate", 3 * STEP)).data for _ in range(3)]
        check(got == [b"job21", b"job22", b"job23"], f"after recreate {got}")
        await within(ms.stop(), "stop ordered stream")

        step("filtered ordered consumer from a start sequence")
        for i in range(3):
            await within(js.publish("jobs.x", f"x{i}".encode()), "publish jobs.x")
        oc2 = await within(
            stream.ordered_consumer(filter_subjects=["jobs.x"], deliver_policy="last"), "filtered ordered"
        )
        m = await within(oc2.next(max_wait=STEP), "last jobs.x")
        check(m.data == b"x2" and m.subject == "jobs.x", f"last jobs.x {m.data}")
        await within(oc2.close(), "close ordered")
        await within(oc.close(), "close ordered")
        names = [n async for n in js.consumer_names("JOBS")]
        check(names == [], f"closed ordered consumers are deleted: {names}")
    finally:
        await nc.close()


async def _gone(stream, name: str) -> bool:
    try:
        await stream.get_consumer_info(name)
        return False
    except ConsumerNotFoundError:
        return True


async def consumer_admin(url: str) -> None:
    nc, js, stream = await setup(url, 3)
    try:
        step("create consumers")
        a = await within(
            stream.create_consumer(
                name="a",
                durable_name="a",
                description="first",
                ack_policy="explicit",
                filter_subject="jobs.a",
                max_ack_pending=50,
                max_waiting=64,
            ),
            "create a",
        )
        cfg = a.info.config
        check(cfg.description == "first" and cfg.filter_subject == "jobs.a", f"config {cfg}")
        check(cfg.max_ack_pending == 50 and cfg.max_waiting == 64, f"limits {cfg}")
        check(cfg.durable_name == "a", f"durable {cfg.durable_name}")
        await within(stream.create_consumer(name="b", ack_policy="none", deliver_policy="last"), "create b")
        eph = await within(
            stream.create_consumer(name="eph", ack_policy="none", inactive_threshold=timedelta(minutes=5)),
            "create named ephemeral",
        )
        check(eph.info.config.durable_name in (None, ""), f"ephemeral {eph.info.config.durable_name}")
        check(eph.info.config.inactive_threshold == timedelta(minutes=5), "inactive threshold")

        step("create again with the same config is idempotent")
        await within(
            stream.create_consumer(
                name="a",
                durable_name="a",
                description="first",
                ack_policy="explicit",
                filter_subject="jobs.a",
                max_ack_pending=50,
                max_waiting=64,
            ),
            "create a again",
        )

        step("info")
        info = await info_of(stream, "b")
        check(info.name == "b" and info.stream_name == "JOBS", f"info {info.name}")
        check(info.config.deliver_policy == "last" and info.num_pending == 1, f"b {info}")
        await expect(ConsumerNotFoundError, stream.get_consumer_info("nope"), "info of a missing consumer")
        await expect(ConsumerNotFoundError, stream.get_consumer("nope"), "get a missing consumer")
        got = await within(js.get_consumer("JOBS", "a"), "get consumer via context")
        check(got.info.config.description == "first", f"got {got.info.config}")

        step("names and list")
        names = sorted([n async for n in js.consumer_names("JOBS")])
        check(names == ["a", "b", "eph"], f"names {names}")
        infos = [i async for i in js.list_consumers("JOBS")]
        check(sorted(i.name for i in infos) == ["a", "b", "eph"], f"list {infos}")
        info = await within(stream.get_info(), "stream info")
        check(info.state.consumer_count == 3, f"consumer_count {info.state.consumer_count}")

        step("update")
        upd = await within(
            stream.update_consumer(
                name="a",
                durable_name="a",
                description="changed",
                ack_policy="explicit",
                filter_subject="jobs.a",
                max_ack_pending=20,
                max_waiting=64,
            ),
            "update a",
        )
        check(upd.info.config.description == "changed" and upd.info.config.max_ack_pending == 20, "updated")
        info = await info_of(stream, "a")
        check(info.config.description == "changed", f"update persisted {info.config.description}")
        await within(
            stream.create_or_update_consumer(name="c", ack_policy="none"), "create_or_update a new consumer"
        )

        step("delete")
        check(await within(stream.delete_consumer("b"), "delete b") is True, "delete says success")
        await expect(ConsumerNotFoundError, stream.delete_consumer("b"), "delete twice")
        names = sorted([n async for n in js.consumer_names("JOBS")])
        check(names == ["a", "c", "eph"], f"names after delete {names}")
        await expect(StreamNotFoundError, js.get_consumer("NOSTREAM", "a"), "consumer of a missing stream")

        step("deleting the stream removes its consumers")
        await within(js.delete_stream("JOBS"), "delete stream")
        await within(js.create_stream(name="JOBS", subjects=["jobs.>"], storage="memory"), "recreate")
        names = [n async for n in js.consumer_names("JOBS")]
        check(names == [], f"consumers after recreate {names}")
    finally:
        await nc.close()


SCENARIOS = {
    "pull_fetch": pull_fetch,
    "next_acks": next_acks,
    "consume_loop": consume_loop,
    "ordered": ordered,
    "consumer_admin": consumer_admin,
}

if __name__ == "__main__":
    main(SCENARIOS)
