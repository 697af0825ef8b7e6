"""README "Errors": statuses, JSON bodies, which errors close the connection, limits, timeouts."""

import time

import client
from harness import check, eq, error_answer, json_answer, test, within


def expect_closed(c, what, timeout=2.0):
    closed, extra = c.wait_closed(timeout)
    check(closed, "%s: connection still open %.0fs after the answer", what, timeout)
    check(not extra, "%s: bytes after the answer: %r", what, extra[:200])


def still_usable(c, what):
    r = c.get("/poll/ok")
    json_answer(r, 200, what + ": next request on the same connection")


@test
def errors_bad_request(t):
    """Garbage request line, bad header, bad channel names, bad since, several channels in a
    publish: 400 {"error":...} and the connection is closed."""
    with t.server() as s:
        raw_cases = [
            (b"GARBAGE\r\n\r\n", "garbage request line"),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", "TLS hello bytes"),
            (b"GET /poll/a HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", "header line without a colon"),
            (b"GET /poll/a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "bad Content-Length"),
        ]
        for raw, what in raw_cases:
            c = s.conn()
            c.send(raw)
            error_answer(c.read_response(), 400, what)
            expect_closed(c, what)
        long_name = "n" * 129
        req_cases = [
            ("GET", "/sub/a%20b", "channel a%20b (SSE)", [("Accept", "text/event-stream")]),
            ("GET", "/sub/a%20b", "channel a%20b (long poll)", None),
            ("GET", "/poll/a%20b", "channel a%20b (poll)", None),
            ("POST", "/pub/", "empty channel name", None),
            ("GET", "/poll/", "empty channel name (poll)", None),
            ("POST", "/pub/" + long_name, "129-byte channel name", None),
            ("GET", "/channels/" + long_name, "129-byte channel name (info)", None),
            ("POST", "/pub/a$b", "channel with $", None),
            ("POST", "/pub/a,b", "several channels in a publish", None),
            ("GET", "/poll/a?since=abc", "since=abc", None),
            ("GET", "/sub/a?since=12x", "since=12x (long poll)", None),
            ("GET", "/sub/a?since=-1", "since=-1 (SSE)", [("Accept", "text/event-stream")]),
        ]
        for method, path, what, headers in req_cases:
            c = s.conn()
            r = c.request(method, path, headers=headers, body=b"x" if method == "POST" else None)
            error_answer(r, 400, "%s %s (%s)" % (method, path[:40], what))
            expect_closed(c, what)
        # the longest valid name works
        ok = "N" * 128
        eq(s.publish(ok, "x")["id"], 1, "publish to a 128-byte channel name")
        eq(json_answer(s.get("/poll/" + ok), 200, "poll 128-byte channel")["last_id"], 1, "128-byte channel")


@test
def errors_multi_channel(t):
    """Several channels: an empty element, more than 16, several in a publish or in
    /channels/{ch}, and bad since / Last-Event-ID forms answer 400 and close."""
    sse = [("Accept", "text/event-stream")]
    c17 = ",".join("c%d" % i for i in range(17))
    with t.server() as s:
        cases = [
            ("GET", "/sub/a,,b", "empty element (SSE)", sse),
            ("GET", "/sub/a,", "trailing comma (long poll)", None),
            ("GET", "/poll/,a", "leading comma (poll)", None),
            ("GET", "/poll/a,,b", "empty element (poll)", None),
            ("GET", "/sub/a,b%20", "a bad name among several", sse),
            ("GET", "/sub/" + c17, "17 channels (SSE)", sse),
            ("GET", "/sub/" + c17, "17 channels (long poll)", None),
            ("GET", "/poll/" + c17, "17 channels (poll)", None),
            ("POST", "/pub/a,b", "several channels in a publish", None),
            ("GET", "/channels/a,b", "several channels in /channels", None),
        ]
        for bad in ("zz:1", "a:", "a:x", ":5", "a:1,zz:2", "a:-1"):
            for path, hdr in (("/sub/a,b,c", sse), ("/poll/a,b,c", None), ("/sub/a,b,c", None)):
                cases.append(("GET", path + "?since=" + bad, "since=%s (%s)" % (bad, path), hdr))
            cases.append(("GET", "/sub/a,b,c", "Last-Event-ID: %s (SSE)" % bad, sse + [("Last-Event-ID", bad)]))
            cases.append(("GET", "/poll/a,b,c", "Last-Event-ID: %s (poll)" % bad, [("Last-Event-ID", bad)]))
        for method, path, what, headers in cases:
            c = s.conn()
            r = c.request(method, path, headers=headers, body=b"x" if method == "POST" else None)
            error_answer(r, 400, "%s %s (%s)" % (method, path[:40], what))
            expect_closed(c, what)
        # the same channels, well formed, are fine
        json_answer(s.get("/poll/a,b,c?since=a:1,c:0"), 200, "GET /poll/a,b,c?since=a:1,c:0")


@test
def errors_404_405_keep_connection(t):
    """404 and 405 keep the connection open; 405 names the right method in Allow; a request
    with Connection: close is answered, then the connection closed."""
    with t.server() as s:
        c = s.conn()
        for path in ("/nope", "/subx/a", "/channels/unknown"):
            error_answer(c.get(path), 404, "GET " + path)
            still_usable(c, "after 404 for " + path)
        r = c.get("/pub/a")
        error_answer(r, 405, "GET /pub/a")
        check("POST" in r.header_tokens("allow"), "GET /pub/a: Allow %r should name POST", r.header("allow"))
        still_usable(c, "after 405")
        for path in ("/sub/a", "/poll/a", "/channels/a", "/stats", "/metrics"):
            r = c.request("POST", path, body=b"x")
            error_answer(r, 405, "POST " + path)
            check("GET" in r.header_tokens("allow"), "POST %s: Allow %r should name GET", path, r.header("allow"))
            still_usable(c, "after 405 for POST " + path)
        r = c.request("DELETE", "/pub/a")
        error_answer(r, 405, "DELETE /pub/a")
        check("POST" in r.header_tokens("allow"), "DELETE /pub/a: Allow %r should name POST", r.header("allow"))
        still_usable(c, "after 405 for DELETE")
        # Connection: close is honoured (HTTP/1.1)
        r = c.get("/poll/ok", headers=[("Connection", "close")])
        json_answer(r, 200, "request with Connection: close")
        expect_closed(c, "after Connection: close")


@test
def errors_413_body_too_large(t):
    """--max-message 1000: a 1000-byte body publishes, 1001 bytes answer 413 and close."""
    with t.server(max_message=1000) as s:
        eq(s.publish("big", b"b" * 1000)["id"], 1, "1000-byte message")
        c = s.conn()
        r = c.request("POST", "/pub/big", body=b"c" * 1001)
        error_answer(r, 413, "1001-byte body (Content-Length)")
        expect_closed(c, "413 Content-Length")
        c = s.conn()
        r = c.request("POST", "/pub/big", chunks=[b"d" * 600, b"e" * 401])
        error_answer(r, 413, "1001-byte body (chunked)")
        expect_closed(c, "413 chunked")
        c = s.conn()
        c.try_send(client.build_request("POST", "/pub/big", body=b"f" * 100000))  # may be cut off
        error_answer(c.read_response(), 413, "100000-byte body")
        v = json_answer(s.get("/poll/big"), 200, "poll after the 413s")
        eq([m["id"] for m in v["messages"]], [1], "only the 1000-byte message was published")


@test
def errors_431_head_too_large(t):
    """A request head over 8 KiB answers 431 and closes; a 6 KiB head is fine."""
    with t.server() as s:
        c = s.conn()
        r = c.get("/poll/a", headers=[("X-Pad", "p" * 6000)])
        json_answer(r, 200, "request with a 6 KB header")
        c = s.conn()
        c.try_send(b"GET /poll/a HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"q" * 9000 + b"\r\n\r\n")
        error_answer(c.read_response(), 431, "9 KB header")
        expect_closed(c, "431")
        c = s.conn()
        c.try_send(b"GET /poll/a HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(100))
               + b"\r\n")
        error_answer(c.read_response(), 431, "100 headers of 100 bytes")
        expect_closed(c, "431 (many headers)")
        c = s.conn()
        c.try_send(b"GET /poll/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        check(r.status in (431, 400, 414), "9 KB request line answered %s", r.short())
        # the server is fine afterwards
        json_answer(s.get("/poll/a"), 200, "poll after the 431s")


@test
def errors_503_max_conns(t):
    """--workers 1 --max-conns 5: the 6th connection gets 503 and is closed; after one closes,
    a new connection works (within 4 s: --heartbeat 1 lets even a server that notices a closed
    SSE client only when a send fails find out)."""
    with t.server(workers=1, max_conns=5, heartbeat=1) as s:
        subs = [s.sse("/sub/full") for _ in range(5)]
        for x in subs:
            x.preamble()
        c = s.conn()
        c.try_send(client.build_request("GET", "/poll/full"))
        r = c.read_response()
        error_answer(r, 503, "6th connection")
        expect_closed(c, "503")
        subs[0].close()
        deadline = time.monotonic() + 4
        for attempt in range(100):
            c = s.conn()
            c.try_send(client.build_request("POST", "/pub/full", body=b"hi"))
            r = c.read_response()
            c.close()
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        v = json_answer(r, 200, "a connection after one of the five closed")
        eq(v["subscribers"], 4, "subscribers of the 4 remaining streams")
        for x in subs[1:]:
            eq([(e.id, e.data) for e in x.events(1)], [("1", "hi")], "remaining SSE subscriber")


@test
def errors_slow_header(t):
    """--header-timeout 1: a client that sends half a request line is disconnected within
    ~3 s; another client's requests keep working meanwhile."""
    with t.server(header_timeout=1) as s:
        slow = s.conn()
        slow.send(b"GET /poll/a HT")
        silent = s.conn()  # sends nothing at all
        t0 = time.monotonic()
        other = s.conn()
        n = 0
        while time.monotonic() - t0 < 1.6 and n < 100:
            json_answer(other.get("/poll/a"), 200, "other client's request %d" % n)
            n += 1
            time.sleep(0.1)
        closed, _ = slow.wait_closed(3.5 - (time.monotonic() - t0))
        check(closed, "half a request line: still connected %.1fs later", time.monotonic() - t0)
        within(time.monotonic() - t0, 0.5, 3.5, "disconnect of the slow client")
        closed, _ = silent.wait_closed(max(0.1, 3.5 - (time.monotonic() - t0)))
        check(closed, "silent client: still connected %.1fs later", time.monotonic() - t0)
        json_answer(other.get("/poll/a"), 200, "other client after the slow ones were dropped")
        # a head trickling in within the timeout is fine
        c = s.conn()
        for b in b"GET /poll/a HTTP/1.1\r\nHost: x\r\n\r\n":
            c.send(bytes([b]))
            time.sleep(0.01)
        json_answer(c.read_response(), 200, "request sent a byte at a time")
