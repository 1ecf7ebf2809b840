"""nats-core (module nats.client): connect, pub/sub with headers, request/reply, queue
groups, drain and close. Usage and output: see py313_common.py."""

import asyncio

from nats.client import ClientStatus, NoRespondersError

from py313_common import STEP, check, collect, connect, expect, main, step, within


async def connect_info(url: str) -> None:
    step("connect")
    nc = await connect(url)
    info = nc.server_info
    check(info is not None and info.server_id != "", f"server_info carries a server id: {info}")
    check(info.version != "", f"server_info carries a version: {info}")
    check(info.headers, "server announces header support")
    check(nc.status == ClientStatus.CONNECTED, f"status after connect: {nc.status}")
    step("rtt (PING/PONG)")
    rtt = await within(nc.rtt(timeout=STEP), "rtt")
    check(rtt >= 0, f"rtt {rtt}")
    step("flush")
    await within(nc.flush(timeout=STEP), "flush")
    step("close")
    await within(nc.close(), "close")
    check(nc.status == ClientStatus.CLOSED, f"status after close: {nc.status}")


async def pubsub_headers(url: str) -> None:
    nc = await connect(url)
    other = await connect(url)
    try:
        step("subscribe (literal and wildcards)")
        exact = await nc.subscribe("py.ps.one")
        star = await nc.subscribe("py.ps.*")
        full = await nc.subscribe("py.>")
        await within(nc.flush(timeout=STEP), "flush after subscribe")

        step("publish without headers")
        await other.publish("py.ps.one", b"plain")
        await within(other.flush(timeout=STEP), "flush after publish")
        for sub, what in ((exact, "literal"), (star, "py.ps.*"), (full, "py.>")):
            m = await within(sub.next(), f"plain message on the {what} subscription")
            check(m.subject == "py.ps.one" and m.data == b"plain", f"{what}: {m}")
            check(m.headers is None, f"{what}: no headers expected, got {m.headers}")

        step("publish with headers (single and multi-valued)")
        hdrs = {"X-One": "1", "X-Multi": ["a", "b"], "X-Space": "two words"}
        await other.publish("py.ps.one", b"with headers", headers=hdrs)
        await within(other.flush(timeout=STEP), "flush after header publish")
        m = await within(exact.next(), "message with headers")
        check(m.data == b"with headers", f"payload {m.data!r}")
        check(m.headers is not None, "headers present")
        check(m.headers.get("X-One") == "1", f"X-One: {m.headers}")
        check(m.headers.get_all("X-Multi") == ["a", "b"], f"X-Multi: {m.headers}")
        check(m.headers.get("X-Space") == "two words", f"X-Space: {m.headers}")
        check(m.status is None, f"no status on a plain message: {m.status}")
        await within(star.next(), "header message on py.ps.*")
        await within(full.next(), "header message on py.>")

        step("empty payload with headers")
        await other.publish("py.ps.one", b"", headers={"X-Only": "h"})
        m = await within(exact.next(), "headers-only message")
        check(m.data == b"" and m.headers.get("X-Only") == "h", f"headers-only: {m}")
        await within(star.next(), "headers-only message on py.ps.*")
        await within(full.next(), "headers-only message on py.>")

        step("subject outside the wildcard")
        await other.publish("py.ps.one.deeper", b"deep")
        m = await within(full.next(), "py.> gets a deeper subject")
        check(m.subject == "py.ps.one.deeper", f"subject {m.subject}")
        # A later publish on py.ps.one marks the end: had py.ps.* matched the deeper subject,
        # that message would arrive first.
        await other.publish("py.ps.one", b"marker")
        m = await within(star.next(), "marker on py.ps.*")
        check(m.data == b"marker", f"py.ps.* must not match py.ps.one.deeper, got {m}")

        step("unsubscribe")
        await exact.unsubscribe()
        await within(nc.flush(timeout=STEP), "flush after unsubscribe")
        await other.publish("py.ps.one", b"after unsub")
        await within(full.next(), "marker on py.>")
        m = await within(full.next(), "py.> still subscribed")
        check(m.data == b"after unsub", f"py.> got {m}")
        check(exact.closed, "unsubscribed subscription is closed")

        step("no echo")
        quiet = await connect(url, no_echo=True)
        try:
            own = await quiet.subscribe("py.echo")
            foreign = await nc.subscribe("py.echo")
            await within(quiet.flush(timeout=STEP), "flush no-echo sub")
            await within(nc.flush(timeout=STEP), "flush echo sub")
            await quiet.publish("py.echo", b"mine")
            await within(quiet.flush(timeout=STEP), "flush no-echo publish")
            m = await within(foreign.next(), "other connection gets the no-echo publish")
            check(m.data == b"mine", f"echo: {m}")
            # The publisher's own subscription gets nothing: a message from another connection
            # published after it arrives first.
            await other.publish("py.echo", b"theirs")
            m = await within(own.next(), "no-echo connection gets others' messages")
            check(m.data == b"theirs", f"no-echo connection got its own message: {m}")
        finally:
            await quiet.close()
    finally:
        await other.close()
        await nc.close()


