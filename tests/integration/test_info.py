"""GET /channels/{ch}, /stats, /metrics, --history / --history-ttl as seen through them, and
channels freed (or kept) once their subscribers leave."""

import re
import time

import client
from harness import check, eq, error_answer, json_answer, status, test


def channel_info(s, ch):
    v = json_answer(s.get("/channels/" + ch), 200, "GET /channels/" + ch)
    check(isinstance(v, dict) and set(v) == {"channel", "subscribers", "last_id", "history", "first_id"},
          "channel info keys should be channel, subscribers, last_id, history, first_id: %r", v)
    return v


def wait_subscribers(s, ch, n, timeout=3.0):
    """Subscriber counts may lag a moment behind connects and closes (other workers)."""
    deadline = time.monotonic() + timeout
    while True:
        v = channel_info(s, ch)
        if v["subscribers"] == n or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


@test
def channel_info_fields(t):
    """subscribers (on every worker), last_id, history, first_id; 404 for an unknown channel.
    Closed subscribers leave the count within 4 s (--heartbeat 1, so even a server that only
    notices a closed SSE client when a send fails finds out)."""
    with t.server(history=3, heartbeat=1) as s:
        r = s.get("/channels/nope")
        error_answer(r, 404, "GET /channels/nope")
        s.publish("a", "1")
        s.publish("a", "2")
        eq(channel_info(s, "a"), {"channel": "a", "subscribers": 0, "last_id": 2, "history": 2, "first_id": 1},
           "info after 2 messages")
        for i in range(3, 6):
            s.publish("a", str(i))
        eq(channel_info(s, "a"), {"channel": "a", "subscribers": 0, "last_id": 5, "history": 3, "first_id": 3},
           "info after 5 messages with --history 3")
        # SSE subscribers on separate connections (so likely on both workers) are all counted
        subs = [s.sse("/sub/a") for _ in range(6)]
        for x in subs:
            x.preamble()
        v = wait_subscribers(s, "a", 6)
        eq(v["subscribers"], 6, "subscribers with 6 SSE subscribers connected")
        eq(s.publish("a", "6")["subscribers"], 6, "publish answer subscribers")
        for x in subs[:4]:
            x.close()
        v = wait_subscribers(s, "a", 2, timeout=4)
        eq(v["subscribers"], 2, "subscribers after 4 of 6 closed")
        eq((v["last_id"], v["history"], v["first_id"]), (6, 3, 4), "last_id, history, first_id after 6")


@test
def stats_and_metrics(t):
    """/stats answers a JSON object; /metrics Prometheus text with # TYPE lines."""
    with t.server() as s:
        s.publish("a", "x")
        v = json_answer(s.get("/stats"), 200, "GET /stats")
        check(isinstance(v, dict) and v, "/stats should be a non-empty JSON object: %r", v)
        r = s.get("/metrics")
        status(r, 200, "GET /metrics")
        ct = (r.header("content-type") or "").lower()
        check(ct.startswith("text/plain"), "/metrics Content-Type %r, expected text/plain", ct)
        text = r.body.decode("utf-8")
        check(re.search(r"(?m)^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$", text),
              "/metrics has no valid `# TYPE name kind` line: %r", text[:500])
        for ln in text.splitlines():
            if ln and not ln.startswith("#"):
                check(re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEaINnf]+( \d+)?$", ln),
                      "/metrics sample line is not Prometheus text format: %r", ln)
        # both are usable on one keep-alive connection
        c = s.conn()
        eq(c.get("/stats").status, 200, "second /stats on a keep-alive connection")
        eq(c.get("/metrics").status, 200, "/metrics after /stats on the same connection")


@test
def history_ttl(t):
    """--history-ttl 1: messages older than 1 s leave the history; ids keep counting."""
    with t.server(history_ttl=1) as s:
        for i in range(1, 4):
            s.publish("ttl", "m%d" % i)
        v = json_answer(s.get("/poll/ttl"), 200, "poll right after publishing")
        eq([m["id"] for m in v["messages"]], [1, 2, 3], "held before the ttl")
        time.sleep(2.5)
        v = json_answer(s.get("/poll/ttl"), 200, "poll after the ttl")
        eq((v["messages"], v["last_id"]), ([], 3), "messages and last_id after the ttl")
        eq(s.publish("ttl", "m4")["id"], 4, "id after expiry")
        v = json_answer(s.get("/poll/ttl"), 200, "poll after a new message")
        eq([m["id"] for m in v["messages"]], [4], "held after expiry and a new message")


