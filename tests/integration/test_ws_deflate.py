"""WebSocket permessage-deflate (RFC 7692): negotiation (parameters answered, bad offers
declined, --ws-deflate off), server frames compressed once per message and inflatable alone
(server_no_context_takeover) in both forms and windows, small messages sent plain, client
messages inflated (one frame or fragmented, with and without context takeover) and published
exactly, the limits (a deflate bomb closes 1009 without the server's memory growing; bad
deflate data and invalid UTF-8 after inflating close 1007), and python3-websockets with its
default compression. Node's ws with perMessageDeflate is in test_ws_clients.py. The raw client
(wsclient.py) inflates and checks every RSV1 frame itself."""

import asyncio
import json
import os
import time
import zlib

from harness import Failure, check, eq, json_answer, test
from wsclient import OP_BINARY, OP_CONT, OP_TEXT, WSConn

OFFER = ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
ANSWER = "permessage-deflate; server_no_context_takeover"


def raw_conn(s, timeout=5.0):
    return WSConn(s.port, host=s.host, timeout=timeout, tracker=s.clients)


def deflate_ws(path, s, offer=OFFER[1], protocols=None):
    c = raw_conn(s)
    c.handshake(path, protocols=protocols, headers=[("Sec-WebSocket-Extensions", offer)])
    c.check_accept("deflate offer %r" % offer)
    return c


def json_like(n, seed=1):
    """About n bytes of JSON-ish text that compresses the way real messages do."""
    words = ["price", "volume", "symbol", "ACME", "bid", "ask", "exchange", "NYSE", "delta"]
    out, x = [], seed
    while sum(map(len, out)) < n:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append('{"%s":%d,"%s":"%s"},' % (words[x % 9], x % 100000, words[(x >> 4) % 9], words[(x >> 8) % 9]))
    return ("[" + "".join(out))[:n - 1] + "]"


def client_deflate(data, co=None):
    """One message as a client compresses it: sync flush, 00 00 ff ff removed."""
    co = co or zlib.compressobj(6, zlib.DEFLATED, -15)
    out = co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def rss_kb(s):
    """The server's (current, peak) resident set in KB: the peak catches a buffer that was
    inflated in full and freed again."""
    v = {}
    with open("/proc/%d/status" % s.proc.pid) as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                v[k] = int(rest.split()[0])
    return v["VmRSS"], v["VmHWM"]


def stats_total(s):
    return json_answer(s.get("/stats"), 200, "GET /stats")["total"]


@test
def ws_deflate_negotiation(t):
    """The first acceptable permessage-deflate offer is accepted, always with
    server_no_context_takeover, plus client_no_context_takeover and server_max_window_bits
    when offered; invalid offers (RFC 7692 section 5), server_max_window_bits=8 and malformed
    headers are declined, the connection still opens; --ws-deflate off declines everything."""
    cases = [
        ("permessage-deflate", ANSWER),
        ("permessage-deflate; client_max_window_bits", ANSWER),
        ("permessage-deflate; client_no_context_takeover", ANSWER + "; client_no_context_takeover"),
        ("permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
         ANSWER + "; server_max_window_bits=10"),
        ("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, "
         "permessage-deflate; server_no_context_takeover", ANSWER),
        ("permessage-deflate; server_max_window_bits=8", None),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; client_max_window_bits=16", None),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
        ("permessage-deflate; unknown_param", None),
        ("permessage-deflate; client_max_window_bits=\"10", None),
        ("x-webkit-deflate-frame", None),
    ]
    with t.server() as s:
        for offer, want in cases:
            c = deflate_ws("/sub/n", s, offer)
            eq(c.head.header("sec-websocket-extensions"), want, "Sec-WebSocket-Extensions answered to %r" % offer)
            c.try_send_close()
        # two header lines are one list: the first line's bad offer, the second's good one
        c = raw_conn(s)
        c.handshake("/sub/n", headers=[("Sec-WebSocket-Extensions", "permessage-deflate; bogus"),
                                       ("Sec-WebSocket-Extensions", "permessage-deflate")])
        c.check_accept("two extension lines")
        eq(c.head.header("sec-websocket-extensions"), ANSWER, "answer to two Sec-WebSocket-Extensions lines")
        body = json_like(1000)
        s.publish("n", body)
        eq(c.recv_message(5, "the publish"), (OP_TEXT, body.encode()), "message on the two-line connection")
        eq(c.compressed[-1], True, "1000-byte message compressed")
    with t.server(ws_deflate="off") as s:
        c = deflate_ws("/sub/n", s, "permessage-deflate; client_no_context_takeover")
        eq(c.head.header("sec-websocket-extensions"), None, "--ws-deflate off: Sec-WebSocket-Extensions")
        body = json_like(1000)
        s.publish("n", body)
        eq(c.recv_message(5, "the publish"), (OP_TEXT, body.encode()), "--ws-deflate off: message")
        eq(c.compressed, [False], "--ws-deflate off: sent plain")
        # and a compressed frame is then a protocol error (RSV1 not negotiated)
        c.send_frame(OP_TEXT, client_deflate(body.encode()), rsv=4)
        c.expect_close(1002, what="RSV1 without the extension")