async def request_reply(url: str) -> None:
    nc = await connect(url)
    client = await connect(url)
    try:
        step("responder")
        svc = await nc.subscribe("py.rr.upper")
        await within(nc.flush(timeout=STEP), "flush responder subscription")

        async def serve(n: int) -> None:
            for _ in range(n):
                req = await svc.next()
                hdrs = {"X-Seen": req.headers.get("X-Req")} if req.headers else None
                await nc.publish(req.reply, req.data.upper(), headers=hdrs)

        server = asyncio.create_task(serve(5))

        step("request")
        resp = await within(client.request("py.rr.upper", b"shout", timeout=STEP), "reply")
        check(resp.data == b"SHOUT", f"reply {resp.data!r}")

        step("request with headers")
        resp = await within(
            client.request("py.rr.upper", b"h", headers={"X-Req": "42"}, timeout=STEP), "reply with headers"
        )
        check(resp.data == b"H" and resp.headers and resp.headers.get("X-Seen") == "42", f"reply {resp}")

        step("concurrent requests")
        reqs = [client.request("py.rr.upper", w, timeout=STEP) for w in (b"x", b"y", b"z")]
        res = await within(asyncio.gather(*reqs), "three concurrent replies")
        check([r.data for r in res] == [b"X", b"Y", b"Z"], f"each request got its own reply: {res}")
        await within(server, "responder finished")

        step("request to a subject nobody serves")
        await expect(NoRespondersError, client.request("py.rr.nobody", b"?", timeout=STEP), "no responders")

        step("request the responder never answers")
        mute = await nc.subscribe("py.rr.mute")
        await within(nc.flush(timeout=STEP), "flush mute subscription")
        await expect(TimeoutError, client.request("py.rr.mute", b"?", timeout=0.5), "request timeout")
        check((await within(mute.next(), "mute got the request")).data == b"?", "mute responder saw it")

        step("manual inbox reply")
        inbox = client.new_inbox()
        replies = await client.subscribe(inbox)
        await within(client.flush(timeout=STEP), "flush inbox")
        await client.publish("py.rr.mute", b"manual", reply=inbox)
        req = await within(mute.next(), "manual request")
        check(req.reply == inbox, f"reply subject {req.reply}")
        await nc.publish(req.reply, b"answer")
        check((await within(replies.next(), "manual reply")).data == b"answer", "manual reply")
    finally:
        await client.close()
        await nc.close()


