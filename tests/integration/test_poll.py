"""Long poll (GET /sub/{ch} without text/event-stream) and short poll (GET /poll/{ch})."""

import time

from harness import check, eq, json_answer, test, within


def poll_answer(resp, ch, what):
    """Checks README's poll answer shape exactly; returns the JSON object."""
    v = json_answer(resp, 200, what)
    check(isinstance(v, dict), "%s: answer is not an object: %r", what, v)
    keys = set(v)
    check(keys in ({"channel", "messages", "last_id"}, {"channel", "messages", "last_id", "gap"}),
          "%s: answer keys %r, expected channel, messages, last_id (and gap)", what, sorted(keys))
    eq(v["channel"], ch, what + ": channel")
    check(isinstance(v["messages"], list), "%s: messages is not a list", what)
    check(isinstance(v["last_id"], int), "%s: last_id is not an integer", what)
    for m in v["messages"]:
        check(isinstance(m, dict) and set(m) in ({"id", "data"}, {"id", "event", "data"}),
              "%s: message %r should have id, data (and event)", what, m)
        check(isinstance(m["id"], int) and isinstance(m["data"], str), "%s: message types %r", what, m)
    if "gap" in v:
        check(isinstance(v["gap"], dict) and set(v["gap"]) == {"requested", "first"},
              "%s: gap should be {requested, first}: %r", what, v["gap"])
    return v


def id_data(v):
    return [(m["id"], m["data"]) for m in v["messages"]]