@test
def ws_deflate_server_frames(t):
    """Messages of 64 bytes or more reach deflate subscribers compressed (RSV1), each inflating
    alone to exactly the published bytes (text, binary, the ringcast.json form, a narrow
    window); shorter ones and incompressible ones go plain; subscribers without the extension
    get plain frames; every deflate subscriber, on any worker, gets the same bytes."""
    with t.server(workers=3) as s:
        subs = [deflate_ws("/sub/d", s) for _ in range(6)]
        plain = raw_conn(s)
        plain.handshake("/sub/d")
        plain.check_accept()
        narrow = deflate_ws("/sub/d", s, "permessage-deflate; server_max_window_bits=9")
        eq(narrow.head.header("sec-websocket-extensions"), ANSWER + "; server_max_window_bits=9", "narrow answer")
        js = deflate_ws("/sub/d", s, protocols="ringcast.json")
        eq(js.head.header("sec-websocket-protocol"), "ringcast.json", "subprotocol with deflate")
        big = json_like(1024)
        rnd = os.urandom(600)
        msgs = [(OP_TEXT, big.encode(), True), (OP_TEXT, b"x" * 63, False), (OP_TEXT, b"y" * 64, True),
                (OP_BINARY, b"\x00\xff" * 2000, True), (OP_BINARY, rnd, False),
                (OP_TEXT, ("caf\u00e9 " * 100).encode(), True)]
        ids = []
        for op, body, _ in msgs:
            hdr = [("Content-Type", "application/octet-stream")] if op == OP_BINARY else None
            ids.append(s.publish("d", body, headers=hdr)["id"])
        want = [(op, body) for op, body, _ in msgs]
        wantz = [z for _, _, z in msgs]
        raw_frames = None
        for k, c in enumerate(subs + [narrow]):
            eq(c.recv_messages(len(msgs), 5, "deflate subscriber %d" % k), want, "deflate subscriber %d: messages" % k)
            eq(c.compressed, wantz, "deflate subscriber %d: which came compressed" % k)
            frames = [f.payload for f in c.frames if f.opcode in (OP_TEXT, OP_BINARY)]
            if c is not narrow:
                if raw_frames is None:
                    raw_frames = frames
                eq(frames == raw_frames, True, "subscriber %d got the same compressed bytes as subscriber 0" % k)
        eq(len(raw_frames[0]) < 600, True, "1 KiB JSON-like message compressed to %d bytes" % len(raw_frames[0]))
        eq(plain.recv_messages(len(msgs), 5, "plain subscriber"), want, "plain subscriber: messages")
        eq(plain.compressed, [False] * len(msgs), "plain subscriber: nothing compressed")
        got = [json.loads(p) for _, p in js.recv_messages(len(msgs), 5, "ringcast.json subscriber")]
        eq([g["id"] for g in got], ids, "ringcast.json ids")
        for (op, body, _), g in zip(msgs, got):
            if op == OP_TEXT:  # binary bodies are not safe in this form
                eq(g, {"channel": "d", "id": g["id"], "data": body.decode()}, "ringcast.json form of %d" % g["id"])
        check(all(js.compressed), "ringcast.json frames compressed: %r" % js.compressed)


