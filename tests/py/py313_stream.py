"""nats-jetstream (module nats.jetstream): stream management and stored messages.
Usage and output: see py313_common.py."""

from datetime import timedelta

import nats.jetstream as jetstream
from nats.client import NoRespondersError
from nats.jetstream import (
    JetStreamError,
    MessageNotFoundError,
    StreamNameAlreadyInUseError,
    StreamNotFoundError,
)

from py313_common import check, connect, expect, main, step, within


async def aslist(it) -> list:
    return [x async for x in it]


async def stream_admin(url: str) -> None:
    nc = await connect(url)
    js = jetstream.new(nc)
    try:
        step("account info")
        acct = await within(js.account_info(), "account info")
        check(acct.streams == 0 and acct.consumers == 0, f"fresh account: {acct}")

        step("create a stream with typical options")
        config = dict(
            name="ORDERS",
            subjects=["orders.>"],
            description="orders from the shop",
            storage="file",
            retention="limits",
            discard="old",
            max_msgs=1000,
            max_bytes=1 << 20,
            max_age=timedelta(hours=1),
            max_msg_size=4096,
            max_msgs_per_subject=100,
            duplicate_window=timedelta(minutes=1),
            allow_rollup_hdrs=True,
            deny_delete=False,
            deny_purge=False,
        )
        stream = await within(js.create_stream(**config), "create ORDERS")
        cfg = stream.info.config
        check(stream.name == "ORDERS" and cfg.name == "ORDERS", f"name {cfg.name}")
        check(cfg.subjects == ["orders.>"], f"subjects {cfg.subjects}")
        check(cfg.description == "orders from the shop", f"description {cfg.description}")
        check(cfg.storage == "file" and cfg.retention == "limits" and cfg.discard == "old", f"policies {cfg}")
        check(cfg.max_msgs == 1000 and cfg.max_bytes == 1 << 20, f"limits {cfg.max_msgs} {cfg.max_bytes}")
        check(cfg.max_age == timedelta(hours=1), f"max_age {cfg.max_age}")
        check(cfg.max_msg_size == 4096 and cfg.max_msgs_per_subject == 100, f"sizes {cfg}")
        check(cfg.duplicate_window == timedelta(minutes=1), f"duplicate_window {cfg.duplicate_window}")
        check(cfg.allow_rollup_hdrs is True, f"allow_rollup_hdrs {cfg.allow_rollup_hdrs}")
        check(cfg.num_replicas == 1, f"replicas {cfg.num_replicas}")
        st = stream.info.state
        check(st.messages == 0 and st.bytes == 0 and st.consumer_count == 0, f"empty state {st}")
        check(st.first_sequence == 0 and st.last_sequence == 0, f"empty sequences {st}")

        step("create again with the same config is idempotent")
        again = await within(js.create_stream(**config), "create ORDERS again")
        check(again.info.config.max_msgs == 1000, "same stream")

        step("create with a different config fails: name in use")
        other = dict(config, max_msgs=5)
        err = await expect(StreamNameAlreadyInUseError, js.create_stream(**other), "name in use")
        check(err.error_code == 10058, f"err_code {err.error_code}")

        step("a second stream; overlapping subjects are refused")
        await within(js.create_stream(name="EVENTS", subjects=["events.*"], storage="memory"), "create EVENTS")
        err = await expect(JetStreamError, js.create_stream(name="DUP", subjects=["orders.new"]), "overlap")
        check(err.error_code == 10065, f"overlap err_code {err.error_code}: {err.description}")

        step("info")
        info = await within(js.get_stream_info("EVENTS"), "EVENTS info")
        check(info.config.storage == "memory" and info.config.subjects == ["events.*"], f"EVENTS {info.config}")
        check(info.created is not None, "created timestamp")
        await expect(StreamNotFoundError, js.get_stream_info("NOPE"), "info of a missing stream")
        await expect(StreamNotFoundError, js.get_stream("NOPE"), "get a missing stream")

        step("update")
        upd = dict(config, description="updated", max_msgs=2000, subjects=["orders.>", "returns.>"])
        upd["max_age"] = int(timedelta(hours=2).total_seconds() * 1e9)
        upd["duplicate_window"] = int(timedelta(minutes=1).total_seconds() * 1e9)
        info = await within(js.update_stream(**upd), "update ORDERS")
        check(info.config.description == "updated" and info.config.max_msgs == 2000, f"updated {info.config}")
        check(info.config.subjects == ["orders.>", "returns.>"], f"updated subjects {info.config.subjects}")
        check(info.config.max_age == timedelta(hours=2), f"updated max_age {info.config.max_age}")
        info = await within(stream.get_info(), "ORDERS info after update")
        check(info.config.description == "updated", "update persisted")
        err = await expect(JetStreamError, js.update_stream(**dict(upd, storage="memory")), "storage change")
        check(err.error_code == 10052, f"storage change err_code {err.error_code}: {err.description}")
        await expect(StreamNotFoundError, js.update_stream(name="NOPE", subjects=["nope"]), "update missing")

        step("names and list")
        names = sorted(await within(aslist(js.stream_names()), "stream names"))
        check(names == ["EVENTS", "ORDERS"], f"names {names}")
        names = await within(aslist(js.stream_names(subject="returns.x")), "names by subject")
        check(names == ["ORDERS"], f"names for returns.x {names}")
        infos = await within(aslist(js.list_streams()), "stream list")
        check(sorted(i.config.name for i in infos) == ["EVENTS", "ORDERS"], f"list {infos}")
        infos = await within(aslist(js.list_streams(subject="events.a")), "list by subject")
        check([i.config.name for i in infos] == ["EVENTS"], f"list for events.a {infos}")

        step("account info counts streams")
        acct = await within(js.account_info(), "account info")
        check(acct.streams == 2, f"streams {acct.streams}")

        step("delete")
        check(await within(js.delete_stream("EVENTS"), "delete EVENTS") is True, "delete says success")
        await expect(StreamNotFoundError, js.delete_stream("EVENTS"), "delete twice")
        names = await within(aslist(js.stream_names()), "names after delete")
        check(names == ["ORDERS"], f"names after delete {names}")

        step("many streams page through names and list")
        for i in range(12):
            await within(js.create_stream(name=f"S{i:02}", subjects=[f"many.{i}"], storage="memory"), f"S{i}")
        names = await within(aslist(js.stream_names()), "13 names")
        check(len(names) == 13 and len(set(names)) == 13, f"names {names}")
        infos = await within(aslist(js.list_streams()), "13 infos")
        check(len(infos) == 13, f"list length {len(infos)}")
    finally:
        await nc.close()


