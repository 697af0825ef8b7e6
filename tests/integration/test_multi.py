"""Several channels in one subscription (README "Several channels"): SSE composite ids, resume
by composite Last-Event-ID / since pairs, gaps per channel, poll answers per channel, limits."""

import json
import time

import client
from client import parse_multi_id
from harness import Failure, check, eq, json_answer, test, within
from test_poll import id_data, poll_answer


class Track:
    """Follows one several-channel SSE stream and checks every event against README:

    - a message event's `id:` names every subscribed channel exactly once, this event's
      channel first, with this event's id; its id is the previous one of that channel + 1 (ids
      per channel without gaps); every other pair is that channel's position on this stream
      (what it delivered last, or where it started);
    - a gap event (`event: gap`, no id) names its channel in data; the next event of that
      channel carries `first`. Until then the channel's pair may still show the old position
      or first-1 (README does not say which).

    pos: where each channel starts (the since value, or the last id when starting from now).
    got[ch]: (id, data) of the channel's messages in arrival order; gaps[ch]: gap data."""

    def __init__(self, chans, pos, what):
        self.chans = list(chans)
        self.pos = {ch: pos.get(ch, 0) for ch in chans}
        self.alt = {}  # channel -> also accepted value of its pair after a gap
        self.what = what
        self.got = {ch: [] for ch in chans}
        self.gaps = {ch: [] for ch in chans}
        self.order = []  # (channel, id or "gap") in arrival order

    def feed(self, ev):
        if ev.event == "gap":
            check(ev.id is None, "%s: gap event with an id: %r", self.what, ev.fields)
            try:
                g = json.loads(ev.data)
            except ValueError:
                raise Failure("%s: gap data is not JSON: %r" % (self.what, ev.data))
            check(isinstance(g, dict) and set(g) == {"channel", "requested", "first"},
                  "%s: gap data should be {channel, requested, first}: %r", self.what, g)
            ch = g["channel"]
            check(ch in self.pos, "%s: gap of channel %r, not subscribed (%r)", self.what, ch, self.chans)
            self.gaps[ch].append({"requested": g["requested"], "first": g["first"]})
            self.alt[ch] = g["first"] - 1
            self.order.append((ch, "gap"))
            return
        try:
            pairs = parse_multi_id(ev.id)
        except client.ProtocolError as e:
            raise Failure("%s: %s (event %r)" % (self.what, e, ev.fields))
        names = [c for c, _ in pairs]
        check(sorted(names) == sorted(self.chans),
              "%s: id %r should name each of %r once", self.what, ev.id, self.chans)
        ch, n = pairs[0]
        want = self.alt.get(ch, self.pos[ch]) + 1
        check(n == want, "%s: id %r: %s:%d, expected %s:%d (per-channel ids in order, no gaps; %s)",
              self.what, ev.id, ch, n, ch, want, self.history())
        for c, m in pairs[1:]:
            ok = (self.pos[c], self.alt[c]) if c in self.alt else (self.pos[c],)
            check(m in ok, "%s: id %r: %s:%d, expected %s:%s (that channel's last id on this stream; %s)",
                  self.what, ev.id, c, m, c, "/".join(map(str, ok)), self.history())
        self.pos[ch] = n
        self.alt.pop(ch, None)
        self.got[ch].append((n, ev.data))
        self.order.append((ch, n))

    def history(self):
        return "stream so far: %r" % (self.order[-12:],)

    def feed_all(self, evs):
        for e in evs:
            self.feed(e)
        return self

    def expect(self, want, what):
        """want: {channel: [(id, data), ...]} (channels left out: nothing)."""
        for ch in self.chans:
            eq(self.got[ch], want.get(ch, []), "%s: %s messages of %s" % (self.what, what, ch))


def count(want):
    return sum(len(v) for v in want.values())


