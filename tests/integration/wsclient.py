"""A small WebSocket (RFC 6455) client over raw sockets, for the integration tests.

Standard library only. It can send any frame a test wants (unmasked, RSV bits, reserved
opcodes, non-minimal lengths, fragments, bad close payloads) and checks every frame the server
sends against RFC 6455's rules for a server (unmasked, RSV clear, known opcode, control frames
whole and at most 125 bytes, minimal length form, close payload shape), raising ProtocolError at
once on a violation. Every wait has a deadline.

    ws_key()             a fresh Sec-WebSocket-Key
    accept_for(key)      the Sec-WebSocket-Accept a server must answer for it
    build_frame(...)     the bytes of one client (or raw) frame
    WSConn               one connection: handshake(), send_*(), recv_frame/recv_message(),
                         expect_close(); on_readable() for client.pump_all

Received frames are parsed as bytes arrive: every frame goes to .frames (Frame objects, in
order), complete data messages to .messages ((opcode, payload)), pings are answered with pongs
when auto_pong is on (the default), and the server's close frame is kept in .close_frame.
recv_frame() and recv_message() consume from those lists with their own cursors.
"""

import base64
import hashlib
import os
import struct
import time
import zlib

import client
from client import Closed, ProtocolError, Timeout, parse_head

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
OP_NAMES = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key):
    if isinstance(key, str):
        key = key.encode("latin-1")
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def mask_bytes(data, key):
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None, length_form=None,
                length=None):
    """One frame. rsv: 3 bits (4 = RSV1, 2 = RSV2, 1 = RSV3). mask: False sends it unmasked.
    length_form: 7, 16 or 64 to force a length encoding (default: minimal). length: a length
    field that differs from len(payload) (to announce more than is sent)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    form = length_form or (7 if n < 126 else 16 if n < 65536 else 64)
    if form == 7:
        head = struct.pack("!BB", b0, mbit | n)
    elif form == 16:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = key or os.urandom(4)
        return head + key + mask_bytes(payload, key)
    return head + payload


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload, header_len):
        self.fin, self.rsv, self.opcode, self.masked = fin, rsv, opcode, masked
        self.payload = payload
        self.header_len = header_len  # 2, 4 or 10: tells the length form used

    @property
    def close_code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self):
        return self.payload[2:]

    def __repr__(self):
        p = self.payload if len(self.payload) <= 80 else self.payload[:80] + b"...(%d)" % len(self.payload)
        return "Frame(%s%s, %r)" % (OP_NAMES.get(self.opcode, hex(self.opcode)), "" if self.fin else " fin=0", p)


class WSConn(client.Conn):
    """One WebSocket client connection (a client.Conn underneath: blocking socket with
    per-call deadlines, plus a non-blocking on_readable for client.pump_all)."""

    def __init__(self, port, host=client.HOST, timeout=5.0, rcvbuf=None, tracker=None, auto_pong=True):
        super().__init__(port, host=host, timeout=timeout, rcvbuf=rcvbuf, tracker=tracker)
        self.path = None
        self.auto_pong = auto_pong
        self.head = None  # the handshake Response
        self.upgraded = False
        self.frames = []
        self.fpos = 0
        self.messages = []  # (opcode, payload) of complete data messages
        self.mpos = 0
        self.close_frame = None
        self.close_at = None  # monotonic time the server's close frame was parsed
        self.pings = []
        self.pongs = []
        self._frag = None  # [opcode, bytearray] of a data message in progress
        self.violation = None
        # permessage-deflate: set deflate_bits (the window the server may use, 15 unless
        # server_max_window_bits) after a handshake that negotiated it. Each compressed message
        # is inflated alone (the server always uses server_no_context_takeover) and stored
        # inflated in messages; compressed[i] says whether messages[i] came with RSV1.
        self.deflate_bits = None
        self.compressed = []

    def fileno(self):
        return self.sock.fileno()

    # -- handshake

    def handshake(self, path, key=None, version="13", protocols=None, origin=None, headers=None,
                  omit=(), upgrade="websocket", connection="Upgrade", http="HTTP/1.1", timeout=None):
        """Sends the opening handshake and reads the answer's head (and body, if not 101).
        omit: header names to leave out (e.g. {"Sec-WebSocket-Key"}). Returns the Response;
        after a 101, frames follow."""
        self.path = path
        self.key = key if key is not None else ws_key()
        hl = [("Host", "127.0.0.1")]
        if upgrade is not None:
            hl.append(("Upgrade", upgrade))
        if connection is not None:
            hl.append(("Connection", connection))
        if key is not False:
            hl.append(("Sec-WebSocket-Key", self.key))
        if version is not None:
            hl.append(("Sec-WebSocket-Version", version))
        if protocols:
            hl.append(("Sec-WebSocket-Protocol", protocols if isinstance(protocols, str) else ", ".join(protocols)))
        if origin is not None:
            hl.append(("Origin", origin))
        hl += list(headers or [])
        drop = {o.lower() for o in omit}
        hl = [(n, v) for n, v in hl if n.lower() not in drop]
        req = "GET %s %s\r\n" % (path, http) + "".join("%s: %s\r\n" % (n, v) for n, v in hl) + "\r\n"
        self.send(req.encode("latin-1"))
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        raw = self.read_until(b"\r\n\r\n", deadline, limit=65536, what="handshake answer head")
        version_, status, reason, hdrs = parse_head(raw[:-4])
        resp = client.Response(version_, status, reason, hdrs, b"", raw)
        self.head = resp
        if status == 101:
            self.upgraded = True
            ext = resp.header("sec-websocket-extensions")
            if ext and ext.split(";")[0].strip() == "permessage-deflate":
                self.deflate_bits = 15
                for p in ext.split(";")[1:]:
                    k, _, v = p.strip().partition("=")
                    if k == "server_max_window_bits":
                        self.deflate_bits = int(v.strip('"'))
            self._parse()  # frames that came with the head
        else:
            cl = resp.header("content-length")
            if cl is not None and cl.isdigit():
                resp.body = self.read_exact(int(cl), deadline, "body of %d answer" % status)
        return resp

    def check_accept(self, what="handshake"):
        """The head is 101 with Upgrade: websocket, Connection: Upgrade and the right
        Sec-WebSocket-Accept."""
        h = self.head
        if h.status != 101:
            raise ProtocolError("%s %s: expected 101, got %s" % (what, self.path, h.short()))
        up = h.header("upgrade") or ""
        if up.lower() != "websocket":
            raise ProtocolError("%s: Upgrade header %r, expected websocket" % (what, up))
        if "upgrade" not in [t.lower() for t in h.header_tokens("connection")]:
            raise ProtocolError("%s: Connection header %r has no upgrade token" % (what, h.header("connection")))
        acc = h.header("sec-websocket-accept")
        if acc != accept_for(self.key):
            raise ProtocolError("%s: Sec-WebSocket-Accept %r, expected %r for key %r"
                                % (what, acc, accept_for(self.key), self.key))
        if h.header("content-length") not in (None, "0") or h.header("transfer-encoding"):
            raise ProtocolError("%s: 101 carries a body framing header: %r" % (what, h.headers))

    # -- sending

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(build_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_ping(self, data=b"", **kw):
        self.send_frame(OP_PING, data, **kw)

    def send_close(self, code=None, reason=b"", **kw):
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    def try_send_close(self, code=1000):
        try:
            self.send_close(code)
            return True
        except OSError:
            return False

    # -- receiving

    def _violate(self, msg):
        self.violation = "server frame #%d on %s: %s" % (len(self.frames) + 1, self.path, msg)
        raise ProtocolError(self.violation)

    def _parse(self):
        """Moves every complete frame from buf to the frame list, checking it."""
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            fin, rsv, op = b0 >> 7, (b0 >> 4) & 7, b0 & 0xF
            masked, n = b1 >> 7, b1 & 0x7F
            hl = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = struct.unpack("!H", bytes(buf[2:4]))[0]
                hl = 4
                if n < 126:
                    self._violate("16-bit length %d not minimal" % n)
            elif n == 127:
                if len(buf) < 10:
                    return
                n = struct.unpack("!Q", bytes(buf[2:10]))[0]
                hl = 10
                if n < 65536 or n >> 63:
                    self._violate("64-bit length %d not minimal or top bit set" % n)
            if masked:
                self._violate("masked (a server must not mask)")
            if rsv and not (rsv == 4 and self.deflate_bits and op in (OP_TEXT, OP_BINARY)):
                self._violate("RSV bits %d set on a %s frame (%s)" % (
                    rsv, OP_NAMES.get(op, op), "deflate negotiated: RSV1 only on text or binary"
                    if self.deflate_bits else "no extension was negotiated"))
            if op not in OP_NAMES:
                self._violate("reserved opcode %d" % op)
            if op >= 8 and (not fin or n > 125):
                self._violate("control frame %s fin=%d length %d" % (OP_NAMES[op], fin, n))
            if len(buf) < hl + n:
                return
            payload = bytes(buf[hl:hl + n])
            del buf[:hl + n]
            f = Frame(fin, rsv, op, masked, payload, hl)
            if self.close_frame is not None:
                self._violate("%r after the server's close frame" % f)
            self.frames.append(f)
            if op == OP_PING:
                self.pings.append(payload)
                if self.auto_pong:
                    try:
                        self.send_frame(OP_PONG, payload)
                    except OSError:
                        pass
            elif op == OP_PONG:
                self.pongs.append(payload)
            elif op == OP_CLOSE:
                if len(payload) == 1:
                    self._violate("close frame with a 1-byte payload")
                self.close_frame = f
                self.close_at = time.monotonic()
            elif op == OP_CONT:
                if self._frag is None:
                    self._violate("continuation frame without a message")
                self._frag[1] += payload
                if fin:
                    self.messages.append((self._frag[0], bytes(self._frag[1])))
                    self.compressed.append(False)
                    self._frag = None
            else:
                if self._frag is not None:
                    self._violate("new data frame inside a fragmented message")
                if rsv:
                    if not fin:
                        self._violate("a fragmented compressed message (the server never fragments)")
                    try:
                        d = zlib.decompressobj(-self.deflate_bits)
                        payload = d.decompress(payload + b"\x00\x00\xff\xff")
                    except zlib.error as e:
                        self._violate("compressed payload does not inflate alone with window %d: %s"
                                      % (self.deflate_bits, e))
                if fin:
                    self.messages.append((op, payload))
                    self.compressed.append(bool(rsv))
                else:
                    self._frag = [op, bytearray(payload)]

    def _fill(self, deadline, what):
        ok = super()._fill(deadline, what)
        if ok and self.upgraded:
            self._parse()
        return ok

    def on_readable(self, maxbytes=262144):
        """One non-blocking recv (for client.pump_all). False at EOF/RST."""
        if self.eof:
            return False
        self.sock.settimeout(0)
        try:
            d = self.sock.recv(maxbytes)
        except (BlockingIOError, InterruptedError):
            return True
        except (ConnectionResetError, ConnectionAbortedError):
            self.eof = self.reset = True
            return False
        if not d:
            self.eof = True
            return False
        self.buf += d
        if self.upgraded:
            self._parse()
        return True

    def wait(self, cond, timeout, what):
        """Reads until cond(self); Timeout after `timeout` s, Closed at EOF first."""
        deadline = time.monotonic() + timeout
        while not cond(self):
            if not self._fill(deadline, what + " on " + str(self.path)):
                if cond(self):
                    break
                raise Closed("%s: connection closed (%s) while waiting for %s; frames so far %r"
                             % (self.path, "reset" if self.reset else "EOF", what, self.frames[-6:]))

    def recv_frame(self, timeout=5.0, what="a frame"):
        self.wait(lambda s: s.fpos < len(s.frames), timeout, what)
        f = self.frames[self.fpos]
        self.fpos += 1
        return f

    def recv_message(self, timeout=5.0, what="a message"):
        """The next complete data message as (opcode, payload)."""
        self.wait(lambda s: s.mpos < len(s.messages), timeout, what)
        m = self.messages[self.mpos]
        self.mpos += 1
        return m

    def recv_messages(self, n, timeout=5.0, what=None):
        what = what or "%d messages" % n
        try:
            self.wait(lambda s: len(s.messages) - s.mpos >= n, timeout, what)
        except (Timeout, Closed) as e:
            raise type(e)("%s; got %d: %r" % (e, len(self.messages) - self.mpos, self.messages[self.mpos:][:10]))
        out = self.messages[self.mpos:self.mpos + n]
        self.mpos += n
        return out

    def texts(self, n, timeout=5.0, what=None):
        """The next n messages, each checked to be a text frame, decoded."""
        out = []
        for op, p in self.recv_messages(n, timeout, what):
            if op != OP_TEXT:
                raise ProtocolError("%s: expected a text message, got opcode %d: %r" % (self.path, op, p[:100]))
            out.append(p.decode("utf-8"))
        return out

    def pending_messages(self):
        out = self.messages[self.mpos:]
        self.mpos = len(self.messages)
        return out

    def quiet_for(self, wait):
        """Reads for `wait` seconds (or until EOF); returns the messages that came (consumed)."""
        deadline = time.monotonic() + wait
        try:
            while not self.eof and self._fill(deadline, "quiet"):
                pass
        except Timeout:
            pass
        return self.pending_messages()

    def expect_silent_frames(self, wait, what):
        """Fails if a frame (or EOF) arrives within `wait` s."""
        n = len(self.frames)
        deadline = time.monotonic() + wait
        try:
            while self._fill(deadline, what):
                if len(self.frames) > n:
                    break
        except Timeout:
            return
        raise ProtocolError("%s %s: got %s" % (self.path, what, self.frames[n:] or "EOF"))

    def expect_close(self, code, timeout=3.0, what="close", reply=True, eof_within=2.0):
        """Waits for the server's close frame (data and pings before it are skipped), checks its
        code, answers it with a close (reply) and waits for the TCP connection to end within
        eof_within s. Returns the close Frame."""
        try:
            self.wait(lambda s: s.close_frame is not None, timeout, "a close frame (%s)" % what)
        except (Timeout, Closed) as e:
            raise ProtocolError("%s: expected a close frame with code %s: %s" % (what, code, e))
        f = self.close_frame
        if f.close_code != code:
            raise ProtocolError("%s: close code %r (reason %r), expected %s"
                                % (what, f.close_code, f.close_reason, code))
        try:
            f.close_reason.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("%s: close reason is not UTF-8: %r" % (what, f.close_reason))
        if reply:
            self.try_send_close(code if code not in (None, 1005) else None)
        if eof_within is not None:
            closed, _ = self.wait_closed_frames(eof_within)
            if not closed:
                raise ProtocolError("%s: TCP still open %.1fs after the close frame%s"
                                    % (what, eof_within, " and our reply" if reply else ""))
        return f

    def wait_closed_frames(self, timeout):
        """Like Conn.wait_closed, parsing what comes. Returns (closed, frames after the close)."""
        deadline = time.monotonic() + timeout
        n = len(self.frames)
        try:
            while self._fill(deadline, "close"):
                pass
        except Timeout:
            return False, self.frames[n:]
        return True, self.frames[n:]


def open_ws(s, path, protocols=None, rcvbuf=None, timeout=5.0, auto_pong=True, **kw):
    """A WSConn to server s (a harness.Server), handshake done and checked (101, accept)."""
    c = WSConn(s.port, host=s.host, timeout=timeout, rcvbuf=rcvbuf, tracker=s.clients, auto_pong=auto_pong)
    c.handshake(path, protocols=protocols, **kw)
    c.check_accept()
    return c
