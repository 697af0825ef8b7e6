"""GET /channels/{ch}, /stats, /metrics, and --history / --history-ttl as seen through them."""

import re
import time

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