def read_track(sub, tr, n, what, quiet=0.2, timeout=5.0):
    """Read n data events (gap events included) into tr, then check nothing else comes."""
    tr.feed_all(sub.events(n, timeout))
    extra = sub.quiet_for(quiet) if quiet else []
    check(not extra, "%s: unexpected events after the %d expected: %r", what, n, extra)
    return tr


def msgs(ch, lo, hi):
    return [(i, "%s%d" % (ch, i)) for i in range(lo, hi + 1)]


def publish_seq(s, c, ch, lo, hi):
    for i in range(lo, hi + 1):
        eq(s.publish(ch, "%s%d" % (ch, i), conn=c)["id"], i, "publish id on " + ch)


# ----------------------------------------------------------------------------------------------
# SSE


@test
def multi_sse_events(t):
    """/sub/a,b,c gets every channel's messages with `id: CH:N,...` (this channel first, every
    channel's last id); per-channel ids without gaps; /sub/a alone sees none of b's."""
    with t.server() as s:
        c = s.conn()
        publish_seq(s, c, "a", 1, 5)
        publish_seq(s, c, "b", 1, 2)
        sub = s.sse("/sub/a,b,c")
        sub.preamble()
        only_a = s.sse("/sub/a")
        only_a.preamble()
        check(not sub.quiet_for(0.2), "/sub/a,b,c without since replayed held messages")
        tr = Track(["a", "b", "c"], {"a": 5, "b": 2, "c": 0}, "/sub/a,b,c")
        # one at a time first: the ids are then fully known
        eq(s.publish("b", "b3")["id"], 3, "publish id")
        e = sub.events(1)[0]
        pairs = parse_multi_id(e.id)
        eq((pairs[0], sorted(pairs[1:])), (("b", 3), [("a", 5), ("c", 0)]), "id of b3 (%r)" % e.id)
        eq(e.data, "b3", "data of b3")
        tr.feed(e)
        eq(s.publish("c", "c1", event="tick")["id"], 1, "first id on c")
        e = sub.events(1)[0]
        eq((e.event, e.data), ("tick", "c1"), "event and data of c1")
        pairs = parse_multi_id(e.id)
        eq((pairs[0], sorted(pairs[1:])), (("c", 1), [("a", 5), ("b", 3)]), "id of c1 (%r)" % e.id)
        tr.feed(e)
        # then a burst from two connections, interleaved
        plan = ["a", "c", "c", "b", "a", "a", "b", "c", "a", "b", "c", "a"]
        last = {"a": 5, "b": 3, "c": 1}
        want = {"a": [], "b": [(3, "b3")], "c": [(1, "c1")]}
        for k, ch in enumerate(plan):
            last[ch] += 1
            body = "%s%d" % (ch, last[ch])
            eq(s.publish(ch, body, conn=c if k % 2 else None)["id"], last[ch], "publish id on " + ch)
            want[ch].append((last[ch], body))
        read_track(sub, tr, len(plan), "/sub/a,b,c")
        tr.expect(want, "received")
        got_a = only_a.events(len(want["a"]))
        eq([(e.id, e.data) for e in got_a], [(str(i), d) for i, d in want["a"]], "/sub/a alone (plain ids)")
        check(not only_a.quiet_for(0.2), "/sub/a received another channel's messages")