async def stream_messages(url: str) -> None:
    nc = await connect(url)
    js = jetstream.new(nc)
    try:
        step("create stream")
        stream = await within(
            js.create_stream(name="MSGS", subjects=["m.>"], storage="memory", duplicate_window=timedelta(minutes=1)),
            "create MSGS",
        )

        step("publish with acks")
        acks = []
        for i in range(1, 6):
            ack = await within(js.publish(f"m.{i % 2}", f"v{i}".encode(), headers={"X-N": str(i)}), f"publish {i}")
            acks.append(ack)
        check([a.sequence for a in acks] == [1, 2, 3, 4, 5], f"sequences {[a.sequence for a in acks]}")
        check(all(a.stream == "MSGS" and not a.duplicate for a in acks), f"acks {acks}")

        step("publish to a subject without a stream")
        await expect(NoRespondersError, js.publish("nostream.x", b"", retry_attempts=0), "no stream")

        step("deduplication by Nats-Msg-Id")
        a1 = await within(js.publish("m.d", b"once", headers={"Nats-Msg-Id": "id-1"}), "first with id")
        a2 = await within(js.publish("m.d", b"once", headers={"Nats-Msg-Id": "id-1"}), "same id")
        check(a1.sequence == 6 and not a1.duplicate, f"first {a1}")
        check(a2.sequence == 6 and a2.duplicate, f"duplicate {a2}")

        step("expected-last-sequence header")
        err = await expect(
            JetStreamError,
            js.publish("m.x", b"", headers={"Nats-Expected-Last-Sequence": "1"}),
            "wrong expected last sequence",
        )
        check(err.error_code == 10071, f"err_code {err.error_code}: {err.description}")
        ok = await within(js.publish("m.x", b"ok", headers={"Nats-Expected-Last-Sequence": "6"}), "right one")
        check(ok.sequence == 7, f"seq {ok.sequence}")

        step("stream state")
        info = await within(stream.get_info(), "info")
        st = info.state
        check(st.messages == 7 and st.first_sequence == 1 and st.last_sequence == 7, f"state {st}")
        check(st.bytes > 0 and st.first_ts is not None and st.last_ts is not None, f"state {st}")

        step("get message by sequence")
        m = await within(stream.get_message(3), "get seq 3")
        check(m.sequence == 3 and m.subject == "m.1" and m.data == b"v3", f"seq 3: {m}")
        check(m.headers is not None and m.headers.get("X-N") == "3", f"headers {m.headers}")
        check(m.time is not None, "time")
        await expect(MessageNotFoundError, stream.get_message(99), "get a missing sequence")

        step("get last message for subject")
        m = await within(stream.get_last_message_for_subject("m.0"), "last m.0")
        check(m.sequence == 4 and m.data == b"v4", f"last m.0: {m}")
        await expect(MessageNotFoundError, stream.get_last_message_for_subject("m.none"), "last of empty subject")

        step("delete message")
        await within(stream.delete_message(2), "delete seq 2")
        await expect(MessageNotFoundError, stream.get_message(2), "deleted message is gone")
        await expect(JetStreamError, stream.delete_message(2), "delete it again")
        info = await within(stream.get_info(), "info after delete")
        check(info.state.messages == 6, f"messages {info.state.messages}")
        check(info.state.num_deleted == 1 and info.state.deleted == [2], f"deleted {info.state}")
        await within(stream.secure_delete_message(3), "secure delete seq 3")
        await expect(MessageNotFoundError, stream.get_message(3), "securely deleted message is gone")

        step("subjects filter in info")
        info = await within(stream.get_info(subjects_filter="m.*"), "info with subjects")
        check(info.state.subjects is not None and info.state.subjects.get("m.1") == 2, f"subjects {info.state}")

        step("purge by subject, with keep, then all")
        await within(stream.purge(filter="m.1"), "purge m.1")
        info = await within(stream.get_info(subjects_filter=">"), "info after purge")
        check("m.1" not in (info.state.subjects or {}), f"m.1 purged: {info.state.subjects}")
        for i in range(3):
            await within(js.publish("m.k", str(i).encode()), "publish m.k")
        await within(stream.purge(filter="m.k", keep=1), "purge m.k keep 1")
        m = await within(stream.get_last_message_for_subject("m.k"), "kept m.k")
        check(m.data == b"2", f"kept last: {m}")
        info = await within(stream.get_info(subjects_filter="m.k"), "m.k count")
        check(info.state.subjects == {"m.k": 1}, f"m.k {info.state.subjects}")
        last = info.state.last_sequence
        await within(stream.purge(sequence=last), "purge below last sequence")
        info = await within(stream.get_info(), "info after purge to sequence")
        check(info.state.first_sequence == last, f"first seq {info.state.first_sequence} after purge to {last}")
        await within(stream.purge(), "purge all")
        info = await within(stream.get_info(), "info after purge all")
        check(info.state.messages == 0 and info.state.first_sequence == last + 1, f"after purge {info.state}")
        ack = await within(js.publish("m.after", b""), "publish after purge")
        check(ack.sequence == last + 1, f"sequence continues: {ack.sequence}")
    finally:
        await nc.close()


