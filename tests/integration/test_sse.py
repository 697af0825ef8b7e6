"""Server-Sent Events: head, preamble, events, line breaks, heartbeat, curl, resume, gap."""

import json
import os
import select
import subprocess
import time

import client
from harness import Failure, check, eq, test


def ids_data(evs):
    return [(e.id, e.data) for e in evs]


@test
def sse_basics(t):
    """200 text/event-stream no-cache; retry: first; then new messages in order with id/data."""
    with t.server() as s:
        s.publish("a", "before")  # not replayed: no since, no Last-Event-ID
        sub = s.sse("/sub/a")
        pre = sub.preamble()
        h = sub.head
        eq(h.status, 200, "SSE status")
        ct = h.header("content-type") or ""
        check(ct.split(";")[0].strip().lower() == "text/event-stream", "SSE Content-Type %r", ct)
        check("no-cache" in (h.header("cache-control") or "").lower(),
              "SSE Cache-Control %r, expected no-cache", h.header("cache-control"))
        check(h.header("content-length") is None, "SSE answer has a Content-Length: %r", h.header("content-length"))
        check(pre.retry.isdigit(), "retry: value %r is not an integer", pre.retry)
        c = s.conn()
        for i in range(2, 7):
            eq(s.publish("a", "msg %d" % i, conn=c)["id"], i, "publish id")
        evs = sub.events(5)
        eq(ids_data(evs), [(str(i), "msg %d" % i) for i in range(2, 7)], "SSE events (id, data)")
        for e in evs:
            eq(e.field_names(), ["id", "data"], "fields of a message without X-Event")
        check(not sub.quiet_for(0.3), "unexpected extra events")
        # a second subscriber on another channel sees nothing of channel a
        other = s.sse("/sub/b")
        other.preamble()
        s.publish("a", "x")
        s.publish("b", "y")
        eq(ids_data(other.events(1)), [("1", "y")], "subscriber of b")
        eq(ids_data(sub.events(1)), [("7", "x")], "subscriber of a")


@test
def sse_multiline_and_event(t):
    """\\n, \\r\\n and \\r in a payload each start a new data: line; X-Event gives event:."""
    with t.server() as s:
        sub = s.sse("/sub/m")
        sub.preamble()
        s.publish("m", b"l1\nl2\r\nl3")
        s.publish("m", b"a\rb", event="price")
        s.publish("m", b"single", event="Ev.1:x-y_Z")
        e1, e2, e3 = sub.events(3)
        eq(e1.fields, [("id", "1"), ("data", "l1"), ("data", "l2"), ("data", "l3")], "fields of l1\\nl2\\r\\nl3")
        eq(e1.data, "l1\nl2\nl3", "joined data")
        eq(e2.id, "2", "id of second")
        eq(e2.event, "price", "event: from X-Event")
        eq(e2.data_lines, ["a", "b"], "data lines of a\\rb")
        eq((e3.event, e3.data), ("Ev.1:x-y_Z", "single"), "event name with the whole alphabet")
        # raw lines: exactly three data lines for the first message
        lines = sub.parser.lines
        i = lines.index("id: 1") if "id: 1" in lines else lines.index("id:1")
        eq(lines[i + 1:i + 4], ["data: l1", "data: l2", "data: l3"], "raw data lines")


@test
def sse_heartbeat(t):
    """With --heartbeat 1 a `: hb` comment arrives within ~2 s, and keeps coming."""
    with t.server(heartbeat=1) as s:
        sub = s.sse("/sub/hb")
        sub.preamble()
        t0 = time.monotonic()
        c = sub.next_comment(2.5, "a heartbeat comment within 2.5 s")
        eq(c.text, "hb", "heartbeat comment text")
        c = sub.next_comment(2.5, "a second heartbeat comment")
        eq(c.text, "hb", "second heartbeat comment text")
        check(time.monotonic() - t0 >= 0.8, "two heartbeats in %.2fs with --heartbeat 1", time.monotonic() - t0)
        # still a working stream
        s.publish("hb", "after")
        eq(ids_data(sub.events(1)), [("1", "after")], "event after heartbeats")