def stats_channels(s):
    """/stats total channels gauge (and per worker, when given)."""
    v = json_answer(s.get("/stats"), 200, "GET /stats")
    total = v.get("total") if isinstance(v, dict) else None
    check(isinstance(total, dict) and isinstance(total.get("channels"), int),
          "/stats has no integer total.channels gauge: %s", str(v)[:500])
    per = v.get("per_worker")
    per = [w.get("channels") for w in per] if isinstance(per, list) and all(isinstance(w, dict) for w in per) else None
    return total["channels"], per


def wait_channels(s, cond, timeout):
    deadline = time.monotonic() + timeout
    while True:
        n, per = stats_channels(s)
        if cond(n) or time.monotonic() > deadline:
            return n, per
        time.sleep(0.05)


@test
def channels_reaped(t):
    """--workers 2: a channel that never had a message is freed once its last subscriber leaves
    (/stats total channels back to 0 within ~1 s, for 50 long polls and for several-channel SSE
    streams); one that had a message keeps its record, so its ids go on (2, not 1)."""
    with t.server(workers=2, poll_timeout=30) as s:
        eq(stats_channels(s)[0], 0, "/stats channels at start")
        polls = [s.conn() for _ in range(50)]
        for i, c in enumerate(polls):
            c.send(client.build_request("GET", "/sub/reap%d" % i))
        n, per = wait_channels(s, lambda n: n >= 50, 3)
        check(n >= 50, "/stats channels %d (per worker %r) with 50 long polls on 50 channels waiting", n, per)
        check(per is None or all(x for x in per), "the 50 long polls are not on both workers: channels %r", per)
        for c in polls:
            c.close()
        n, per = wait_channels(s, lambda n: n == 0, 3)
        eq(n, 0, "/stats channels 3 s after 50 long polls on never-published channels disconnected "
                 "(per worker %r)" % (per,))
        # several-channel SSE streams, some channels shared between them
        subs = [s.sse("/sub/r%d,r%d,shared" % (2 * i, 2 * i + 1)) for i in range(10)]
        for x in subs:
            x.preamble()
        n, per = wait_channels(s, lambda n: n >= 21, 3)
        check(n >= 21, "/stats channels %d with 10 SSE streams on 21 channels", n)
        for x in subs:
            x.close()
        n, per = wait_channels(s, lambda n: n == 0, 3)
        eq(n, 0, "/stats channels 3 s after the SSE streams on never-published channels closed "
                 "(per worker %r)" % (per,))
        # one subscriber leaving does not free a channel another one (maybe on another worker) holds
        stay = [s.sse("/sub/z") for _ in range(4)]
        for x in stay:
            x.preamble()
        for x in stay[:3]:
            x.close()
        time.sleep(0.5)
        eq(s.publish("z", "z1")["subscribers"], 1, "subscribers of z after 3 of 4 left")
        eq([(e.id, e.data) for e in stay[3].events(1)], [("1", "z1")], "the remaining subscriber of z")
        stay[3].close()
        # a channel that had a message keeps its record after its subscribers leave
        kept = [s.sse("/sub/kept"), s.sse("/sub/other,kept"), s.sse("/sub/kept,other")]
        for x in kept:
            x.preamble()
        eq(s.publish("kept", "k1")["id"], 1, "first id on kept")
        for x in kept:
            x.events(1)
            x.close()
        time.sleep(1.2)
        n, per = stats_channels(s)
        check(n >= 1, "/stats channels %d after channels with messages lost their subscribers", n)
        for i in range(2, 5):  # fresh connections: likely both workers
            eq(s.publish("kept", "k%d" % i)["id"], i, "id on kept after its subscribers left (ids never restart)")
        eq(s.publish("z", "z2")["id"], 2, "id on z after its subscribers left")
        v = json_answer(s.get("/poll/kept"), 200, "poll kept")
        eq(([m["id"] for m in v["messages"]], v["last_id"]), ([1, 2, 3, 4], 4), "messages held on kept")
        eq(json_answer(s.get("/poll/other"), 200, "poll other")["last_id"], 0, "other never had a message")