@test
def multi_sse_resume(t):
    """Last-Event-ID with a composite id from an earlier stream resumes every channel exactly;
    since=a:2 resumes a only; since=N applies to all; the query wins over the header; channel
    names holding ':' resume too; bad forms are 400."""
    with t.server() as s:
        chans = ["a", "b", "c"]
        first = s.sse("/sub/a,b,c")
        first.preamble()
        tr = Track(chans, {}, "first stream")
        c = s.conn()
        ids = {}
        # one at a time, each awaited, so every id string is known
        for ch in ["a", "a", "b", "a", "b", "a", "a", "b"]:
            v = s.publish(ch, "%s%d" % (ch, len(tr.got[ch]) + 1), conn=c)
            e = first.events(1)[0]
            tr.feed(e)
            ids[(ch, v["id"])] = e.id
        eq({ch: len(tr.got[ch]) for ch in chans}, {"a": 5, "b": 3, "c": 0}, "messages of the first stream")
        mid = ids[("a", 3)]
        pairs = parse_multi_id(mid)
        eq((pairs[0], sorted(pairs[1:])), (("a", 3), [("b", 1), ("c", 0)]), "id of a3 (%r)" % mid)
        lastid = ids[("b", 3)]
        pairs = parse_multi_id(lastid)
        eq((pairs[0], sorted(pairs[1:])), (("b", 3), [("a", 5), ("c", 0)]), "id of b3 (%r)" % lastid)
        publish_seq(s, c, "a", 6, 6)
        publish_seq(s, c, "c", 1, 2)

        def resume(path, headers, start, want, what):
            sub = s.sse(path, headers=headers)
            sub.preamble()
            r = Track(chans, start, what)
            read_track(sub, r, count(want), what)
            r.expect(want, "replayed")
            return sub, r

        cases = [
            ("/sub/a,b,c", {"Last-Event-ID": mid}, {"a": 3, "b": 1, "c": 0},
             {"a": msgs("a", 4, 6), "b": msgs("b", 2, 3), "c": msgs("c", 1, 2)}, "Last-Event-ID: " + mid),
            ("/sub/c,a,b", {"Last-Event-ID": lastid}, {"a": 5, "b": 3, "c": 0},
             {"a": msgs("a", 6, 6), "c": msgs("c", 1, 2)}, "Last-Event-ID: %s (channels in another order)" % lastid),
            ("/sub/a,b,c?since=a:2", None, {"a": 2, "b": 3, "c": 2}, {"a": msgs("a", 3, 6)}, "since=a:2"),
            ("/sub/a,b,c?since=2", None, {"a": 2, "b": 2, "c": 2},
             {"a": msgs("a", 3, 6), "b": msgs("b", 3, 3)}, "since=2 (every channel; c has nothing after 2)"),
            ("/sub/a,b,c?since=c:0,b:2", None, {"a": 6, "b": 2, "c": 0},
             {"b": msgs("b", 3, 3), "c": msgs("c", 1, 2)}, "since=c:0,b:2"),
            ("/sub/a,b,c?since=a:5", {"Last-Event-ID": "0"}, {"a": 5, "b": 3, "c": 2},
             {"a": msgs("a", 6, 6)}, "since=a:5 with Last-Event-ID: 0 (the query wins)"),
        ]
        live = []
        for path, headers, start, want, what in cases:
            live.append(resume(path, headers, start, want, what))
        # then live ones, on every channel
        publish_seq(s, c, "b", 4, 4)
        publish_seq(s, c, "c", 3, 3)
        for sub, r in live:
            r.feed_all(sub.events(2))
            eq((r.got["b"][-1], r.got["c"][-1]), ((4, "b4"), (3, "c3")), "%s: live messages" % r.what)
        tr.feed_all(first.events(5))
        tr.expect({"a": msgs("a", 1, 6), "b": msgs("b", 1, 4), "c": msgs("c", 1, 3)}, "first stream, all")
        # channel names holding ':' (the id is after the last ':')
        col = s.sse("/sub/n:1,m")
        col.preamble()
        s.publish("n:1", "x1")
        s.publish("n:1", "x2")
        e1, e2 = col.events(2)
        eq(parse_multi_id(e2.id), [("n:1", 2), ("m", 0)], "id on a channel named n:1 (%r)" % e2.id)
        s.publish("m", "m1")
        s.publish("n:1", "x3")
        for path, headers, want in (("/sub/n:1,m", {"Last-Event-ID": e1.id}, {"n:1": [(2, "x2"), (3, "x3")], "m": [(1, "m1")]}),
                                    ("/sub/m,n:1?since=n:1:2", None, {"n:1": [(3, "x3")]})):
            sub = s.sse(path, headers=headers)
            sub.preamble()
            r = Track(["n:1", "m"], {"n:1": 1 if headers else 2, "m": 0 if headers else 1}, path)
            read_track(sub, r, count(want), path, quiet=0.2)
            r.expect(want, "replayed")