@test
def sse_curl(t):
    """A real client: curl -N receives the stream as README shows it."""
    with t.server() as s:
        url = "http://127.0.0.1:%d/sub/news" % s.port
        p = t.spawn(["curl", "-sS", "-N", "--max-time", "20", "-H", "Accept: text/event-stream", url],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        parser = client.SSEParser()
        deadline = time.monotonic() + 10

        def read_until(cond, what):
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure("curl: timed out waiting for %s; got lines %r" % (what, parser.lines))
                r, _, _ = select.select([p.stdout], [], [], left)
                if r:
                    d = os.read(p.stdout.fileno(), 65536)
                    if not d:
                        raise Failure("curl output ended (%s) waiting for %s; lines %r; stderr %r"
                                      % (p.wait(5), what, parser.lines, p.stderr.read()))
                    parser.feed(d)

        read_until(lambda: any(i.kind == "block" for i in parser.items), "the retry: preamble")
        pub = subprocess.run(["curl", "-sS", "--max-time", "5", "-d", "hello", "http://127.0.0.1:%d/pub/news" % s.port],
                             capture_output=True, timeout=10)
        eq(json.loads(pub.stdout), {"channel": "news", "id": 1, "subscribers": 1}, "curl publish answer")
        pub = subprocess.run(["curl", "-sS", "--max-time", "5", "-H", "X-Event: price", "-d", '{"p":3}',
                              "http://127.0.0.1:%d/pub/news" % s.port], capture_output=True, timeout=10)
        eq(json.loads(pub.stdout)["id"], 2, "curl publish id")
        read_until(lambda: len([i for i in parser.items if i.kind == "block" and i.has_data]) >= 2, "two events")
        evs = [i for i in parser.items if i.kind == "block" and i.has_data]
        eq([(e.id, e.event, e.data) for e in evs], [("1", None, "hello"), ("2", "price", '{"p":3}')],
           "events through curl")
        first = [i for i in parser.items if i.kind == "block"][0]
        check(first.retry is not None, "first block through curl is not retry: %r", first)
        p.terminate()
        p.wait(5)


@test
def sse_resume(t):
    """Last-Event-ID and ?since= replay held messages then go live; the query wins."""
    with t.server() as s:
        for i in range(1, 6):
            s.publish("r", "m%d" % i)
        a = s.sse("/sub/r", headers={"Last-Event-ID": "2"})
        a.preamble()
        eq(ids_data(a.events(3)), [("3", "m3"), ("4", "m4"), ("5", "m5")], "Last-Event-ID: 2 replay")
        b = s.sse("/sub/r?since=3")
        b.preamble()
        eq(ids_data(b.events(2)), [("4", "m4"), ("5", "m5")], "since=3 replay")
        c = s.sse("/sub/r?since=3", headers={"Last-Event-ID": "1"})
        c.preamble()
        eq(ids_data(c.events(2)), [("4", "m4"), ("5", "m5")], "since=3 with Last-Event-ID: 1 (query wins)")
        d = s.sse("/sub/r?since=0")
        d.preamble()
        eq([e.id for e in d.events(5)], ["1", "2", "3", "4", "5"], "since=0 replays everything held")
        e = s.sse("/sub/r?since=5")
        e.preamble()
        n = s.sse("/sub/r")
        n.preamble()
        check(not e.quiet_for(0.2) and not n.quiet_for(0.1), "replay where none was due")
        s.publish("r", "m6")
        for sub, what in ((a, "Last-Event-ID"), (b, "since=3"), (c, "since+header"), (d, "since=0"),
                          (e, "since=5"), (n, "no resume")):
            eq(ids_data(sub.events(1)), [("6", "m6")], "live message after replay (%s)" % what)


@test
def sse_gap(t):
    """--history 3, 10 published: since=2 gets `event: gap` (no id) then 8,9,10; since beyond
    the last id is a gap whose first is the oldest held, then every held message."""
    with t.server(history=3) as s:
        for i in range(1, 11):
            s.publish("a", "m%d" % i)
        sub = s.sse("/sub/a?since=2")
        sub.preamble()
        g = sub.events(1)[0]
        eq(g.event, "gap", "event name of the gap event")
        check(g.id is None, "the gap event has an id: line: %r", g.fields)
        eq(g.field_names(), ["event", "data"], "fields of the gap event")
        eq(json.loads(g.data), {"channel": "a", "requested": 3, "first": 8}, "gap event data")
        eq(ids_data(sub.events(3)), [("8", "m8"), ("9", "m9"), ("10", "m10")], "events after the gap")
        # Last-Event-ID works the same
        h = s.sse("/sub/a", headers={"Last-Event-ID": "0"})
        h.preamble()
        g = h.events(1)[0]
        eq((g.event, json.loads(g.data)), ("gap", {"channel": "a", "requested": 1, "first": 8}),
           "gap for Last-Event-ID: 0")
        eq([e.id for e in h.events(3)], ["8", "9", "10"], "after the Last-Event-ID gap")
        # no gap when the first wanted id is still held
        ok = s.sse("/sub/a?since=7")
        ok.preamble()
        eq(ids_data(ok.events(3)), [("8", "m8"), ("9", "m9"), ("10", "m10")], "since=7: no gap")
        # since beyond the last id
        far = s.sse("/sub/a?since=50")
        far.preamble()
        g = far.events(1)[0]
        eq((g.event, g.id), ("gap", None), "since=50: gap event")
        eq(json.loads(g.data), {"channel": "a", "requested": 51, "first": 8}, "since=50 gap data")
        # README: every held message follows this gap (the client starts over from there)
        eq(ids_data(far.events(3)), [("8", "m8"), ("9", "m9"), ("10", "m10")], "since=50: held messages after the gap")
        check(not far.quiet_for(0.2), "since=50: more than the held messages before any publish")
        s.publish("a", "m11")
        eq([e.id for e in far.events(1)], ["11"], "since=50: the live 11 after the replay")
        eq([e.id for e in sub.events(1)], ["11"], "since=2 subscriber gets the live 11")