@test
def ws_deflate_client_messages(t):
    """Compressed client messages (one frame; fragmented with RSV1 on the first frame only;
    several in a row with the client's context kept, and with client_no_context_takeover) are
    inflated and published exactly: an SSE subscriber gets the same text, a plain WebSocket
    subscriber the same bytes."""
    with t.server(max_message=200000) as s:
        sse = s.sse("/sub/c")
        sse.preamble()
        plain = raw_conn(s)
        plain.handshake("/sub/c")
        plain.check_accept()
        c = deflate_ws("/sub/c", s)
        sent = []
        # one frame, fresh context each (a client may always reset)
        m = json_like(5000, 2)
        c.send_frame(OP_TEXT, client_deflate(m.encode()), rsv=4)
        sent.append(m)
        # context kept across messages: the repeat is tiny and refers back
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        m2 = json_like(3000, 3)
        for _ in range(3):
            z = client_deflate(m2.encode(), co)
            c.send_frame(OP_TEXT, z, rsv=4)
            sent.append(m2)
        check(len(z) < 100, "the repeated message compressed to %d bytes: not referring back?" % len(z))
        # fragmented: RSV1 on the first frame only, the compressed bytes split in three
        m3 = json_like(150000, 4)
        z = client_deflate(m3.encode(), co)
        k = len(z) // 3
        c.send_frame(OP_TEXT, z[:k], rsv=4, fin=False)
        c.send_frame(OP_CONT, z[k:2 * k], fin=False)
        c.send_frame(OP_CONT, z[2 * k:])
        sent.append(m3)
        # an uncompressed message in between is fine too
        c.send_text("plain text in between")
        sent.append("plain text in between")
        evs = sse.events(len(sent), 10.0)
        eq([e.data for e in evs] == sent, True, "SSE subscriber got the client's messages exactly (lengths %r vs %r)"
           % ([len(e.data) for e in evs], [len(x) for x in sent]))
        eq(plain.recv_messages(len(sent), 5), [(OP_TEXT, x.encode()) for x in sent], "plain WebSocket subscriber")
        # binary, with client_no_context_takeover
        n = deflate_ws("/sub/c", s, "permessage-deflate; client_no_context_takeover")
        eq(n.head.header("sec-websocket-extensions"), ANSWER + "; client_no_context_takeover", "cnct answer")
        b = bytes(range(256)) * 40
        for _ in range(2):
            n.send_frame(OP_BINARY, client_deflate(b), rsv=4)
        got = plain.recv_messages(2, 5)
        eq(got, [(OP_BINARY, b)] * 2, "binary compressed messages (client_no_context_takeover)")
        eq(stats_total(s)["ws_protocol_errors"], 0, "ws_protocol_errors")