@test
def multi_sse_gap(t):
    """--history 3: a resume whose first wanted id of one channel is gone gets a gap event
    naming that channel (before its messages); the other channels resume without a gap."""
    with t.server(history=3) as s:
        c = s.conn()
        publish_seq(s, c, "a", 1, 10)
        publish_seq(s, c, "b", 1, 2)
        publish_seq(s, c, "c", 1, 3)
        chans = ["a", "b", "c"]
        cases = [
            ("/sub/a,b,c?since=a:2,b:0,c:1", None, {"a": 2, "b": 0, "c": 1},
             {"a": [{"requested": 3, "first": 8}]},
             {"a": msgs("a", 8, 10), "b": msgs("b", 1, 2), "c": msgs("c", 2, 3)}),
            ("/sub/b,c,a", {"Last-Event-ID": "c:0,a:7,b:1"}, {"a": 7, "b": 1, "c": 0},
             {},
             {"a": msgs("a", 8, 10), "b": msgs("b", 2, 2), "c": msgs("c", 1, 3)}),
            ("/sub/a,b,c?since=0", None, {"a": 0, "b": 0, "c": 0},
             {"a": [{"requested": 1, "first": 8}]},
             {"a": msgs("a", 8, 10), "b": msgs("b", 1, 2), "c": msgs("c", 1, 3)}),
        ]
        subs = []
        for path, headers, start, gaps, want in cases:
            sub = s.sse(path, headers=headers)
            sub.preamble()
            r = Track(chans, start, path)
            read_track(sub, r, count(want) + count(gaps), path, quiet=0.2)
            for ch in chans:
                eq(r.gaps[ch], gaps.get(ch, []), "%s: gap events of %s" % (path, ch))
            r.expect(want, "after the gap")
            subs.append((sub, r))
        # c drops behind too: a resume now gaps on a and c, not b
        publish_seq(s, c, "c", 4, 6)
        sub = s.sse("/sub/a,b,c", headers={"Last-Event-ID": "b:1,a:3,c:1"})
        sub.preamble()
        r = Track(chans, {"a": 3, "b": 1, "c": 1}, "Last-Event-ID: b:1,a:3,c:1")
        read_track(sub, r, 2 + 3 + 1 + 3, r.what, quiet=0.2)
        eq(r.gaps, {"a": [{"requested": 4, "first": 8}], "b": [], "c": [{"requested": 2, "first": 4}]},
           "gap events for b:1,a:3,c:1")
        r.expect({"a": msgs("a", 8, 10), "b": msgs("b", 2, 2), "c": msgs("c", 4, 6)}, "after the gaps")
        # the earlier streams go on live, without gaps
        s.publish("b", "b3")
        for sub, r in subs:
            r.feed_all(sub.events(4))
            eq(r.got["b"][-1], (3, "b3"), "%s: live b3" % r.what)
            eq(r.got["c"][-3:], msgs("c", 4, 6), "%s: live c4..c6" % r.what)
            eq(r.gaps["c"], [], "%s: gap on c" % r.what)


