"""Real WebSocket clients against the server: Debian's python3-websockets (asyncio API) and
Node's `ws` (Debian's node-ws, driven by node/ws_client.js). Each connects, receives published
messages in order, sends messages that an SSE subscriber receives, pings, and closes cleanly
(close code 1000 seen by the client), with the client's permessage-deflate offer on (its
default: the server accepts it, so large messages travel compressed both ways) and off.
test_ws_deflate.py checks the compression itself.

Both clients are installed by `make deps` (Makefile DEB_PKGS: python3-websockets, nodejs,
node-ws); when one is missing the test FAILs saying so, it is never skipped silently."""

import asyncio
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time

from harness import Failure, check, eq, json_answer, test

def _short(v, n=60):
    """v with every long str/bytes inside cut, for failure messages."""
    if isinstance(v, str) and len(v) > n:
        return "%s...(%d)" % (v[:n], len(v))
    if isinstance(v, bytes) and len(v) > n:
        return v[:n] + b"...(%d)" % len(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_short(x, n) for x in v)
    return v


def eqs(actual, expected, what):
    if actual != expected:
        raise Failure("%s: expected %r, got %r" % (what, _short(expected), _short(actual)))


HERE = os.path.dirname(os.path.abspath(__file__))
NODE_SCRIPT = os.path.join(HERE, "node", "ws_client.js")
BIN_BODY = b"\x00\x01\x02 binary \xfe\xff"
BIG = 70000


def publish_set(s, ch):
    """Publishes the messages every client must receive; returns them as (binary, bytes)."""
    msgs = [(False, "first".encode()), (False, "caf\u00e9 \u20ac".encode()), (True, BIN_BODY),
            (False, b"L" * BIG)]
    for binary, body in msgs:
        s.publish(ch, body, headers=[("Content-Type", "application/octet-stream")] if binary else None)
    return msgs


# ----------------------------------------------------------------------------------------------
# python3-websockets


def _import_websockets():
    try:
        import websockets  # noqa: F401
        import websockets.client  # noqa: F401
    except ImportError as e:
        raise Failure("python3-websockets is not installed for %s (%s): `make deps` installs it "
                      "(Makefile DEB_PKGS)" % (sys.executable, e))
    return websockets


async def _python_session(s, websockets, compression, ch):
    uri = "ws://%s:%d/sub/%s" % (s.host, s.port, ch)
    sse = s.sse("/sub/" + ch)
    await asyncio.to_thread(sse.preamble)
    ws = await asyncio.wait_for(websockets.client.connect(uri, compression=compression, ping_interval=None,
                                                          max_size=1 << 20, open_timeout=5), 5)
    what = "python3-websockets (compression=%r)" % compression
    try:
        if compression:
            eq(ws.response_headers.get("Sec-WebSocket-Extensions"), "permessage-deflate; server_no_context_takeover",
               what + ": Sec-WebSocket-Extensions answered")
            eq([e.name for e in ws.extensions], ["permessage-deflate"], what + ": negotiated extensions")
        else:
            check(ws.response_headers.get("Sec-WebSocket-Extensions") is None,
                  "%s: the server accepted an extension nobody offered: %r", what,
                  ws.response_headers.get("Sec-WebSocket-Extensions"))
            eq(list(ws.extensions), [], what + ": negotiated extensions")
        eq(ws.subprotocol, None, what + ": subprotocol")
        want = await asyncio.to_thread(publish_set, s, ch)
        for k, (binary, body) in enumerate(want):
            m = await asyncio.wait_for(ws.recv(), 5)
            got = (isinstance(m, bytes), m if isinstance(m, bytes) else m.encode())
            check(got == (binary, body), "%s: message %d: got %r, want %r", what, k + 1,
                  (got[0], got[1][:60]), (binary, body[:60]))
        sent = ["from python 1", "from python \u00e9 2", "P" * BIG]
        for m in sent:
            await asyncio.wait_for(ws.send(m), 5)
        await asyncio.wait_for(ws.send(b"\x01\x02 python bytes"), 5)
        evs = (await asyncio.to_thread(sse.events, len(want) + 4, 5.0))[len(want):]
        eqs([e.data for e in evs[:3]], sent, what + ": what the SSE subscriber got of the client's messages")
        eq([e.id for e in evs], [str(i) for i in range(len(want) + 1, len(want) + 5)], what + ": ids")
        back = [await asyncio.wait_for(ws.recv(), 5) for _ in range(4)]
        eqs(back, sent + [b"\x01\x02 python bytes"], what + ": its own messages received back")
        pong = await asyncio.wait_for(ws.ping(b"py-ping"), 5)
        await asyncio.wait_for(pong, 3)
        await asyncio.wait_for(ws.close(1000, "done"), 5)
        eq(ws.close_code, 1000, what + ": close code the client saw")
        check(ws.close_sent is not None and ws.close_rcvd is not None and ws.close_rcvd.code == 1000,
              "%s: close handshake: sent %r received %r", what, ws.close_sent, ws.close_rcvd)
    finally:
        await ws.close()
    # ringcast.json chosen from the offer
    ws = await asyncio.wait_for(websockets.client.connect(uri, compression=compression, ping_interval=None,
                                                          subprotocols=["chat", "ringcast.json"]), 5)
    try:
        eq(ws.subprotocol, "ringcast.json", what + ": subprotocol chosen from chat, ringcast.json")
        v = await asyncio.to_thread(s.publish, ch, "json please")
        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
        eq(m, {"channel": ch, "id": v["id"], "data": "json please"}, what + ": ringcast.json frame")
        await asyncio.wait_for(ws.close(), 5)
        eq(ws.close_code, 1000, what + ": close code (ringcast.json connection)")
    finally:
        await ws.close()


