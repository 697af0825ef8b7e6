"""WebSocket (RFC 6455) over raw sockets: handshake, server frames in both forms, client
publishes, protocol errors and their close codes, the close handshake, server pings, resume and
gap, several channels, a slow consumer, fan-out across workers. The client is wsclient.py."""

import json
import time

import client
from client import drain_available, pump_all
from harness import Failure, check, eq, error_answer, json_answer, test
import wsclient
from wsclient import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WSConn, open_ws


def raw_conn(s, timeout=5.0, auto_pong=True):
    return WSConn(s.port, host=s.host, timeout=timeout, tracker=s.clients, auto_pong=auto_pong)


def stats_total(s):
    v = json_answer(s.get("/stats"), 200, "GET /stats")
    return v["total"]


def wait_stat(s, name, cond, timeout, what):
    """Polls /stats until cond(total[name]); fails after `timeout` s naming the per-worker values."""
    deadline = time.monotonic() + timeout
    while True:
        st = json_answer(s.get("/stats"), 200, "GET /stats")
        v = st["total"].get(name)
        if v is not None and cond(v):
            return v
        if time.monotonic() > deadline:
            per = [w.get(name) for w in st.get("per_worker", [])]
            raise Failure("%s: /stats total.%s is %r after %.1fs (per worker %r)" % (what, name, v, timeout, per))
        time.sleep(0.05)


def jmsg(payload, what):
    """A ringcast.json frame's payload as a dict (strict JSON, UTF-8)."""
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Failure("%s: not a JSON text frame (%s): %r" % (what, e, payload[:300]))


def jtexts(ws, n, what, timeout=5.0):
    out = []
    for op, p in ws.recv_messages(n, timeout, what):
        eq(op, OP_TEXT, "%s: opcode of a ringcast.json frame" % what)
        out.append(jmsg(p, what))
    return out


# ----------------------------------------------------------------------------------------------
# 1. handshake