@test
def ws_deflate_limits(t):
    """--max-message 65536 counts inflated bytes: 10 MB of zeros compressed to ~10 KB (a
    deflate bomb) closes 1009 and the server's RSS does not grow by anything like 10 MB, even
    after many; exactly 65536 inflated bytes pass. Invalid UTF-8 after inflating and invalid
    deflate data close 1007."""
    with t.server(max_message=65536) as s:
        sse = s.sse("/sub/b")
        sse.preamble()
        bomb = client_deflate(b"\0" * (10 << 20))
        check(len(bomb) < 20000, "bomb is %d bytes" % len(bomb))
        c = deflate_ws("/sub/b", s)
        c.send_frame(OP_BINARY, bomb, rsv=4)
        c.expect_close(1009, what="deflate bomb")
        before = rss_kb(s)
        for i in range(20):
            c = deflate_ws("/sub/b", s)
            c.send_frame(OP_TEXT if i % 2 else OP_BINARY, bomb, rsv=4)
            c.expect_close(1009, what="deflate bomb %d" % i)
        after = rss_kb(s)
        check(after[0] - before[0] < 8192 and after[1] - before[1] < 8192,
              "over 20 deflate bombs RSS went from %d KB to %d KB, its peak from %d KB to %d KB"
              % (before[0], after[0], before[1], after[1]))
        # the cap itself: 65536 inflated bytes pass, 65537 do not
        c = deflate_ws("/sub/b", s)
        c.send_frame(OP_TEXT, client_deflate(b"a" * 65536), rsv=4)
        eq(len(sse.events(1, 5.0)[0].data), 65536, "a 65536-byte compressed message published")
        c.send_frame(OP_TEXT, client_deflate(b"a" * 65537), rsv=4)
        c.expect_close(1009, what="65537 bytes inflated")
        # incompressible data at the limit: its compressed form is a little longer, still fine
        c = deflate_ws("/sub/b", s)
        rnd = os.urandom(65536)
        z = client_deflate(rnd)
        check(len(z) > 65536, "random data compressed to %d" % len(z))
        c.send_frame(OP_BINARY, z, rsv=4)
        c.send_text("after the random one")
        eq(sse.events(2, 5.0)[1].data, "after the random one", "message after 65536 random bytes compressed")
        # an uncompressed message is still held to --max-message exactly
        c.send_frame(OP_BINARY, b"u" * 65537)
        c.expect_close(1009, what="65537 bytes uncompressed on a deflate connection")
        # invalid UTF-8 inside a compressed text
        c = deflate_ws("/sub/b", s)
        c.send_frame(OP_TEXT, client_deflate(b"ok so far \xff\xfe"), rsv=4)
        c.expect_close(1007, what="invalid UTF-8 after inflating")
        # not deflate data at all
        c = deflate_ws("/sub/b", s)
        c.send_frame(OP_TEXT, b"\xff\xff\xff\xff\xff", rsv=4)
        c.expect_close(1007, what="invalid deflate data")
        st = stats_total(s)
        eq(st["ws_protocol_errors"], 25, "ws_protocol_errors")
        s.publish("b", "still alive")
        eq(sse.events(1, 5.0)[0].data, "still alive", "server alive after the bombs")


async def _python_deflate(s):
    import websockets.client
    uri = "ws://%s:%d/sub/py" % (s.host, s.port)
    sse = s.sse("/sub/py")
    await asyncio.to_thread(sse.preamble)
    ws = await asyncio.wait_for(websockets.client.connect(uri, ping_interval=None, max_size=1 << 20), 5)
    try:
        eq([e.name for e in ws.extensions], ["permessage-deflate"], "python3-websockets default: extensions")
        pmd = ws.extensions[0]
        eq(pmd.remote_no_context_takeover, True, "python3-websockets: server_no_context_takeover seen")
        big = json_like(4096, 5)
        for body in (big, "short", big + "!"):
            await asyncio.to_thread(s.publish, "py", body)
            eq(await asyncio.wait_for(ws.recv(), 5), body, "python3-websockets: received")
        mine = [json_like(2000, 6), json_like(2000, 6), "tiny"]
        for m in mine:
            await asyncio.wait_for(ws.send(m), 5)
        evs = await asyncio.to_thread(sse.events, 3 + len(mine), 5.0)
        eq([e.data for e in evs[3:]] == mine, True, "SSE subscriber got python's compressed messages exactly")
        await asyncio.wait_for(ws.close(1000), 5)
        eq(ws.close_code, 1000, "python3-websockets: close code")
    finally:
        await ws.close()


@test
def ws_deflate_python(t):
    """python3-websockets with its default compression: negotiated, receives compressed
    messages correctly, sends compressed ones an SSE subscriber gets exactly."""
    try:
        import websockets.client  # noqa: F401
    except ImportError as e:
        raise Failure("python3-websockets is not installed (%s): `make deps` installs it" % e)
    with t.server() as s:
        asyncio.run(_python_deflate(s))
        eq(stats_total(s)["ws_protocol_errors"], 0, "ws_protocol_errors")