@test
def ws_client_python(t):
    """python3-websockets 10.x (asyncio): receive in order (text, binary, 70 KB), send (an SSE
    subscriber gets them, the client too), ping, close 1000, ringcast.json; with its
    permessage-deflate offer (accepted) and without."""
    websockets = _import_websockets()
    with t.server(max_message=100000) as s:
        for k, compression in enumerate(("deflate", None)):
            asyncio.run(_python_session(s, websockets, compression, "py%d" % k))
        st = json_answer(s.get("/stats"), 200, "GET /stats")["total"]
        eq(st["ws_protocol_errors"], 0, "/stats ws_protocol_errors after the python client")


# ----------------------------------------------------------------------------------------------
# Node ws


class NodeClient:
    """node/ws_client.js as a child process: commands on stdin, JSON events from stdout."""

    def __init__(self, t, url, protocols, deflate, ca=None):
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            raise Failure("node is not installed: `make deps` installs nodejs and node-ws (Makefile DEB_PKGS)")
        self.what = "node ws (deflate %s)" % deflate
        self.p = t.spawn([node, NODE_SCRIPT, url, protocols or "-", deflate] + ([ca] if ca else []),
                         stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""
        self.events = []
        self.pos = 0
        self.eof = False

    def cmd(self, **c):
        self.p.stdin.write((json.dumps(c) + "\n").encode())
        self.p.stdin.flush()

    def _stderr(self):
        try:
            self.p.wait(2)
        except subprocess.TimeoutExpired:
            self.p.kill()
        try:
            return self.p.stderr.read().decode("utf-8", "replace")[-1500:]
        except (OSError, ValueError):
            return ""

    def next(self, timeout=5.0, what="an event"):
        deadline = time.monotonic() + timeout
        while self.pos >= len(self.events):
            if self.eof:
                raise Failure("%s: ended (exit %s) while waiting for %s; events %r; stderr: %s"
                              % (self.what, self.p.poll(), what, self.events[-5:], self._stderr()))
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("%s: no %s within %.0fs; events so far %r" % (self.what, what, timeout, self.events[-5:]))
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if not r:
                continue
            d = os.read(self.p.stdout.fileno(), 1 << 20)
            if not d:
                self.eof = True
                continue
            self.buf += d
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    raise Failure("%s: bad output line %r" % (self.what, line[:300]))
        ev = self.events[self.pos]
        self.pos += 1
        if ev.get("ev") == "error":
            raise Failure("%s: error while waiting for %s: %s; stderr: %s"
                          % (self.what, what, ev.get("message"), self._stderr()))
        return ev

    def expect(self, kind, timeout=5.0, what=None):
        ev = self.next(timeout, what or kind)
        if ev.get("ev") != kind:
            raise Failure("%s: expected a %s event (%s), got %r" % (self.what, kind, what or kind, ev))
        return ev

    def message(self, timeout=5.0, what="a message"):
        ev = self.expect("message", timeout, what)
        return (True, base64.b64decode(ev["data"])) if ev["binary"] else (False, ev["data"].encode())


@test
def ws_client_node(t):
    """Node's ws (Debian node-ws): receive in order (text, binary, 70 KB), send (an SSE
    subscriber gets them, the client too), ping, close 1000, ringcast.json; with its
    permessage-deflate offer (accepted) and without."""
    with t.server(max_message=100000) as s:
        for k, deflate in enumerate(("on", "off")):
            ch = "node%d" % k
            sse = s.sse("/sub/" + ch)
            sse.preamble()
            n = NodeClient(t, "ws://%s:%d/sub/%s" % (s.host, s.port, ch), None, deflate)
            what = n.what
            op = n.expect("open", 5, "the open event")
            eq(op.get("extensions"), "permessage-deflate" if deflate == "on" else "",
               what + ": negotiated extensions")
            eq(op.get("protocol"), "", what + ": subprotocol")
            eq(op.get("headers", {}).get("sec-websocket-extensions"),
               "permessage-deflate; server_no_context_takeover" if deflate == "on" else None,
               what + ": Sec-WebSocket-Extensions of the 101")
            want = publish_set(s, ch)
            for i, (binary, body) in enumerate(want, 1):
                got = n.message(5, "published message %d" % i)
                check(got == (binary, body), "%s: message %d: got %r, want %r", what, i,
                      (got[0], got[1][:60]), (binary, body[:60]))
            sent = ["from node 1", "from node \u00e9 2", "N" * BIG]
            for m in sent:
                n.cmd(op="send", data=m)
            n.cmd(op="send", data=base64.b64encode(b"\x01\x02 node bytes").decode(), binary=True)
            evs = sse.events(len(want) + 4, 5.0)[len(want):]
            eqs([e.data for e in evs[:3]], sent, what + ": what the SSE subscriber got of the client's messages")
            eq([e.id for e in evs], [str(i) for i in range(len(want) + 1, len(want) + 5)], what + ": ids")
            back = [n.message(5, "its own message back") for _ in range(4)]
            eqs(back, [(False, m.encode()) for m in sent] + [(True, b"\x01\x02 node bytes")],
               what + ": its own messages received back")
            n.cmd(op="ping", data="node-ping")
            eq(n.expect("pong", 3).get("data"), "node-ping", what + ": pong payload")
            n.cmd(op="close", code=1000, reason="done")
            cl = n.expect("close", 5, "the close event")
            eq(cl.get("code"), 1000, what + ": close code the client saw")
            try:
                rc = n.p.wait(3)
            except subprocess.TimeoutExpired:
                rc = None
            eq(rc, 0, what + ": exit status of ws_client.js")
            # ringcast.json chosen from the offer
            j = NodeClient(t, "ws://%s:%d/sub/%s" % (s.host, s.port, ch), "chat,ringcast.json", deflate)
            eq(j.expect("open").get("protocol"), "ringcast.json", what + ": subprotocol from chat,ringcast.json")
            v = s.publish(ch, "json please")
            got = j.message(5, "a ringcast.json frame")
            eq(json.loads(got[1]), {"channel": ch, "id": v["id"], "data": "json please"}, what + ": ringcast.json frame")
            j.cmd(op="close", code=1000)
            eq(j.expect("close", 5).get("code"), 1000, what + ": close code (ringcast.json connection)")
        st = json_answer(s.get("/stats"), 200, "GET /stats")["total"]
        eq(st["ws_protocol_errors"], 0, "/stats ws_protocol_errors after the node client")