@test
def multi_since_beyond_last(t):
    """README: since beyond a channel's last id is a gap (requested = since+1, first = oldest
    held) followed by every held message, per channel, on SSE, long and short poll."""
    with t.server(history=3, poll_timeout=5) as s:
        c = s.conn()
        publish_seq(s, c, "a", 1, 5)
        publish_seq(s, c, "b", 1, 2)
        sub = s.sse("/sub/a,b?since=a:50")
        sub.preamble()
        r = Track(["a", "b"], {"a": 50, "b": 2}, "SSE since=a:50")
        read_track(sub, r, 4, r.what, quiet=0.2)
        eq(r.gaps, {"a": [{"requested": 51, "first": 3}], "b": []}, "gap events for since=a:50")
        r.expect({"a": msgs("a", 3, 5)}, "held messages after the gap")
        s.publish("b", "b3")
        r.feed_all(sub.events(1))
        eq(r.got["b"], [(3, "b3")], "live b3 after the replay")
        for path in ("/poll/a,b?since=a:50,b:9", "/sub/a,b?since=a:50,b:9"):
            t0 = time.monotonic()
            objs = multi_poll(s.get(path, timeout=3), ["a", "b"], path)
            within(time.monotonic() - t0, 0, 1.0, path)
            eq(objs["a"].get("gap"), {"requested": 51, "first": 3}, path + ": a's gap")
            eq(id_data(objs["a"]), msgs("a", 3, 5), path + ": a's messages")
            eq(objs["b"].get("gap"), {"requested": 10, "first": 1}, path + ": b's gap")
            eq(id_data(objs["b"]), msgs("b", 1, 3), path + ": b's messages")
            eq((objs["a"]["last_id"], objs["b"]["last_id"]), (5, 3), path + ": last_ids")


# ----------------------------------------------------------------------------------------------
# polls


def multi_poll(resp, chans, what):
    """A several-channel poll answer {"channels":[...]}: one object per channel, each in the
    one-channel form. Returns {channel: object}."""
    v = json_answer(resp, 200, what)
    check(isinstance(v, dict) and set(v) == {"channels"} and isinstance(v["channels"], list),
          "%s: answer should be {\"channels\":[...]}: %r", what, v)
    out = {}
    for o in v["channels"]:
        check(isinstance(o, dict) and "channel" in o, "%s: %r is not a channel object", what, o)
        ch = o["channel"]
        check(ch not in out, "%s: channel %r twice in the answer", what, ch)
        out[ch] = poll_answer(_Fake(o), ch, "%s, channel %s" % (what, ch))
    eq(sorted(out), sorted(chans), what + ": channels in the answer")
    return out


class _Fake:
    """A Response-like wrapper so poll_answer can check an object of a several-channel answer."""

    status = 200

    def __init__(self, obj):
        self.obj = obj

    def header(self, name):
        return "application/json" if name.lower() == "content-type" else None

    def json(self):
        return self.obj

    def short(self):
        return repr(self.obj)[:300]