@test
def ws_handshake(t):
    """101 with the right Sec-WebSocket-Accept, no subprotocol or extension unless offered;
    version 12 or none: 426 naming 13; missing/short/non-base64 key: 400; without the upgrade
    token in Connection or without Upgrade the request is not an upgrade (README: long poll);
    Upgrade: WebSocket and Connection: keep-alive, Upgrade (Firefox) are upgrades; POST: 405;
    subprotocol: ringcast.json chosen from `chat, ringcast.json` (also from two header lines),
    none from `chat`."""
    with t.server() as s:
        ws = open_ws(s, "/sub/h")
        h = ws.head
        check(h.header("sec-websocket-protocol") is None,
              "101 without a subprotocol offer names one: %r", h.header("sec-websocket-protocol"))
        check(h.header("sec-websocket-extensions") is None,
              "101 without an extension offer names one: %r", h.header("sec-websocket-extensions"))
        # the RFC 6455 section 1.3 example key gives the example accept
        ws2 = raw_conn(s)
        ws2.handshake("/sub/h", key="dGhlIHNhbXBsZSBub25jZQ==")
        ws2.check_accept()
        eq(ws2.head.header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "accept of RFC 6455's example key")
        s.publish("h", "hello")
        eq(ws.texts(1), ["hello"], "first subscriber")
        eq(ws2.texts(1), ["hello"], "second subscriber")

        for ver in ("12", "8", "14", "13, 8"):
            c = raw_conn(s)
            r = c.handshake("/sub/h", version=ver)
            error_answer(r, 426, "Sec-WebSocket-Version: %s" % ver)
            eq(r.header_tokens("sec-websocket-version"), ["13"], "426 answer's Sec-WebSocket-Version")
        c = raw_conn(s)
        r = c.handshake("/sub/h", version=None)
        error_answer(r, 426, "no Sec-WebSocket-Version")
        eq(r.header_tokens("sec-websocket-version"), ["13"], "426 answer's Sec-WebSocket-Version (none sent)")

        bad_keys = [(False, "no Sec-WebSocket-Key"),
                    ("AAAAAAAAAAAAAAAAAAAAAA==".replace("AA==", "=="), "a key of 15 bytes"),
                    ("dGhlIHNhbXBsZQ==", "a key of 10 bytes"),
                    ("", "an empty key"),
                    ("dGhlIHNhbXBsZSBub25jZQ", "a key without its padding"),
                    ("dGhlIHNhbXBsZSBub25jZQ==AAAA", "a key of 19 bytes"),
                    ("dGhlIHNhbXBsZSBub25j*Q==", "a key with a non-base64 character")]
        for key, what in bad_keys:
            c = raw_conn(s)
            r = c.handshake("/sub/h", key=key)
            error_answer(r, 400, what)

        # not an upgrade: README's table says GET /sub/{ch} is a long poll unless it is an
        # upgrade (or asks for text/event-stream); since=0 makes the long poll answer at once
        for hdrs, what in ((dict(upgrade=None), "Connection: Upgrade without an Upgrade header"),
                           (dict(connection=None), "Upgrade: websocket without Connection")):
            c = raw_conn(s)
            r = c.handshake("/sub/h?since=0", **hdrs)
            v = json_answer(r, 200, what + " (README: a long poll)")
            eq([m["data"] for m in v["messages"]], ["hello"], what + ": long poll answer")
        # Connection: keep-alive only: RFC 6455 4.2.1 wants Connection to include Upgrade;
        # README's handshake needs Connection: Upgrade. Not a 101 either way; the server may
        # answer 400 or treat it as the long poll it otherwise is.
        c = raw_conn(s)
        r = c.handshake("/sub/h?since=0", connection="keep-alive")
        check(r.status != 101, "Connection: keep-alive (no upgrade token) got 101")
        if r.status == 200:
            v = json_answer(r, 200, "Connection: keep-alive")
            check("messages" in v, "Connection: keep-alive: 200 that is not a long poll answer: %r", v)
        else:
            error_answer(r, 400, "Connection: keep-alive with Upgrade: websocket")
        for kw, what in ((dict(upgrade="h2c"), "Upgrade: h2c"),
                         (dict(http="HTTP/1.0"), "an HTTP/1.0 upgrade request")):
            c = raw_conn(s)
            r = c.handshake("/sub/h?since=0", **kw)
            check(r.status != 101, "%s got 101", what)
        # accepted spellings
        for kw, what in ((dict(upgrade="WebSocket"), "Upgrade: WebSocket"),
                         (dict(connection="keep-alive, Upgrade"), "Connection: keep-alive, Upgrade"),
                         (dict(connection="upgrade"), "Connection: upgrade")):
            c = raw_conn(s)
            c.handshake("/sub/h", **kw)
            c.check_accept(what)
        c = raw_conn(s)
        c.send(b"POST /sub/h HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               b"Content-Length: 0\r\n\r\n")
        r = c.read_response(3)
        error_answer(r, 405, "POST with an upgrade")
        check("GET" in r.header_tokens("allow"), "405's Allow %r does not name GET", r.header("allow"))
        c = raw_conn(s)
        r = c.handshake("/sub/bad%20name")
        error_answer(r, 400, "upgrade on a bad channel name")

        # subprotocols
        for offer, want, what in (("chat, ringcast.json", "ringcast.json", "offer chat, ringcast.json"),
                                  ("ringcast.json", "ringcast.json", "offer ringcast.json"),
                                  ("chat", None, "offer chat"),
                                  ("chat, superchat", None, "offer chat, superchat")):
            c = raw_conn(s)
            c.handshake("/sub/h", protocols=offer)
            c.check_accept(what)
            eq(c.head.header("sec-websocket-protocol"), want, "Sec-WebSocket-Protocol answered to " + what)
        # permessage-deflate is accepted, always with server_no_context_takeover (README);
        # test_ws_deflate.py has the rest
        c = raw_conn(s)
        c.handshake("/sub/h", headers=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")])
        c.check_accept("deflate offer")
        eq(c.head.header("sec-websocket-extensions"), "permessage-deflate; server_no_context_takeover",
           "Sec-WebSocket-Extensions answered to permessage-deflate; client_max_window_bits")
        c = raw_conn(s)
        c.handshake("/sub/h", headers=[("Sec-WebSocket-Extensions", "x-webkit-deflate-frame")])
        c.check_accept("unknown extension offer")
        check(c.head.header("sec-websocket-extensions") is None,
              "x-webkit-deflate-frame offer: 101 names an extension %r", c.head.header("sec-websocket-extensions"))
        s.publish("h", "after")
        eq(ws.texts(1), ["after"], "the first subscriber after all that")
        # last, so that a failure here does not hide the checks above
        c = raw_conn(s)
        c.handshake("/sub/h", headers=[("Sec-WebSocket-Protocol", "chat"), ("Sec-WebSocket-Protocol", "ringcast.json")])
        c.check_accept("two Sec-WebSocket-Protocol lines")
        eq(c.head.header("sec-websocket-protocol"), "ringcast.json",
           "Sec-WebSocket-Protocol answered to two lines `chat` and `ringcast.json` (RFC 6455 11.3.4: "
           "equivalent to one line with both)")


@test
def ws_origin(t):
    """--allow-origin http://a.example,http://c.example: Origin http://b.example: 403; a listed
    origin: 101; no Origin (not a browser): 101."""
    with t.server(allow_origin="http://a.example,http://c.example") as s:
        for origin in ("http://b.example", "http://a.example.evil", "https://a.example", "null"):
            c = raw_conn(s)
            r = c.handshake("/sub/o", origin=origin)
            error_answer(r, 403, "Origin %s not in --allow-origin" % origin)
        subs = []
        for origin in ("http://a.example", "http://c.example", None):
            c = raw_conn(s)
            c.handshake("/sub/o", origin=origin)
            c.check_accept("Origin %s" % origin)
            subs.append(c)
        s.publish("o", "x")
        for c in subs:
            eq(c.texts(1), ["x"], "subscriber accepted by origin")


# ----------------------------------------------------------------------------------------------
# 2. server -> client messages


@test
def ws_messages(t):
    """Raw form: a text frame holding exactly the body (binary for application/octet-stream),
    X-Event not in it; 7-, 16- and 64-bit length forms (125 B, 126 B, 200 B, 70 KB with
    --max-message 100000). ringcast.json form: {channel,id,data[,event]}."""
    with t.server(max_message=100000) as s:
        raw = open_ws(s, "/sub/m")
        js = open_ws(s, "/sub/m", protocols="ringcast.json")
        eq(js.head.header("sec-websocket-protocol"), "ringcast.json", "selected subprotocol")
        bodies = [
            (b"hello", None, None),
            (b"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "price", None),
            (b"\x00\x01\x02\xfe\xff", None, "application/octet-stream"),
            (b"x" * 125, None, None),
            (b"y" * 126, None, None),
            (bytes(range(32, 127)) * 2 + b"abcdefghij", None, None),  # 200 B
            (b"".join(b"%07d\n" % i for i in range(8750)), None, None),  # 70000 B
            (b"z" * 70001, None, "application/octet-stream"),
            (b'quote " backslash \\ nl \n tab \t', "e", None),
        ]
        for i, (body, ev, ct) in enumerate(bodies, 1):
            hl = [("Content-Type", ct)] if ct else []
            eq(s.publish("m", body, event=ev, headers=hl)["id"], i, "publish id")
        got = raw.recv_messages(len(bodies), 10, "raw frames")
        for i, ((body, ev, ct), (op, p)) in enumerate(zip(bodies, got), 1):
            want_op = OP_BINARY if ct == "application/octet-stream" else OP_TEXT
            eq(op, want_op, "opcode of message %d (Content-Type %s)" % (i, ct))
            eq(p, body, "payload of message %d" % i)
        frames = [f for f in raw.frames if f.opcode in (OP_TEXT, OP_BINARY)]
        eq([f.header_len for f in frames[3:8]], [2, 4, 4, 10, 10],
           "header lengths (7-bit, 16-bit, 16-bit, 64-bit, 64-bit forms) for 125, 126, 200, 70000, 70001 B")
        check(all(f.fin for f in frames), "a message was fragmented: %r", frames)
        got = jtexts(js, len(bodies), "ringcast.json frames", timeout=10)
        for i, ((body, ev, ct), v) in enumerate(zip(bodies, got), 1):
            want = {"channel": "m", "id": i, "data": body.decode("utf-8", "replace")}
            if ev:
                want["event"] = ev
            eq(v, want, "ringcast.json frame of message %d (README: invalid UTF-8 becomes U+FFFD)" % i)
        check(not raw.quiet_for(0.2) and not js.pending_messages(), "extra frames")


# ----------------------------------------------------------------------------------------------
# 3. client -> server


@test
def ws_client_publish(t):
    """A masked text frame is published (SSE, short poll and the other WebSocket subscribers
    see it, the sender too; ids continue); binary too; a frame split over many TCP writes; a
    fragmented message (3 fragments, a ping between them, a UTF-8 character split across
    fragments) is published whole and the ping answered with a pong of its payload."""
    with t.server() as s:
        sse = s.sse("/sub/p")
        sse.preamble()
        a = open_ws(s, "/sub/p")
        b = open_ws(s, "/sub/p")
        eq(s.publish("p", "one")["id"], 1, "first publish")
        eq([(e.id, e.data) for e in sse.events(1)], [("1", "one")], "SSE")
        a.send_text("from ws")
        eq([(e.id, e.data) for e in sse.events(1)], [("2", "from ws")], "SSE gets the WebSocket message")
        eq(b.texts(2), ["one", "from ws"], "other WebSocket subscriber")
        eq(a.texts(2), ["one", "from ws"], "the sender (a subscriber of the channel too)")
        eq(s.publish("p", "three")["id"], 3, "publish after a WebSocket message: ids continue")
        a.send_binary(b"\x00\x01bin\xff")
        eq(b.recv_messages(2), [(OP_TEXT, b"three"), (OP_BINARY, b"\x00\x01bin\xff")],
           "a binary message reaches a WebSocket subscriber as a binary frame")
        v = json_answer(s.get("/poll/p?since=3"), 200, "short poll")
        eq([m["id"] for m in v["messages"]], [4], "short poll ids after the binary message")
        # one frame sent a few bytes at a time
        frame = wsclient.build_frame(OP_TEXT, b"split over writes " + b"s" * 200)
        for k in range(0, len(frame), 7):
            a.send(frame[k:k + 7])
            if k < 30:
                time.sleep(0.01)
        # fragmented: 3 fragments, a ping between them; the euro sign split 1 + 2 bytes
        a.send_frame(OP_TEXT, b"frag-1 \xe2", fin=False)
        a.send_ping(b"between fragments")
        a.send_frame(OP_CONT, b"\x82\xac frag-2 ", fin=False)
        a.send_frame(OP_CONT, b"frag-3", fin=True)
        a.wait(lambda x: x.pongs, 3, "the pong")
        eq(a.pongs, [b"between fragments"], "pong payload")
        want = ["split over writes " + "s" * 200, "frag-1 \u20ac frag-2 frag-3"]
        evs = sse.events(4)
        eq([e.id for e in evs], ["3", "4", "5", "6"], "SSE ids after the WebSocket messages")
        eq([e.data for e in evs[2:]], want, "SSE: a frame split over writes, a fragmented message")
        eq(b.texts(2), want, "other WebSocket subscriber: split frame and fragmented message")
        v = json_answer(s.get("/poll/p?since=4"), 200, "short poll")
        eq([(m["id"], m["data"]) for m in v["messages"]], [(5, want[0]), (6, want[1])], "short poll")
        eq(s.publish("p", "seven")["id"], 7, "publish id after the WebSocket messages")
        check(stats_total(s)["ws_messages_in"] >= 4, "/stats ws_messages_in below 4: %r", stats_total(s))
    with t.server(ws_publish="off", close_timeout=2) as s:
        a = open_ws(s, "/sub/q")
        a.send_text("not allowed")
        a.expect_close(1008, what="--ws-publish off")
        v = json_answer(s.get("/poll/q"), 200, "short poll with --ws-publish off")
        eq(v["messages"], [], "nothing published with --ws-publish off")


@test
def ws_client_large(t):
    """Default --max-message 65536: client messages of exactly 65536 bytes are published whole
    (one 64-bit-length frame; 4 fragments with a ping inside; one write holding a 65536-byte
    frame, a ping and another message); 65537 bytes close with 1009, and the client's close
    ends the connection even when it follows the rest of the refused frame's payload."""
    with t.server(close_timeout=2) as s:
        sse = s.sse("/sub/L")
        sse.preamble()
        a = open_ws(s, "/sub/L")
        a.send_binary(b"B" * 65536)
        a.send_text("t" * 65535)
        for k in range(4):
            a.send_frame(OP_TEXT if k == 0 else OP_CONT, b"%d" % k * 16384, fin=(k == 3))
            if k == 1:
                a.send_ping(b"mid")
        a.send(wsclient.build_frame(OP_BINARY, b"C" * 65536) + wsclient.build_frame(OP_PING, b"p2")
               + wsclient.build_frame(OP_TEXT, b"end"))
        want = [(OP_BINARY, b"B" * 65536), (OP_TEXT, b"t" * 65535),
                (OP_TEXT, b"".join(b"%d" % k * 16384 for k in range(4))), (OP_BINARY, b"C" * 65536), (OP_TEXT, b"end")]
        got = a.recv_messages(5, 10, "its 5 messages back")
        check(got == want, "messages of up to 65536 bytes: got %r", [(op, len(p), p[:8]) for op, p in got])
        a.wait(lambda x: len(x.pongs) >= 2, 3, "2 pongs")
        eq(a.pongs, [b"mid", b"p2"], "pongs")
        eq([e.id for e in sse.events(5, 10)], ["1", "2", "3", "4", "5"], "SSE ids")
        # Over the limit: close 1009, and once the client answers with its close, TCP closes
        # (README: the server waits up to --close-timeout 2 for that close).
        c = open_ws(s, "/sub/L")
        c.send(wsclient.build_frame(OP_TEXT, b"y" * 40000, fin=False) + wsclient.build_frame(OP_CONT, b"y" * 25537))
        c.expect_close(1009, what="65537 bytes in 2 fragments", eof_within=1.0)
        # A client streaming a 65537-byte frame is still sending its payload when the 1009
        # comes (here the header goes first, alone). The payload is application data: even
        # when its bytes look like frame headers (here two, announcing 60000 and 65000
        # bytes), they must not be taken for frames that swallow the client's close.
        key = b"\x11\x22\x33\x44"
        fake = lambda n: b"\x82\xfe" + n.to_bytes(2, "big") + b"\x55\x66\x77\x88"
        wire = fake(60000) + b"x" * 60000 + fake(65000)
        wire += b"x" * (65537 - len(wire))
        frame = wsclient.build_frame(OP_BINARY, wsclient.mask_bytes(wire, key), key=key)
        eq(frame[14:], wire, "the frame's bytes on the wire")
        b = open_ws(s, "/sub/L")
        what = "a 65537-byte frame whose payload is still coming when the 1009 is sent"
        b.send(frame[:14])
        b.expect_close(1009, what=what, reply=False, eof_within=None)
        b.try_send(frame[14:])
        b.try_send_close(1009)
        closed, _ = b.wait_closed_frames(1.0)
        check(not sse.quiet_for(0.2), "a message over --max-message was published")
        check(closed, "%s: TCP still open 1.0s after the rest of the payload and the client's close "
              "(--close-timeout 2): the payload's bytes were parsed as frames", what)


# ----------------------------------------------------------------------------------------------
# 4. protocol errors


PROTOCOL_ERRORS = [
    # (what, bytes to send, expected close code)
    ("unmasked text frame", wsclient.build_frame(OP_TEXT, b"hi", mask=False), 1002),
    ("RSV1 on a text frame", wsclient.build_frame(OP_TEXT, b"hi", rsv=4), 1002),
    ("RSV2 on a text frame", wsclient.build_frame(OP_TEXT, b"hi", rsv=2), 1002),
    ("RSV3 on a ping", wsclient.build_frame(OP_PING, b"hi", rsv=1), 1002),
    ("opcode 3", wsclient.build_frame(3, b"hi"), 1002),
    ("opcode 0xB", wsclient.build_frame(0xB, b""), 1002),
    ("ping with a 126-byte payload", wsclient.build_frame(OP_PING, b"p" * 126), 1002),
    ("fragmented ping", wsclient.build_frame(OP_PING, b"p", fin=False), 1002),
    ("continuation without a start", wsclient.build_frame(OP_CONT, b"c"), 1002),
    ("new text frame inside a fragmented message",
     wsclient.build_frame(OP_TEXT, b"a", fin=False) + wsclient.build_frame(OP_TEXT, b"b"), 1002),
    ("16-bit length form for 5 bytes", wsclient.build_frame(OP_TEXT, b"hello", length_form=16), 1002),
    ("64-bit length with the top bit set",
     wsclient.build_frame(OP_BINARY, b"", length_form=64, length=1 << 63), 1002),
    ("invalid UTF-8 text", wsclient.build_frame(OP_TEXT, b"ab\xffcd"), 1007),
    ("overlong UTF-8 text", wsclient.build_frame(OP_TEXT, b"\xc0\xaf"), 1007),
    ("UTF-16 surrogate in text", wsclient.build_frame(OP_TEXT, b"\xed\xa0\x80"), 1007),
    ("text ending in half a character", wsclient.build_frame(OP_TEXT, b"ab\xe2\x82"), 1007),
    ("message of 1001 bytes over --max-message 1000", wsclient.build_frame(OP_BINARY, b"b" * 1001), 1009),
    ("close with a 1-byte payload", wsclient.build_frame(OP_CLOSE, b"\x03"), 1002),
    ("close code 1005", wsclient.build_frame(OP_CLOSE, wsclient.close_payload(1005)), 1002),
    ("close code 1006", wsclient.build_frame(OP_CLOSE, wsclient.close_payload(1006)), 1002),
    ("close code 1004", wsclient.build_frame(OP_CLOSE, wsclient.close_payload(1004)), 1002),
    ("close code 1015", wsclient.build_frame(OP_CLOSE, wsclient.close_payload(1015)), 1002),
    ("close code 999", wsclient.build_frame(OP_CLOSE, wsclient.close_payload(999)), 1002),
    ("close code 2999", wsclient.build_frame(OP_CLOSE, wsclient.close_payload(2999)), 1002),
    ("close code 5000", wsclient.build_frame(OP_CLOSE, wsclient.close_payload(5000)), 1002),
    ("close reason not UTF-8", wsclient.build_frame(OP_CLOSE, wsclient.close_payload(1000, b"bad \xff")), 1007),
]


@test
def ws_protocol_errors(t):
    """Each protocol error closes with its code (1002, 1007 invalid UTF-8, 1009 too big), the
    server answers nothing else after its close, and TCP closes once the client answers the
    close (well before --close-timeout 3). An invalid byte in the first fragment closes before
    the second is sent; 3 x 400-byte fragments over --max-message 1000 close with 1009 on the
    third. A subscriber on the same channel keeps receiving after each."""
    with t.server(max_message=1000, close_timeout=3) as s:
        watcher = open_ws(s, "/sub/e")
        n = 0

        def first_fragment_invalid(c):
            c.send(wsclient.build_frame(OP_TEXT, b"bad \xff start", fin=False))

        def three_fragments(c):
            c.send(wsclient.build_frame(OP_BINARY, b"1" * 400, fin=False))
            c.send(wsclient.build_frame(OP_CONT, b"2" * 400, fin=False))
            c.expect_silent_frames(0.2, "after 800 of 1200 bytes (under --max-message)")
            c.send(wsclient.build_frame(OP_CONT, b"3" * 400, fin=True))

        cases = [(w, (lambda data: lambda c: c.send(data))(d), code) for w, d, code in PROTOCOL_ERRORS]
        cases.append(("invalid byte in the first of 2 fragments (the second not sent)", first_fragment_invalid, 1007))
        cases.append(("3 x 400-byte fragments over --max-message 1000", three_fragments, 1009))
        failures = []
        for what, run, code in cases:
            c = open_ws(s, "/sub/e")
            try:
                run(c)
                c.expect_close(code, what=what, eof_within=1.0)
            except (Failure, client.ClientError) as e:
                failures.append("%s: %s" % (what, e))
            finally:
                c.close()
            n += 1
            body = "after %d" % n
            s.publish("e", body)
            try:
                eq(watcher.texts(1, 3, "the publish after case %r" % what), [body], "watcher after " + what)
            except (Failure, client.ClientError) as e:
                raise Failure("%s; earlier case failures: %s" % (e, failures))
        # the exact limit is fine, whole or in fragments
        c = open_ws(s, "/sub/e")
        c.send_binary(b"L" * 1000)
        c.send(wsclient.build_frame(OP_TEXT, b"a" * 500, fin=False) + wsclient.build_frame(OP_CONT, b"b" * 500))
        got = watcher.recv_messages(2, 3, "messages of exactly --max-message")
        eq([(op, len(p)) for op, p in got], [(OP_BINARY, 1000), (OP_TEXT, 1000)], "messages of exactly 1000 bytes")
        check(c.close_frame is None, "a message of exactly --max-message was refused: %r", c.close_frame)
        check(not failures, "%d of %d cases failed:\n%s", len(failures), len(cases), "\n".join(failures))
        wait_stat(s, "ws_subscribers", lambda v: v == 2, 3, "2 WebSocket subscribers left after the failed ones")
        errs = stats_total(s)["ws_protocol_errors"]
        check(errs >= len(cases), "/stats ws_protocol_errors %d, expected at least %d", errs, len(cases))


# ----------------------------------------------------------------------------------------------
# 5. close handshake


@test
def ws_close_handshake(t):
    """Client close 1000 "bye": the server answers close 1000 and closes TCP (long before
    --close-timeout); other codes are echoed; an empty close gets an empty close. On SIGTERM
    (--drain 3, --close-timeout 1) the server sends 1001: a client that answers is closed at
    once, one that never answers is disconnected after --close-timeout (within ~3 s), and the
    server exits 0 within --drain + 2 s."""
    with t.server(close_timeout=5, drain=3) as s:
        for code, reason in ((1000, b"bye"), (1001, b""), (3000, b"app"), (4999, "\u00e9t\u00e9".encode())):
            c = open_ws(s, "/sub/c")
            c.send_close(code, reason)
            t0 = time.monotonic()
            c.wait(lambda x: x.close_frame is not None, 2, "the server's close answering %d" % code)
            eq(c.close_frame.close_code, code, "close code echoed")
            closed, extra = c.wait_closed_frames(2)
            check(closed, "TCP still open 2 s after the close handshake (code %d)", code)
            check(time.monotonic() - t0 < 2, "close handshake took %.1fs", time.monotonic() - t0)
        c = open_ws(s, "/sub/c")
        c.send_close()
        c.wait(lambda x: x.close_frame is not None, 2, "the server's close answering an empty close")
        check(c.close_frame.payload in (b"", b"\x03\xe8"),
              "answer to an empty close: payload %r (expected empty, or 1000)", c.close_frame.payload)
        check(c.wait_closed_frames(2)[0], "TCP open after the empty close handshake")
        # frames after the client's close are not answered (no pong)
        c = open_ws(s, "/sub/c")
        c.send(wsclient.build_frame(OP_CLOSE, wsclient.close_payload(1000)) + wsclient.build_frame(OP_PING, b"late"))
        c.wait(lambda x: x.close_frame is not None, 2, "close")
        check(c.wait_closed_frames(2)[0], "TCP open after close + ping")
        check(not c.pongs, "a ping sent after the close was answered")
        wait_stat(s, "ws_subscribers", lambda v: v == 0, 3, "after every close handshake")
        c = open_ws(s, "/sub/c")
        wait_stat(s, "ws_subscribers", lambda v: v == 1, 3, "a new subscriber")
        c.close()  # TCP closed without a close frame
        wait_stat(s, "ws_subscribers", lambda v: v == 0, 3, "after a TCP close without a close frame")
    with t.server(close_timeout=1, drain=3) as s:
        polite = open_ws(s, "/sub/d")
        silent = open_ws(s, "/sub/d")
        s.publish("d", "m")
        eq(polite.texts(1), ["m"], "before SIGTERM")
        eq(silent.texts(1), ["m"], "before SIGTERM")
        t0 = s.terminate()
        polite.expect_close(1001, timeout=3, what="SIGTERM (answered)", eof_within=1.0)
        silent.expect_close(1001, timeout=3, what="SIGTERM (not answered)", reply=False, eof_within=3.0)
        took = time.monotonic() - t0
        check(took >= 0.8, "the silent client was disconnected %.2fs after SIGTERM, before --close-timeout 1", took)
        rc = s.wait_exit(max(0.1, t0 + 5 - time.monotonic()))
        check(rc is not None, "server still running %.1fs after SIGTERM (--drain 3)", time.monotonic() - t0)
        eq(rc, 0, "exit status")


# ----------------------------------------------------------------------------------------------
# 6. ping / pong


@test
def ws_ping_pong(t):
    """--ws-ping 1 --ws-timeout 1: a client that answers the server's (empty) pings stays
    connected for 4 s and still receives; one that never answers is disconnected within ~3.5 s;
    /stats counts ws_ping_timeouts. The server answers the client's pings (empty, 125 bytes)
    with pongs of the same payload and ignores unsolicited pongs."""
    with t.server(ws_ping=1, ws_timeout=1) as s:
        good = open_ws(s, "/sub/pp")
        bad = open_ws(s, "/sub/pp", auto_pong=False)
        good.send_ping(b"")
        good.send_ping(bytes(range(125)))
        good.send_frame(OP_PONG, b"unsolicited")
        good.wait(lambda x: len(x.pongs) >= 2, 3, "2 pongs")
        eq(good.pongs, [b"", bytes(range(125))], "pongs to the client's pings")
        t0 = time.monotonic()
        bad_gone = None
        streams = [good, bad]
        deadline = t0 + 4.0
        while time.monotonic() < deadline:
            drain_available(streams)
            if bad.eof and bad_gone is None:
                bad_gone = time.monotonic() - t0
            if good.eof:
                raise Failure("the client that answers pings was disconnected after %.1fs (pings %d, frames %r)"
                              % (time.monotonic() - t0, len(good.pings), good.frames[-4:]))
            time.sleep(0.05)
        check(bad_gone is not None, "the client that never answers pings is still connected after 4 s "
              "(pings received %d)", len(bad.pings))
        check(bad_gone <= 3.6, "the client that never answers pings was disconnected after %.1fs, expected "
              "within ~3.5 s (--ws-ping 1 --ws-timeout 1)", bad_gone)
        check(bad.pings, "the disconnected client never saw a ping")
        check(len(good.pings) >= 2, "the answering client saw %d pings in 4 s with --ws-ping 1", len(good.pings))
        check(all(p == b"" or len(p) <= 125 for p in good.pings), "server pings %r", good.pings)
        s.publish("pp", "still here")
        eq(good.texts(1), ["still here"], "the answering client after 4 s")
        check(stats_total(s)["ws_ping_timeouts"] >= 1, "/stats ws_ping_timeouts is 0: %r", stats_total(s))
        drain_available([good])  # answer pending pings: the gauge is read while good is surely connected
        wait_stat(s, "ws_subscribers", lambda v: v == 1, 0.5,
                  "1 WebSocket subscriber left after one was closed for not answering pings")


# ----------------------------------------------------------------------------------------------
# 7. resume and gap


@test
def ws_resume_gap(t):
    """5 published, ?since=2: 3, 4, 5 then live ones. --history 3, 10 published, ?since=2 in
    ringcast.json: first frame {"gap":{"channel","requested":3,"first":8}}, then 8, 9, 10 and
    live ones; since beyond the last id is a gap to the oldest held; raw mode's gap frame."""
    with t.server(history=3) as s:
        for i in range(1, 6):
            s.publish("r", "r%d" % i)
        ws = open_ws(s, "/sub/r?since=2")
        eq(ws.texts(3), ["r3", "r4", "r5"], "raw resume since=2")
        s.publish("r", "r6")
        eq(ws.texts(1), ["r6"], "live after the backlog")
        js = open_ws(s, "/sub/r?since=4", protocols="ringcast.json")
        eq([(v["id"], v["data"]) for v in jtexts(js, 2, "resume since=4")], [(5, "r5"), (6, "r6")],
           "ringcast.json resume since=4")
        for i in range(1, 11):
            s.publish("g", "g%d" % i, event="ev" if i == 9 else None)
        js = open_ws(s, "/sub/g?since=2", protocols="ringcast.json")
        got = jtexts(js, 4, "gap then 8, 9, 10")
        eq(got[0], {"gap": {"channel": "g", "requested": 3, "first": 8}}, "first frame: the gap")
        eq(got[1:], [{"channel": "g", "id": 8, "data": "g8"}, {"channel": "g", "id": 9, "event": "ev", "data": "g9"},
                     {"channel": "g", "id": 10, "data": "g10"}], "frames after the gap")
        s.publish("g", "g11")
        eq(jtexts(js, 1, "live"), [{"channel": "g", "id": 11, "data": "g11"}], "live after the gap")
        far = open_ws(s, "/sub/g?since=50", protocols="ringcast.json")
        got = jtexts(far, 4, "since beyond the last id")
        eq(got[0], {"gap": {"channel": "g", "requested": 51, "first": 9}}, "gap for since=50 (last id 11)")
        eq([v.get("id") for v in got[1:]], [9, 10, 11], "every held message after that gap")
        raw = open_ws(s, "/sub/g?since=2")
        op, p = raw.recv_message()
        eq((op, jmsg(p, "raw gap")), (OP_TEXT, {"gap": {"channel": "g", "requested": 3, "first": 9}}),
           "raw mode's gap frame")
        eq(raw.texts(3), ["g9", "g10", "g11"], "raw frames after the gap")
        check(stats_total(s)["gaps"] >= 3, "/stats gaps below 3")


# ----------------------------------------------------------------------------------------------
# 8. several channels


@test
def ws_multi_channel(t):
    """/sub/a,b in ringcast.json gets both channels' messages with their names and ids; a client
    message on /sub/a,b is published on a and on b; since=a:1,b:0 resumes each channel."""
    with t.server() as s:
        sa, sb = s.sse("/sub/a"), s.sse("/sub/b")
        sa.preamble()
        sb.preamble()
        js = open_ws(s, "/sub/a,b", protocols="ringcast.json")
        raw = open_ws(s, "/sub/b,a")
        s.publish("a", "a1")
        s.publish("b", "b1")
        s.publish("a", "a2")
        eq(jtexts(js, 3, "a1 b1 a2"), [{"channel": "a", "id": 1, "data": "a1"}, {"channel": "b", "id": 1, "data": "b1"},
                                       {"channel": "a", "id": 2, "data": "a2"}], "several channels in ringcast.json")
        eq(raw.texts(3), ["a1", "b1", "a2"], "several channels, raw")
        js.send_text("to both")
        got = jtexts(js, 2, "the client's message on a and b")
        eq(sorted((v["channel"], v["id"], v["data"]) for v in got), [("a", 3, "to both"), ("b", 2, "to both")],
           "the client's own message as received on a,b")
        eq([(e.id, e.data) for e in sa.events(3)], [("1", "a1"), ("2", "a2"), ("3", "to both")], "SSE on a")
        eq([(e.id, e.data) for e in sb.events(2)], [("1", "b1"), ("2", "to both")], "SSE on b")
        eq(sorted(raw.texts(2)), ["to both", "to both"], "raw subscriber of b,a gets it twice")
        rs = open_ws(s, "/sub/a,b?since=a:1,b:0", protocols="ringcast.json")
        got = jtexts(rs, 4, "resume a:1,b:0")
        eq(sorted((v["channel"], v["id"]) for v in got), [("a", 2), ("a", 3), ("b", 1), ("b", 2)],
           "resume since=a:1,b:0")
        eq([v["id"] for v in got if v["channel"] == "a"], [2, 3], "a's order")


# ----------------------------------------------------------------------------------------------
# 9. slow consumer


def kernel_send_buffer_max():
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


@test(timeout=90)
def ws_slow_consumer(t):
    """--max-queue 65536: a WebSocket subscriber that never reads (SO_RCVBUF 4096) is dropped
    (/stats drops_slow >= 1, the connection ends) while 20 others get every 16 KiB message.
    Messages are published until /stats counts the drop (the kernel absorbs up to tcp_wmem's
    max for the stalled socket first; see slow_consumer_dropped in test_load.py)."""
    N, SIZE, MIN, QUEUE = 20, 16384, 100, 65536
    limit = MIN + (2 * kernel_send_buffer_max() + 4 * QUEUE) // SIZE
    with t.server(max_queue=QUEUE) as s:
        stalled = open_ws(s, "/sub/slow", rcvbuf=4096)
        normal = [open_ws(s, "/sub/slow") for _ in range(N)]
        keep = s.conn()
        want, dropped, stats, i = [], 0, None, 0
        while i < limit:
            i += 1
            body = (("%05d" % i) + chr(ord("a") + i % 26) * (SIZE - 5)).encode()
            eq(s.publish("slow", body, conn=keep)["id"], i, "publish id")
            want.append((OP_TEXT, body))
            drain_available(normal)
            if i >= MIN and i % 10 == 0 and not dropped:
                stats = json_answer(keep.get("/stats"), 200, "GET /stats")
                dropped = stats["total"]["drops_slow"]
                if dropped:
                    limit = min(limit, i + 10)
        check(dropped >= 1, "/stats drops_slow is 0 after %d messages of %d bytes: %s", i, SIZE, str(stats)[:800])
        M = len(want)
        try:
            pump_all(normal, lambda: all(len(x.messages) >= M or x.eof for x in normal), 30, "every message")
        except client.Timeout:
            pass
        for k, x in enumerate(normal):
            check(not x.eof, "normal subscriber %d was disconnected", k)
            check(x.messages == want, "normal subscriber %d: %d of %d messages (first difference at %s)", k,
                  len(x.messages), M, next((j for j in range(min(M, len(x.messages))) if x.messages[j] != want[j]),
                                           min(M, len(x.messages))))
        deadline = time.monotonic() + 10
        while not stalled.eof and time.monotonic() < deadline:
            if stalled.readable_within(0.5):
                stalled.on_readable()
        check(stalled.eof, "the stalled subscriber was not disconnected (got %d of %d messages)",
              len(stalled.messages), M)
        check(len(stalled.messages) < M, "the stalled subscriber received all %d messages", M)
        eq(stalled.messages, want[:len(stalled.messages)], "what the stalled subscriber did receive")
        wait_stat(s, "ws_subscribers", lambda v: v == N, 2, "%d WebSocket subscribers left after the drop" % N)
        s.publish("slow", "after")
        pump_all(normal, lambda: all(len(x.messages) > M for x in normal), 5, "the message after the drop")
        check(all(x.messages[M] == (OP_TEXT, b"after") for x in normal), "message after the drop")


# ----------------------------------------------------------------------------------------------
# 10. fan-out across workers


@test
def ws_fanout_200(t):
    """--workers 2, 200 WebSocket subscribers (half ringcast.json): 50 publishes reach every
    one exactly once, in order; /stats counts 200 ws_subscribers spread over both workers;
    the publish answers' subscribers reach 200."""
    N, M = 200, 50
    with t.server(workers=2) as s:
        subs = [open_ws(s, "/sub/fan", protocols="ringcast.json" if i % 2 else None) for i in range(N)]
        st = json_answer(s.get("/stats"), 200, "GET /stats")
        eq(st["total"]["ws_subscribers"], N, "/stats ws_subscribers")
        check(all(w["ws_subscribers"] > 0 for w in st["per_worker"]),
              "the %d subscribers are not spread over both workers: %r", N,
              [w["ws_subscribers"] for w in st["per_worker"]])
        keep = s.conn()
        want, counts = [], []
        for i in range(1, M + 1):
            body = "fan %d %s" % (i, "x" * (i * 7 % 40))
            v = s.publish("fan", body, conn=keep if i % 3 else None)
            eq(v["id"], i, "publish id")
            counts.append(v["subscribers"])
            want.append(body)
            drain_available(subs)
        eq(counts[-1], N, "subscribers in the last publish answer (all %r)" % counts)
        v = json_answer(s.get("/channels/fan"), 200, "GET /channels/fan")
        eq(v["subscribers"], N, "/channels/fan subscribers")

        def done():
            for k, x in enumerate(subs):
                if x.eof:
                    raise Failure("subscriber %d ended after %d of %d messages" % (k, len(x.messages), M))
            return all(len(x.messages) >= M for x in subs)
        try:
            pump_all(subs, done, 30, "%d messages on %d subscribers" % (M, N))
        except client.Timeout as e:
            c = sorted(len(x.messages) for x in subs)
            raise Failure("%s; messages per subscriber min %d max %d" % (e, c[0], c[-1]))
        time.sleep(0.1)
        drain_available(subs)
        for k, x in enumerate(subs):
            if k % 2:
                got = [(v["channel"], v["id"], v["data"]) for v in (jmsg(p, "sub %d" % k) for _, p in x.messages)]
                eq(got, [("fan", i, b) for i, b in enumerate(want, 1)], "ringcast.json subscriber %d" % k)
            else:
                eq(x.messages, [(OP_TEXT, b.encode()) for b in want], "raw subscriber %d" % k)