async def direct_get(url: str) -> None:
    nc = await connect(url)
    js = jetstream.new(nc)
    try:
        step("create stream with allow_direct")
        stream = await within(
            js.create_stream(name="DIRECT", subjects=["d.>"], storage="memory", allow_direct=True), "create"
        )
        check(stream.info.config.allow_direct is True, f"allow_direct {stream.info.config.allow_direct}")
        for i in range(1, 4):
            await within(js.publish(f"d.{i}", f"v{i}".encode(), headers={"X-I": str(i)}), "publish")
        await within(js.publish("d.1", b"v1b"), "publish again")

        step("direct get by sequence")
        m = await within(stream.get_message(2), "direct get seq 2")
        check(m.sequence == 2 and m.subject == "d.2" and m.data == b"v2", f"seq 2: {m}")
        check(m.headers is not None and m.headers.get("X-I") == "2", f"user headers {m.headers}")

        step("direct get last by subject")
        m = await within(stream.get_last_message_for_subject("d.1"), "direct last d.1")
        check(m.sequence == 4 and m.data == b"v1b", f"last d.1: {m}")

        step("direct get of a missing message")
        await expect(MessageNotFoundError, stream.get_message(99), "missing seq")
        await expect(MessageNotFoundError, stream.get_last_message_for_subject("d.none"), "missing subject")

        step("raw direct get request and its headers")
        resp = await within(nc.request("$JS.API.DIRECT.GET.DIRECT", b'{"seq":1}'), "raw direct get")
        h = resp.headers
        check(h is not None and h.get("Nats-Stream") == "DIRECT", f"Nats-Stream {h}")
        check(h.get("Nats-Sequence") == "1" and h.get("Nats-Subject") == "d.1", f"sequence/subject {h}")
        check(h.get("Nats-Time-Stamp"), f"timestamp {h}")
        resp = await within(nc.request("$JS.API.DIRECT.GET.DIRECT", b'{"next_by_subj":"d.3","seq":1}'), "next")
        check(resp.headers.get("Nats-Sequence") == "3" and resp.data == b"v3", f"next_by_subj {resp}")

        step("stored-message API still works on a direct stream")
        m = await within(js.get_message("DIRECT", 3), "STREAM.MSG.GET seq 3")
        check(m.sequence == 3 and m.data == b"v3" and m.headers.get("X-I") == "3", f"msg get {m}")
        m = await within(js.get_last_message_for_subject("DIRECT", "d.1"), "STREAM.MSG.GET last d.1")
        check(m.sequence == 4, f"last {m}")
    finally:
        await nc.close()


SCENARIOS = {
    "stream_admin": stream_admin,
    "stream_messages": stream_messages,
    "direct_get": direct_get,
}

if __name__ == "__main__":
    main(SCENARIOS)