@test
def multi_short_poll(t):
    """/poll/a,b answers {"channels":[...]} with each object in the one-channel form; named
    channels from since (gap when asked), the others from the oldest held."""
    with t.server(history=3) as s:
        c = s.conn()
        publish_seq(s, c, "a", 1, 5)
        publish_seq(s, c, "b", 1, 2)
        s.publish("b", "b3", event="ev", conn=c)
        p = "/poll/a,b?since=a:1"
        o = multi_poll(s.get(p), ["a", "b"], p)
        eq(o["a"], {"channel": "a", "messages": [{"id": i, "data": "a%d" % i} for i in (3, 4, 5)],
                    "last_id": 5, "gap": {"requested": 2, "first": 3}}, p + ": a")
        eq(o["b"], {"channel": "b", "messages": [{"id": 1, "data": "b1"}, {"id": 2, "data": "b2"},
                                                 {"id": 3, "event": "ev", "data": "b3"}], "last_id": 3}, p + ": b")
        for p, want in (("/poll/a,b?since=a:3", {"a": msgs("a", 4, 5), "b": msgs("b", 1, 3)}),
                        ("/poll/a,b?since=a:5,b:2", {"a": [], "b": msgs("b", 3, 3)}),
                        ("/poll/b,a?since=2", {"a": msgs("a", 3, 5), "b": msgs("b", 3, 3)}),
                        ("/poll/a,b,never", {"a": msgs("a", 3, 5), "b": msgs("b", 1, 3), "never": []})):
            chans = sorted(want)
            o = multi_poll(s.get(p), chans, p)
            for ch in chans:
                eq(id_data(o[ch]), want[ch], "%s: messages of %s" % (p, ch))
                check("gap" not in o[ch], "%s: %s has a gap: %r", p, ch, o[ch])
            last = {"a": 5, "b": 3, "never": 0}
            eq({ch: o[ch]["last_id"] for ch in chans}, {ch: last[ch] for ch in chans}, p + ": last_ids")
        p = "/poll/a,b"
        o = multi_poll(s.get(p, headers={"Last-Event-ID": "b:3,a:0"}), ["a", "b"], p + " Last-Event-ID: b:3,a:0")
        eq((o["a"].get("gap"), id_data(o["a"]), id_data(o["b"])),
           ({"requested": 1, "first": 3}, msgs("a", 3, 5), []), "short poll with Last-Event-ID: b:3,a:0")
        # the whole answer, exactly (the order of the objects is not specified)
        v = json_answer(s.get("/poll/a,b?since=a:4,b:3"), 200, "/poll/a,b?since=a:4,b:3")
        check(isinstance(v, dict) and isinstance(v.get("channels"), list), "answer %r", v)
        eq(sorted(v["channels"], key=lambda x: x.get("channel")),
           [{"channel": "a", "messages": [{"id": 5, "data": "a5"}], "last_id": 5},
            {"channel": "b", "messages": [], "last_id": 3}], "answer of /poll/a,b?since=a:4,b:3")
        eq(set(v), {"channels"}, "keys of a several-channel answer")


@test
def multi_long_poll(t):
    """/sub/a,b as a long poll: waits; a publish on b wakes it with b's message and a's object
    empty; held messages answer at once; --poll-timeout 1 answers both empty."""
    with t.server(poll_timeout=1) as s:
        c = s.conn()
        publish_seq(s, c, "a", 1, 3)
        publish_seq(s, c, "b", 1, 2)
        # several waiting long polls on separate connections (both workers)
        polls = [s.conn() for _ in range(4)]
        for i, pc in enumerate(polls):
            pc.send(client.build_request("GET", "/sub/a,b" if i % 2 else "/sub/b,a?since=a:3"))
        polls[0].expect_silent(0.3, "long poll /sub/b,a?since=a:3 with nothing new")
        t0 = time.monotonic()
        eq(s.publish("b", "b3")["id"], 3, "publish id")
        for i, pc in enumerate(polls):
            what = "long poll %d woken by b3" % i
            o = multi_poll(pc.read_response(timeout=1.0), ["a", "b"], what)
            within(time.monotonic() - t0, 0, 0.9, what)
            eq(o["a"], {"channel": "a", "messages": [], "last_id": 3}, what + ": a")
            eq(o["b"], {"channel": "b", "messages": [{"id": 3, "data": "b3"}], "last_id": 3}, what + ": b")
        # held messages after since: at once, on the same connection
        for p, hdr, want in (("/sub/a,b?since=a:1", None, {"a": msgs("a", 2, 3), "b": []}),
                             ("/sub/a,b?since=b:1", None, {"a": [], "b": msgs("b", 2, 3)}),
                             ("/sub/a,b?since=2", None, {"a": msgs("a", 3, 3), "b": msgs("b", 3, 3)}),
                             ("/sub/a,b", [("Last-Event-ID", "b:2,a:3")], {"a": [], "b": msgs("b", 3, 3)})):
            t0 = time.monotonic()
            what = "%s %s" % (p, hdr or "")
            o = multi_poll(polls[1].get(p, headers=hdr, timeout=2), ["a", "b"], what)
            within(time.monotonic() - t0, 0, 0.5, what)
            eq({ch: id_data(o[ch]) for ch in o}, want, what + ": messages")
            eq({ch: o[ch]["last_id"] for ch in o}, {"a": 3, "b": 3}, what + ": last_ids")
        # a never-published channel wakes it too
        pc = polls[2]
        pc.send(client.build_request("GET", "/sub/a,fresh?since=a:3"))
        pc.expect_silent(0.2, "long poll /sub/a,fresh with nothing new")
        eq(s.publish("fresh", "f1")["id"], 1, "first id on fresh")
        o = multi_poll(pc.read_response(timeout=1.0), ["a", "fresh"], "long poll woken on fresh")
        eq((o["a"]["messages"], o["fresh"]["messages"], o["fresh"]["last_id"]),
           ([], [{"id": 1, "data": "f1"}], 1), "long poll woken on fresh")
        # nothing new: both empty after ~1 s, no gap
        t0 = time.monotonic()
        o = multi_poll(polls[3].get("/sub/a,b?since=a:3,b:3", timeout=5), ["a", "b"], "timed-out long poll")
        within(time.monotonic() - t0, 0.8, 3.0, "several-channel long poll timeout")
        eq(o, {"a": {"channel": "a", "messages": [], "last_id": 3}, "b": {"channel": "b", "messages": [], "last_id": 3}},
           "timed-out long poll")