async def queue_groups(url: str) -> None:
    n = 40
    a = await connect(url)
    b = await connect(url)
    pub = await connect(url)
    try:
        step("queue subscribers and a plain subscriber")
        qa = await a.subscribe("py.q.work", queue="workers")
        qb = await b.subscribe("py.q.work", queue="workers")
        plain = await b.subscribe("py.q.work")
        check(qa.queue == "workers", f"queue name {qa.queue}")
        await within(a.flush(timeout=STEP), "flush a")
        await within(b.flush(timeout=STEP), "flush b")

        step(f"publish {n} messages")
        for i in range(n):
            await pub.publish("py.q.work", str(i).encode())
        await within(pub.flush(timeout=STEP), "flush publisher")

        step("plain subscriber gets every message")
        got = await collect(plain, n, "plain subscriber")
        check([m.data for m in got] == [str(i).encode() for i in range(n)], "plain subscriber sees all in order")

        step("each message goes to exactly one queue member")
        # Both members' connections have processed everything published once a flush on each
        # returns after the plain subscriber (on b) got the last message; a's flush covers a.
        await within(a.flush(timeout=STEP), "flush a after delivery")
        await within(b.flush(timeout=STEP), "flush b after delivery")
        seen = []
        for sub in (qa, qb):
            while sub.pending[0] > 0:
                seen.append((sub, (await within(sub.next(), "pending queue message")).data))
        datas = sorted(int(d) for _, d in seen)
        check(datas == list(range(n)), f"queue group got each message once: {datas}")
        check(any(s is qa for s, _ in seen) and any(s is qb for s, _ in seen), "both members got messages")

        step("queue member leaves")
        await qa.unsubscribe()
        await within(a.flush(timeout=STEP), "flush unsubscribe")
        for i in range(5):
            await pub.publish("py.q.work", b"after")
        await within(pub.flush(timeout=STEP), "flush publisher")
        got = await collect(qb, 5, "remaining member gets all")
        check(all(m.data == b"after" for m in got), "remaining member")
    finally:
        await pub.close()
        await b.close()
        await a.close()


async def drain_close(url: str) -> None:
    watcher = await connect(url)
    try:
        w = await watcher.subscribe("py.drain.>")
        await within(watcher.flush(timeout=STEP), "flush watcher")

        step("drain delivers what was published before it")
        nc = await connect(url)
        sub = await nc.subscribe("py.drain.in")
        await within(nc.flush(timeout=STEP), "flush subscription")
        for i in range(10):
            await watcher.publish("py.drain.in", str(i).encode())
        await within(watcher.flush(timeout=STEP), "flush publishes")
        # The watcher sees its own messages; once it has the tenth, nc has been sent all ten too
        # (the server delivers in order per subscription and nc's flush below orders the rest).
        await collect(w, 10, "watcher sees the published messages")
        await within(nc.flush(timeout=STEP), "nc flushed after publishes")
        for i in range(5):
            await nc.publish("py.drain.out", str(i).encode())
        await within(nc.drain(timeout=STEP), "drain")
        check(nc.status == ClientStatus.CLOSED, f"status after drain: {nc.status}")
        got = []
        async for m in sub:
            got.append(m.data)
        check(got == [str(i).encode() for i in range(10)], f"drained subscription kept its messages: {got}")
        out = await collect(w, 5, "messages published right before drain reach the server")
        check([m.data for m in out] == [str(i).encode() for i in range(5)], "pre-drain publishes")

        step("publish after drain fails")
        await expect(RuntimeError, nc.publish("py.drain.x", b"late"), "publish on a drained connection")

        step("drain and close are idempotent")
        await within(nc.drain(), "second drain")
        await within(nc.close(), "close after drain")

        step("subscription drain")
        nc = await connect(url)
        sub = await nc.subscribe("py.drain.sub")
        await within(nc.flush(timeout=STEP), "flush")
        await watcher.publish("py.drain.sub", b"one")
        await within(watcher.flush(timeout=STEP), "flush")
        await within(w.next(), "watcher copy")
        await within(nc.flush(timeout=STEP), "flush before sub drain")
        await sub.drain()
        await within(nc.flush(timeout=STEP), "flush UNSUB")
        await watcher.publish("py.drain.sub", b"two")
        await within(watcher.flush(timeout=STEP), "flush")
        check((await within(w.next(), "watcher copy")).data == b"two", "watcher")
        await within(nc.flush(timeout=STEP), "flush after second publish")
        got = [m.data async for m in sub]
        check(got == [b"one"], f"drained subscription: {got}")

        step("close")
        await within(nc.close(), "close")
        check(nc.status == ClientStatus.CLOSED, f"status {nc.status}")
        await expect(RuntimeError, nc.subscribe("py.x"), "subscribe on a closed connection")
        await expect(RuntimeError, nc.request("py.x", b""), "request on a closed connection")
    finally:
        await watcher.close()


SCENARIOS = {
    "connect": connect_info,
    "pubsub_headers": pubsub_headers,
    "request_reply": request_reply,
    "queue_groups": queue_groups,
    "drain_close": drain_close,
}

if __name__ == "__main__":
    main(SCENARIOS)