@test
def long_poll_wakes(t):
    """A waiting long poll answers within 1 s of a publish, with that message and last_id."""
    with t.server(poll_timeout=5) as s:
        s.publish("lp", "old1")
        s.publish("lp", "old2")
        # without since: waits for the next new message
        c = s.conn()
        c.send(b"GET /sub/lp HTTP/1.1\r\nHost: x\r\n\r\n")
        c.expect_silent(0.4, "long poll without since answered before any publish")
        t0 = time.monotonic()
        eq(s.publish("lp", "new3")["id"], 3, "publish id")
        v = poll_answer(c.read_response(timeout=1.0), "lp", "long poll woken by publish")
        within(time.monotonic() - t0, 0, 1.0, "long poll wake-up")
        eq(id_data(v), [(3, "new3")], "woken long poll messages")
        eq(v["last_id"], 3, "last_id")
        # with since = last id, on the same keep-alive connection, and an X-Event
        c.send(b"GET /sub/lp?since=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        c.expect_silent(0.3, "long poll since=3 answered before the publish")
        t0 = time.monotonic()
        s.publish("lp", "new4", event="tick")
        v = poll_answer(c.read_response(timeout=1.0), "lp", "second long poll")
        within(time.monotonic() - t0, 0, 1.0, "second long poll wake-up")
        eq(v["messages"], [{"id": 4, "event": "tick", "data": "new4"}], "second long poll messages")
        eq(v["last_id"], 4, "last_id after 4")
        # several waiting long polls on one channel all wake up (spread over workers)
        conns = [s.conn() for _ in range(8)]
        for cc in conns:
            cc.send(b"GET /sub/lp?since=4 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        s.publish("lp", "five")
        for i, cc in enumerate(conns):
            v = poll_answer(cc.read_response(timeout=1.5), "lp", "long poll %d of 8" % i)
            eq(id_data(v), [(5, "five")], "long poll %d of 8" % i)
        # Last-Event-ID works like since
        v = poll_answer(s.get("/sub/lp", headers={"Last-Event-ID": "3"}, timeout=2), "lp", "Last-Event-ID: 3")
        eq([m["id"] for m in v["messages"]], [4, 5], "long poll with Last-Event-ID: 3")


@test
def long_poll_immediate(t):
    """With messages after since held, the long poll answers at once with all of them."""
    with t.server(poll_timeout=5) as s:
        for i in range(1, 5):
            s.publish("im", "m%d" % i, event="e" if i == 2 else None)
        t0 = time.monotonic()
        v = poll_answer(s.get("/sub/im?since=1", timeout=2), "im", "long poll since=1")
        within(time.monotonic() - t0, 0, 0.5, "long poll with data already held")
        eq(v["messages"], [{"id": 2, "event": "e", "data": "m2"}, {"id": 3, "data": "m3"},
                           {"id": 4, "data": "m4"}], "long poll since=1 messages")
        eq(v["last_id"], 4, "last_id")
        v = poll_answer(s.get("/sub/im?since=0", timeout=2), "im", "long poll since=0")
        eq([m["id"] for m in v["messages"]], [1, 2, 3, 4], "long poll since=0")
        v = poll_answer(s.get("/sub/im?since=3&x=1", timeout=2), "im", "long poll since=3 with another param")
        eq(id_data(v), [(4, "m4")], "long poll since=3&x=1")


@test
def long_poll_timeout_keepalive(t):
    """--poll-timeout 1: an empty answer {"messages":[]} after ~1 s; the connection can poll again."""
    with t.server(poll_timeout=1) as s:
        s.publish("to", "one")
        c = s.conn()
        t0 = time.monotonic()
        v = poll_answer(c.get("/sub/to?since=1", timeout=5), "to", "timed-out long poll")
        within(time.monotonic() - t0, 0.8, 3.0, "long poll timeout")
        eq(v["messages"], [], "messages of a timed-out long poll")
        eq(v["last_id"], 1, "last_id of a timed-out long poll")
        check("gap" not in v, "timed-out long poll has a gap: %r", v)
        # same connection, long poll again: woken by a publish
        c.send(b"GET /sub/to?since=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        s.publish("to", "two")
        v = poll_answer(c.read_response(timeout=2), "to", "second long poll on the same connection")
        eq(id_data(v), [(2, "two")], "second long poll on the same connection")
        # and time out again on it, on a channel that never had a message
        t0 = time.monotonic()
        v = poll_answer(c.get("/sub/never", timeout=5), "never", "long poll of an empty channel")
        within(time.monotonic() - t0, 0.8, 3.0, "second timeout")
        eq((v["messages"], v["last_id"]), ([], 0), "empty channel: messages and last_id")
        eq(c.get("/poll/to").status, 200, "short poll on the same connection after two long polls")


@test
def short_poll(t):
    """Answers at once: without since every held message, with since those after it."""
    with t.server(poll_timeout=5) as s:
        v = poll_answer(s.get("/poll/empty"), "empty", "short poll of a channel never published")
        eq((v["messages"], v["last_id"]), ([], 0), "never-published channel")
        for i in range(1, 6):
            s.publish("sp", "m%d" % i, event="odd" if i % 2 else None)
        t0 = time.monotonic()
        v = poll_answer(s.get("/poll/sp"), "sp", "short poll without since")
        within(time.monotonic() - t0, 0, 0.5, "short poll")
        eq(v["messages"], [{"id": i, "data": "m%d" % i, **({"event": "odd"} if i % 2 else {})}
                           for i in range(1, 6)], "short poll without since")
        eq(v["last_id"], 5, "last_id")
        v = poll_answer(s.get("/poll/sp?since=3"), "sp", "short poll since=3")
        eq(id_data(v), [(4, "m4"), (5, "m5")], "since=3")
        t0 = time.monotonic()
        v = poll_answer(s.get("/poll/sp?since=5"), "sp", "short poll since=last")
        within(time.monotonic() - t0, 0, 0.5, "short poll with nothing new")
        eq((v["messages"], v["last_id"]), ([], 5), "since=5")
        check("gap" not in v, "gap in an up-to-date short poll: %r", v)


@test
def poll_json_escaping(t):
    """data is a JSON string: quotes, backslashes, control characters escaped, UTF-8 passes
    through, bytes that are not UTF-8 become U+FFFD."""
    cases = [
        (b'q"uo\\te/', 'q"uo\\te/'),
        (b"ctl\x00\x01\x08\t\n\x0c\r\x1b\x1f\x7f.", "ctl\x00\x01\x08\t\n\x0c\r\x1b\x1f\x7f."),
        ("é ü ∑ 日本 😀".encode(), "é ü ∑ 日本 😀"),
        (b"a\xffb", "a\ufffdb"),
        (b"<script>&'", "<script>&'"),
    ]
    with t.server() as s:
        for body, _ in cases:
            s.publish("j", body)
        s.publish("j", b"pre\xc0\xaf\xed\xa0\x80\xe2\x82post")
        s.publish("j", b"end\xe2\x82")
        r = s.get("/poll/j")
        v = poll_answer(r, "j", "short poll of escaped messages")  # strict JSON: raw controls fail
        got = [m["data"] for m in v["messages"]]
        for i, (body, want) in enumerate(cases):
            eq(got[i], want, "data of message %d (%r)" % (i + 1, body))
        for raw in ("é ü ∑ 日本 😀".encode(),):
            check(raw in r.body, "UTF-8 %r does not pass through as is in %r", raw, r.body[:400])
        # invalid sequences: U+FFFD replacements only (how many is not specified)
        mid = got[len(cases)]
        check(mid.startswith("pre") and mid.endswith("post") and mid[3:-4] and set(mid[3:-4]) == {"\ufffd"},
              "invalid UTF-8 should become U+FFFD: %r", mid)
        end = got[len(cases) + 1]
        check(end.startswith("end") and end[3:] and set(end[3:]) == {"\ufffd"},
              "truncated UTF-8 at the end should become U+FFFD: %r", end)
        # the same through a long poll
        v = poll_answer(s.get("/sub/j?since=3", timeout=3), "j", "long poll of escaped messages")
        eq([m["data"] for m in v["messages"]][:3], [c[1] for c in cases[3:]] + [mid], "long poll data")


@test
def poll_gap(t):
    """--history 3, 10 published: polls with since=2 carry "gap":{"requested":3,"first":8}."""
    with t.server(history=3, poll_timeout=2) as s:
        for i in range(1, 11):
            s.publish("a", "m%d" % i)
        for path in ("/poll/a?since=2", "/sub/a?since=2"):
            t0 = time.monotonic()
            v = poll_answer(s.get(path, timeout=3), "a", path)
            within(time.monotonic() - t0, 0, 1.0, path)
            eq(v.get("gap"), {"requested": 3, "first": 8}, path + " gap")
            eq(id_data(v), [(8, "m8"), (9, "m9"), (10, "m10")], path + " messages")
            eq(v["last_id"], 10, path + " last_id")
        v = poll_answer(s.get("/poll/a?since=0"), "a", "since=0")
        eq(v.get("gap"), {"requested": 1, "first": 8}, "since=0 gap")
        v = poll_answer(s.get("/poll/a"), "a", "short poll without since")
        check("gap" not in v, "short poll without since has a gap: %r", v)
        eq([m["id"] for m in v["messages"]], [8, 9, 10], "short poll without since")
        v = poll_answer(s.get("/poll/a?since=7"), "a", "since=7")
        check("gap" not in v, "since=7 (8 held) has a gap: %r", v)
        eq([m["id"] for m in v["messages"]], [8, 9, 10], "since=7")
        # since beyond the last id: a gap whose first is the oldest held
        for path in ("/poll/a?since=50", "/sub/a?since=50"):
            t0 = time.monotonic()
            v = poll_answer(s.get(path, timeout=4), "a", path)
            within(time.monotonic() - t0, 0, 1.0, path)
            eq(v.get("gap"), {"requested": 51, "first": 8}, path + " gap")
            # README: every held message follows the gap (the long poll answers at once)
            eq(id_data(v), [(8, "m8"), (9, "m9"), (10, "m10")], path + " messages")
            eq(v["last_id"], 10, path + " last_id")