# ----------------------------------------------------------------------------------------------
# limits


@test
def multi_limits(t):
    """16 channels (of 128 bytes each) are accepted and all delivered; 17 answer 400;
    duplicates count once: /sub/a,a delivers each message once."""
    with t.server() as s:
        names = ["%02d" % i + "n" * 126 for i in range(16)]
        path = "/sub/" + ",".join(names)
        sub = s.sse(path)
        sub.preamble()
        o = multi_poll(s.get("/poll/" + ",".join(names)), names, "short poll of 16 channels")
        check(all(x["messages"] == [] for x in o.values()), "16 empty channels have messages: %r", o)
        s.publish(names[15], "last")
        s.publish(names[0], "first")
        r = Track(names, {}, "SSE on 16 channels")
        read_track(sub, r, 2, r.what, quiet=0.2)
        eq((r.got[names[15]], r.got[names[0]]), ([(1, "last")], [(1, "first")]), "16-channel stream")
        seventeen = ",".join(names + ["x"])
        for method, p, hdr in (("GET", "/sub/" + seventeen, [("Accept", "text/event-stream")]),
                               ("GET", "/sub/" + seventeen, None),
                               ("GET", "/poll/" + seventeen, None),
                               ("GET", "/poll/" + ",".join("c%d" % i for i in range(17)), None)):
            r17 = s.request(method, p, headers=hdr, timeout=3)
            check(r17.status == 400, "17 channels (%s %s...): expected 400, got %s", method, p[:30], r17.short())
        # duplicates
        dup = s.sse("/sub/a,a")
        dup.preamble()
        dup3 = s.sse("/sub/b,a,b,a?since=0")
        dup3.preamble()
        s.publish("a", "one")
        s.publish("a", "two")
        evs = dup.events(2)
        check(not dup.quiet_for(0.3), "/sub/a,a delivered a message twice")
        eq([e.data for e in evs], ["one", "two"], "/sub/a,a data")
        check([e.id for e in evs] in (["1", "2"], ["a:1", "a:2"]), "/sub/a,a ids %r", [e.id for e in evs])
        r = Track(["a", "b"], {}, "/sub/b,a,b,a")
        read_track(dup3, r, 2, r.what, quiet=0.2)
        r.expect({"a": [(1, "one"), (2, "two")]}, "delivered")
        v = json_answer(s.get("/poll/a,a"), 200, "/poll/a,a")
        objs = v["channels"] if isinstance(v, dict) and "channels" in v else [v]
        eq([(x.get("channel"), [m["id"] for m in x.get("messages", [])]) for x in objs], [("a", [1, 2])],
           "/poll/a,a: channel a once, each message once")
